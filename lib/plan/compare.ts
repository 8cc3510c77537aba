// Comparing both trees side by side: one row per subname, snapshots merged oldest first, and
// the conflicts of each pair as backup would find them (same function, no second opinion).
// A large tree has a million snapshots per side: no per-snapshot Map or sort key unless the
// two lists really diverge.

import type { Config } from "../config/types.ts";
import type { Dataset, Inventory, Snapshot } from "../zfs/model.ts";
import { pairConflicts } from "./conflicts.ts";
import { pairDatasets } from "./pairs.ts";
import type {
  CompareDatasetRow,
  CompareSide,
  CompareSnapshotRow,
  Comparison,
  Presence,
} from "./types.ts";

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

const NO_SNAPSHOTS: readonly Snapshot[] = [];

const PRESENCE_INDEX: Record<Presence, number> = { both: 0, source: 1, target: 2 };

/**
 * Rows are frozen and shared: the same snapshot name with the same marks (and no holds) makes
 * the same row in every dataset of a tree, so a million rows are a few hundred objects.
 */
export class SnapshotRows {
  private readonly byName = new Map<string, (CompareSnapshotRow | undefined)[]>();

  get(
    name: string,
    presence: Presence,
    guidMismatch: boolean,
    sourceHolds: number,
    targetHolds: number,
  ): CompareSnapshotRow {
    if (sourceHolds !== 0 || targetHolds !== 0)
      return Object.freeze({ name, presence, guidMismatch, sourceHolds, targetHolds });
    let rows = this.byName.get(name);
    if (rows === undefined) {
      rows = [];
      this.byName.set(name, rows);
    }
    const index = PRESENCE_INDEX[presence] * 2 + (guidMismatch ? 1 : 0);
    let row = rows[index];
    if (row === undefined) {
      row = Object.freeze({ name, presence, guidMismatch, sourceHolds, targetHolds });
      rows[index] = row;
    }
    return row;
  }
}

/** both sides' snapshots, oldest first by creation (a received snapshot keeps the sender's) */
export function mergeSnapshots(
  source: Dataset | undefined,
  target: Dataset | undefined,
  shared: SnapshotRows = new SnapshotRows(),
): CompareSnapshotRow[] {
  const s = source?.snapshots ?? NO_SNAPSHOTS;
  const t = target?.snapshots ?? NO_SNAPSHOTS;
  // Names are unique per dataset, so a name of the common prefix (same name, same place) is
  // in no tail: only the tails need looking up, and a target behind its source has none.
  const limit = Math.min(s.length, t.length);
  let prefix = 0;
  while (prefix < limit && (s[prefix] as Snapshot).name === (t[prefix] as Snapshot).name) prefix++;
  let targetTail: Map<string, Snapshot> | undefined;
  let sourceTail: Set<string> | undefined;
  if (prefix < t.length) {
    targetTail = new Map();
    for (let i = prefix; i < t.length; i++)
      targetTail.set((t[i] as Snapshot).name, t[i] as Snapshot);
    sourceTail = new Set();
    for (let i = prefix; i < s.length; i++) sourceTail.add((s[i] as Snapshot).name);
  }

  // rows in source order, then the target-only ones; `sides` keeps the snapshot the order
  // is decided by (its own side's for target-only rows)
  const rows: CompareSnapshotRow[] = [];
  const sides: Snapshot[] = [];
  for (let i = 0; i < s.length; i++) {
    const snapshot = s[i] as Snapshot;
    const match = i < prefix ? (t[i] as Snapshot) : targetTail?.get(snapshot.name);
    rows.push(
      match === undefined
        ? shared.get(snapshot.name, "source", false, snapshot.userrefs, 0)
        : shared.get(
            snapshot.name,
            "both",
            match.guid !== snapshot.guid,
            snapshot.userrefs,
            match.userrefs,
          ),
    );
    sides.push(snapshot);
  }
  if (sourceTail !== undefined) {
    for (let i = prefix; i < t.length; i++) {
      const snapshot = t[i] as Snapshot;
      if (sourceTail.has(snapshot.name)) continue;
      rows.push(shared.get(snapshot.name, "target", false, 0, snapshot.userrefs));
      sides.push(snapshot);
    }
  }

  // creation, then source before target-only, then createtxg within its side; usually in
  // order already (source snapshots by createtxg, no target-only ones): no sort then
  const rank = (i: number) => ((rows[i] as CompareSnapshotRow).presence === "target" ? 1 : 0);
  const order = (i: number, j: number) => {
    const a = sides[i] as Snapshot;
    const b = sides[j] as Snapshot;
    return a.creation - b.creation || rank(i) - rank(j) || a.createtxg - b.createtxg;
  };
  for (let i = 1; i < rows.length; i++) {
    if (order(i - 1, i) > 0) {
      const indices = rows.map((_, index) => index).sort(order);
      return indices.map((index) => rows[index] as CompareSnapshotRow);
    }
  }
  return rows;
}

function side(dataset: Dataset | undefined): CompareSide | null {
  if (dataset === undefined) return null;
  return {
    encryption: dataset.encryption,
    keystatus: dataset.keystatus,
    bookmarks: dataset.bookmarks.length,
    newestBookmark: dataset.bookmarks[dataset.bookmarks.length - 1]?.name ?? null,
    partialReceive: dataset.resumeToken !== null,
  };
}

export function compareTrees(source: Inventory, target: Inventory, config: Config): Comparison {
  const shared = new SnapshotRows();
  const rows: CompareDatasetRow[] = pairDatasets(source, target, config).map((pair) => {
    const presence: Presence =
      pair.source && pair.target ? "both" : pair.source ? "source" : "target";
    return {
      subname: pair.subname,
      presence,
      ignored: pair.excluded !== null,
      source: side(pair.source),
      target: side(pair.target),
      snapshots: mergeSnapshots(pair.source, pair.target, shared),
      conflicts:
        pair.source && pair.target && pair.excluded === null
          ? pairConflicts(pair.subname, pair.source, pair.target)
          : [],
    };
  });
  // usually in order already (zfs lists parents first, siblings by name)
  for (let i = 1; i < rows.length; i++) {
    if (
      compareSubnames(
        (rows[i - 1] as CompareDatasetRow).subname,
        (rows[i] as CompareDatasetRow).subname,
      ) > 0
    ) {
      rows.sort((a, b) => compareSubnames(a.subname, b.subname));
      break;
    }
  }
  return { sourceRoot: source.root, targetRoot: target.root, rows };
}
