// `status --prometheus FILE`: the status as a node_exporter textfile (text exposition format
// 0.0.4), written atomically: a temp file in the same folder, then a rename, so the collector
// never reads half a file. Timestamps rather than ages: a textfile is read long after it was
// written, and `time() - abgleich_…_timestamp_seconds` stays right however late.

import { statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { epochSeconds } from "./duration.ts";
import { LEVEL_NAMES, type Level, type StatusReport } from "./report.ts";
import { type RunState, writeFileAtomically } from "./state.ts";

export interface Sample {
  labels: Readonly<Record<string, string>>;
  value: number;
}

export interface Metric {
  name: string;
  help: string;
  type: "gauge";
  samples: Sample[];
}

/** a label value inside `"…"`: backslash, double quote and line feed escaped */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** HELP text: backslash and line feed escaped (a quote needs none there) */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

/** the exposition text; a metric without samples is left out */
export function exposition(metrics: readonly Metric[]): string {
  const lines: string[] = [];
  for (const metric of metrics) {
    if (metric.samples.length === 0) continue;
    lines.push(`# HELP ${metric.name} ${escapeHelp(metric.help)}`);
    lines.push(`# TYPE ${metric.name} ${metric.type}`);
    for (const sample of metric.samples) {
      const labels = Object.entries(sample.labels)
        .map(([key, value]) => `${key}="${escapeLabelValue(value)}"`)
        .join(",");
      lines.push(`${metric.name}${labels ? `{${labels}}` : ""} ${formatValue(sample.value)}`);
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

const gauge = (name: string, help: string, samples: Sample[]): Metric => ({
  name,
  help,
  type: "gauge",
  samples,
});

/** the dataset label: the subname, `(root)` for the root (an empty value would drop the label) */
export const datasetLabel = (subname: string) => (subname === "" ? "(root)" : subname);

/**
 * The metrics of one status check. `report` is null when the check could not run (a host down,
 * an unreadable config): then only the status itself and what the state file says.
 */
export function statusMetrics(
  config: string,
  level: Level,
  checkedAt: number,
  report: StatusReport | null,
  state: RunState | null,
): Metric[] {
  const base = { config };
  const datasets = report?.datasets ?? [];
  const per = (value: (d: (typeof datasets)[number]) => number | null): Sample[] =>
    datasets.flatMap((d) => {
      const v = value(d);
      return v === null
        ? []
        : [{ labels: { ...base, dataset: datasetLabel(d.subname) }, value: v }];
    });
  const lastRun = state?.lastRun ?? null;
  const lastSuccess = state?.lastSuccess ?? null;
  return [
    gauge(
      "abgleich_status",
      `The check's result as monitoring plugins have it: ${LEVEL_NAMES.map((name, i) => `${i} ${name}`).join(", ")}.`,
      [{ labels: base, value: level }],
    ),
    gauge("abgleich_status_timestamp_seconds", "When this status was checked.", [
      { labels: base, value: checkedAt },
    ]),
    gauge(
      "abgleich_newest_snapshot_timestamp_seconds",
      "Creation time of the newest snapshot of a dataset, per side.",
      datasets.flatMap((d) =>
        (["source", "target"] as const).flatMap((side) => {
          const newest = d[side];
          return newest === null
            ? []
            : [
                {
                  labels: { ...base, side, dataset: datasetLabel(d.subname) },
                  value: newest.creation,
                },
              ];
        }),
      ),
    ),
    gauge(
      "abgleich_snapshot_lag",
      "Source snapshots of a dataset that the target lacks (the next backup sends them).",
      per((d) => d.lagSnapshots),
    ),
    gauge(
      "abgleich_lag_bytes",
      "Bytes the target lacks: the written (or, for a full send, referenced) bytes of those snapshots.",
      per((d) => d.lagBytes),
    ),
    gauge(
      "abgleich_waiting_since_timestamp_seconds",
      "Creation time of the oldest source snapshot the target lacks (of the dataset, when it has no snapshot yet); absent when nothing waits.",
      per((d) => d.waitingSince),
    ),
    gauge(
      "abgleich_conflict",
      "1 when backup skips the dataset because the target diverged (a conflict), else 0.",
      per((d) => (d.conflicts.length > 0 ? 1 : 0)),
    ),
    gauge(
      "abgleich_resume_pending",
      "1 when a cut transfer left a resume token on the target (the next backup resumes it), else 0.",
      per((d) => (d.resumePending ? 1 : 0)),
    ),
    gauge(
      "abgleich_last_run_timestamp_seconds",
      "When the last snap, backup, cleanup, wizard or workflow run of this config finished.",
      lastRun ? [{ labels: base, value: epochSeconds(lastRun.finishedAt) }] : [],
    ),
    gauge(
      "abgleich_last_run_success",
      "1 when the last run of this config succeeded, else 0.",
      lastRun ? [{ labels: base, value: lastRun.result === "ok" ? 1 : 0 }] : [],
    ),
    // 0 when none is recorded: `time() - …` then alerts on a job that never succeeded, where
    // an absent series would silence the alert
    gauge(
      "abgleich_last_success_timestamp_seconds",
      "When the last successful run of this config finished; 0 when none is recorded.",
      [{ labels: base, value: lastSuccess ? epochSeconds(lastSuccess.finishedAt) : 0 }],
    ),
  ];
}

/**
 * Write the textfile atomically (temp file in the same folder, then rename). The folder is not
 * made: it is node_exporter's, and one made from a mistyped path would be read by no one.
 */
export function writeTextfile(file: string, text: string): void {
  const folder = dirname(resolve(file));
  try {
    statSync(folder);
  } catch (error) {
    // only a missing folder is called so; one that cannot be looked into says its own reason
    if ((error as NodeJS.ErrnoException).code === "ENOENT")
      throw new Error(`the folder ${folder} does not exist`);
  }
  writeFileAtomically(file, text);
}
