// Pairing source and target datasets by subname, and comparing the snapshot lists of one pair.
// Everything here is pure: inventories and config in, plain values out.

import type { Config } from "../config/types.ts";
import type { Bookmark, Dataset, Inventory, Snapshot } from "../zfs/model.ts";

/** why a subname does not take part in snap, backup and cleanup; null when it does */
export function exclusionReason(subname: string, config: Config): string | null {
  if (subname === "" && !config.includeRoot) return "root dataset left out (include_root: no)";
  if (config.ignore.includes(subname)) return "ignored (listed in ignore)";
  return null;
}

export function takesPart(subname: string, config: Config): boolean {
  return exclusionReason(subname, config) === null;
}

/** the subname of the parent dataset, or null for the root */
export function parentSubname(subname: string): string | null {
  if (subname === "") return null;
  const slash = subname.lastIndexOf("/");
  return slash < 0 ? "" : subname.slice(0, slash);
}

export interface Pair {
  subname: string;
  source: Dataset | undefined;
  target: Dataset | undefined;
  /** why this pair is left out, or null when it takes part */
  excluded: string | null;
}

export function bySubname(inventory: Inventory): Map<string, Dataset> {
  return new Map(inventory.datasets.map((dataset) => [dataset.subname, dataset]));
}

/**
 * Every subname of either side: source datasets in inventory order (parents first),
 * then target-only datasets in target order.
 */
export function pairDatasets(source: Inventory, target: Inventory, config: Config): Pair[] {
  const targets = bySubname(target);
  const sources = bySubname(source);
  const pairs: Pair[] = source.datasets.map((dataset) => ({
    subname: dataset.subname,
    source: dataset,
    target: targets.get(dataset.subname),
    excluded: exclusionReason(dataset.subname, config),
  }));
  for (const dataset of target.datasets) {
    if (sources.has(dataset.subname)) continue;
    pairs.push({
      subname: dataset.subname,
      source: undefined,
      target: dataset,
      excluded: exclusionReason(dataset.subname, config),
    });
  }
  return pairs;
}

export interface GuidMismatch {
  name: string;
  sourceGuid: string;
  targetGuid: string;
}

export interface SnapshotOverlap {
  /** snapshots with equal name and guid, in source order (oldest first); made when first read */
  readonly common: { source: Snapshot; target: Snapshot }[];
  /** the newest of `common`, by source order */
  newestCommon: { source: Snapshot; target: Snapshot } | undefined;
  /** equal name, different guid: never a match */
  mismatches: GuidMismatch[];
  /** source snapshot names the target lacks (by name), oldest first */
  sourceOnly: string[];
  /** target snapshot names the source lacks (by name), oldest first */
  targetOnly: string[];
}

/** a dataset's snapshots by short name (a loop: this runs for every pair of a large tree) */
export function snapshotsByName(dataset: Dataset): Map<string, Snapshot> {
  const byName = new Map<string, Snapshot>();
  for (const snapshot of dataset.snapshots) byName.set(snapshot.name, snapshot);
  return byName;
}

/** compare the snapshots of a pair: common means same name AND same guid */
export function compareSnapshots(source: Dataset, target: Dataset): SnapshotOverlap {
  const s = source.snapshots;
  const t = target.snapshots;
  // Names are unique per dataset: a name of the common prefix (same name at the same place on
  // both sides) is in neither tail, so only the tails are looked up by name. A target behind
  // its source has no tail: no Map at all (this runs for every pair of a large tree).
  const limit = Math.min(s.length, t.length);
  let prefix = 0;
  while (prefix < limit && (s[prefix] as Snapshot).name === (t[prefix] as Snapshot).name) prefix++;
  const targetTail = new Map<string, Snapshot>();
  const sourceTail = new Set<string>();
  if (prefix < t.length) {
    for (let i = prefix; i < t.length; i++)
      targetTail.set((t[i] as Snapshot).name, t[i] as Snapshot);
    for (let i = prefix; i < s.length; i++) sourceTail.add((s[i] as Snapshot).name);
  }
  // The common pairs are made only when asked for: compare and the conflicts of a large tree
  // need the newest one alone, and a million pair objects are memory the run must touch.
  const matchOf = (i: number): Snapshot | undefined =>
    i < prefix ? (t[i] as Snapshot) : targetTail.get((s[i] as Snapshot).name);
  let newestCommon: SnapshotOverlap["newestCommon"];
  const mismatches: GuidMismatch[] = [];
  const sourceOnly: string[] = [];
  for (let i = 0; i < s.length; i++) {
    const snapshot = s[i] as Snapshot;
    const match = matchOf(i);
    if (match === undefined) sourceOnly.push(snapshot.name);
    else if (match.guid === snapshot.guid) newestCommon = { source: snapshot, target: match };
    else
      mismatches.push({ name: snapshot.name, sourceGuid: snapshot.guid, targetGuid: match.guid });
  }
  const targetOnly: string[] = [];
  for (let i = prefix; i < t.length; i++) {
    const name = (t[i] as Snapshot).name;
    if (!sourceTail.has(name)) targetOnly.push(name);
  }
  let common: SnapshotOverlap["common"] | undefined;
  return {
    get common() {
      if (common === undefined) {
        common = [];
        for (let i = 0; i < s.length; i++) {
          const snapshot = s[i] as Snapshot;
          const match = matchOf(i);
          if (match !== undefined && match.guid === snapshot.guid)
            common.push({ source: snapshot, target: match });
        }
      }
      return common;
    },
    newestCommon,
    mismatches,
    sourceOnly,
    targetOnly,
  };
}

/**
 * The base of the next incremental when the source no longer has the snapshot the target
 * ended at, but still has its bookmark (same guid): `zfs send -i ds#bookmark ds@newer` keeps
 * the chain without a full resend. Only the target's newest snapshot can be such a base;
 * undefined when a snapshot base exists or no bookmark matches.
 */
export function bookmarkBase(
  source: Dataset,
  target: Dataset,
): { bookmark: Bookmark; target: Snapshot; newer: Snapshot[] } | undefined {
  const last = target.snapshots[target.snapshots.length - 1];
  if (last === undefined || source.bookmarks.length === 0) return undefined;
  if (source.snapshots.some((snapshot) => snapshot.guid === last.guid)) return undefined;
  const bookmark = source.bookmarks.find((candidate) => candidate.guid === last.guid);
  if (bookmark === undefined) return undefined;
  const newer = source.snapshots.filter((snapshot) => snapshot.createtxg > bookmark.createtxg);
  return { bookmark, target: last, newer };
}

/**
 * Datasets that are one and the same on both sides: equal dataset guids (a received dataset
 * gets a guid of its own; only its snapshots keep the sender's). Two host names that reach one
 * machine make the target the source itself, where every snapshot would look backed up.
 */
export function sameDatasets(
  source: Inventory,
  target: Inventory,
): { source: Dataset; target: Dataset }[] {
  const byGuid = new Map(source.datasets.map((dataset) => [dataset.guid, dataset]));
  const same: { source: Dataset; target: Dataset }[] = [];
  for (const dataset of target.datasets) {
    const twin = byGuid.get(dataset.guid);
    if (twin !== undefined) same.push({ source: twin, target: dataset });
  }
  return same;
}
