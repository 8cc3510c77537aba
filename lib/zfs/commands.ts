// argv builders for every zfs command abgleich runs. Names are single argv elements, never
// shell text; the host layer quotes them for ssh.

import { LIST_COLUMNS } from "./list.ts";
import { BOOKMARK_PROGRAM, NO_PROGRAM_BOOKMARKS } from "./programs.ts";

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

/** just the name, if the dataset exists: `cannot open 'X': dataset does not exist` otherwise */
export const zfsListName = (dataset: string): string[] => [
  "zfs",
  "list",
  "-H",
  "-o",
  "name",
  dataset,
];

/** prints the dataset's `used` in bytes */
export const zfsUsed = (dataset: string): string[] => zfsNumber("used", dataset);

/** prints the bytes the dataset (and what is received below it) may still take */
export const zfsAvailable = (dataset: string): string[] => zfsNumber("available", dataset);

const zfsNumber = (property: "used" | "available", dataset: string): string[] => [
  "zfs",
  "list",
  "-H",
  "-p",
  "-o",
  property,
  dataset,
];

/** characters that would change what a destroy list means: `,` splits, `%` is a range */
const DESTROY_LIST_SYNTAX = /[,%@/#]/;

/** one call per dataset: `zfs destroy ds@a,b,c` (see destroyBatches for long lists) */
export const zfsDestroySnapshots = (dataset: string, names: readonly string[]): string[] => {
  if (names.length === 0) throw new Error("zfsDestroySnapshots: no snapshots");
  for (const name of names) {
    if (name === "" || DESTROY_LIST_SYNTAX.test(name)) {
      throw new Error(`zfsDestroySnapshots: not a snapshot name: ${JSON.stringify(name)}`);
    }
  }
  return ["zfs", "destroy", `${dataset}@${names.join(",")}`];
};

/**
 * Bytes one `zfs destroy ds@a,b,…` may take. The kernel refuses any single argument or
 * environment string over MAX_ARG_STRLEN (32 pages: 128 KiB) with E2BIG, and over ssh the whole
 * remote command line is ONE argument (of ssh, and again of the remote shell). 96 KiB leaves a
 * quarter for what is not counted exactly; ~12,000 default-named snapshots would not fit in one.
 */
export const DESTROY_ARG_BUDGET = 96 * 1024;

const bytes = (text: string) => Buffer.byteLength(text, "utf8");

/** what POSIX quoting adds inside a word: 3 bytes per `'` (as `'\''`); the enclosing pair is in `fixed` */
const quotedExtra = (text: string) => 3 * (text.split("'").length - 1);

/**
 * Split a destroy list into as few `zfs destroy` commands as fit `budget` bytes each, counted
 * as the longest single string any host makes of it: `exec zfs destroy 'DATASET@a,b,…'`, the
 * shell command line of a local run (ssh's remote command is the same without `exec `). Order
 * is kept: the oldest names go first.
 */
export function destroyBatches(
  dataset: string,
  names: readonly string[],
  budget = DESTROY_ARG_BUDGET,
): string[][] {
  const fixed = bytes(`exec zfs destroy '${dataset}@'`) + quotedExtra(dataset);
  const batches: string[][] = [];
  let batch: string[] = [];
  let size = fixed;
  for (const name of names) {
    const cost = bytes(name) + quotedExtra(name);
    if (fixed + cost > budget) {
      throw new Error(`destroyBatches: ${dataset}@${name} alone exceeds ${budget} bytes`);
    }
    // a comma before every name but the first of a batch
    if (batch.length > 0 && size + 1 + cost > budget) {
      batches.push(batch);
      batch = [];
      size = fixed;
    }
    size += (batch.length > 0 ? 1 : 0) + cost;
    batch.push(name);
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/**
 * What one `zfs send` sends. `raw` (`-w`) sends an encrypted dataset's blocks as they are on
 * disk, so the target holds ciphertext and never needs the key. An incremental `from` is a
 * snapshot (`ds@a`, `-I`: every snapshot in between too) or a bookmark (`ds#a`, `-i`: real
 * ZFS takes a bookmark only as the base of a single-step stream).
 */
export type SendSpec =
  | { mode: "full"; snapshot: string; raw?: boolean }
  | { mode: "incremental"; from: string; snapshot: string; raw?: boolean }
  | { mode: "resume"; token: string };

/**
 * Blocks go as they are on disk: large (`-L`), compressed (`-c`) and embedded (`-e`), which
 * OpenZFS 0.7 and newer receive. Always on: once a target was received with `-L`, every later
 * incremental must use it too. `-w` implies them and is accepted beside them. A resume (`-t`)
 * takes them from its token.
 */
const BLOCK_FLAGS = ["-L", "-c", "-e"];

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
      argv.push(...BLOCK_FLAGS);
      if (spec.raw) argv.push("-w");
      argv.push(spec.snapshot);
      break;
    case "incremental":
      argv.push(...BLOCK_FLAGS);
      if (spec.raw) argv.push("-w");
      argv.push(spec.from.includes("#") ? "-i" : "-I", spec.from, spec.snapshot);
      break;
    case "resume":
      argv.push("-t", spec.token);
      break;
  }
  return argv;
};

/**
 * `-s` keeps a partial receive resumable, `-u` leaves it unmounted; never `-F`. With
 * `keepUnmounted`, `-o canmount=noauto`: the new filesystem is not mounted by `zfs mount -a`
 * at boot either (only a filesystem's first, full receive: volumes refuse the property, and an
 * incremental would undo a `zfs set canmount` made since)
 */
export const zfsReceive = (
  dataset: string,
  options: { keepUnmounted?: boolean } = {},
): string[] => [
  "zfs",
  "receive",
  "-s",
  "-u",
  ...(options.keepUnmounted ? ["-o", "canmount=noauto"] : []),
  dataset,
];

export const zfsReceiveAbort = (dataset: string): string[] => ["zfs", "receive", "-A", dataset];

/** prints `POOL\tPROPERTY\tVALUE\t-` */
const zpoolGet = (property: string, pool: string): string[] => [
  "zpool",
  "get",
  "-H",
  "-p",
  property,
  pool,
];

/** prints `POOL\tfreeing\tBYTES\t-` */
export const zpoolFreeing = (pool: string): string[] => zpoolGet("freeing", pool);

/** prints `POOL\tguid\tGUID\t-` */
export const zpoolGuid = (pool: string): string[] => zpoolGet("guid", pool);

/**
 * Split `items` into runs whose `base` argv plus the items fit `budget` bytes as one command
 * line (each item POSIX-quoted, plus a space): the ssh remote command is one argument, limited
 * by the kernel like the destroy list above.
 */
export function argBatches<T>(
  base: readonly string[],
  items: readonly T[],
  words: (item: T) => readonly string[],
  budget = DESTROY_ARG_BUDGET,
): T[][] {
  const cost = (word: string) => bytes(word) + quotedExtra(word) + 3;
  const fixed = base.reduce((sum, word) => sum + cost(word), bytes("exec "));
  const batches: T[][] = [];
  let batch: T[] = [];
  let size = fixed;
  for (const item of items) {
    const itemCost = words(item).reduce((sum, word) => sum + cost(word), 0);
    if (fixed + itemCost > budget) throw new Error(`argBatches: one item exceeds ${budget} bytes`);
    if (batch.length > 0 && size + itemCost > budget) {
      batches.push(batch);
      batch = [];
      size = fixed;
    }
    size += itemCost;
    batch.push(item);
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

// No `--` before the operands: abgleich's tags and validated names never begin with `-`.

/** `zfs hold TAG snap…`: zfs holds each snapshot in turn and fails if any one fails */
export const zfsHold = (tag: string, snapshots: readonly string[]): string[] => [
  "zfs",
  "hold",
  tag,
  ...snapshots,
];

/** `zfs release TAG snap…`: only the hold named TAG goes; other holds stay */
export const zfsRelease = (tag: string, snapshots: readonly string[]): string[] => [
  "zfs",
  "release",
  tag,
  ...snapshots,
];

/** prints `SNAPSHOT\tTAG\tTIMESTAMP` per hold */
export const zfsHolds = (snapshots: readonly string[]): string[] => [
  "zfs",
  "holds",
  "-H",
  ...snapshots,
];

// `zfs bookmark` and a bookmark's destroy take one name each: a fixed sh loop runs them in
// ONE command per host, the names passed as its positional parameters, never as shell text.
const BOOKMARK_LOOP = 'while [ "$#" -ge 2 ]; do zfs bookmark "$1" "$2" || exit; shift 2; done';
const DESTROY_BOOKMARK_LOOP = 'for b do zfs destroy "$b" || exit; done';

/** a snapshot and the bookmark to be made of it (full names) */
export interface BookmarkPair {
  snapshot: string;
  bookmark: string;
}

/** the words of a pair, in the order every bookmark command takes them */
export const pairWords = (pair: BookmarkPair): [string, string] => [pair.snapshot, pair.bookmark];

/** `zfs bookmark SNAPSHOT BOOKMARK` for each pair, in order; stops at the first failure */
export const zfsBookmarks = (pairs: readonly BookmarkPair[]): string[] => [
  "sh",
  "-c",
  BOOKMARK_LOOP,
  "sh",
  ...pairs.flatMap(pairWords),
];

// the program goes in on stdin (`-`): a remote command gets no file from here
const PROGRAM_RUNNER = 'p=$1 pool=$2; shift 2; printf %s "$p" | zfs program "$pool" - "$@"';

/** BOOKMARK_PROGRAM on `pool` (every snapshot in it) for each pair, as one command */
export const zfsBookmarkProgram = (pool: string, pairs: readonly BookmarkPair[]): string[] => [
  "sh",
  "-c",
  PROGRAM_RUNNER,
  "sh",
  BOOKMARK_PROGRAM,
  pool,
  ...pairs.flatMap(pairWords),
];

/**
 * Lines zfs prints when it runs no channel program at all: not as root, a zfs without
 * `program` (0.7) or without bookmarks in programs (0.8). Nothing ran then.
 */
export const NO_PROGRAMS = [
  "Permission denied. Channel programs must be run as root.",
  "unrecognized command 'program'",
  NO_PROGRAM_BOOKMARKS,
] as const;

/** the program's command as messages show it: its text is fixed and long, the names are not */
export const shownBookmarkProgram = (pool: string, pairs: readonly BookmarkPair[]): string[] => [
  "zfs",
  "program",
  pool,
  "-",
  ...pairs.flatMap(pairWords),
];

/** `zfs destroy ds#bookmark` for each, in order; stops at the first failure */
export const zfsDestroyBookmarks = (bookmarks: readonly string[]): string[] => {
  for (const name of bookmarks) {
    if (!/^[^@#]+#[^@#]+$/.test(name))
      throw new Error(`zfsDestroyBookmarks: not a bookmark name: ${JSON.stringify(name)}`);
  }
  return ["sh", "-c", DESTROY_BOOKMARK_LOOP, "sh", ...bookmarks];
};

/** prints the token of a partial receive, or `-` */
export const zfsResumeToken = (dataset: string): string[] => [
  "zfs",
  "get",
  "-H",
  "-p",
  "-o",
  "value",
  "receive_resume_token",
  dataset,
];
