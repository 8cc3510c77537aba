// The channel programs (`zfs program`) abgleich runs: fixed Lua text, names only as arguments.
// A module of its own, importing nothing, so the simulator (which runs them) stays light.

/**
 * A channel program (`zfs program`, root only) that makes many bookmarks in ONE transaction
 * group, where `zfs bookmark` waits for one per bookmark (100 bookmarks in an emulated VM: 16 s
 * one by one, 1.5 s as this program). Its arguments are SNAPSHOT BOOKMARK pairs; every pair is
 * checked before any is made, so all are made or none. Fixed text: names are only arguments.
 */
export const BOOKMARK_PROGRAM = [
  "-- abgleich: bookmark every SNAPSHOT BOOKMARK pair given, all of them or none",
  'local argv = (...)["argv"]',
  'local why = { [2] = "does not exist", [17] = "bookmark exists", [18] = "must be in same dataset" }',
  "for pass = 1, 2 do",
  "  local make = pass == 1 and zfs.check.bookmark or zfs.sync.bookmark",
  "  for i = 1, #argv, 2 do",
  "    local e = make(argv[i], argv[i + 1])",
  '    if e ~= 0 then error("cannot create bookmark \'" .. argv[i + 1] .. "\' of \'" .. argv[i] .. "\': " .. (why[e] or ("error " .. e)), 0) end',
  "  end",
  "end",
  "",
].join("\n");
