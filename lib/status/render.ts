// `status` output: the monitoring plugin's first line, a table per dataset and the last run as
// text, or one JSON document. Pure: report in, text or plain data out.

import type { Style, StyleFormat } from "../cli/render/style.ts";
import { renderTable } from "../cli/render/table.ts";
import { formatBytes } from "../cli/render/units.ts";
import { epochSeconds, formatAge, formatThreshold, secondsSince } from "./duration.ts";
import {
  CRITICAL,
  LEVEL_NAMES,
  type Level,
  OK,
  type StatusReport,
  type Thresholds,
  WARNING,
} from "./report.ts";
import type { RunRecord, RunState } from "./state.ts";

const LEVEL_COLOURS: Record<Level, StyleFormat> = {
  [OK]: "green",
  [WARNING]: "yellow",
  [CRITICAL]: "red",
  3: "magenta",
};

/** `ABGLEICH OK - 3 datasets, … | perfdata`: one line, whatever the messages hold */
export function firstLine(level: Level, summary: string, perfdata = ""): string {
  const text = summary.replace(/\s*\n\s*/g, " ");
  return `ABGLEICH ${LEVEL_NAMES[level]} - ${text}${perfdata ? ` | ${perfdata}` : ""}`;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.000Z$/, "Z");

function runLine(what: string, run: RunRecord | null, now: number): string {
  if (run === null) return `${what}: none recorded`;
  const stages = run.stages.length > 0 ? run.stages.join(", ") : "no stage";
  return `${what}: ${stages} ${run.result} (exit ${run.exitCode}), finished ${iso(epochSeconds(run.finishedAt))} (${formatAge(secondsSince(now, run.finishedAt))} ago)`;
}

export function thresholdsText(thresholds: Thresholds): string {
  return `warn ${formatThreshold(thresholds.warn)}, crit ${formatThreshold(thresholds.crit)}`;
}

/** everything after the first line */
export function renderStatus(report: StatusReport, style: Style): string {
  const now = report.checkedAt;
  const rows = report.datasets.map((d) => {
    const lag = d.lagSnapshots === 0 ? "0" : `${d.lagSnapshots} (${formatBytes(d.lagBytes)})`;
    const notes = d.notes.length === 0 ? "ok" : d.notes.join(", ");
    return [
      d.subname === "" ? "(root)" : d.subname,
      d.source?.name ?? (d.exists.source ? "-" : "(gone)"),
      d.source ? formatAge(d.source.ageSeconds) : "-",
      d.target?.name ?? (d.exists.target ? "-" : "(missing)"),
      d.target ? formatAge(d.target.ageSeconds) : "-",
      lag,
      style.paint(LEVEL_COLOURS[d.level], notes),
    ];
  });
  const table = renderTable(
    [
      { header: "DATASET" },
      { header: "SOURCE NEWEST" },
      { header: "AGE", align: "right" },
      { header: "TARGET NEWEST" },
      { header: "AGE", align: "right" },
      { header: "LAG", align: "right" },
      { header: "STATE" },
    ],
    rows,
    { style },
  );
  const lines = [
    report.datasets.length > 0 ? table : "(no datasets)",
    "",
    runLine("last run", report.lastRun, now),
    runLine("last success", report.lastSuccess, now),
    `thresholds: ${thresholdsText(report.thresholds)}; state file: ${report.stateFile}`,
  ];
  const conflicts = report.datasets.flatMap((d) => d.conflicts.map((c) => c.message));
  if (conflicts.length > 0) lines.push("", ...conflicts.map((text) => `conflict: ${text}`));
  return lines.join("\n");
}

const isoOrNull = (seconds: number | null) => (seconds === null ? null : iso(seconds));

/** the `--json` document of a check that ran */
export function statusJson(report: StatusReport, config: string): Record<string, unknown> {
  return {
    status: LEVEL_NAMES[report.level],
    exitCode: report.level,
    summary: firstLine(report.level, report.summary),
    config,
    checkedAt: iso(report.checkedAt),
    thresholds: { warnSeconds: report.thresholds.warn, critSeconds: report.thresholds.crit },
    newestBackup: isoOrNull(report.newestBackup),
    datasets: report.datasets.map((d) => ({
      subname: d.subname,
      status: LEVEL_NAMES[d.level],
      source: d.source && { ...d.source, creation: iso(d.source.creation) },
      target: d.target && { ...d.target, creation: iso(d.target.creation) },
      sourceExists: d.exists.source,
      targetExists: d.exists.target,
      newestBackup: isoOrNull(d.backedUpAt),
      lagSnapshots: d.lagSnapshots,
      lagBytes: d.lagBytes,
      waitingSince: isoOrNull(d.waitingSince),
      unsnapshottedBytes: d.unsnapshottedBytes,
      conflicts: d.conflicts,
      resumePending: d.resumePending,
      notes: d.notes,
    })),
    problems: report.problems.map((p) => ({ status: LEVEL_NAMES[p.level], message: p.text })),
    lastRun: report.lastRun,
    lastSuccess: report.lastSuccess,
    stateFile: report.stateFile,
  };
}

/** the `--json` document of a check that could not run */
export function unknownJson(
  message: string,
  config: string,
  checkedAt: number,
  state: RunState | null,
): Record<string, unknown> {
  return {
    status: "UNKNOWN",
    exitCode: 3,
    summary: firstLine(3, message.split("\n")[0] ?? message),
    error: message,
    config,
    checkedAt: iso(checkedAt),
    lastRun: state?.lastRun ?? null,
    lastSuccess: state?.lastSuccess ?? null,
  };
}
