// Comparing both trees side by side: one row per subname, snapshots merged oldest first, and
// the conflicts of each pair as backup would find them (same function, no second opinion).

import type { Config } from "../config/types.ts";
import type { Dataset, Inventory, Snapshot } from "../zfs/model.ts";
import { pairConflicts } from "./conflicts.ts";
import { pairDatasets, snapshotsByName } from "./pairs.ts";
import type { CompareDatasetRow, CompareSnapshotRow, Comparison, Presence } from "./types.ts";

/** parents before children, siblings by name: compare path components one by one */
export function compareSubnames(a: string, b: string): number {
  const left = a === "" ? [] : a.split("/");
  const right = b === "" ? [] : b.split("/");
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const l = left[i] ?? "";
    const r = right[i] ?? "";
    if (l !== r) return l < r ? -1 : 1;
  }
  return left.length - right.length;
}

interface Entry {
  row: CompareSnapshotRow;
  /** sort key: creation, then source before target-only, then createtxg within its side */
  creation: number;
  sideRank: number;
  createtxg: number;
}

function entry(snapshot: Snapshot, presence: Presence, guidMismatch: boolean): Entry {
  return {
    row: { name: snapshot.name, presence, guidMismatch },
    creation: snapshot.creation,
    sideRank: presence === "target" ? 1 : 0,
    createtxg: snapshot.createtxg,
  };
}

/** both sides' snapshots, oldest first by creation (a received snapshot keeps the sender's) */
export function mergeSnapshots(
  source: Dataset | undefined,
  target: Dataset | undefined,
): CompareSnapshotRow[] {
  const targetByName = target ? snapshotsByName(target) : new Map<string, Snapshot>();
  const sourceByName = source ? snapshotsByName(source) : new Map<string, Snapshot>();
  const entries: Entry[] = [];
  for (const snapshot of source?.snapshots ?? []) {
    const match = targetByName.get(snapshot.name);
    if (match === undefined) entries.push(entry(snapshot, "source", false));
    else entries.push(entry(snapshot, "both", match.guid !== snapshot.guid));
  }
  for (const snapshot of target?.snapshots ?? []) {
    if (!sourceByName.has(snapshot.name)) entries.push(entry(snapshot, "target", false));
  }
  const order = (a: Entry, b: Entry) =>
    a.creation - b.creation || a.sideRank - b.sideRank || a.createtxg - b.createtxg;
  // usually already in order (source snapshots by createtxg, no target-only ones): skip the sort
  let sorted = true;
  for (let i = 1; i < entries.length && sorted; i++) {
    sorted = order(entries[i - 1] as Entry, entries[i] as Entry) <= 0;
  }
  if (!sorted) entries.sort(order);
  return entries.map((e) => e.row);
}

export function compareTrees(source: Inventory, target: Inventory, config: Config): Comparison {
  const rows: CompareDatasetRow[] = pairDatasets(source, target, config).map((pair) => {
    const presence: Presence =
      pair.source && pair.target ? "both" : pair.source ? "source" : "target";
    return {
      subname: pair.subname,
      presence,
      ignored: pair.excluded !== null,
      snapshots: mergeSnapshots(pair.source, pair.target),
      conflicts:
        pair.source && pair.target && pair.excluded === null
          ? pairConflicts(pair.subname, pair.source, pair.target)
          : [],
    };
  });
  rows.sort((a, b) => compareSubnames(a.subname, b.subname));
  return { sourceRoot: source.root, targetRoot: target.root, rows };
}
