// A dry run's view after a plan: the real planners, run one after the other on the advanced
// view, plan what the next step would do once the earlier ones had run.

import { describe, expect, test } from "bun:test";
import { planBackup } from "../../../lib/plan/backup.ts";
import { holdTags, withChain } from "../../../lib/plan/chain.ts";
import { planCleanup } from "../../../lib/plan/cleanup.ts";
import { compareTrees } from "../../../lib/plan/compare.ts";
import { defaultNamer } from "../../../lib/plan/naming.ts";
import {
  applyPlanned,
  hasPlanned,
  isPlannedGuid,
  plannedNames,
  type Sides,
} from "../../../lib/plan/simulate.ts";
import { planSnap } from "../../../lib/plan/snap.ts";
import type { Plan, SendAction } from "../../../lib/plan/types.ts";
import type { Inventory } from "../../../lib/zfs/model.ts";
import { config, dst, history, inventory, snap, src } from "./fixtures.ts";

const S1 = "2026112501";
const S2 = "2026112502";
const NOW = new Date(2026, 10, 30, 12);
const cfg = config({ keepBacklog: 0 });
const namer = defaultNamer(cfg);
const options = { now: NOW, holdTags: holdTags(cfg) };

/** the source: `home` has data written since its newest snapshot, `srv` has not */
const source = (): Inventory =>
  inventory("source", [
    src("", history(S1)),
    src("home", history(S1), { written: 4096 }),
    src("srv", history(S1)),
  ]);
const target = (): Inventory =>
  inventory("target", [dst("", history(S1)), dst("home", history(S1)), dst("srv", history(S1))]);

/** rule 8: `zfs diff` says `home` changed */
const snapPlan = (sides: Sides) =>
  planSnap(sides.source, cfg, new Map([["home", true]]), namer, NOW);
const backupPlan = (sides: Sides) =>
  withChain(planBackup(sides.source, sides.target, cfg), sides.source, sides.target, cfg, (n) =>
    namer.isOwn(n),
  );
const snapshotsOf = (inventory: Inventory, subname: string) =>
  inventory.datasets.find((d) => d.subname === subname)?.snapshots ?? [];
const sends = (plan: Plan) =>
  plan.actions.filter((a): a is SendAction => a.kind === "send").map((a) => `${a.subname}:${a.to}`);

describe("applyPlanned", () => {
  test("a snap plan puts planned snapshots on the source; a second snap has nothing to do", () => {
    const before = { source: source(), target: target() };
    const plan = snapPlan(before);
    const made = plan.actions.flatMap((a) => a.snapshots.map((s) => s.name));
    expect(made).toHaveLength(1);
    const after = applyPlanned(before, plan, options);
    const home = snapshotsOf(after.source, "home");
    const added = home[home.length - 1];
    expect(added?.name).toBe(made[0] as string);
    expect(isPlannedGuid(added?.guid ?? "")).toBe(true);
    expect(added?.creation).toBe(NOW.getTime() / 1000);
    expect(added?.createtxg).toBeGreaterThan(home[0]?.createtxg ?? Infinity);
    // its `written` is what the dataset had written; the dataset has nothing new after it
    expect(added?.written).toBe(4096);
    expect(after.source.datasets.find((d) => d.subname === "home")?.written).toBe(0);
    expect(snapshotsOf(after.source, "srv").map((s) => s.name)).toEqual([S1]);
    // the input is untouched
    expect(snapshotsOf(before.source, "home")).toHaveLength(1);
    expect(hasPlanned(before.source)).toBe(false);
    expect(hasPlanned(after.source)).toBe(true);
    expect(snapPlan(after).actions).toHaveLength(0);
  });

  test("backup after the planned snap sends that snapshot; after both, nothing is left to send", () => {
    const real = { source: source(), target: target() };
    expect(sends(backupPlan(real))).toEqual([]);
    const snapped = applyPlanned(real, snapPlan(real), options);
    const made = snapshotsOf(snapped.source, "home").at(-1)?.name as string;
    const backup = backupPlan(snapped);
    expect(sends(backup)).toEqual([`home:${made}`]);
    expect(plannedNames(backup, snapped)).toEqual([`tank/data/home@${made}`]);
    const sent = applyPlanned(snapped, backup, options);
    const arrived = snapshotsOf(sent.target, "home").at(-1);
    expect(arrived?.name).toBe(made);
    // the same placeholder guid: source and target share it as the newest common snapshot
    expect(arrived?.guid).toBe(snapshotsOf(sent.source, "home").at(-1)?.guid as string);
    expect(sends(backupPlan(sent))).toEqual([]);
    // the chain's hold moved to the new base on both sides
    expect(snapshotsOf(sent.source, "home").at(-1)?.holds).toEqual([holdTags(cfg).source]);
    expect(arrived?.holds).toEqual([holdTags(cfg).target]);
    expect(
      compareTrees(sent.source, sent.target, cfg).rows.every((r) => r.conflicts.length === 0),
    ).toBe(true);
  });

  test("a fresh target gets its datasets from the planned full sends; cleanup then plans", () => {
    const real = { source: source(), target: inventory("target", []) };
    const backup = backupPlan(real);
    const sent = applyPlanned(real, backup, options);
    expect(sent.target.datasets.map((d) => d.name)).toEqual([
      "backup/host",
      "backup/host/home",
      "backup/host/srv",
    ]);
    expect(sent.target.datasets.every((d) => isPlannedGuid(d.guid))).toBe(true);
    expect(snapshotsOf(sent.target, "home").map((s) => s.guid)).toEqual([`g-${S1}`]);
    expect(sends(backupPlan(sent))).toEqual([]);
    const cleanup = planCleanup(sent.source, sent.target, cfg, "source", namer);
    expect(cleanup.errors).toEqual([]);
  });

  test("destroys remove the snapshots from their side; a partial receive is aborted", () => {
    const sides = {
      source: inventory("source", [src("", history(S1, S2))]),
      target: inventory("target", [dst("", history(S1, S2), { resumeToken: "1-abc" })]),
    };
    const plan: Plan = {
      actions: [
        {
          kind: "destroy",
          side: "source",
          subname: "",
          dataset: "tank/data",
          snapshots: [S1],
          used: 100,
        },
        { kind: "abort-resume", subname: "", targetDataset: "backup/host", reason: "gone" },
      ],
      conflicts: [],
      skipped: [],
      errors: [],
    };
    const after = applyPlanned(sides, plan, options);
    expect(snapshotsOf(after.source, "").map((s) => s.name)).toEqual([S2]);
    expect(snapshotsOf(after.target, "").map((s) => s.name)).toEqual([S1, S2]);
    expect(after.target.datasets[0]?.resumeToken).toBeNull();
    expect(plannedNames(plan, after)).toEqual([]);
  });

  test("a planned guid never equals a real one (real guids are numbers)", () => {
    const real = { source: source(), target: target() };
    const after = applyPlanned(real, snapPlan(real), options);
    const guid = snapshotsOf(after.source, "home").at(-1)?.guid as string;
    expect(/^\d+$/.test(guid)).toBe(false);
    expect(hasPlanned(inventory("source", [src("", [snap(S1, { guid: "123456789" })])]))).toBe(
      false,
    );
  });
});
