// Collects what a run did, per dataset, for the `done` hook, notifications and `--json`.
// Messages are redacted as they come in (a failed `zfs send -t` names its resume token), so no
// summary handed to a plugin, a log or a notification carries a secret.

import { plural as count } from "../cli/render/labels.ts";
import { formatBytes } from "../cli/render/units.ts";
import type { Config } from "../config/types.ts";
import type { Side } from "../zfs/model.ts";
import {
  type DatasetSummary,
  type RunMode,
  type RunSummary,
  type StageName,
  type StageOutcome,
  stageTitle,
} from "./hooks.ts";
import { redact } from "./redact.ts";

export interface SummaryBuilder {
  /** a stage ended; `where`: its sides as `host:pool/prefix` */
  stage(
    stage: StageName,
    side: Side | undefined,
    outcome: StageOutcome,
    where: { source: string; target: string },
  ): void;
  snapshotMade(subname: string, name: string): void;
  sent(subname: string, bytes: number, snapshots: readonly string[]): void;
  destroyed(subname: string, side: Side, snapshots: readonly string[]): void;
  conflict(subname: string, message: string): void;
  failure(subname: string, message: string): void;
  finish(exitCode: number): RunSummary;
}

export function createSummaryBuilder(config: Config, mode: RunMode): SummaryBuilder {
  const startedAt = new Date();
  const datasets = new Map<string, DatasetSummary>();
  const stages: RunSummary["stages"] = [];
  const dataset = (subname: string): DatasetSummary => {
    let entry = datasets.get(subname);
    if (!entry) {
      entry = {
        subname,
        snapshotsMade: [],
        bytesSent: 0,
        snapshotsReceived: [],
        destroyed: [],
        conflicts: [],
        failures: [],
      };
      datasets.set(subname, entry);
    }
    return entry;
  };
  return {
    stage: (stage, side, outcome, where) => {
      const clean = redactedOutcome(outcome);
      const entry = { stage, outcome: clean, where: { ...where } };
      stages.push(side === undefined ? entry : { ...entry, side });
    },
    snapshotMade: (subname, name) => {
      dataset(subname).snapshotsMade.push(name);
    },
    sent: (subname, bytes, snapshots) => {
      const entry = dataset(subname);
      entry.bytesSent += bytes;
      entry.snapshotsReceived.push(...snapshots);
    },
    destroyed: (subname, side, snapshots) => {
      dataset(subname).destroyed.push({ side, snapshots: [...snapshots] });
    },
    conflict: (subname, message) => {
      dataset(subname).conflicts.push(redact(message));
    },
    failure: (subname, message) => {
      dataset(subname).failures.push(redact(message));
    },
    finish: (exitCode) => ({
      config,
      mode,
      stages: [...stages],
      datasets: [...datasets.values()],
      exitCode,
      startedAt,
      finishedAt: new Date(),
    }),
  };
}

/** the outcome itself when its error says nothing secret, else a copy with the error redacted */
function redactedOutcome(outcome: StageOutcome): StageOutcome {
  const error = outcome.error;
  if (!error || redact(error.message) === error.message) return outcome;
  const clean = new Error(redact(error.message));
  clean.name = error.name;
  return { ...outcome, error: clean };
}

/** the counts over all datasets of a run */
export function summaryTotals(summary: RunSummary) {
  const totals = {
    snapshotsMade: 0,
    bytesSent: 0,
    snapshotsSent: 0,
    snapshotsDestroyed: 0,
    conflicts: 0,
    failures: 0,
  };
  for (const d of summary.datasets) {
    totals.snapshotsMade += d.snapshotsMade.length;
    totals.bytesSent += d.bytesSent;
    totals.snapshotsSent += d.snapshotsReceived.length;
    for (const entry of d.destroyed) totals.snapshotsDestroyed += entry.snapshots.length;
    totals.conflicts += d.conflicts.length;
    totals.failures += d.failures.length;
  }
  return totals;
}

/** a run that ended well without changing anything: an idle nightly run */
export function wasIdle(summary: RunSummary): boolean {
  return (
    summary.exitCode === 0 && summary.stages.every((s) => s.outcome.status === "nothing-to-do")
  );
}

/**
 * Each stage's name: `snap`, `cleanup source`. A workflow that ran a stage on several targets
 * (or sources) with `run.with()` says which one each was: `backup to nas:backup/tank`.
 */
export function stageNames(summary: RunSummary): string[] {
  // `where?.`: a plugin may hand in a summary it built itself, without the sides
  const several = (side: Side) => new Set(summary.stages.map((s) => s.where?.[side])).size > 1;
  const [sources, targets] = [several("source"), several("target")];
  return summary.stages.map((s) =>
    [
      stageTitle(s.stage, s.side),
      ...(sources && s.where ? [`from ${s.where.source}`] : []),
      // snap never touches a target
      ...(targets && s.where && s.stage !== "snap" ? [`to ${s.where.target}`] : []),
    ].join(" "),
  );
}

/** each stage and how it ended: `snap ok, backup to nas:backup/tank failed` (see stageNames) */
export function stagesText(summary: RunSummary): string {
  const names = stageNames(summary);
  return summary.stages.map((s, i) => `${names[i]} ${s.outcome.status}`).join(", ");
}

/**
 * The whole run in one line, for `--quiet` logs: what changed, then each stage's status, e.g.
 * `abgleich ok: 2 snapshots made, 1.2 MiB sent (3 snapshots) (snap ok, backup ok, cleanup
 * source nothing-to-do)`. Null for an idle run: there is nothing to say.
 */
export function summaryLine(summary: RunSummary): string | null {
  if (wasIdle(summary)) return null;
  const t = summaryTotals(summary);
  const did: string[] = [];
  if (t.snapshotsMade > 0) did.push(`${count(t.snapshotsMade, "snapshot")} made`);
  if (t.bytesSent > 0 || t.snapshotsSent > 0)
    did.push(`${formatBytes(t.bytesSent)} sent (${count(t.snapshotsSent, "snapshot")})`);
  if (t.snapshotsDestroyed > 0) did.push(`${count(t.snapshotsDestroyed, "snapshot")} destroyed`);
  if (t.conflicts > 0) did.push(count(t.conflicts, "conflict"));
  if (t.failures > 0) did.push(count(t.failures, "failure"));
  const stages = stagesText(summary);
  const result =
    summary.exitCode === 0
      ? summary.mode === "dry-run"
        ? "dry run"
        : "ok"
      : summary.exitCode === 130 || summary.exitCode === 143
        ? `cancelled (exit ${summary.exitCode})`
        : `FAILED (exit ${summary.exitCode})`;
  return `abgleich ${result}: ${did.join(", ") || "nothing changed"}${stages ? ` (${stages})` : ""}`;
}
