// Space accounting of the simulator. The model (simple and self-consistent):
// - every dataset owns extents (bytes written in one txg; freed in a later txg or live);
//   a base extent (BASE_FS/BASE_VOL bytes of metadata) lives as long as the dataset;
// - a snapshot at txg t references the extents with born <= t < died (or live);
// - snapshot.written = referenced bytes born after the previous snapshot (all for the first);
// - snapshot.used = freed bytes referenced by this snapshot and by no other one;
// - dataset.referenced = live bytes; dataset.written = live bytes born after the newest snapshot;
// - usedbysnapshots = all freed bytes still held by some snapshot (others are dropped at once);
// - dataset.used = referenced + partial receive bytes + usedbysnapshots + children's used;
// - pool allocated = its root dataset's used; available = size - slop - allocated, where
//   slop = min(max(size/32, 128 MiB), size/2) as in OpenZFS 2.1.
import type { Extent, SimDataset, SimSnapshot, SimState } from "./state.ts";

export const BASE_FS = 98304;
export const BASE_VOL = 57344;

const covers = (e: Extent, txg: number): boolean =>
  e.born <= txg && (e.died === null || e.died > txg);

export function referencedAt(ds: SimDataset, txg: number): number {
  let sum = 0;
  for (const e of ds.extents) if (covers(e, txg)) sum += e.bytes;
  return sum;
}

export function liveBytes(ds: SimDataset): number {
  let sum = 0;
  for (const e of ds.extents) if (e.died === null) sum += e.bytes;
  return sum;
}

function sortedSnapshots(ds: SimDataset): SimSnapshot[] {
  return [...ds.snapshots].sort((a, b) => a.createtxg - b.createtxg);
}

/** Bytes referenced at `toTxg` (null = now) that were born after `fromTxg` (null = ever). */
export function writtenBetween(
  ds: SimDataset,
  fromTxg: number | null,
  toTxg: number | null,
): number {
  let sum = 0;
  for (const e of ds.extents) {
    const present = toTxg === null ? e.died === null : covers(e, toTxg);
    if (present && (fromTxg === null || e.born > fromTxg)) sum += e.bytes;
  }
  return sum;
}

export function snapshotWritten(ds: SimDataset, snap: SimSnapshot): number {
  const prev = sortedSnapshots(ds)
    .filter((s) => s.createtxg < snap.createtxg)
    .pop();
  return writtenBetween(ds, prev ? prev.createtxg : null, snap.createtxg);
}

export function datasetWritten(ds: SimDataset): number {
  const newest = sortedSnapshots(ds).pop();
  return writtenBetween(ds, newest ? newest.createtxg : null, null);
}

function coveringSnapshots(ds: SimDataset, e: Extent): SimSnapshot[] {
  return ds.snapshots.filter((s) => covers(e, s.createtxg));
}

/** Bytes that destroying exactly these snapshots would free. */
export function reclaimable(ds: SimDataset, doomed: Set<string>): number {
  let sum = 0;
  for (const e of ds.extents) {
    if (e.died === null) continue;
    const holders = coveringSnapshots(ds, e);
    if (holders.length > 0 && holders.every((s) => doomed.has(s.name))) sum += e.bytes;
  }
  return sum;
}

export function snapshotUsed(ds: SimDataset, snap: SimSnapshot): number {
  return reclaimable(ds, new Set([snap.name]));
}

export function usedBySnapshots(ds: SimDataset): number {
  let sum = 0;
  for (const e of ds.extents) if (e.died !== null) sum += e.bytes;
  return sum;
}

export function usedByDataset(ds: SimDataset): number {
  return liveBytes(ds) + (ds.partial ? ds.partial.received : 0);
}

/** Drops freed extents no snapshot holds and merges extents of the same generation. */
export function compactExtents(ds: SimDataset): void {
  const kept = ds.extents.filter((e) => e.died === null || coveringSnapshots(ds, e).length > 0);
  const merged = new Map<string, Extent>();
  for (const e of kept) {
    const key = `${e.born}:${e.died}:${e.base ? 1 : 0}`;
    const existing = merged.get(key);
    if (existing) existing.bytes += e.bytes;
    else merged.set(key, { ...e });
  }
  ds.extents = [...merged.values()].filter((e) => e.bytes > 0);
}

/** Frees up to `bytes` of live, non-base data born at or before `bornAtOrBefore`, oldest first. */
export function freeBytes(
  ds: SimDataset,
  bytes: number,
  txg: number,
  bornAtOrBefore = Number.MAX_SAFE_INTEGER,
): number {
  let left = bytes;
  const candidates = ds.extents
    .filter((e) => e.died === null && !e.base && e.born <= bornAtOrBefore)
    .sort((a, b) => a.born - b.born);
  for (const e of candidates) {
    if (left <= 0) break;
    const take = Math.min(left, e.bytes);
    if (take < e.bytes) {
      e.bytes -= take;
      ds.extents.push({ born: e.born, died: txg, bytes: take });
    } else e.died = txg;
    left -= take;
  }
  compactExtents(ds);
  return bytes - left;
}

/** used of every dataset, computed bottom-up in one pass. */
export function usedMap(state: SimState): Map<string, number> {
  const used = new Map<string, number>();
  const names = Object.keys(state.datasets).sort(
    (a, b) => b.split("/").length - a.split("/").length,
  );
  for (const name of names) {
    const ds = state.datasets[name] as SimDataset;
    used.set(name, (used.get(name) ?? 0) + usedByDataset(ds) + usedBySnapshots(ds));
    const slash = name.lastIndexOf("/");
    if (slash > 0) {
      const parent = name.slice(0, slash);
      used.set(parent, (used.get(parent) ?? 0) + (used.get(name) as number));
    }
  }
  return used;
}

export function usedByChildren(state: SimState, name: string, used = usedMap(state)): number {
  let sum = 0;
  for (const child of Object.keys(state.datasets))
    if (child.startsWith(`${name}/`) && !child.slice(name.length + 1).includes("/"))
      sum += used.get(child) ?? 0;
  return sum;
}

export function slop(size: number): number {
  return Math.min(Math.max(Math.floor(size / 32), 128 * 1024 * 1024), Math.floor(size / 2));
}

export function poolAllocated(state: SimState, pool: string, used = usedMap(state)): number {
  return used.get(pool) ?? 0;
}

/** Bytes a dataset in `pool` may still write. */
export function poolAvailable(state: SimState, pool: string, used = usedMap(state)): number {
  const p = state.pools[pool];
  if (!p) return 0;
  return Math.max(0, p.size - slop(p.size) - poolAllocated(state, pool, used));
}
