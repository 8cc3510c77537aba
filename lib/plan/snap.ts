// Deciding which source datasets changed (README: "When is a dataset changed?") and planning
// their new snapshots. Two pure steps, because rule 8 needs `zfs diff`, which only the runner
// can run.

import type { Config } from "../config/types.ts";
import { type Dataset, type Inventory, newestSnapshot } from "../zfs/model.ts";
import type { Namer } from "./naming.ts";
import { exclusionReason } from "./pairs.ts";
import type { Plan, Skip, SnapshotAction } from "./types.ts";

export interface ChangeDecision {
  subname: string;
  /** full dataset name */
  dataset: string;
  /** "diff": the runner must run `zfs diff DATASET@NEWEST` (rule 8) */
  changed: boolean | "diff";
  /** the rule that decided, in words */
  rule: string;
  /** newest snapshot's short name, for `zfs diff`; null without snapshots */
  newest: string | null;
}

export interface ChangeDecisions {
  decisions: ChangeDecision[];
  /** ignored datasets and the root without include_root */
  skipped: Skip[];
}

/** rules 1–7 of README "When is a dataset changed?", first match wins; rule 8 is left as "diff" */
function decide(dataset: Dataset, config: Config): { changed: boolean | "diff"; rule: string } {
  const newest = newestSnapshot(dataset);
  if (newest === undefined) return { changed: true, rule: "no snapshot yet" };
  if (config.alwaysChanged) return { changed: true, rule: "always_changed is set" };
  if (dataset.written === 0)
    return { changed: false, rule: `nothing written since @${newest.name}` };
  if (dataset.type === "volume") {
    return {
      changed: true,
      rule: `volume with ${dataset.written} bytes written (no zfs diff for volumes)`,
    };
  }
  if (config.writtenThreshold !== null && dataset.written > config.writtenThreshold) {
    return {
      changed: true,
      rule: `${dataset.written} bytes written, above written_threshold ${config.writtenThreshold}`,
    };
  }
  if (!config.checkDiff)
    return { changed: true, rule: `${dataset.written} bytes written, check_diff is off` };
  if (dataset.mounted === false)
    return { changed: true, rule: "not mounted, so zfs diff is impossible" };
  return {
    changed: "diff",
    rule: `${dataset.written} bytes written; zfs diff @${newest.name} decides`,
  };
}

export function decideChanges(inventory: Inventory, config: Config): ChangeDecisions {
  const decisions: ChangeDecision[] = [];
  const skipped: Skip[] = [];
  for (const dataset of inventory.datasets) {
    const excluded = exclusionReason(dataset.subname, config);
    if (excluded !== null) {
      skipped.push({ subname: dataset.subname, reason: excluded });
      continue;
    }
    decisions.push({
      subname: dataset.subname,
      dataset: dataset.name,
      newest: newestSnapshot(dataset)?.name ?? null,
      ...decide(dataset, config),
    });
  }
  return { decisions, skipped };
}

/** the pool of an inventory: the first component of its root */
export function poolOf(inventory: Inventory): string {
  return inventory.root.split("/")[0] ?? inventory.root;
}

/**
 * One SnapshotAction for the whole pool (one atomic `zfs snapshot` call), holding a new
 * snapshot for every changed dataset. `diffs` answers rule 8: subname → whether
 * `zfs diff` printed anything.
 */
export function planSnap(
  inventory: Inventory,
  config: Config,
  diffs: ReadonlyMap<string, boolean>,
  namer: Namer,
  now: Date,
): Plan<SnapshotAction> {
  const { decisions, skipped } = decideChanges(inventory, config);
  const plan: Plan<SnapshotAction> = {
    actions: [],
    conflicts: [],
    skipped: [...skipped],
    errors: [],
  };
  const datasets = new Map(inventory.datasets.map((dataset) => [dataset.subname, dataset]));
  const snapshots: SnapshotAction["snapshots"] = [];

  for (const decision of decisions) {
    let changed = decision.changed;
    let reason = decision.rule;
    if (changed === "diff") {
      const diff = diffs.get(decision.subname);
      if (diff === undefined) {
        plan.errors.push({
          subname: decision.subname,
          message: `${decision.dataset}: no zfs diff result for @${decision.newest}; cannot tell whether it changed`,
        });
        continue;
      }
      changed = diff;
      reason = diff
        ? `zfs diff @${decision.newest} shows changes`
        : `zfs diff @${decision.newest} shows no changes`;
    }
    if (!changed) {
      plan.skipped.push({ subname: decision.subname, reason: `unchanged: ${reason}` });
      continue;
    }
    const dataset = datasets.get(decision.subname);
    if (dataset === undefined) continue;
    const named = namer.next(
      dataset.snapshots.map((snapshot) => snapshot.name),
      now,
    );
    if ("error" in named) {
      plan.errors.push({ subname: dataset.subname, message: `${dataset.name}: ${named.error}` });
      continue;
    }
    snapshots.push({
      dataset: dataset.name,
      subname: dataset.subname,
      name: named.name,
      written: dataset.written,
    });
  }
  if (snapshots.length > 0)
    plan.actions.push({ kind: "snapshot", pool: poolOf(inventory), snapshots });
  return plan;
}
