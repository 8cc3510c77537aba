// argv builders for every zfs command abgleich runs. Names are single argv elements, never
// shell text; the host layer quotes them for ssh.

import { LIST_COLUMNS } from "./list.ts";

export const zfsList = (root: string): string[] => [
  "zfs",
  "list",
  "-t",
  "all",
  "-H",
  "-p",
  "-o",
  LIST_COLUMNS.join(","),
  "-r",
  root,
];

/** all snapshots of one pool in one call: atomic */
export const zfsSnapshot = (fullNames: readonly string[]): string[] => [
  "zfs",
  "snapshot",
  ...fullNames,
];

export const zfsDiff = (snapshot: string): string[] => ["zfs", "diff", "-H", snapshot];

/** one call per dataset: `zfs destroy ds@a,b,c` */
export const zfsDestroySnapshots = (dataset: string, names: readonly string[]): string[] => {
  if (names.length === 0) throw new Error("zfsDestroySnapshots: no snapshots");
  return ["zfs", "destroy", `${dataset}@${names.join(",")}`];
};

export type SendSpec =
  | { mode: "full"; snapshot: string }
  | { mode: "incremental"; from: string; snapshot: string }
  | { mode: "resume"; token: string };

/** `-v -P` makes zfs print size estimates and a progress line per second on stderr */
export const zfsSend = (
  spec: SendSpec,
  options: { progress: boolean; dryRun?: boolean },
): string[] => {
  const argv = ["zfs", "send"];
  if (options.dryRun) argv.push("-n");
  if (options.progress || options.dryRun) argv.push("-v", "-P");
  switch (spec.mode) {
    case "full":
      argv.push(spec.snapshot);
      break;
    case "incremental":
      argv.push("-I", spec.from, spec.snapshot);
      break;
    case "resume":
      argv.push("-t", spec.token);
      break;
  }
  return argv;
};

/** `-s` keeps a partial receive resumable, `-u` leaves it unmounted; never `-F` */
export const zfsReceive = (dataset: string): string[] => ["zfs", "receive", "-s", "-u", dataset];

export const zfsReceiveAbort = (dataset: string): string[] => ["zfs", "receive", "-A", dataset];

/** prints `POOL\tfreeing\tBYTES\t-` */
export const zpoolFreeing = (pool: string): string[] => [
  "zpool",
  "get",
  "-H",
  "-p",
  "freeing",
  pool,
];
