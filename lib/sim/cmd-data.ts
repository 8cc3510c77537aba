// `zfs diff` and the sim-only verbs that create pools and write data.
import type { SimContext } from "./context.ts";
import { addPool, writeData } from "./datasets.ts";
import { parseOptions, usageError, ZfsError } from "./errors.ts";
import { parseSize } from "./format.ts";
import { keyOf } from "./props.ts";
import { nowSeconds, readState, type SimDataset, type SimSnapshot, withState } from "./state.ts";

function orderedSnapshots(ds: SimDataset): SimSnapshot[] {
  return [...ds.snapshots].sort((a, b) => a.createtxg - b.createtxg);
}

/** Diff entries between snapshot `from` and `to` (null = the live filesystem). */
export function diffEntries(ds: SimDataset, from: SimSnapshot, to: SimSnapshot | null): string[] {
  const entries: string[] = [];
  for (const snap of orderedSnapshots(ds)) {
    if (snap.createtxg <= from.createtxg) continue;
    if (to && snap.createtxg > to.createtxg) break;
    entries.push(...snap.changes);
  }
  if (!to) entries.push(...ds.changes);
  return [...new Set(entries)];
}

function prefixPath(mountpoint: string, entry: string): string {
  const [kind, path] = entry.split("\t") as [string, string];
  const base = mountpoint === "/" ? "" : mountpoint;
  const paths = path.split(" -> ").map((p) => `${base}${p}`);
  return `${kind}\t${paths.join(" -> ")}`;
}

export function zfsDiff(ctx: SimContext, args: string[]): number {
  const parsed = parseOptions("diff", args, "FHt");
  if (parsed.operands.length === 0)
    throw usageError("diff", "must provide at least one snapshot name");
  if (parsed.operands.length > 2) throw usageError("diff", "too many arguments");
  const [fromName, toName] = parsed.operands as [string, string | undefined];
  const state = readState(ctx.stateDir);
  const at = fromName.indexOf("@");
  if (at < 0) throw usageError("diff", `Badly formed snapshot name ${fromName}`);
  const ds = state.datasets[fromName.slice(0, at)];
  const from = ds?.snapshots.find((s) => s.name === fromName.slice(at + 1));
  if (!ds || !from) throw new ZfsError("Unable to obtain diffs: No such file or directory");
  let to: SimSnapshot | null = null;
  if (toName !== undefined && toName !== ds.name) {
    const toAt = toName.indexOf("@");
    const toDs = toAt === 0 ? ds.name : toName.slice(0, toAt < 0 ? toName.length : toAt);
    if (toDs !== ds.name)
      throw new ZfsError("Unable to obtain diffs: \n   Not an earlier snapshot from the same fs");
    to = ds.snapshots.find((s) => s.name === toName.slice(toAt + 1)) ?? null;
    if (!to) throw new ZfsError("Unable to obtain diffs: No such file or directory");
    if (to.createtxg <= from.createtxg)
      throw new ZfsError("Unable to obtain diffs: \n   Not an earlier snapshot from the same fs");
  }
  if (ds.type !== "filesystem")
    throw new ZfsError(`Unable to obtain diffs: \n   ${ds.name} is not a filesystem`);
  const when = to ? to.creation : nowSeconds(ctx.env);
  for (const entry of diffEntries(ds, from, to)) {
    const line = prefixPath(ds.mountpoint, entry);
    const [kind, path] = line.split("\t") as [string, string];
    const cells: string[] = [];
    if (parsed.flags.has("t")) cells.push(`${when}.000000000`);
    cells.push(kind);
    if (parsed.flags.has("F")) cells.push(path.endsWith("/") ? "/" : "F");
    cells.push(path);
    ctx.out(`${cells.join("\t")}\n`);
  }
  return 0;
}

/** sim-write [--free BYTES] DATASET BYTES [CHANGE...] */
export function simWrite(ctx: SimContext, args: string[]): number {
  let free = 0;
  const rest = [...args];
  if (rest[0] === "--free") {
    const value = parseSize(rest[1] ?? "");
    if (value === null) throw new ZfsError(`sim-write: bad --free size '${rest[1] ?? ""}'`, 2);
    free = value;
    rest.splice(0, 2);
  }
  const [name, sizeText, ...changes] = rest;
  if (!name || sizeText === undefined)
    throw new ZfsError("usage: sim-write [--free BYTES] DATASET BYTES [CHANGE...]", 2);
  const bytes = parseSize(sizeText);
  if (bytes === null) throw new ZfsError(`sim-write: bad size '${sizeText}'`, 2);
  return withState(ctx.stateDir, (state) => {
    const ds = state.datasets[name];
    if (!ds) throw new ZfsError(`sim-write: cannot open '${name}': dataset does not exist`);
    if (ds.partial?.newfs) throw new ZfsError(`sim-write: '${name}' is being received`);
    // without its key an encrypted dataset cannot be mounted, so nothing can be written
    if (ds.crypt && !keyOf(state, ds)?.loaded)
      throw new ZfsError(`sim-write: cannot write to '${name}': encryption key not loaded`);
    try {
      writeData(
        state,
        ds,
        bytes,
        free,
        changes.length > 0 || ds.type !== "filesystem"
          ? changes
          : [`/sim-${ds.changes.length + 1}`],
      );
    } catch (error) {
      ctx.err(`${(error as Error).message}\n`);
      return { save: true, value: 1 };
    }
    return { save: true, value: 0 };
  });
}

/** sim-pool NAME SIZE: creates a pool with its root filesystem. */
export function simPool(ctx: SimContext, args: string[]): number {
  const [name, sizeText] = args;
  if (!name || !sizeText) throw new ZfsError("usage: sim-pool NAME SIZE", 2);
  const size = parseSize(sizeText);
  if (size === null || size < 64 * 1024 * 1024)
    throw new ZfsError(`sim-pool: bad size '${sizeText}' (at least 64M)`, 2);
  const creation = nowSeconds(ctx.env);
  return withState(ctx.stateDir, (state) => {
    addPool(state, name, size, creation);
    return { save: true, value: 0 };
  });
}

export function simDump(ctx: SimContext): number {
  ctx.out(`${JSON.stringify(readState(ctx.stateDir), null, 2)}\n`);
  return 0;
}
