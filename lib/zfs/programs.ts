// The channel programs (`zfs program`) abgleich runs: fixed Lua text, names only as arguments.
// A module of its own, importing nothing, so the simulator (which runs them) stays light.

/** BOOKMARK_PROGRAM's error where zfs has channel programs but no bookmarks in them (0.8) */
export const NO_PROGRAM_BOOKMARKS = "abgleich: this zfs has no zfs.sync.bookmark";

/**
 * A channel program (`zfs program`, root only; bookmarks in programs since OpenZFS 2.0) that
 * makes many bookmarks in ONE transaction group, where `zfs bookmark` waits for one per
 * bookmark (100 bookmarks in an emulated VM: 16 s one after another, 1.5 s as this program).
 * Its arguments are SNAPSHOT BOOKMARK pairs. Every pair is checked before any is made, so a
 * bookmark that exists or a snapshot that is gone makes none; only what the checks cannot
 * foresee (the pool filling up meanwhile) stops it part way. One line (a csh login shell
 * refuses a newline inside quotes), fixed text: names are only its arguments.
 */
export const BOOKMARK_PROGRAM = [
  `if not zfs.sync.bookmark then error("${NO_PROGRAM_BOOKMARKS}", 0) end`,
  'local argv = (...)["argv"]',
  'local why = { [2] = "does not exist", [17] = "bookmark exists", [28] = "out of space" }',
  "for pass = 1, 2 do",
  "local make = pass == 1 and zfs.check.bookmark or zfs.sync.bookmark",
  "for i = 1, #argv, 2 do",
  "local e = make(argv[i], argv[i + 1])",
  `if e ~= 0 then error("cannot create bookmark '" .. argv[i + 1] .. "' of '" .. argv[i] .. "': " .. (why[e] or ("error " .. e)), 0) end`,
  "end end",
].join(" ");
