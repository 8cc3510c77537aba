// Planning cleanup: which snapshots are safe to destroy on one side.
// Source: common snapshots except the newest `keep_snapshots` (so never a source-only one, never
// the newest common one). Target: snapshots older than the oldest common one, keeping the newest
// `keep_backlog` of them. With retention rules for the side, retention.ts decides instead, inside
// the same safety rules. Only the tool's own, unheld snapshots; never in a pair with a conflict.

import type { Config } from "../config/types.ts";
import type { Dataset, Inventory, Side, Snapshot } from "../zfs/model.ts";
import { holdTags } from "./chain.ts";
import { abbreviateNames, pairConflicts } from "./conflicts.ts";
import type { Namer } from "./naming.ts";
import { compareSnapshots, pairDatasets } from "./pairs.ts";
import { decideRetention, keptCounts, type Verdict } from "./retention.ts";
import type { DestroyAction, Plan, RetentionReport } from "./types.ts";

/** source snapshots that are common, except the newest `keep` common ones */
function sourceCandidates(source: Dataset, target: Dataset, keep: number): Snapshot[] {
  const common = compareSnapshots(source, target).common.map((pair) => pair.source);
  // keep_snapshots is at least 1 by config; clamp anyway so the newest common one always stays
  return common.slice(0, Math.max(0, common.length - Math.max(1, keep)));
}

/** target snapshots before the oldest common one, except the newest `keep` of them */
function targetCandidates(source: Dataset, target: Dataset, keep: number): Snapshot[] {
  if (keep < 0) return [];
  const common = new Set(compareSnapshots(source, target).common.map((pair) => pair.target));
  const oldestCommon = target.snapshots.findIndex((snapshot) => common.has(snapshot));
  if (oldestCommon < 0) return [];
  const older = target.snapshots.slice(0, oldestCommon);
  return older.slice(0, Math.max(0, older.length - keep));
}

/** the retention verdicts of one pair's dataset on `side`; null when they share no snapshot */
function retentionVerdicts(
  source: Dataset,
  target: Dataset,
  config: Config,
  side: Side,
  namer: Namer,
): Verdict[] | null {
  const rules = config.retention[side];
  const overlap = compareSnapshots(source, target);
  if (rules === null || overlap.newestCommon === undefined) return null;
  return decideRetention({
    side,
    snapshots: (side === "source" ? source : target).snapshots,
    common: new Set(overlap.common.map((pair) => pair.source.name)),
    newestCommon: overlap.newestCommon.source.name,
    keepSnapshots: config.keepSnapshots,
    rules,
    isOwn: (name) => namer.isOwn(name),
    utc: namer.utc === true,
  });
}

export function planCleanup(
  source: Inventory,
  target: Inventory,
  config: Config,
  side: Side,
  namer: Namer,
): Plan<DestroyAction> {
  const plan: Plan<DestroyAction> = { actions: [], conflicts: [], skipped: [], errors: [] };
  const skip = (subname: string, reason: string) => plan.skipped.push({ subname, reason });
  const tag = holdTags(config)[side];
  const reports: RetentionReport[] = [];

  for (const pair of pairDatasets(source, target, config)) {
    const { subname } = pair;
    if (pair.excluded !== null) {
      skip(subname, pair.excluded);
      continue;
    }
    if (pair.source === undefined || pair.target === undefined) {
      skip(subname, pair.source === undefined ? "only on the target" : "not on the target yet");
      continue;
    }
    const conflicts = pairConflicts(subname, pair.source, pair.target);
    if (conflicts.length > 0) {
      plan.conflicts.push(...conflicts);
      const kinds = conflicts.map((conflict) => conflict.kind).join(", ");
      skip(subname, `not cleaned on either side while in conflict (${kinds}); see compare`);
      continue;
    }
    const retention = config.retention[side] !== null;
    if (side === "target" && !retention && config.keepBacklog < 0) {
      skip(subname, "keep_backlog is -1: every older target snapshot is kept");
      continue;
    }

    const dataset = side === "source" ? pair.source : pair.target;
    const verdicts = retention
      ? retentionVerdicts(pair.source, pair.target, config, side, namer)
      : null;
    if (retention && verdicts === null) {
      skip(subname, "no common snapshot yet: retention keeps everything");
      continue;
    }
    const candidates =
      verdicts !== null
        ? dataset.snapshots.filter((_, index) => verdicts[index]?.candidate === true)
        : side === "source"
          ? sourceCandidates(pair.source, pair.target, config.keepSnapshots)
          : targetCandidates(pair.source, pair.target, config.keepBacklog);
    const foreign = candidates.filter((snapshot) => !namer.isOwn(snapshot.name));
    // a hold of abgleich's own (an older chain base whose release did not happen) is released
    // first; anyone else's hold keeps the snapshot
    const onlyOwnHolds = (snapshot: Snapshot) =>
      snapshot.userrefs > 0 &&
      snapshot.holds?.length === snapshot.userrefs &&
      snapshot.holds.every((hold) => hold === tag);
    const held = candidates.filter(
      (snapshot) => namer.isOwn(snapshot.name) && snapshot.userrefs > 0 && !onlyOwnHolds(snapshot),
    );
    const doomed = candidates.filter(
      (snapshot) =>
        namer.isOwn(snapshot.name) && (snapshot.userrefs === 0 || onlyOwnHolds(snapshot)),
    );
    const release = doomed.filter(onlyOwnHolds).map((snapshot) => snapshot.name);
    if (foreign.length > 0) {
      const names = abbreviateNames(foreign.map((snapshot) => snapshot.name));
      skip(
        subname,
        `left ${foreign.length} ${foreign.length === 1 ? "snapshot" : "snapshots"} not named by abgleich: ${names}`,
      );
    }
    if (held.length > 0) skip(subname, heldReason(held, tag));
    let report: RetentionReport | null = null;
    if (verdicts !== null) {
      const doomedNames = new Set(doomed.map((snapshot) => snapshot.name));
      report = {
        side,
        subname,
        dataset: dataset.name,
        snapshots: dataset.snapshots.map((snapshot, index) => {
          const { name } = snapshot;
          if (doomedNames.has(name)) return { name, kept: false, reasons: ["outside retention"] };
          const verdict = verdicts[index] as Verdict;
          if (!verdict.candidate) return { name, kept: true, reasons: verdict.reasons };
          // a candidate that stays: not abgleich's own, or held by someone else
          const why = !namer.isOwn(name)
            ? "not abgleich's own"
            : `held (${(snapshot.holds ?? []).join(", ") || `${snapshot.userrefs} hold(s)`})`;
          return { name, kept: true, reasons: [why] };
        }),
      };
      reports.push(report);
    }
    if (doomed.length === 0) {
      if (report !== null) skip(subname, `nothing outside retention (kept ${keptCounts(report)})`);
      else if (candidates.length === 0) skip(subname, "nothing to clean up");
      continue;
    }
    plan.actions.push({
      kind: "destroy",
      side,
      subname,
      dataset: dataset.name,
      snapshots: doomed.map((snapshot) => snapshot.name),
      used: doomed.reduce((sum, snapshot) => sum + snapshot.used, 0),
      ...(release.length > 0 ? { release } : {}),
    });
  }
  if (reports.length > 0) plan.retention = reports;
  return plan;
}

/**
 * Why held snapshots stay, by who holds them: another abgleich tag is another target's chain
 * base (releasing it by hand would break that chain), any other tag is someone else's to release
 */
function heldReason(held: readonly Snapshot[], ownTag: string): string {
  const others = (snapshot: Snapshot) => (snapshot.holds ?? []).filter((hold) => hold !== ownTag);
  const names = abbreviateNames(
    held.map((snapshot) => {
      const tags = others(snapshot);
      return tags.length > 0 ? `${snapshot.name} (held by ${tags.join(", ")})` : snapshot.name;
    }),
  );
  const tags = held.flatMap(others);
  const hints: string[] = [];
  if (tags.some((tag) => tag.startsWith("abgleich")))
    hints.push(
      "a hold tagged abgleich:… keeps another target's chain base and goes when that target's backup moves on (or is this target's under a name the config no longer gives it: release that one by hand)",
    );
  if (tags.some((tag) => !tag.startsWith("abgleich")) || held.some((s) => s.holds === undefined))
    hints.push(
      "any other hold is released by hand (zfs release TAG SNAPSHOT) once nothing needs it",
    );
  return `left ${held.length} held ${held.length === 1 ? "snapshot" : "snapshots"}: ${names}${hints.length > 0 ? `; ${hints.join("; ")}` : ""}`;
}
