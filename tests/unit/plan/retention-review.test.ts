// Retention under attack: histories built to make cleanup with retention rules break a safety
// rule (rule 1, rule 2, foreign snapshots, keep_snapshots, what the source still has) or plan
// more on a second run. Beyond retention.test.ts: local time zones with DST changes (one with a
// half-hour shift), holds by abgleich's own tag (released, then destroyed) next to others',
// a target that ends at a bookmark base (no conflict, snapshots after the newest common one),
// a foreign newest common snapshot, and the engine's guard on the planner's output and on
// destroys the planner must never produce.

import { afterEach, describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { Config, RetentionRules } from "../../../lib/config/types.ts";
import { planViolations } from "../../../lib/engine/guard.ts";
import { createHooks } from "../../../lib/engine/hooks.ts";
import { checkOptions } from "../../../lib/engine/plugins.ts";
import { Run } from "../../../lib/engine/runner.ts";
import { cleanupStage } from "../../../lib/engine/stages/cleanup.ts";
import { holdTags } from "../../../lib/plan/chain.ts";
import { planCleanup } from "../../../lib/plan/cleanup.ts";
import { defaultNamer, type Namer } from "../../../lib/plan/naming.ts";
import { compareSnapshots } from "../../../lib/plan/pairs.ts";
import type { DestroyAction, Plan } from "../../../lib/plan/types.ts";
import type { Bookmark, Dataset, Inventory, Side, Snapshot } from "../../../lib/zfs/model.ts";
import naming from "../../../plugins/naming.ts";
import { memoryHost } from "../../helpers/memory-host.ts";
import { config, dst, inventory, snap, src } from "./fixtures.ts";

const RUNS = { numRuns: 200 };
const MINUTE = 60;
const HOUR = 3600;
const DAY = 86_400;
const NO_RULES: RetentionRules = {
  latest: 0,
  hourly: 0,
  daily: 0,
  weekly: 0,
  monthly: 0,
  yearly: 0,
};
const localNamer: Namer = defaultNamer({ digits: 6, suffix: "" });
const utcNamer: Namer = { ...localNamer, utc: true };
const ownName = (index: number) => `20260101${String(index).padStart(6, "0")}`;
const SOURCE_TAG = holdTags(config()).source;
const TARGET_TAG = holdTags(config()).target;

const tz = process.env.TZ;
afterEach(() => {
  if (tz === undefined) delete process.env.TZ;
  else process.env.TZ = tz;
});

// ---- adversarial histories of one dataset ----

/** instants next to DST changes (both directions, a half-hour one) and a year's end */
const STARTS = [
  "2026-03-29T00:10:00Z", // Europe: spring forward at 01:00Z
  "2026-10-24T22:40:00Z", // Europe: fall back at 01:00Z
  "2026-11-01T04:30:00Z", // New York: fall back at 06:00Z
  "2026-04-04T13:50:00Z", // Lord Howe: back half an hour at 15:00Z
  "2026-12-27T20:00:00Z", // ISO week 53 and the year's end
].map((iso) => Date.parse(iso) / 1000);
const ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"];

const gap = fc.oneof(
  { weight: 2, arbitrary: fc.constant(0) }, // equal creation times
  { weight: 1, arbitrary: fc.integer({ min: -3 * HOUR, max: -1 }) }, // a clock set back
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 40 * MINUTE }) },
  { weight: 3, arbitrary: fc.integer({ min: 40 * MINUTE, max: DAY }) },
  { weight: 2, arbitrary: fc.integer({ min: DAY, max: 40 * DAY }) },
);
const entry = fc.record({
  gap,
  presence: fc.constantFrom("both", "both", "source", "target"),
  foreign: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, fc.constant(true)),
  hold: fc.constantFrom("none", "none", "none", "none", "none", "own", "other", "both"),
});
const rulesArb: fc.Arbitrary<RetentionRules> = fc.record({
  latest: fc.integer({ min: 0, max: 3 }),
  hourly: fc.integer({ min: 0, max: 5 }),
  daily: fc.integer({ min: 0, max: 4 }),
  weekly: fc.integer({ min: 0, max: 3 }),
  monthly: fc.integer({ min: 0, max: 3 }),
  yearly: fc.integer({ min: 0, max: 2 }),
});

interface Attack {
  source: Inventory;
  target: Inventory;
  side: Side;
  rules: RetentionRules;
  keepSnapshots: number;
  zone: string;
  namer: Namer;
}

function holdsOf(kind: string, tag: string): Partial<Snapshot> {
  if (kind === "own") return { userrefs: 1, holds: [tag] };
  if (kind === "other") return { userrefs: 1, holds: ["syncoid"] };
  if (kind === "both") return { userrefs: 2, holds: [tag, "syncoid"] };
  return {};
}

const attackArb: fc.Arbitrary<Attack> = fc
  .record({
    start: fc.constantFrom(...STARTS),
    shift: fc.integer({ min: -2 * DAY, max: 2 * DAY }),
    entries: fc.array(entry, { minLength: 1, maxLength: 40 }),
    common: fc.nat(),
    /** target snapshots after the newest common one, the last a bookmark base on the source */
    bookmarked: fc.constantFrom(0, 0, 0, 1, 2),
    side: fc.constantFrom("source" as const, "target" as const),
    rules: fc.oneof(
      { weight: 1, arbitrary: fc.constant(NO_RULES) },
      { weight: 5, arbitrary: rulesArb },
    ),
    keepSnapshots: fc.integer({ min: 1, max: 4 }),
    zone: fc.constantFrom(...ZONES),
    utc: fc.boolean(),
  })
  .map(({ start, shift, entries, common, bookmarked, side, rules, keepSnapshots, zone, utc }) => {
    const presence = entries.map((e) => e.presence);
    presence[common % presence.length] = "both";
    const newestBoth = presence.lastIndexOf("both");
    for (let i = newestBoth + 1; i < presence.length; i++) presence[i] = "source";
    let creation = start + shift;
    const sourceSnaps: Snapshot[] = [];
    const targetSnaps: Snapshot[] = [];
    const made = (index: number, foreign: boolean, hold: string, tag: string) =>
      snap(foreign ? `manual-${index}` : ownName(index), {
        createtxg: 10 + index,
        creation,
        ...holdsOf(hold, tag),
      });
    entries.forEach((e, index) => {
      creation += e.gap;
      if (presence[index] !== "target")
        sourceSnaps.push(made(index, e.foreign, e.hold, SOURCE_TAG));
      if (presence[index] !== "source")
        targetSnaps.push(made(index, e.foreign, e.hold, TARGET_TAG));
    });
    // the source sent these and destroyed them later, keeping a bookmark of the last: the
    // target ends there and the next incremental starts from the bookmark
    const bookmarks: Bookmark[] = [];
    const sourceNewer = sourceSnaps.filter((s) => s.createtxg > 10 + newestBoth);
    if (bookmarked > 0 && sourceNewer.length === 0) {
      for (let b = 0; b < bookmarked; b++) {
        creation += HOUR;
        const index = entries.length + b;
        targetSnaps.push(made(index, false, "none", TARGET_TAG));
        if (b === bookmarked - 1) {
          bookmarks.push({
            name: ownName(index),
            guid: `g-${ownName(index)}`,
            createtxg: 10 + index,
            creation,
          });
        }
      }
    }
    return {
      source: inventory("source", [src("a", sourceSnaps, { bookmarks })]),
      target: inventory("target", [dst("a", targetSnaps)]),
      side,
      rules,
      keepSnapshots,
      zone,
      namer: utc ? utcNamer : localNamer,
    };
  });

const cfgOf = (a: Attack): Config =>
  config({
    keepSnapshots: a.keepSnapshots,
    retention: { source: null, target: null, [a.side]: a.rules },
  });

function plan(a: Attack): Plan<DestroyAction> {
  process.env.TZ = a.zone;
  return planCleanup(a.source, a.target, cfgOf(a), a.side, a.namer);
}

const destroyed = (p: Plan<DestroyAction>) => p.actions.flatMap((action) => action.snapshots);

function applied(a: Attack, p: Plan<DestroyAction>): Attack {
  const gone = new Set(destroyed(p));
  const prune = (inv: Inventory): Inventory => ({
    ...inv,
    datasets: inv.datasets.map((d) => ({
      ...d,
      snapshots: d.snapshots.filter((s) => !gone.has(s.name)),
    })),
  });
  return a.side === "source"
    ? { ...a, source: prune(a.source) }
    : { ...a, target: prune(a.target) };
}

/** every rule a destroy of `names` would break, checked from the definitions */
function broken(a: Attack, names: readonly string[]): string[] {
  const source = a.source.datasets[0] as Dataset;
  const target = a.target.datasets[0] as Dataset;
  const mine = a.side === "source" ? source : target;
  const targetGuid = new Map(target.snapshots.map((s) => [s.name, s.guid]));
  const sourceGuid = new Map(source.snapshots.map((s) => [s.name, s.guid]));
  const common = source.snapshots.filter((s) => targetGuid.get(s.name) === s.guid);
  const newestCommon = common.at(-1)?.name;
  const out: string[] = [];
  const gone = new Set(names);
  for (const name of names) {
    const snapshot = mine.snapshots.find((s) => s.name === name);
    if (snapshot === undefined) out.push(`${name} does not exist`);
    if (name === newestCommon) out.push(`${name} is the newest common snapshot`);
    if (!a.namer.isOwn(name)) out.push(`${name} is not abgleich's own`);
    const tag = a.side === "source" ? SOURCE_TAG : TARGET_TAG;
    if (snapshot && snapshot.userrefs > 0 && !snapshot.holds?.every((h) => h === tag))
      out.push(`${name} is held by someone else`);
    if (a.side === "source" && targetGuid.get(name) !== snapshot?.guid)
      out.push(`${name} is not on the target`);
    if (a.side === "target") {
      if (sourceGuid.get(name) === snapshot?.guid) out.push(`${name} is still on the source`);
      const newestIndex = target.snapshots.findIndex((s) => s.name === newestCommon);
      if (target.snapshots.findIndex((s) => s.name === name) > newestIndex)
        out.push(`${name} is newer than the newest common snapshot`);
    }
  }
  if (a.side === "source") {
    const left = common.filter((s) => !gone.has(s.name)).length;
    if (left < Math.min(common.length, a.keepSnapshots))
      out.push(`only ${left} common snapshot(s) left, keep_snapshots ${a.keepSnapshots}`);
  }
  return out;
}

describe("retention under attack (local zones with DST, holds, bookmark bases, foreign snapshots)", () => {
  test("no destroy breaks a rule, and a second cleanup right after the first plans nothing", () => {
    fc.assert(
      fc.property(attackArb, (a) => {
        const first = plan(a);
        expect(first.conflicts).toEqual([]);
        expect(broken(a, destroyed(first))).toEqual([]);
        for (const action of first.actions) {
          expect(action.side).toBe(a.side);
          // only snapshots held by abgleich's own tag alone are released
          const mine = (a.side === "source" ? a.source : a.target).datasets[0] as Dataset;
          for (const name of action.release ?? []) {
            const held = mine.snapshots.find((s) => s.name === name) as Snapshot;
            expect(held.holds).toEqual([a.side === "source" ? SOURCE_TAG : TARGET_TAG]);
          }
        }
        const second = plan(applied(a, first));
        expect(second.actions).toEqual([]);
      }),
      RUNS,
    );
  });

  test("the guard passes the planner's destroys and refuses the ones the planner must never make", () => {
    fc.assert(
      fc.property(attackArb, (a) => {
        const p = plan(a);
        const check = (actions: DestroyAction[]) =>
          planViolations("cleanup", { ...p, actions }, a.source, a.target, a.side, a.namer.isOwn);
        expect(check(p.actions)).toEqual([]);
        const source = a.source.datasets[0] as Dataset;
        const target = a.target.datasets[0] as Dataset;
        const mine = a.side === "source" ? source : target;
        const destroy = (name: string): DestroyAction[] => [
          {
            kind: "destroy",
            side: a.side,
            subname: "a",
            dataset: mine.name,
            snapshots: [name],
            used: 0,
          },
        ];
        const newest = compareSnapshots(source, target).newestCommon?.source.name as string;
        expect(check(destroy(newest)).join("; ")).toContain("newest common snapshot (rule 2)");
        for (const s of mine.snapshots) {
          if (!a.namer.isOwn(s.name))
            expect(check(destroy(s.name)).join("; ")).toContain("not one of abgleich's own");
          const onTarget = target.snapshots.some((t) => t.name === s.name && t.guid === s.guid);
          if (a.side === "source" && !onTarget)
            expect(check(destroy(s.name)).join("; ")).toContain("not on the target (rule 1)");
        }
      }),
      RUNS,
    );
  });

  test("an empty source section (every count 0) destroys exactly what cleanup without retention does", () => {
    fc.assert(
      fc.property(attackArb, (a) => {
        const attack = { ...a, side: "source" as const, rules: NO_RULES };
        const withRules = plan(attack);
        const without = planCleanup(
          a.source,
          a.target,
          config({ keepSnapshots: a.keepSnapshots }),
          "source",
          a.namer,
        );
        expect(withRules.actions).toEqual(without.actions);
      }),
      RUNS,
    );
  });

  test("an empty target section destroys at least what keep_backlog 0 does, and never more than the rules allow", () => {
    fc.assert(
      fc.property(attackArb, (a) => {
        const attack = { ...a, side: "target" as const, rules: NO_RULES };
        const withRules = new Set(destroyed(plan(attack)));
        const backlog0 = planCleanup(
          a.source,
          a.target,
          config({ keepBacklog: 0 }),
          "target",
          a.namer,
        );
        for (const name of destroyed(backlog0)) expect(withRules.has(name)).toBe(true);
        expect(broken(attack, [...withRules])).toEqual([]);
      }),
      RUNS,
    );
  });
});

// ---- examples ----

const at = (iso: string) => Date.parse(iso) / 1000;

describe("retention attacks, one history each", () => {
  test("a newest common snapshot held by abgleich's own tag (the chain base) is neither released nor destroyed", () => {
    const snaps = [0, 1, 2].map((i) =>
      snap(ownName(i), { createtxg: 10 + i, creation: at("2026-11-01T00:00:00Z") + i * DAY }),
    );
    const held = (s: Snapshot, tag: string): Snapshot => ({ ...s, userrefs: 1, holds: [tag] });
    const source = inventory("source", [
      src("a", [
        held(snaps[0] as Snapshot, SOURCE_TAG),
        snaps[1] as Snapshot,
        held(snaps[2] as Snapshot, SOURCE_TAG),
      ]),
    ]);
    const target = inventory("target", [
      dst("a", [
        held(snaps[0] as Snapshot, TARGET_TAG),
        snaps[1] as Snapshot,
        held(snaps[2] as Snapshot, TARGET_TAG),
      ]),
    ]);
    for (const side of ["source", "target"] as const) {
      const cfg = config({ retention: { source: NO_RULES, target: NO_RULES } });
      const p = planCleanup(source, target, cfg, side, utcNamer);
      if (side === "source") {
        // the stale base 0 is released and destroyed, 1 destroyed, the newest common 2 stays held
        expect(p.actions.map((x) => [x.snapshots, x.release])).toEqual([
          [[ownName(0), ownName(1)], [ownName(0)]],
        ]);
      } else {
        // everything is still on the source: nothing goes on the target
        expect(p.actions).toEqual([]);
      }
    }
  });

  test("a foreign newest common snapshot stays on both sides; own snapshots around it follow the rules", () => {
    const names = [ownName(0), ownName(1), "manual-nightly", ownName(3)];
    const snaps = names.map((name, i) =>
      snap(name, { createtxg: 10 + i, creation: at("2026-11-20T12:00:00Z") + i * HOUR }),
    );
    // the source freed 0 and 1 earlier; 3 is not sent yet
    const source = inventory("source", [src("a", snaps.slice(2))]);
    const target = inventory("target", [dst("a", snaps.slice(0, 3))]);
    const cfg = config({ retention: { source: NO_RULES, target: { ...NO_RULES, latest: 1 } } });
    const onTarget = planCleanup(source, target, cfg, "target", utcNamer);
    // latest 1 keeps the newest own snapshot of the target (1), the foreign newest common stays
    expect(destroyed(onTarget)).toEqual([ownName(0)]);
    const onSource = planCleanup(source, target, cfg, "source", utcNamer);
    expect(onSource.actions).toEqual([]);
  });

  test("keep_snapshots counts foreign common snapshots: the newest 3 common stay, whoever made them", () => {
    const names = [ownName(0), ownName(1), "manual-a", ownName(3), "manual-b", ownName(5)];
    const snaps = names.map((name, i) =>
      snap(name, { createtxg: 10 + i, creation: at("2026-11-20T12:00:00Z") + i * DAY }),
    );
    const source = inventory("source", [src("a", snaps)]);
    const target = inventory("target", [dst("a", snaps.slice(0, 5))]);
    const cfg = config({ keepSnapshots: 3, retention: { source: NO_RULES, target: null } });
    const p = planCleanup(source, target, cfg, "source", utcNamer);
    // common: 0 1 a 3 b; the newest three (a 3 b) stay, 5 is not sent
    expect(destroyed(p)).toEqual([ownName(0), ownName(1)]);
  });

  test("the hour repeated when clocks go back: local-time periods, every rule kept, the same plan twice", () => {
    process.env.TZ = "Europe/Berlin";
    // 00:30Z is 02:30 CEST, 01:30Z is 02:30 CET: two hours with one local label
    const times = [
      "2026-10-24T23:30:00Z",
      "2026-10-25T00:30:00Z",
      "2026-10-25T01:30:00Z",
      "2026-10-25T02:30:00Z",
    ];
    const snaps = times.map((iso, i) => snap(ownName(i), { createtxg: 10 + i, creation: at(iso) }));
    const source = inventory("source", [src("a", snaps)]);
    const target = inventory("target", [dst("a", snaps)]);
    const cfg = config({ retention: { source: { ...NO_RULES, hourly: 3 }, target: null } });
    const p = planCleanup(source, target, cfg, "source", localNamer);
    const reasons = new Map(p.retention?.[0]?.snapshots.map((s) => [s.name, s.reasons]));
    expect(reasons.get(ownName(3))).toEqual(["newest common"]);
    expect(reasons.get(ownName(2))).toEqual(["hourly 2026-10-25 02:00"]);
    expect(reasons.get(ownName(0))).toEqual(["hourly 2026-10-25 01:00"]);
    // 01 shares its local hour with the later 02 and goes
    expect(destroyed(p)).toEqual([ownName(1)]);
    const left = snaps.filter((s) => s.name !== ownName(1));
    const again = planCleanup(
      inventory("source", [src("a", left)]),
      target,
      cfg,
      "source",
      localNamer,
    );
    expect(again.actions).toEqual([]);
  });
});

// ---- the engine's namer (uncommitted: fails on f36c366) ----

describe("retention in the engine: the naming plugin's UTC reaches the planner", () => {
  // Run.namer() (lib/engine/runner.ts) freezes { next, isOwn } only: `utc` is dropped, so the
  // cleanup stage counts days in local time although the plugin names (and the README says
  // retention counts) in UTC.
  test("daily 3 with names in UTC keeps one snapshot per UTC day, in any time zone", async () => {
    process.env.TZ = "America/New_York";
    const cfg = config({ retention: { source: { ...NO_RULES, daily: 3 }, target: null } });
    const hooks = createHooks();
    const options = checkOptions(naming, { template: "%Y%m%d%H%M%S", utc: true }, cfg, 0);
    await naming.setup(hooks, { name: "naming", config: cfg, options, log() {}, warn() {} });
    // UTC days 27, 28 and 29, one snapshot each; 27 23:00Z and 28 01:00Z share a New York day
    const times = ["2026-11-27T23:00:00Z", "2026-11-28T01:00:00Z", "2026-11-29T12:00:00Z"];
    const snaps = times.map((iso, i) =>
      snap(iso.replace(/[-:TZ]/g, "").slice(0, 14), { createtxg: 10 + i, creation: at(iso) }),
    );
    const source = inventory("source", [src("a", snaps)]);
    const target = inventory("target", [dst("a", snaps)]);
    const run = Run.open(
      cfg,
      hooks,
      {} as never,
      {
        yes: true,
        dryRun: true,
        json: false,
        interactive: false,
        signal: new AbortController().signal,
        now: () => new Date(),
        hostFor: (side) => memoryHost(side, side === "source" ? source : target),
      },
      "dry-run",
    );
    expect(run.namer().utc).toBe(true);
    const p = await cleanupStage(run, "source").plan({ source, target });
    expect(p.actions).toEqual([]);
    expect(p.retention?.[0]?.snapshots.map((s) => s.reasons)).toEqual([
      ["daily 2026-11-27"],
      ["daily 2026-11-28"],
      ["newest common"],
    ]);
  });
});
