// What `abgleich status` decides, from both trees, the last run and the clock: per dataset the
// newest snapshot of each side, what the target lacks, conflicts and cut transfers, and one
// level for the whole configuration as monitoring plugins have it (OK, WARNING, CRITICAL,
// UNKNOWN). Pure: no zfs, no files, no clock of its own.
//
// Freshness is judged by what waits, not by the age of the newest snapshot: `snap` makes a
// snapshot only where data changed, so an idle dataset's newest snapshot may be weeks old and
// still fully backed up. A dataset is behind when the source has snapshots the target lacks;
// its age is that of the oldest of them. A timer that stopped altogether makes no snapshots
// either; the time since the last successful run (from the state file) catches that.

import type { Config } from "../config/types.ts";
import { pairConflicts } from "../plan/conflicts.ts";
import { bookmarkBase, compareSnapshots, pairDatasets } from "../plan/pairs.ts";
import type { ConflictKind } from "../plan/types.ts";
import type { Dataset, Inventory, Snapshot } from "../zfs/model.ts";
import { epochSeconds, formatAge, secondsSince } from "./duration.ts";
import type { RunRecord, RunState } from "./state.ts";

export const OK = 0;
export const WARNING = 1;
export const CRITICAL = 2;
export const UNKNOWN = 3;
export type Level = typeof OK | typeof WARNING | typeof CRITICAL | typeof UNKNOWN;
export const LEVEL_NAMES = ["OK", "WARNING", "CRITICAL", "UNKNOWN"] as const;

export interface Thresholds {
  /** seconds; at or above: WARNING */
  warn: number;
  /** seconds; at or above: CRITICAL */
  crit: number;
}

export interface NewestSnapshot {
  name: string;
  /** epoch seconds */
  creation: number;
  ageSeconds: number;
}

export interface DatasetStatus {
  subname: string;
  /** null: the dataset has no snapshot on that side, or is not there (see `exists`) */
  source: NewestSnapshot | null;
  target: NewestSnapshot | null;
  exists: { source: boolean; target: boolean };
  /** source snapshots the next backup would send */
  lagSnapshots: number;
  /** what they hold: the oldest one's `referenced` for a full send, the others' `written` */
  lagBytes: number;
  /** creation of the oldest snapshot the target lacks (or of a dataset never snapshotted) */
  waitingSince: number | null;
  /** bytes written on the source since its newest snapshot, not yet in any snapshot */
  unsnapshottedBytes: number;
  conflicts: { kind: ConflictKind; message: string }[];
  /** a cut receive left a token on the target; the next backup resumes it */
  resumePending: boolean;
  /**
   * creation of the newest snapshot the target holds of the source's (by guid, or by a source
   * bookmark): its newest backup. A snapshot made on the target by hand is none.
   */
  backedUpAt: number | null;
  level: Level;
  /** short notes for the table, e.g. `behind 30h`, `conflict: target-ahead` */
  notes: string[];
}

export interface Problem {
  level: Level;
  text: string;
}

export interface StatusReport {
  level: Level;
  /** the first line's text after `ABGLEICH LEVEL - ` */
  summary: string;
  /** Nagios perfdata after the `|` */
  perfdata: string;
  checkedAt: number;
  thresholds: Thresholds;
  datasets: DatasetStatus[];
  problems: Problem[];
  lastRun: RunRecord | null;
  lastSuccess: RunRecord | null;
  stateFile: string;
  /** the newest `backedUpAt` of any dataset, null when the target has no backup yet */
  newestBackup: number | null;
}

export interface StatusInput {
  config: Config;
  source: Inventory;
  target: Inventory;
  /** epoch seconds */
  now: number;
  thresholds: Thresholds;
  /** the state file's content, null when there is none */
  state: RunState | null;
  stateFile: string;
  /** why the state file could not be read, when it could not */
  stateProblem?: string | null;
  /** how the source host is called in messages */
  sourceHost?: string;
  /** the target host's name, for the message when the target root is missing */
  targetHost?: string;
}

const newest = (dataset: Dataset | undefined, now: number): NewestSnapshot | null => {
  const snapshot = dataset?.snapshots[dataset.snapshots.length - 1];
  return snapshot === undefined
    ? null
    : { name: snapshot.name, creation: snapshot.creation, ageSeconds: now - snapshot.creation };
};

/**
 * The newest backup of a dataset: the newest target snapshot that came from the source, known
 * there by guid as a snapshot or (destroyed since) as a bookmark
 */
function backedUpAt(source: Dataset, target: Dataset | undefined): number | null {
  if (target === undefined || target.snapshots.length === 0) return null;
  const fromSource = new Set([
    ...source.snapshots.map((snapshot) => snapshot.guid),
    ...source.bookmarks.map((bookmark) => bookmark.guid),
  ]);
  for (let i = target.snapshots.length - 1; i >= 0; i--) {
    const snapshot = target.snapshots[i] as Snapshot;
    if (fromSource.has(snapshot.guid)) return snapshot.creation;
  }
  return null;
}

/** the source snapshots the target lacks, oldest first, as the next backup would send them */
function lagOf(
  source: Dataset,
  target: Dataset | undefined,
): { snapshots: Snapshot[]; full: boolean } {
  const all = source.snapshots;
  if (target === undefined || target.snapshots.length === 0) return { snapshots: all, full: true };
  const overlap = compareSnapshots(source, target);
  if (overlap.newestCommon !== undefined) {
    const index = all.indexOf(overlap.newestCommon.source);
    return { snapshots: all.slice(index + 1), full: false };
  }
  const viaBookmark = bookmarkBase(source, target);
  if (viaBookmark !== undefined) return { snapshots: viaBookmark.newer, full: false };
  // no base at all (a conflict): everything the target does not have by name
  const missing = new Set(overlap.sourceOnly);
  return { snapshots: all.filter((snapshot) => missing.has(snapshot.name)), full: true };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
const shown = (subname: string) => (subname === "" ? "(root)" : subname);

/** how far in the future a run's record may be (clocks of one machine drift, NTP steps) */
const FUTURE_SLACK = 300;

/** the level an age earns against the thresholds */
export function ageLevel(seconds: number, thresholds: Thresholds): Level {
  if (seconds >= thresholds.crit) return CRITICAL;
  if (seconds >= thresholds.warn) return WARNING;
  return OK;
}

function datasetStatus(
  subname: string,
  source: Dataset,
  target: Dataset | undefined,
  input: StatusInput,
  problems: Problem[],
): DatasetStatus {
  const { now, thresholds } = input;
  const lag = lagOf(source, target);
  const [first, ...rest] = lag.snapshots;
  const lagBytes =
    first === undefined
      ? 0
      : (lag.full ? first.referenced : first.written) +
        rest.reduce((sum, snapshot) => sum + snapshot.written, 0);
  const conflicts =
    target === undefined
      ? []
      : pairConflicts(subname, source, target).map(({ kind, message }) => ({ kind, message }));
  const status: DatasetStatus = {
    subname,
    source: newest(source, now),
    target: newest(target, now),
    exists: { source: true, target: target !== undefined },
    lagSnapshots: lag.snapshots.length,
    lagBytes,
    waitingSince: first?.creation ?? (source.snapshots.length === 0 ? source.creation : null),
    unsnapshottedBytes: source.written,
    conflicts,
    resumePending: target?.resumeToken != null,
    backedUpAt: backedUpAt(source, target),
    level: OK,
    notes: [],
  };
  const raise = (level: Level, notes: string | readonly string[], text: string) => {
    if (level > status.level) status.level = level;
    status.notes.push(...(typeof notes === "string" ? [notes] : notes));
    if (level > OK) problems.push({ level, text: `${shown(subname)}: ${text}` });
  };
  if (conflicts.length > 0) {
    // one problem per dataset, as perfdata counts them: a recreated dataset has two kinds
    const kinds = conflicts.map((conflict) => conflict.kind);
    raise(
      CRITICAL,
      kinds.map((kind) => `conflict: ${kind}`),
      `${kinds.length > 1 ? "conflicts" : "conflict"} (${kinds.join(", ")}), backup skips it`,
    );
  }
  if (status.waitingSince !== null) {
    const age = now - status.waitingSince;
    const level = ageLevel(age, thresholds);
    if (source.snapshots.length === 0)
      raise(
        level,
        `no snapshot for ${formatAge(age)}`,
        `no snapshot since it was created ${formatAge(age)} ago`,
      );
    else
      raise(
        level,
        `behind ${formatAge(age)}`,
        `${plural(status.lagSnapshots, "snapshot")} not on the target, the oldest for ${formatAge(age)}`,
      );
  }
  if (status.resumePending) status.notes.push("resume pending");
  return status;
}

/** a row for a dataset only on the target: nothing to lag behind, but its source is gone */
function sourceGone(
  subname: string,
  target: Dataset,
  now: number,
  problems: Problem[],
): DatasetStatus {
  problems.push({
    level: WARNING,
    text: `${shown(subname)}: only on the target, the source has no such dataset: restore it from the backup, or if it was removed on purpose add it to ignore`,
  });
  return {
    subname,
    source: null,
    target: newest(target, now),
    exists: { source: false, target: true },
    lagSnapshots: 0,
    lagBytes: 0,
    waitingSince: null,
    unsnapshottedBytes: 0,
    conflicts: [],
    // nothing can resume it without its source
    resumePending: false,
    backedUpAt: null,
    level: WARNING,
    notes: ["source gone"],
  };
}

/** the whole configuration's status: every dataset, the last run, one level */
export function statusReport(input: StatusInput): StatusReport {
  const { now, thresholds, state } = input;
  const problems: Problem[] = [];
  /** one row per dataset, those only on the target included */
  const datasets: DatasetStatus[] = [];
  if (input.source.datasets.length === 0) {
    problems.push({
      level: CRITICAL,
      text: `source root ${input.source.root} does not exist${input.sourceHost ? ` on ${input.sourceHost}` : ""}: check source.zpool and source.prefix`,
    });
  }
  for (const pair of pairDatasets(input.source, input.target, input.config)) {
    if (pair.excluded !== null) continue; // left out of backups on purpose: not watched
    if (pair.source === undefined) {
      // its source is gone: destroyed by mistake (restore it) or on purpose (then say so);
      // without the source root at all, that one CRITICAL says it for every dataset
      if (input.source.datasets.length > 0 && pair.target !== undefined)
        datasets.push(sourceGone(pair.subname, pair.target, now, problems));
      continue;
    }
    datasets.push(datasetStatus(pair.subname, pair.source, pair.target, input, problems));
  }

  const lastRun = state?.lastRun ?? null;
  const lastSuccess = state?.lastSuccess ?? null;
  const ago = (iso: string) => formatAge(secondsSince(now, iso));
  if (input.stateProblem) problems.push({ level: UNKNOWN, text: input.stateProblem });
  else if (lastRun === null)
    problems.push({
      level: WARNING,
      text: `no run recorded in ${input.stateFile} (no snap or backup has run as this user, or ABGLEICH_STATE_DIR differs)`,
    });
  else {
    if (lastRun.result !== "ok")
      problems.push({
        level: WARNING,
        text: `last run (${lastRun.stages.join(", ") || "no stage"}) ${lastRun.result} ${ago(lastRun.finishedAt)} ago${lastRun.error ? `: ${lastRun.error}` : ""}`,
      });
    // a record from the future (the clock went back since) says nothing about freshness: it
    // would read "0s ago" until the clock caught up, however long the timer has been dead
    const future = [lastRun, lastSuccess].find(
      (record) => record !== null && epochSeconds(record.finishedAt) > now + FUTURE_SLACK,
    );
    if (future)
      problems.push({
        level: WARNING,
        text: `the state file dates a run ${future.finishedAt}, after now: this machine's clock went back (or the file came from another); the next run's record replaces it`,
      });
    if (lastSuccess === null)
      problems.push({ level: WARNING, text: "no successful run recorded yet" });
    else {
      const age = secondsSince(now, lastSuccess.finishedAt);
      const level = ageLevel(age, thresholds);
      if (level > OK) problems.push({ level, text: `no successful run for ${formatAge(age)}` });
    }
  }

  /** the datasets backed up: those with a source */
  const watched = datasets.filter((d) => d.exists.source);
  if (watched.length > 0 && input.target.datasets.length === 0) {
    // every watched dataset is behind then, each a problem of its own: this says why (a first
    // backup to come, or a wrong name), first among the worst of them, so the first line has it
    const made = input.config.includeRoot
      ? "no backup there yet"
      : "create it (backup does not, with include_root: no)";
    problems.unshift({
      level: Math.max(WARNING, ...watched.map((d) => d.level)) as Level,
      text: `target root ${input.target.root} does not exist${input.targetHost ? ` on ${input.targetHost}` : ""}: ${made}, or check target.zpool and target.prefix`,
    });
  }

  // the worst first, so the first line names what matters
  problems.sort((a, b) => b.level - a.level);
  const level: Level = problems[0]?.level ?? OK;
  const newestBackup = watched.reduce<number | null>(
    (max, d) =>
      d.backedUpAt !== null && (max === null || d.backedUpAt > max) ? d.backedUpAt : max,
    null,
  );
  const context = [
    plural(watched.length, "dataset"),
    newestBackup === null ? "no backup yet" : `newest backup ${formatAge(now - newestBackup)} ago`,
  ];
  if (lastRun !== null && lastRun.result === "ok")
    context.push(`last run ok ${ago(lastRun.finishedAt)} ago`);
  const SHOWN = 3;
  const named = problems.slice(0, SHOWN).map((p) => p.text);
  if (problems.length > SHOWN) named.push(`${problems.length - SHOWN} more`);
  const summary = [...named, context.join(", ")].join("; ");

  const lagSnapshots = datasets.reduce((sum, d) => sum + d.lagSnapshots, 0);
  const lagBytes = datasets.reduce((sum, d) => sum + d.lagBytes, 0);
  const waiting = datasets.flatMap((d) => (d.waitingSince === null ? [] : [now - d.waitingSince]));
  const limits = `${thresholds.warn};${thresholds.crit};0`;
  const perf = [
    `datasets=${watched.length}`,
    `lag_snapshots=${lagSnapshots}`,
    `lag_bytes=${lagBytes}B`,
    `behind=${Math.max(0, ...waiting)}s;${limits}`,
    `conflicts=${datasets.filter((d) => d.conflicts.length > 0).length}`,
    `resume_pending=${datasets.filter((d) => d.resumePending).length}`,
  ];
  if (lastSuccess !== null)
    perf.push(`last_success_age=${secondsSince(now, lastSuccess.finishedAt)}s;${limits}`);

  return {
    level,
    summary,
    perfdata: perf.join(" "),
    checkedAt: now,
    thresholds,
    datasets,
    problems,
    lastRun,
    lastSuccess,
    stateFile: input.stateFile,
    newestBackup,
  };
}
