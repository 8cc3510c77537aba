// Retention: which of abgleich's own snapshots one side keeps, in the buckets sanoid and zrepl
// users know. `latest` keeps the newest N; each period rule keeps, for each of the last K hours,
// days, ISO weeks, months or years that have a snapshot, the newest snapshot of that period. A
// snapshot kept by any rule stays. Time is the snapshot's `creation`, counted in local time, or in
// UTC when the namer names in UTC. The safety rules come first and are not rules one can turn off:
// the newest common snapshot, the newest `keep_snapshots` common ones and every unsent snapshot
// stay on the source; the newest common one and everything the source still has stay on the
// target (cleanup source could otherwise never free it: it destroys only what the target holds).
// Pure: snapshot lists in, a verdict per snapshot out; cleanup.ts turns verdicts into actions.

import type { RetentionRules } from "../config/types.ts";
import type { Side } from "../zfs/model.ts";
import type { RetentionReport } from "./types.ts";

export const PERIODS = ["hourly", "daily", "weekly", "monthly", "yearly"] as const;
export type Period = (typeof PERIODS)[number];

/** what a rule needs of a snapshot: its name and when it was taken (seconds since the epoch) */
export interface Dated {
  name: string;
  creation: number;
}

const two = (n: number) => String(n).padStart(2, "0");
const DAY_MS = 86_400_000;

/** ISO 8601 week of a calendar date: weeks start on Monday; week 1 holds the year's first Thursday */
function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const date = Date.UTC(year, month, day);
  const weekday = (new Date(date).getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const thursday = new Date(date + (3 - weekday) * DAY_MS);
  const weekYear = thursday.getUTCFullYear();
  const week = 1 + Math.floor((thursday.getTime() - Date.UTC(weekYear, 0, 1)) / (7 * DAY_MS));
  return { year: weekYear, week };
}

/** the period `creation` falls in, as the label the plan shows (`2026-11-28`, `2026-W48`, …) */
export function periodOf(period: Period, creation: number, utc: boolean): string {
  const at = new Date(creation * 1000);
  const year = utc ? at.getUTCFullYear() : at.getFullYear();
  const month = utc ? at.getUTCMonth() : at.getMonth();
  const day = utc ? at.getUTCDate() : at.getDate();
  const ymd = `${String(year).padStart(4, "0")}-${two(month + 1)}-${two(day)}`;
  switch (period) {
    case "hourly":
      return `${ymd} ${two(utc ? at.getUTCHours() : at.getHours())}:00`;
    case "daily":
      return ymd;
    case "weekly": {
      const iso = isoWeek(year, month, day);
      return `${String(iso.year).padStart(4, "0")}-W${two(iso.week)}`;
    }
    case "monthly":
      return ymd.slice(0, 7);
    case "yearly":
      return ymd.slice(0, 4);
  }
}

/**
 * The snapshots `rules` keep, by name, each with the rules that keep it (`latest`,
 * `daily 2026-11-28`, …). `snapshots` are one side's own snapshots, oldest first; "newest" means
 * the latest `creation`, and of equal ones the later in the list.
 */
export function keptByRules(
  snapshots: readonly Dated[],
  rules: RetentionRules,
  utc: boolean,
): Map<string, string[]> {
  const newestFirst = snapshots
    .map((snapshot, index) => ({ snapshot, index }))
    .sort((a, b) => b.snapshot.creation - a.snapshot.creation || b.index - a.index)
    .map(({ snapshot }) => snapshot);
  const kept = new Map<string, string[]>();
  const keep = (name: string, reason: string) => {
    const reasons = kept.get(name);
    if (reasons === undefined) kept.set(name, [reason]);
    else reasons.push(reason);
  };
  for (const snapshot of newestFirst.slice(0, rules.latest)) keep(snapshot.name, "latest");
  for (const period of PERIODS) {
    const count = rules[period];
    if (count <= 0) continue;
    // newest first, so the first snapshot seen of a period is its newest, and periods come in
    // order (a later period never holds an older snapshot)
    const seen = new Set<string>();
    for (const snapshot of newestFirst) {
      const label = periodOf(period, snapshot.creation, utc);
      if (seen.has(label)) continue;
      seen.add(label);
      keep(snapshot.name, `${period} ${label}`);
      if (seen.size === count) break;
    }
  }
  return kept;
}

/** one snapshot's fate: `candidate` ones go unless cleanup finds them foreign or held */
export interface Verdict {
  name: string;
  /** no rule and no safety rule keeps it */
  candidate: boolean;
  /** why it stays (empty for a candidate) */
  reasons: string[];
}

export interface RetentionInput {
  side: Side;
  /** the side's snapshots of one dataset, oldest first */
  snapshots: readonly Dated[];
  /** names of those that the other side holds too (same guid) */
  common: ReadonlySet<string>;
  /** the newest of `common`, in the snapshot order */
  newestCommon: string;
  /** `keep_snapshots`: how many of the newest common snapshots the source keeps in any case */
  keepSnapshots: number;
  rules: RetentionRules;
  isOwn: (name: string) => boolean;
  utc: boolean;
}

/** a verdict for each snapshot of one dataset, oldest first */
export function decideRetention(input: RetentionInput): Verdict[] {
  const { side, snapshots, common, newestCommon, rules, isOwn, utc } = input;
  const own = snapshots.filter((snapshot) => isOwn(snapshot.name));
  const byRules = keptByRules(own, rules, utc);
  const commonOrder = snapshots.filter((snapshot) => common.has(snapshot.name));
  // keep_snapshots is at least 1 by config; clamp anyway so the newest common one always stays
  const floor = new Set(
    commonOrder.slice(-Math.max(1, input.keepSnapshots)).map((snapshot) => snapshot.name),
  );
  const newestIndex = snapshots.findIndex((snapshot) => snapshot.name === newestCommon);

  return snapshots.map((snapshot, index): Verdict => {
    const { name } = snapshot;
    const safety = (reason: string): Verdict => ({ name, candidate: false, reasons: [reason] });
    if (name === newestCommon) return safety("newest common");
    if (side === "source") {
      if (!common.has(name)) return safety("not on the target");
      if (floor.has(name)) return safety("keep_snapshots");
    } else {
      if (index > newestIndex) return safety("newer than the newest common");
      if (common.has(name)) return safety("still on the source");
    }
    const reasons = byRules.get(name);
    if (reasons !== undefined) return { name, candidate: false, reasons };
    return { name, candidate: true, reasons: [] };
  });
}

/** the rule a reason names, without its period: `daily 2026-11-28` → `daily` */
export function ruleOf(reason: string): string {
  const space = reason.indexOf(" ");
  const word = space < 0 ? reason : reason.slice(0, space);
  return (PERIODS as readonly string[]).includes(word) ? word : reason;
}

/** safety first, then the rules from the finest bucket to the coarsest */
const COUNT_ORDER: readonly string[] = [
  "newest common",
  "keep_snapshots",
  "not on the target",
  "newer than the newest common",
  "still on the source",
  "latest",
  ...PERIODS,
];

/** `newest common 1, latest 3, daily 7, …`: how many snapshots each rule keeps (one may count under several) */
export function keptCounts(report: RetentionReport): string {
  const counts = new Map<string, number>();
  for (const snapshot of report.snapshots) {
    if (!snapshot.kept) continue;
    for (const reason of snapshot.reasons) {
      const rule = ruleOf(reason);
      counts.set(rule, (counts.get(rule) ?? 0) + 1);
    }
  }
  const rank = (rule: string) => {
    const index = COUNT_ORDER.indexOf(rule);
    return index < 0 ? COUNT_ORDER.length : index;
  };
  return [...counts]
    .sort(([a], [b]) => rank(a) - rank(b))
    .map(([rule, count]) => `${rule} ${count}`)
    .join(", ");
}
