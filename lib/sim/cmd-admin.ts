// `zfs create`, `snapshot`, `destroy`, `bookmark`, `hold`, `release`, `mount`, `unmount`.

import * as fs from "node:fs";
import { BOOKMARK_PROGRAM } from "../zfs/programs.ts";
import { compactExtents, poolAvailable, reclaimable } from "./accounting.ts";
import type { SimContext } from "./context.ts";
import { createCrypt } from "./crypt.ts";
import {
  addDataset,
  autoMounts,
  validDatasetName,
  validSnapshotName,
  writeData,
} from "./datasets.ts";
import { parseOptions, parseProps, usageError, ZfsError } from "./errors.ts";
import { nicebytes, parseSize } from "./format.ts";
import { keyOf } from "./props.ts";
import {
  newGuid,
  nextTxg,
  nowSeconds,
  parentOf,
  poolOf,
  type SimDataset,
  type SimSnapshot,
  type SimState,
  withState,
} from "./state.ts";
import { descendantsOf, resolve } from "./tree.ts";
import { isZfs23 } from "./version.ts";

/** what the first mount of a raw-received dataset wrote in the VM (user accounting) */
const RAW_FIRST_MOUNT = 87040;

/** Snapshots need a little free space for their metadata, as in real pools. */
const SNAPSHOT_SPACE = 1024 * 1024;

export function zfsCreate(ctx: SimContext, args: string[]): number {
  const parsed = parseOptions("create", args, "PnpuvsV:b:o:");
  if (parsed.operands.length === 0) throw usageError("create", "missing filesystem argument");
  if (parsed.operands.length > 1) throw usageError("create", "too many arguments");
  const name = parsed.operands[0] as string;
  const props = parseProps("create", parsed.values);
  const volsizeText = parsed.values.find(([l]) => l === "V")?.[1];
  const volsize = volsizeText !== undefined ? parseSize(volsizeText) : null;
  if (volsizeText !== undefined && volsize === null)
    throw usageError("create", `bad volume size '${volsizeText}'`);
  if (!validDatasetName(name) || name.includes("@") || name.includes("#"))
    throw new ZfsError(`cannot create '${name}': invalid character in name`);
  const creation = nowSeconds(ctx.env);
  return withState(ctx.stateDir, (state) => {
    if (!state.pools[poolOf(name)])
      throw new ZfsError(`cannot create '${name}': no such pool '${poolOf(name)}'`);
    if (state.datasets[name]) {
      // as zfs does: with -p an existing dataset is what was asked for, silently
      if (parsed.flags.has("p")) return { save: false, value: 0 };
      throw new ZfsError(`cannot create '${name}': dataset already exists`);
    }
    const missing: string[] = [];
    for (let p = parentOf(name); p && !state.datasets[p]; p = parentOf(p)) missing.unshift(p);
    if (missing.length > 0 && !parsed.flags.has("p"))
      throw new ZfsError(`cannot create '${name}': parent does not exist`);
    if (poolAvailable(state, poolOf(name)) < SNAPSHOT_SPACE)
      throw new ZfsError(`cannot create '${name}': out of space`);
    const parent = state.datasets[parentOf(name) ?? ""];
    const { crypt, key } = createCrypt(ctx, state, name, parent, props);
    if (parsed.flags.has("n")) return { save: false, value: 0 };
    // parents made by -p inherit the grandparent's encryption
    for (const p of missing)
      addDataset(state, p, { creation, crypt: state.datasets[parentOf(p) ?? ""]?.crypt ?? null });
    const compressratio = props["sim:compressratio"]
      ? Number(props["sim:compressratio"])
      : undefined;
    addDataset(state, name, {
      type: volsize !== null ? "volume" : "filesystem",
      volsize: volsize ?? 0,
      mounted: !parsed.flags.has("u") && autoMounts(props),
      props,
      creation,
      crypt,
      key,
      ...(compressratio && compressratio >= 1 ? { compressratio } : {}),
    });
    return { save: true, value: 0 };
  });
}

/** Takes snapshots atomically: all named ones (and with -r their descendants') or none. */
export function takeSnapshots(
  state: SimState,
  names: string[],
  recursive: boolean,
  creation: number,
): void {
  const targets: Array<{ ds: SimDataset; snap: string }> = [];
  for (const full of names) {
    const at = full.indexOf("@");
    if (at < 0)
      throw new ZfsError(
        `cannot create snapshot '${full}': missing '@' delimiter in snapshot name`,
        2,
      );
    const dsName = full.slice(0, at);
    const snap = full.slice(at + 1);
    // OpenZFS 2.1.11 names a "/" after the "@" this way (found by the e2e differential check)
    if (snap.includes("/"))
      throw new ZfsError(`cannot create snapshot '${full}': trailing slash in name`);
    if (!validSnapshotName(snap))
      throw new ZfsError(`cannot create snapshot '${full}': invalid character in name`);
    const ds = state.datasets[dsName];
    if (!ds) throw usageError("snapshot", `cannot open '${dsName}': dataset does not exist`);
    const all = recursive ? [ds, ...descendantsOf(state, dsName)] : [ds];
    for (const d of all) targets.push({ ds: d, snap });
  }
  for (const { ds, snap } of targets)
    if (ds.snapshots.some((s) => s.name === snap))
      throw new ZfsError(`cannot create snapshot '${ds.name}@${snap}': dataset already exists`);
  const pools = new Set(targets.map((t) => poolOf(t.ds.name)));
  for (const pool of pools)
    if (poolAvailable(state, pool) < SNAPSHOT_SPACE)
      throw new ZfsError("cannot create snapshots : out of space");
  const txgs = new Map<string, number>();
  for (const pool of pools) txgs.set(pool, nextTxg(state, pool));
  for (const { ds, snap } of targets) {
    ds.snapshots.push({
      name: snap,
      guid: newGuid(),
      createtxg: txgs.get(poolOf(ds.name)) as number,
      creation,
      holds: [],
      changes: ds.changes,
    });
    ds.changes = [];
  }
}

export function zfsSnapshot(ctx: SimContext, args: string[]): number {
  const parsed = parseOptions("snapshot", args, "ro:");
  if (parsed.operands.length === 0) throw usageError("snapshot", "missing snapshot argument");
  const creation = nowSeconds(ctx.env);
  return withState(ctx.stateDir, (state) => {
    takeSnapshots(state, parsed.operands, parsed.flags.has("r"), creation);
    return { save: true, value: 0 };
  });
}

/** Snapshot names of `ds` selected by "a,b,c" where each part may be a range "a%b". */
export function selectSnapshots(ds: SimDataset, spec: string): SimSnapshot[] {
  const ordered = [...ds.snapshots].sort((a, b) => a.createtxg - b.createtxg);
  const chosen = new Set<SimSnapshot>();
  for (const part of spec.split(",")) {
    const pct = part.indexOf("%");
    if (pct < 0) {
      const snap = ordered.find((s) => s.name === part);
      if (snap) chosen.add(snap);
      continue;
    }
    const from = part.slice(0, pct);
    const to = part.slice(pct + 1);
    const start = from === "" ? 0 : ordered.findIndex((s) => s.name === from);
    const end = to === "" ? ordered.length - 1 : ordered.findIndex((s) => s.name === to);
    if (start < 0 || end < 0) continue;
    for (let i = start; i <= end; i++) chosen.add(ordered[i] as SimSnapshot);
  }
  return ordered.filter((s) => chosen.has(s));
}

/** Removes snapshots, handing their diff entries to the next snapshot (or the live dataset). */
function removeSnapshots(ds: SimDataset, doomed: Set<string>): void {
  const ordered = [...ds.snapshots].sort((a, b) => a.createtxg - b.createtxg);
  let carried: string[] = [];
  const kept: SimSnapshot[] = [];
  for (const snap of ordered) {
    if (doomed.has(snap.name)) {
      carried = [...carried, ...snap.changes];
      continue;
    }
    if (carried.length > 0) snap.changes = [...new Set([...carried, ...snap.changes])];
    carried = [];
    kept.push(snap);
  }
  if (carried.length > 0) ds.changes = [...new Set([...carried, ...ds.changes])];
  ds.snapshots = kept;
  compactExtents(ds);
}

/**
 * Held snapshots a destroy met: 2.1.11 says "dataset is busy"; 2.3 asks the kernel for the
 * holds and points to them.
 */
function heldError(state: SimState, names: string[]): ZfsError {
  const reason = (name: string) =>
    isZfs23(state)
      ? `it's being held. Run 'zfs holds -r ${name}' to see holders.`
      : "dataset is busy";
  return new ZfsError(names.map((n) => `cannot destroy snapshot ${n}: ${reason(n)}`).join("\n"));
}

function destroySnapshots(
  ctx: SimContext,
  state: SimState,
  operand: string,
  flags: Set<string>,
): number {
  const at = operand.indexOf("@");
  const dsName = operand.slice(0, at);
  const spec = operand.slice(at + 1);
  const ds = state.datasets[dsName];
  if (!ds) throw new ZfsError(`could not find any snapshots to destroy; check snapshot names.`);
  const scope = flags.has("r") ? [ds, ...descendantsOf(state, dsName)] : [ds];
  const plan = scope
    .map((d) => ({ ds: d, snaps: selectSnapshots(d, spec) }))
    .filter((p) => p.snaps.length > 0);
  if (plan.length === 0)
    throw new ZfsError("could not find any snapshots to destroy; check snapshot names.");
  const dry = flags.has("n");
  const verbose = flags.has("v");
  const parsable = flags.has("p");
  let reclaim = 0;
  for (const { ds: d, snaps } of plan) {
    reclaim += reclaimable(d, new Set(snaps.map((s) => s.name)));
    for (const snap of snaps) {
      const name = `${d.name}@${snap.name}`;
      if (parsable) ctx.out(`destroy\t${name}\n`);
      else if (verbose) ctx.out(`${dry ? "would destroy" : "will destroy"} ${name}\n`);
    }
  }
  if (parsable) ctx.out(`reclaim\t${reclaim}\n`);
  else if (verbose) ctx.out(`${dry ? "would reclaim" : "will reclaim"} ${nicebytes(reclaim)}\n`);
  if (dry) return 0;
  const busy = plan.flatMap(({ ds: d, snaps }) =>
    snaps.filter((s) => s.holds.length > 0).map((s) => `${d.name}@${s.name}`),
  );
  if (busy.length > 0) throw heldError(state, busy);
  for (const { ds: d, snaps } of plan) removeSnapshots(d, new Set(snaps.map((s) => s.name)));
  return 0;
}

function destroyDataset(
  ctx: SimContext,
  state: SimState,
  name: string,
  flags: Set<string>,
): number {
  const ds = state.datasets[name];
  if (!ds) throw new ZfsError(`cannot open '${name}': dataset does not exist`);
  if (!name.includes("/"))
    throw new ZfsError(
      `cannot destroy '${name}': operation does not apply to pools\nuse 'zfs destroy -r ${name}' to destroy all datasets in the pool\nuse 'zpool destroy ${name}' to destroy the pool itself`,
    );
  const descendants = descendantsOf(state, name).sort((a, b) => b.name.length - a.name.length);
  const dependents: string[] = [];
  for (const d of descendants) {
    for (const s of d.snapshots) dependents.push(`${d.name}@${s.name}`);
    dependents.push(d.name);
  }
  for (const s of ds.snapshots) dependents.push(`${name}@${s.name}`);
  if (dependents.length > 0 && !flags.has("r") && !flags.has("R"))
    throw new ZfsError(
      `cannot destroy '${name}': filesystem has children\nuse '-r' to destroy the following datasets:\n${dependents.join("\n")}`,
    );
  const doomed = [...descendants, ds];
  // every held snapshot is named: children first, newest first (as real 2.1.11 lists them)
  const held = doomed.flatMap((d) =>
    [...d.snapshots]
      .sort((a, b) => b.createtxg - a.createtxg)
      .filter((s) => s.holds.length > 0)
      .map((s) => `${d.name}@${s.name}`),
  );
  if (held.length > 0) throw heldError(state, held);
  for (const d of doomed) {
    if (flags.has("v")) {
      for (const s of d.snapshots)
        ctx.out(`${flags.has("n") ? "would destroy" : "will destroy"} ${d.name}@${s.name}\n`);
      ctx.out(`${flags.has("n") ? "would destroy" : "will destroy"} ${d.name}\n`);
    }
    if (!flags.has("n")) delete state.datasets[d.name];
  }
  return 0;
}

export function zfsDestroy(ctx: SimContext, args: string[]): number {
  const parsed = parseOptions("destroy", args, "dfnpRrv");
  if (parsed.operands.length === 0) throw usageError("destroy", "missing dataset argument");
  if (parsed.operands.length > 1) throw usageError("destroy", "too many arguments");
  const operand = parsed.operands[0] as string;
  return withState(ctx.stateDir, (state) => {
    let code: number;
    if (operand.includes("@")) code = destroySnapshots(ctx, state, operand, parsed.flags);
    else if (operand.includes("#")) {
      if (parsed.flags.has("n")) throw new ZfsError("dryrun is not supported with bookmark", 255);
      const node = resolve(state, operand);
      if (node?.kind !== "bookmark") throw new ZfsError(`bookmark '${operand}' does not exist.`);
      node.ds.bookmarks = node.ds.bookmarks.filter((b) => b !== node.bm);
      code = 0;
    } else code = destroyDataset(ctx, state, operand, parsed.flags);
    return { save: !parsed.flags.has("n"), value: code };
  });
}

/**
 * Why a bookmark of `source` named `target` (full names) cannot be made, as an errno (0: it
 * can), in the kernel's order: the bookmark's dataset, the bookmark itself, then its source
 */
function bookmarkErrno(state: SimState, source: string, target: string): number {
  const hash = target.indexOf("#");
  if (!validSnapshotName(target.slice(hash + 1))) return EINVAL;
  const ds = state.datasets[target.slice(0, hash)];
  if (!ds) return ENOENT;
  if (ds.bookmarks.some((b) => b.name === target.slice(hash + 1))) return EEXIST;
  const node = resolve(state, source);
  if (!node || (node.kind !== "snapshot" && node.kind !== "bookmark")) return ENOENT;
  if (node.ds.name !== ds.name) return SOURCE_NOT_ANCESTOR;
  return 0;
}
const ENOENT = 2;
const EEXIST = 17;
const EINVAL = 22;
/** ZFS_ERR_BOOKMARK_SOURCE_NOT_ANCESTOR: the source is no earlier point of the dataset */
const SOURCE_NOT_ANCESTOR = 1039;

/** the bookmark `target` of `source` (checked by bookmarkErrno) */
function makeBookmark(state: SimState, source: string, target: string): void {
  const node = resolve(state, source);
  if (!node || (node.kind !== "snapshot" && node.kind !== "bookmark"))
    throw new Error(`makeBookmark: ${source} is not there`);
  const from = node.kind === "snapshot" ? node.snap : node.bm;
  node.ds.bookmarks.push({
    name: target.slice(target.indexOf("#") + 1),
    guid: from.guid,
    createtxg: from.createtxg,
    creation: from.creation,
    referenced: node.kind === "snapshot" ? referencedOf(node.ds, node.snap) : node.bm.referenced,
  });
}

export function zfsBookmark(ctx: SimContext, args: string[]): number {
  const parsed = parseOptions("bookmark", args, "");
  if (parsed.operands.length !== 2)
    throw usageError(
      "bookmark",
      parsed.operands.length < 2 ? "missing arguments" : "too many arguments",
    );
  const [source, targetArg] = parsed.operands as [string, string];
  if (!source.includes("@") && !source.includes("#"))
    throw usageError("bookmark", `invalid source name '${source}': must contain a '@' or '#'`);
  if (!targetArg.includes("#"))
    throw usageError("bookmark", `invalid bookmark name '${targetArg}': must contain a '#'`);
  // "#name" is short for a bookmark of the source's dataset
  const sourceDs = source.slice(0, source.search(/[@#]/));
  const target = targetArg.startsWith("#") ? `${sourceDs}${targetArg}` : targetArg;
  return withState(ctx.stateDir, (state) => {
    const what = `cannot create bookmark '${target}'`;
    const targetDs = target.slice(0, target.indexOf("#"));
    // the command's own checks come before the kernel's
    if (!resolve(state, source))
      throw usageError("bookmark", `cannot open '${source}': dataset does not exist`);
    if (!state.datasets[targetDs]) throw new ZfsError(`${what}: dataset does not exist`);
    if (targetDs !== sourceDs) throw new ZfsError(`${what}: must be in same dataset`);
    // what is left for the kernel to refuse: the name, or a bookmark that exists
    const errno = bookmarkErrno(state, source, target);
    if (errno === EINVAL) throw new ZfsError(`${what}: invalid argument`);
    if (errno !== 0) throw new ZfsError(`${what}: bookmark exists`);
    makeBookmark(state, source, target);
    return { save: true, value: 0 };
  });
}

/**
 * `zfs program [-j] [-t LIMIT] [-m LIMIT] POOL FILE|- ARG…`: the simulator runs one program,
 * abgleich's BOOKMARK_PROGRAM (lib/zfs/programs.ts), as real ZFS does: every pair checked,
 * then made one by one; the first failing pair is named in the program's error, and what was
 * made before it stays (real ZFS keeps what a program did before its error).
 */
export function zfsProgram(ctx: SimContext, args: string[]): number {
  const parsed = parseOptions("program", args, "jnt:m:");
  if (parsed.flags.has("n"))
    throw new ZfsError("the simulator runs channel programs in syncing context only (no -n)");
  if (parsed.operands.length < 2) throw usageError("program", "invalid number of arguments");
  const [pool, file, ...argv] = parsed.operands as [string, string, ...string[]];
  let script: string;
  try {
    script = fs.readFileSync(file === "-" ? ctx.stdinFd : file, "utf8");
  } catch {
    throw new ZfsError(`cannot open '${file}': No such file or directory`);
  }
  if (script !== BOOKMARK_PROGRAM)
    throw new ZfsError(
      "Channel program execution failed:\nthe simulator runs no channel program but abgleich's BOOKMARK_PROGRAM",
    );
  const failed = withState(ctx.stateDir, (state) => {
    if (!state.pools[pool])
      throw new ZfsError(`cannot open '${pool}': no such pool\ncannot open pool '${pool}'`);
    let made = false;
    for (const pass of [1, 2]) {
      for (let i = 0; i < argv.length; i += 2) {
        const source = argv[i] as string;
        const target = argv[i + 1] as string;
        if (poolOf(source) !== pool || poolOf(target) !== pool)
          throw new ZfsError(`the simulator runs a program on names in its pool ${pool} only`);
        const errno = bookmarkErrno(state, source, target);
        if (errno !== 0) {
          const why = BOOKMARK_PROGRAM_WHY[errno] ?? `error ${errno}`;
          return { save: made, value: `cannot create bookmark '${target}' of '${source}': ${why}` };
        }
        if (pass === 2) {
          makeBookmark(state, source, target);
          made = true;
        }
      }
    }
    return { save: made, value: null };
  });
  if (failed !== null)
    throw new ZfsError(
      `Channel program execution failed:\n${failed}\nstack traceback:\n\t[C]: in function 'error'\n\t[string "channel program"]:1: in main chunk`,
    );
  ctx.out("Channel program fully executed and did not produce output.\n");
  return 0;
}
const BOOKMARK_PROGRAM_WHY: Record<number, string> = {
  [ENOENT]: "does not exist",
  [EEXIST]: "bookmark exists",
};

function referencedOf(ds: SimDataset, snap: SimSnapshot): number {
  let sum = 0;
  for (const e of ds.extents)
    if (e.born <= snap.createtxg && (e.died === null || e.died > snap.createtxg)) sum += e.bytes;
  return sum;
}

/**
 * The snapshots one operand of hold/release names: `ds@snap`, with -r also the snapshots of
 * that name below ds. Each operand stands alone (zfs calls the kernel once per operand):
 * errors are reported here and the operand is skipped (null).
 */
function holdOperand(
  ctx: SimContext,
  state: SimState,
  operand: string,
  recursive: boolean,
  what: string,
): Array<{ name: string; snap: SimSnapshot }> | null {
  const at = operand.indexOf("@");
  if (at < 0) {
    ctx.err(`'${operand}' is not a snapshot\n`);
    return null;
  }
  const dsName = operand.slice(0, at);
  const snapName = operand.slice(at + 1);
  const ds = state.datasets[dsName];
  if (!ds) {
    ctx.err(`cannot open '${dsName}': dataset does not exist\n`);
    return null;
  }
  const scope = recursive ? [ds, ...descendantsOf(state, dsName)] : [ds];
  const found: Array<{ name: string; snap: SimSnapshot }> = [];
  for (const d of scope) {
    const snap = d.snapshots.find((s) => s.name === snapName);
    if (snap) found.push({ name: `${d.name}@${snapName}`, snap });
  }
  if (found.length === 0) {
    ctx.err(`cannot ${what} '${operand}': dataset does not exist\n`);
    return null;
  }
  return found;
}

export function zfsHold(ctx: SimContext, args: string[]): number {
  const parsed = parseOptions("hold", args, "r");
  if (parsed.operands.length < 2)
    throw usageError(
      "hold",
      parsed.operands.length === 0 ? "missing tag argument" : "missing snapshot argument",
    );
  const [tag, ...names] = parsed.operands as [string, ...string[]];
  const time = nowSeconds(ctx.env);
  return withState(ctx.stateDir, (state) => {
    let failed = false;
    for (const operand of names) {
      const found = holdOperand(ctx, state, operand, parsed.flags.has("r"), "hold snapshot");
      if (!found) {
        failed = true;
        continue;
      }
      // one operand's holds are taken together or not at all
      const taken = found.filter((f) => f.snap.holds.some((h) => h.tag === tag));
      for (const f of taken)
        ctx.err(`cannot hold snapshot '${f.name}': tag already exists on this dataset\n`);
      if (taken.length > 0) {
        failed = true;
        continue;
      }
      for (const f of found) f.snap.holds.push({ tag, time });
    }
    return { save: true, value: failed ? 1 : 0 };
  });
}

export function zfsRelease(ctx: SimContext, args: string[]): number {
  const parsed = parseOptions("release", args, "r");
  if (parsed.operands.length < 2)
    throw usageError(
      "release",
      parsed.operands.length === 0 ? "missing tag argument" : "missing snapshot argument",
    );
  const [tag, ...names] = parsed.operands as [string, ...string[]];
  return withState(ctx.stateDir, (state) => {
    let failed = false;
    for (const operand of names) {
      const what = "release hold from snapshot";
      const found = holdOperand(ctx, state, operand, parsed.flags.has("r"), what);
      if (!found) {
        failed = true;
        continue;
      }
      // -r releases the tag where it is; only none at all is an error
      const held = found.filter((f) => f.snap.holds.some((h) => h.tag === tag));
      if (held.length === 0) {
        ctx.err(`cannot ${what} '${operand}': no such tag on this dataset\n`);
        failed = true;
        continue;
      }
      for (const f of held) f.snap.holds = f.snap.holds.filter((h) => h.tag !== tag);
    }
    return { save: true, value: failed ? 1 : 0 };
  });
}

export function zfsMount(ctx: SimContext, args: string[]): number {
  const parsed = parseOptions("mount", args, "flvOao:");
  return withState(ctx.stateDir, (state) => {
    if (parsed.operands.length === 0 && !parsed.flags.has("a")) {
      for (const ds of Object.values(state.datasets).sort((a, b) => (a.name < b.name ? -1 : 1)))
        if (ds.mounted) ctx.out(`${ds.name.padEnd(30)}  ${ds.mountpoint}\n`);
      return { save: false, value: 0 };
    }
    const targets = parsed.flags.has("a")
      ? Object.values(state.datasets).filter(
          (d) =>
            d.type === "filesystem" &&
            autoMounts(d.props) &&
            !d.mounted &&
            !d.partial &&
            (!d.crypt || keyOf(state, d)?.loaded),
        )
      : parsed.operands.map((name) => {
          const ds = state.datasets[name];
          if (!ds) throw new ZfsError(`cannot open '${name}': dataset does not exist`);
          if (ds.type !== "filesystem")
            throw new ZfsError(`cannot mount '${name}': not a filesystem`);
          if (ds.mounted) throw new ZfsError(`cannot mount '${name}': filesystem already mounted`);
          if (ds.crypt && !keyOf(state, ds)?.loaded)
            throw new ZfsError(`cannot mount '${name}': encryption key not loaded`);
          return ds;
        });
    for (const ds of targets) {
      ds.mounted = true;
      // real 2.1.11 writes ~85 KiB into a raw-received dataset on its first mount
      if (ds.crypt?.rawReceived) {
        delete ds.crypt.rawReceived;
        writeData(state, ds, RAW_FIRST_MOUNT, 0, []);
      }
    }
    return { save: true, value: 0 };
  });
}

export function zfsUnmount(ctx: SimContext, args: string[]): number {
  const parsed = parseOptions("unmount", args, "fua");
  if (parsed.operands.length === 0 && !parsed.flags.has("a"))
    throw usageError("unmount", "missing filesystem argument");
  return withState(ctx.stateDir, (state) => {
    const targets = parsed.flags.has("a")
      ? Object.values(state.datasets).filter((d) => d.mounted)
      : parsed.operands.map((name) => {
          const ds =
            state.datasets[name] ??
            Object.values(state.datasets).find((d) => d.mountpoint === name);
          if (!ds) throw new ZfsError(`cannot open '${name}': dataset does not exist`);
          if (!ds.mounted) throw new ZfsError(`cannot unmount '${name}': not currently mounted`);
          return ds;
        });
    for (const ds of targets) ds.mounted = false;
    return { save: true, value: 0 };
  });
}
