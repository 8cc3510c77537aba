import { describe, expect, test } from "bun:test";
import { planCleanup } from "../../../lib/plan/cleanup.ts";
import { compareSubnames, compareTrees } from "../../../lib/plan/compare.ts";
import { defaultNamer } from "../../../lib/plan/naming.ts";
import { config, dst, history, inventory, snap, src } from "./fixtures.ts";

const namer = defaultNamer({ digits: 2, suffix: "" });
// own names: 20260101NN
const own = (n: number) => `202601010${n}`;

describe("planCleanup source", () => {
  const source = inventory("source", [src("a", history(own(1), own(2), own(3), own(4), own(5)))]);
  const target = inventory("target", [dst("a", history(own(1), own(2), own(3), own(4)))]);

  test("destroys the common snapshots except the newest keep_snapshots, in one action", () => {
    const plan = planCleanup(source, target, config({ keepSnapshots: 2 }), "source", namer);
    expect(plan.actions).toEqual([
      {
        kind: "destroy",
        side: "source",
        subname: "a",
        dataset: "tank/data/a",
        snapshots: [own(1), own(2)],
        used: 200,
      },
    ]);
  });

  test("keep_snapshots 1 keeps the newest common one; source-only snapshots are never touched", () => {
    const plan = planCleanup(source, target, config(), "source", namer);
    expect(plan.actions[0]?.snapshots).toEqual([own(1), own(2), own(3)]);
  });

  test("foreign and held snapshots stay, and the plan says so", () => {
    const s = inventory("source", [
      src("a", history("manual", own(1), snap(own(2), { userrefs: 1 }), own(3))),
    ]);
    const t = inventory("target", [dst("a", history("manual", own(1), own(2), own(3)))]);
    const plan = planCleanup(s, t, config(), "source", namer);
    expect(plan.actions[0]?.snapshots).toEqual([own(1)]);
    expect(plan.skipped).toEqual([
      { subname: "a", reason: "left 1 snapshot not named by abgleich: manual" },
      {
        subname: "a",
        reason: `left 1 held snapshot: ${own(2)}; any other hold is released by hand (zfs release TAG SNAPSHOT) once nothing needs it`,
      },
    ]);
  });

  test("abgleich's own stale hold is released before the destroy; a hold shared with another tag keeps the snapshot", () => {
    const mine = "abgleich:backup/host";
    const s = inventory("source", [
      src(
        "a",
        history(
          snap(own(1), { userrefs: 1, holds: [mine] }),
          snap(own(2), { userrefs: 2, holds: [mine, "other-tool"] }),
          snap(own(3), { userrefs: 1, holds: ["abgleich:elsewhere/root"] }),
          own(4),
        ),
      ),
    ]);
    const t = inventory("target", [dst("a", history(own(1), own(2), own(3), own(4)))]);
    const plan = planCleanup(s, t, config(), "source", namer);
    expect(plan.actions).toEqual([
      {
        kind: "destroy",
        side: "source",
        subname: "a",
        dataset: "tank/data/a",
        snapshots: [own(1)],
        used: 100,
        release: [own(1)],
      },
    ]);
    expect(plan.skipped).toEqual([
      {
        subname: "a",
        reason:
          `left 2 held snapshots: ${own(2)} (held by other-tool), ${own(3)} (held by abgleich:elsewhere/root); ` +
          "a hold tagged abgleich:… keeps another target's chain base and goes when that target's backup moves on " +
          "(or is this target's under a name the config no longer gives it: release that one by hand); " +
          "any other hold is released by hand (zfs release TAG SNAPSHOT) once nothing needs it",
      },
    ]);
  });

  test("a same-named snapshot with another guid is not common: the pair is not cleaned", () => {
    const t = inventory("target", [
      dst("a", history(snap(own(1), { guid: "other" }), own(2), own(3), own(4))),
    ]);
    const plan = planCleanup(source, t, config(), "source", namer);
    expect(plan.actions).toEqual([]);
    expect(plan.conflicts.map((c) => c.kind)).toEqual(["guid-mismatch"]);
    expect(plan.skipped[0]?.reason).toBe(
      "not cleaned on either side while in conflict (guid-mismatch); see compare",
    );
  });

  test("a dataset not yet on the target keeps everything", () => {
    const plan = planCleanup(source, inventory("target", []), config(), "source", namer);
    expect(plan.actions).toEqual([]);
    expect(plan.skipped).toEqual([{ subname: "a", reason: "not on the target yet" }]);
  });
});

describe("planCleanup target", () => {
  // the source was cleaned: own(1..3) exist only on the target now
  const source = inventory("source", [src("a", history(own(4), own(5)))]);
  const target = inventory("target", [dst("a", history(own(1), "manual", own(2), own(3), own(4)))]);

  test("keep_backlog -1 keeps everything", () => {
    const plan = planCleanup(source, target, config(), "target", namer);
    expect(plan.actions).toEqual([]);
    expect(plan.skipped[0]?.reason).toContain("keep_backlog is -1");
  });

  test("destroys own snapshots older than the oldest common one, keeping the newest keep_backlog", () => {
    const plan = planCleanup(source, target, config({ keepBacklog: 1 }), "target", namer);
    expect(plan.actions).toEqual([
      {
        kind: "destroy",
        side: "target",
        subname: "a",
        dataset: "backup/host/a",
        snapshots: [own(1), own(2)],
        used: 200,
      },
    ]);
    expect(plan.skipped[0]?.reason).toContain("manual");
  });

  test("keep_backlog 0 removes the whole backlog but never a common snapshot", () => {
    const plan = planCleanup(source, target, config({ keepBacklog: 0 }), "target", namer);
    expect(plan.actions[0]?.snapshots).toEqual([own(1), own(2), own(3)]);
  });

  test("a target ahead of the source is not cleaned", () => {
    const ahead = inventory("target", [dst("a", history(own(1), own(4), own(6)))]);
    const plan = planCleanup(source, ahead, config({ keepBacklog: 0 }), "target", namer);
    expect(plan.actions).toEqual([]);
    expect(plan.conflicts.map((c) => c.kind)).toEqual(["target-ahead"]);
  });
});

describe("compareTrees", () => {
  test("subnames sort parents first, then by name", () => {
    expect(["a b", "a/b", "", "a", "b"].sort(compareSubnames)).toEqual([
      "",
      "a",
      "a/b",
      "a b",
      "b",
    ]);
  });

  test("one row per subname of either side, snapshots merged by creation, conflicts from backup", () => {
    const source = inventory("source", [
      src("", history("s1")),
      src("a", [
        snap("s1", { creation: 100, createtxg: 5 }),
        snap("s2", { creation: 200, createtxg: 6 }),
        snap("s3", { creation: 300, createtxg: 7 }),
      ]),
      src("skip", []),
    ]);
    const target = inventory("target", [
      dst("", history("s1")),
      dst("a", [
        // received snapshots keep the sender's creation but get their own createtxg
        snap("s1", { creation: 100, createtxg: 50 }),
        snap("s2", { creation: 200, createtxg: 51, guid: "other" }),
        snap("t1", { creation: 250, createtxg: 52 }),
      ]),
      dst("gone", history("old")),
    ]);
    const comparison = compareTrees(source, target, config({ ignore: ["skip"] }));
    expect(comparison.sourceRoot).toBe("tank/data");
    expect(comparison.targetRoot).toBe("backup/host");
    expect(comparison.rows.map((r) => [r.subname, r.presence, r.ignored])).toEqual([
      ["", "both", false],
      ["a", "both", false],
      ["gone", "target", false],
      ["skip", "source", true],
    ]);
    const a = comparison.rows[1];
    expect(a?.snapshots).toEqual([
      { name: "s1", presence: "both", guidMismatch: false, sourceHolds: 0, targetHolds: 0 },
      { name: "s2", presence: "both", guidMismatch: true, sourceHolds: 0, targetHolds: 0 },
      { name: "t1", presence: "target", guidMismatch: false, sourceHolds: 0, targetHolds: 0 },
      { name: "s3", presence: "source", guidMismatch: false, sourceHolds: 0, targetHolds: 0 },
    ]);
    expect(a?.conflicts.map((c) => c.kind)).toEqual(["guid-mismatch", "target-ahead"]);
    expect(a?.conflicts[1]?.message).toContain("target only: t1");
    expect(comparison.rows[0]?.conflicts).toEqual([]);
  });
});
