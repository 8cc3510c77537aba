// Collects what a run did, per dataset, for the `done` hook, notifications and `--json`.

import type { Config } from "../config/types.ts";
import type { Side } from "../zfs/model.ts";
import type { DatasetSummary, RunMode, RunSummary, StageName, StageOutcome } from "./hooks.ts";

export interface SummaryBuilder {
  stage(stage: StageName, side: Side | undefined, outcome: StageOutcome): void;
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
    stage: (stage, side, outcome) => {
      stages.push(side === undefined ? { stage, outcome } : { stage, side, outcome });
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
      dataset(subname).conflicts.push(message);
    },
    failure: (subname, message) => {
      dataset(subname).failures.push(message);
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
