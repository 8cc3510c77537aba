// Retention: properties over generated histories (random creation times over months, random
// common, unsent and target-only sets, foreign and held snapshots) with oracles written from the
// rules themselves, plus examples for both sides. Periods are UTC here (a namer that names in
// UTC), so the oracle can count hours and days as plain divisions of the epoch seconds.

import { afterEach, describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { RetentionRules } from "../../../lib/config/types.ts";
import { planCleanup } from "../../../lib/plan/cleanup.ts";
import { defaultNamer, type Namer } from "../../../lib/plan/naming.ts";
import { keptByRules, PERIODS, type Period, periodOf } from "../../../lib/plan/retention.ts";
import type { DestroyAction, Plan, RetentionReport } from "../../../lib/plan/types.ts";
import type { Dataset, Inventory, Side, Snapshot } from "../../../lib/zfs/model.ts";
import { templateNamer } from "../../../plugins/naming.ts";
import { config, dst, inventory, snap, src } from "./fixtures.ts";
import { scenario } from "./generate.ts";

const RUNS = { numRuns: 300 };
const HOUR = 3600;
const DAY = 86_400;
const utcNamer: Namer = { ...defaultNamer({ digits: 6, suffix: "" }), utc: true };
const ownName = (index: number) => `20260101${String(index).padStart(6, "0")}`;
const NO_RULES: RetentionRules = {
  latest: 0,
  hourly: 0,
  daily: 0,
  weekly: 0,
  monthly: 0,
  yearly: 0,
};

// ---- the oracle: periods and buckets from the definitions, not from retention.ts ----

/** an id per UTC period; 1970-01-01 was a Thursday, so `days + 3` puts week starts on Mondays */
function periodId(period: Period, creation: number): string {
  const days = Math.floor(creation / DAY);
  const iso = new Date(creation * 1000).toISOString();
  switch (period) {
    case "hourly":
      return String(Math.floor(creation / HOUR));
    case "daily":
      return String(days);
    case "weekly":
      return String(Math.floor((days + 3) / 7));
    case "monthly":
      return iso.slice(0, 7);
    case "yearly":
      return iso.slice(0, 4);
  }
}

/** later creation is newer; of equal ones, the later in the list */
const newer = (list: readonly Snapshot[]) => (a: Snapshot, b: Snapshot) =>
  a.creation - b.creation || list.indexOf(a) - list.indexOf(b);

/** per rule, the names it keeps among `own` (oldest first) */
function oracle(own: readonly Snapshot[], rules: RetentionRules): Map<string, Set<string>> {
  const order = newer(own);
  const newestFirst = [...own].sort((a, b) => order(b, a));
  const kept = new Map<string, Set<string>>();
  kept.set("latest", new Set(newestFirst.slice(0, rules.latest).map((s) => s.name)));
  for (const period of PERIODS) {
    const groups = new Map<string, Snapshot[]>();
    for (const snapshot of own) {
      const id = periodId(period, snapshot.creation);
      groups.set(id, [...(groups.get(id) ?? []), snapshot]);
    }
    const newestOfEach = [...groups.values()].map(
      (members) => [...members].sort(order).at(-1) as Snapshot,
    );
    newestOfEach.sort((a, b) => order(b, a));
    kept.set(period, new Set(newestOfEach.slice(0, rules[period]).map((s) => s.name)));
  }
  return kept;
}

// ---- generated histories of one dataset ----

const gap = fc.oneof(
  { weight: 1, arbitrary: fc.constant(0) },
  // a clock set back: creation order is not always list (createtxg) order
  { weight: 1, arbitrary: fc.integer({ min: -2 * HOUR, max: -1 }) },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: HOUR }) },
  { weight: 4, arbitrary: fc.integer({ min: HOUR, max: DAY }) },
  { weight: 3, arbitrary: fc.integer({ min: DAY, max: 20 * DAY }) },
);
const entry = fc.record({
  gap,
  presence: fc.constantFrom("both", "both", "source", "target"),
  foreign: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, fc.constant(true)),
  held: fc.oneof({ weight: 14, arbitrary: fc.constant(false) }, fc.constant(true)),
});
const rules: fc.Arbitrary<RetentionRules> = fc.record({
  latest: fc.integer({ min: 0, max: 4 }),
  hourly: fc.integer({ min: 0, max: 6 }),
  daily: fc.integer({ min: 0, max: 8 }),
  weekly: fc.integer({ min: 0, max: 5 }),
  monthly: fc.integer({ min: 0, max: 4 }),
  yearly: fc.integer({ min: 0, max: 2 }),
});

interface History {
  source: Inventory;
  target: Inventory;
  side: Side;
  rules: RetentionRules;
  keepSnapshots: number;
}

const historyArb: fc.Arbitrary<History> = fc
  .record({
    start: fc.integer({ min: Date.UTC(2020, 0, 1) / 1000, max: Date.UTC(2027, 0, 1) / 1000 }),
    entries: fc.array(entry, { minLength: 1, maxLength: 60 }),
    common: fc.nat(),
    side: fc.constantFrom("source" as const, "target" as const),
    rules,
    keepSnapshots: fc.integer({ min: 1, max: 4 }),
  })
  .map(({ start, entries, common, side, rules, keepSnapshots }) => {
    const presence = entries.map((e) => e.presence);
    presence[common % presence.length] = "both"; // at least one common snapshot
    // nothing on the target after the newest common one (that is a conflict, tested elsewhere)
    const newestBoth = presence.lastIndexOf("both");
    for (let i = newestBoth + 1; i < presence.length; i++) presence[i] = "source";
    let creation = start;
    const sourceSnaps: Snapshot[] = [];
    const targetSnaps: Snapshot[] = [];
    entries.forEach((e, index) => {
      creation += e.gap;
      const snapshot = snap(e.foreign ? `manual-${index}` : ownName(index), {
        createtxg: 10 + index,
        creation,
        ...(e.held ? { userrefs: 1, holds: ["other-tool"] } : {}),
      });
      if (presence[index] !== "target") sourceSnaps.push(snapshot);
      if (presence[index] !== "source") targetSnaps.push(snapshot);
    });
    return {
      source: inventory("source", [src("a", sourceSnaps)]),
      target: inventory("target", [dst("a", targetSnaps)]),
      side,
      rules,
      keepSnapshots,
    };
  });

function plan(h: History): Plan<DestroyAction> {
  const retention = { source: null, target: null, [h.side]: h.rules };
  return planCleanup(
    h.source,
    h.target,
    config({ keepSnapshots: h.keepSnapshots, retention }),
    h.side,
    utcNamer,
  );
}

const datasetOf = (h: History): Dataset =>
  (h.side === "source" ? h.source : h.target).datasets[0] as Dataset;
const destroyed = (p: Plan<DestroyAction>) => new Set(p.actions.flatMap((a) => a.snapshots));

/** what the safety rules keep on the history's side, written from the rules */
function safetyKept(h: History): Set<string> {
  const source = h.source.datasets[0] as Dataset;
  const target = h.target.datasets[0] as Dataset;
  const onTarget = new Set(target.snapshots.map((s) => s.guid));
  const onSource = new Set(source.snapshots.map((s) => s.guid));
  const common = source.snapshots.filter((s) => onTarget.has(s.guid));
  const newestCommon = common.at(-1) as Snapshot;
  const kept = new Set<string>([newestCommon.name]);
  if (h.side === "source") {
    for (const s of source.snapshots) if (!onTarget.has(s.guid)) kept.add(s.name);
    for (const s of common.slice(-h.keepSnapshots)) kept.add(s.name);
  } else {
    const newestIndex = target.snapshots.indexOf(
      target.snapshots.find((s) => s.guid === newestCommon.guid) as Snapshot,
    );
    target.snapshots.forEach((s, i) => {
      if (onSource.has(s.guid) || i > newestIndex) kept.add(s.name);
    });
  }
  for (const s of datasetOf(h).snapshots)
    if (!utcNamer.isOwn(s.name) || s.userrefs > 0) kept.add(s.name);
  return kept;
}

/** the plan applied: the destroyed snapshots gone from the side's dataset */
function applied(h: History, p: Plan<DestroyAction>): History {
  const gone = destroyed(p);
  const prune = (inv: Inventory): Inventory => ({
    ...inv,
    datasets: inv.datasets.map((d) => ({
      ...d,
      snapshots: d.snapshots.filter((s) => !gone.has(s.name)),
    })),
  });
  return h.side === "source"
    ? { ...h, source: prune(h.source) }
    : { ...h, target: prune(h.target) };
}

describe("retention properties", () => {
  test("bucket semantics: each kept-by-rule snapshot is the newest of its period, among the K newest periods, and all of those are kept", () => {
    fc.assert(
      fc.property(historyArb, (h) => {
        const p = plan(h);
        const dataset = datasetOf(h);
        const own = dataset.snapshots.filter((s) => utcNamer.isOwn(s.name));
        const expected = oracle(own, h.rules);
        const report = p.retention?.[0] as RetentionReport;
        expect(report.snapshots.map((s) => s.name)).toEqual(dataset.snapshots.map((s) => s.name));
        const gone = destroyed(p);
        for (const verdict of report.snapshots) {
          expect(verdict.kept).toBe(!gone.has(verdict.name));
          for (const reason of verdict.reasons) {
            const [rule, ...label] = reason.split(" ");
            if (rule === "latest" || PERIODS.includes(rule as Period)) {
              // a rule's reason is given exactly where the oracle's rule keeps the snapshot
              expect(expected.get(rule as string)?.has(verdict.name)).toBe(true);
              if (rule !== "latest") {
                const s = own.find((x) => x.name === verdict.name) as Snapshot;
                expect(label.join(" ")).toBe(periodOf(rule as Period, s.creation, true));
              }
            }
          }
        }
        for (const [, names] of expected)
          for (const name of names) expect(gone.has(name)).toBe(false);
      }),
      RUNS,
    );
  });

  test("safety and completeness: destroys exactly the own, unheld snapshots that neither a rule nor a safety rule keeps", () => {
    fc.assert(
      fc.property(historyArb, (h) => {
        const p = plan(h);
        const dataset = datasetOf(h);
        const own = dataset.snapshots.filter((s) => utcNamer.isOwn(s.name));
        const byRules = new Set([...oracle(own, h.rules).values()].flatMap((set) => [...set]));
        const safe = safetyKept(h);
        const expectedGone = dataset.snapshots
          .filter((s) => !safe.has(s.name) && !byRules.has(s.name))
          .map((s) => s.name);
        expect([...destroyed(p)]).toEqual(expectedGone);
        for (const action of p.actions) {
          expect(action.side).toBe(h.side);
          expect(action.dataset).toBe(dataset.name);
        }
        if (h.side === "source") {
          const target = h.target.datasets[0] as Dataset;
          const common = dataset.snapshots.filter((s) =>
            target.snapshots.some((t) => t.guid === s.guid),
          );
          const keptCommon = common.filter((s) => !destroyed(p).has(s.name));
          expect(keptCommon.length).toBeGreaterThanOrEqual(
            Math.min(common.length, h.keepSnapshots),
          );
        }
      }),
      RUNS,
    );
  });

  test("idempotence: planning again on the state after the plan destroys nothing", () => {
    fc.assert(
      fc.property(historyArb, (h) => {
        const first = plan(h);
        const second = plan(applied(h, first));
        expect(second.actions).toEqual([]);
      }),
      RUNS,
    );
  });

  test("on the varied trees of the other properties (conflicts, cut receives, bookmarks): never an unsent, newest common, foreign or held snapshot", () => {
    fc.assert(
      fc.property(
        scenario,
        fc.constantFrom("source" as const, "target" as const),
        rules,
        rules,
        (s, side, sourceRules, targetRules) => {
          const namer = defaultNamer({ digits: 2, suffix: "" });
          const cfg = { ...s.config, retention: { source: sourceRules, target: targetRules } };
          const p = planCleanup(s.source, s.target, cfg, side, namer);
          for (const action of p.actions) {
            const source = s.source.datasets.find((d) => d.subname === action.subname);
            const target = s.target.datasets.find((d) => d.subname === action.subname);
            if (source === undefined || target === undefined) throw new Error("no pair");
            const onTarget = new Map(target.snapshots.map((x) => [x.name, x.guid]));
            const onSource = new Map(source.snapshots.map((x) => [x.name, x.guid]));
            const common = source.snapshots.filter((x) => onTarget.get(x.name) === x.guid);
            expect(common.length).toBeGreaterThan(0);
            const own = side === "source" ? source : target;
            for (const name of action.snapshots) {
              const snapshot = own.snapshots.find((x) => x.name === name) as Snapshot;
              expect(name).not.toBe(common.at(-1)?.name);
              expect(namer.isOwn(name)).toBe(true);
              expect(snapshot.userrefs).toBe(0);
              if (side === "source") expect(onTarget.get(name)).toBe(snapshot.guid);
              else expect(onSource.get(name)).not.toBe(snapshot.guid);
            }
            if (side === "source") {
              const kept = common.filter((x) => !action.snapshots.includes(x.name));
              expect(kept.length).toBeGreaterThanOrEqual(
                Math.min(common.length, cfg.keepSnapshots),
              );
            }
          }
        },
      ),
      RUNS,
    );
  });
});

// ---- examples ----

const at = (iso: string) => Date.parse(iso) / 1000;

describe("periods", () => {
  test("labels: hour, day, ISO week (across a year's end), month, year", () => {
    const t = at("2026-11-28T14:35:00Z");
    expect(periodOf("hourly", t, true)).toBe("2026-11-28 14:00");
    expect(periodOf("daily", t, true)).toBe("2026-11-28");
    expect(periodOf("weekly", t, true)).toBe("2026-W48");
    expect(periodOf("monthly", t, true)).toBe("2026-11");
    expect(periodOf("yearly", t, true)).toBe("2026");
    expect(periodOf("weekly", at("2027-01-01T12:00:00Z"), true)).toBe("2026-W53");
    expect(periodOf("weekly", at("2024-12-30T12:00:00Z"), true)).toBe("2025-W01");
    expect(periodOf("weekly", at("2026-01-01T12:00:00Z"), true)).toBe("2026-W01");
  });

  describe("local time", () => {
    const tz = process.env.TZ;
    afterEach(() => {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    });

    test("the naming plugin tells retention its clock", () => {
      const settings = { template: "%Y%m%d%H%M%S", digits: 2, suffix: "", host: "h" };
      expect(templateNamer({ ...settings, utc: true }).utc).toBe(true);
      expect(templateNamer({ ...settings, utc: false }).utc).toBe(false);
      expect(defaultNamer({ digits: 2, suffix: "" }).utc).toBeUndefined();
    });

    test("days are local days unless the namer names in UTC", () => {
      process.env.TZ = "Europe/Berlin";
      // 22:30 and 23:30 UTC: one UTC day, but 23:30 and 00:30 in Berlin
      const list = [
        { name: "late", creation: at("2026-11-28T22:30:00Z") },
        { name: "later", creation: at("2026-11-28T23:30:00Z") },
      ];
      const daily = { ...NO_RULES, daily: 2 };
      expect([...keptByRules(list, daily, false).keys()].sort()).toEqual(["late", "later"]);
      expect([...keptByRules(list, daily, true).keys()]).toEqual(["later"]);
    });
  });
});

describe("cleanup source with retention", () => {
  // hourly snapshots over three days, all sent; the newest one not yet
  const times = [
    "2026-11-26T08:00:00Z",
    "2026-11-26T20:00:00Z",
    "2026-11-27T08:00:00Z",
    "2026-11-27T20:00:00Z",
    "2026-11-28T08:00:00Z",
    "2026-11-28T20:00:00Z",
  ];
  const snaps = times.map((iso, i) => snap(ownName(i), { createtxg: 10 + i, creation: at(iso) }));
  const source = inventory("source", [src("a", snaps)]);
  const target = inventory("target", [dst("a", snaps.slice(0, 5))]);

  test("daily 2 keeps the newest of the last two days; the unsent one and the newest common stay", () => {
    const cfg = config({ retention: { source: { ...NO_RULES, daily: 2 }, target: null } });
    const p = planCleanup(source, target, cfg, "source", utcNamer);
    expect(p.actions.map((a) => a.snapshots)).toEqual([[ownName(0), ownName(1), ownName(2)]]);
    expect(p.retention?.[0]?.snapshots).toEqual([
      { name: ownName(0), kept: false, reasons: ["outside retention"] },
      { name: ownName(1), kept: false, reasons: ["outside retention"] },
      { name: ownName(2), kept: false, reasons: ["outside retention"] },
      { name: ownName(3), kept: true, reasons: ["daily 2026-11-27"] },
      { name: ownName(4), kept: true, reasons: ["newest common"] },
      { name: ownName(5), kept: true, reasons: ["not on the target"] },
    ]);
  });

  test("keep_snapshots stays a floor under the rules", () => {
    const cfg = config({
      keepSnapshots: 3,
      retention: { source: { ...NO_RULES, latest: 1 }, target: null },
    });
    const p = planCleanup(source, target, cfg, "source", utcNamer);
    expect(p.actions.map((a) => a.snapshots)).toEqual([[ownName(0), ownName(1)]]);
    const reasons = p.retention?.[0]?.snapshots.map((s) => s.reasons[0]);
    expect(reasons).toEqual([
      "outside retention",
      "outside retention",
      "keep_snapshots",
      "keep_snapshots",
      "newest common",
      "not on the target",
    ]);
  });

  test("nothing outside retention: no action, and the skip says what was kept", () => {
    const cfg = config({ retention: { source: { ...NO_RULES, hourly: 24 }, target: null } });
    const p = planCleanup(source, target, cfg, "source", utcNamer);
    expect(p.actions).toEqual([]);
    expect(p.skipped).toEqual([
      {
        subname: "a",
        reason: "nothing outside retention (kept newest common 1, not on the target 1, hourly 4)",
      },
    ]);
  });
});

describe("cleanup target with retention", () => {
  // monthly backups kept on the target long after the source freed them
  const months = ["2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"];
  const snaps = months.flatMap((month, m) =>
    [5, 20].map((day, d) =>
      snap(ownName(m * 2 + d), {
        createtxg: 10 + m * 2 + d,
        creation: at(`${month}-${String(day).padStart(2, "0")}T12:00:00Z`),
      }),
    ),
  );
  const foreign = snap("manual", { createtxg: 9, creation: at("2026-05-01T00:00:00Z") });
  const target = inventory("target", [dst("a", [foreign, ...snaps])]);
  // the source has freed everything but the last two
  const source = inventory("source", [src("a", snaps.slice(-2))]);

  test("monthly 3 keeps the newest of the last three months; what the source still has and foreign ones stay", () => {
    const cfg = config({ retention: { source: null, target: { ...NO_RULES, monthly: 3 } } });
    const p = planCleanup(source, target, cfg, "target", utcNamer);
    expect(p.actions.map((a) => [a.side, a.snapshots])).toEqual([
      ["target", [0, 1, 2, 3, 4, 5, 6, 8].map(ownName)],
    ]);
    const verdicts = new Map(p.retention?.[0]?.snapshots.map((s) => [s.name, s.reasons]));
    expect(verdicts.get("manual")).toEqual(["not abgleich's own"]);
    expect(verdicts.get(ownName(7))).toEqual(["monthly 2026-09"]);
    expect(verdicts.get(ownName(9))).toEqual(["monthly 2026-10"]);
    expect(verdicts.get(ownName(10))).toEqual(["still on the source"]);
    expect(verdicts.get(ownName(11))).toEqual(["newest common"]);
  });

  test("retention.target replaces keep_backlog: without rules for the target, -1 keeps all", () => {
    const keepAll = planCleanup(source, target, config(), "target", utcNamer);
    expect(keepAll.actions).toEqual([]);
    expect(keepAll.retention).toBeUndefined();
    const cfg = config({ retention: { source: null, target: { ...NO_RULES, latest: 4 } } });
    const p = planCleanup(source, target, cfg, "target", utcNamer);
    expect(p.actions[0]?.snapshots).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map(ownName));
  });
});
