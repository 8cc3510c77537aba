import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { defaultNamer } from "../../../lib/plan/naming.ts";
import { decideChanges, planSnap } from "../../../lib/plan/snap.ts";
import type { Dataset, Inventory } from "../../../lib/zfs/model.ts";
import { checkSnapshotShortName } from "../../../lib/zfs/names.ts";
import { config, history, inventory, snap, src } from "./fixtures.ts";

const NOW = new Date(2026, 10, 26, 9, 0);
const namer = defaultNamer({ digits: 2, suffix: "" });
const MiB = 1048576;

function decisionFor(dataset: Dataset, overrides: Parameters<typeof config>[0] = {}) {
  const { decisions } = decideChanges(inventory("source", [dataset]), config(overrides));
  expect(decisions).toHaveLength(1);
  return decisions[0];
}

describe("decideChanges: the README's change rules, first match wins", () => {
  const snapped = history("2026112501");

  test("1. no snapshot yet → changed, even with nothing written", () => {
    expect(decisionFor(src("a", [], { written: 0 }))).toMatchObject({
      changed: true,
      rule: "no snapshot yet",
    });
  });
  test("2. always_changed → changed, even with nothing written", () => {
    expect(decisionFor(src("a", snapped, { written: 0 }), { alwaysChanged: true })).toMatchObject({
      changed: true,
      rule: "always_changed is set",
    });
  });
  test("3. written 0 → unchanged", () => {
    const decision = decisionFor(src("a", snapped, { written: 0 }));
    expect(decision?.changed).toBe(false);
    expect(decision?.rule).toContain("nothing written since @2026112501");
  });
  test("4. a volume with anything written → changed without diff", () => {
    const decision = decisionFor(
      src("vol", snapped, { type: "volume", mounted: null, written: 5 }),
    );
    expect(decision?.changed).toBe(true);
    expect(decision?.rule).toContain("volume");
  });
  test("5. written above the threshold → changed", () => {
    expect(decisionFor(src("a", snapped, { written: MiB + 1 }))?.changed).toBe(true);
    // exactly at the threshold is not above it: goes on to diff
    expect(decisionFor(src("a", snapped, { written: MiB }))?.changed).toBe("diff");
    // no threshold: every write goes to diff
    expect(
      decisionFor(src("a", snapped, { written: 9 * MiB }), { writtenThreshold: null })?.changed,
    ).toBe("diff");
  });
  test("6. check_diff off → changed", () => {
    const decision = decisionFor(src("a", snapped, { written: 10 }), { checkDiff: false });
    expect(decision).toMatchObject({ changed: true, rule: "10 bytes written, check_diff is off" });
  });
  test("7. an unmounted filesystem → changed (no diff possible)", () => {
    const decision = decisionFor(src("a", snapped, { written: 10, mounted: false }));
    expect(decision?.changed).toBe(true);
    expect(decision?.rule).toContain("not mounted");
  });
  test("8. otherwise the runner must ask zfs diff on the newest snapshot", () => {
    const decision = decisionFor(src("a", history("s1", "s2"), { written: 10 }));
    expect(decision).toMatchObject({ changed: "diff", newest: "s2", dataset: "tank/data/a" });
  });
  test("ignored datasets and the root without include_root are skipped, children still count", () => {
    const inv = inventory("source", [src("", []), src("a", []), src("a/b", [])]);
    const { decisions, skipped } = decideChanges(
      inv,
      config({ includeRoot: false, ignore: ["a"] }),
    );
    expect(decisions.map((d) => d.subname)).toEqual(["a/b"]);
    expect(skipped).toEqual([
      { subname: "", reason: "root dataset left out (include_root: no)" },
      { subname: "a", reason: "ignored (listed in ignore)" },
    ]);
  });
});

describe("planSnap", () => {
  const inv = inventory("source", [
    src("", history("2026112601"), { written: 0 }),
    src("new", []),
    src("big", history("2026112601"), { written: 5 * MiB }),
    src("quiet", history("2026112601"), { written: 10 }),
    src("touched", history("2026112601", "2026112602"), { written: 10 }),
  ]);

  test("one action for the pool with a snapshot per changed dataset and its written bytes", () => {
    const diffs = new Map([
      ["quiet", false],
      ["touched", true],
    ]);
    const plan = planSnap(inv, config(), diffs, namer, NOW);
    expect(plan.errors).toEqual([]);
    expect(plan.actions).toEqual([
      {
        kind: "snapshot",
        pool: "tank",
        snapshots: [
          { dataset: "tank/data/new", subname: "new", name: "2026112601", written: 0 },
          { dataset: "tank/data/big", subname: "big", name: "2026112602", written: 5 * MiB },
          { dataset: "tank/data/touched", subname: "touched", name: "2026112603", written: 10 },
        ],
      },
    ]);
    expect(plan.skipped.map((s) => s.subname)).toEqual(["", "quiet"]);
    expect(plan.skipped[1]?.reason).toBe("unchanged: zfs diff @2026112601 shows no changes");
  });

  test("a missing diff answer is an error for that dataset, not a guess", () => {
    const plan = planSnap(inv, config(), new Map([["quiet", false]]), namer, NOW);
    expect(plan.errors).toEqual([
      {
        subname: "touched",
        message:
          "tank/data/touched: no zfs diff result for @2026112602; cannot tell whether it changed",
      },
    ]);
  });

  test("a counter that ran out is an error for that dataset only", () => {
    const one = defaultNamer({ digits: 1, suffix: "" });
    const full = Array.from({ length: 9 }, (_, i) => snap(`20261126${i + 1}`));
    const plan = planSnap(
      inventory("source", [src("full", history(...full), { written: 5 * MiB }), src("fresh", [])]),
      config({ digits: 1 }),
      new Map(),
      one,
      NOW,
    );
    expect(plan.errors).toHaveLength(1);
    expect(plan.errors[0]?.message).toStartWith(
      "tank/data/full: no snapshot name left for 20261126",
    );
    expect(plan.actions[0]?.snapshots.map((s) => s.name)).toEqual(["202611261"]);
  });

  test("nothing changed → no action at all", () => {
    const quiet = inventory("source", [src("", history("x"), { written: 0 })]);
    expect(planSnap(quiet, config(), new Map(), namer, NOW).actions).toEqual([]);
  });
});

/** apply a snap plan to the inventory, as `zfs snapshot` would */
function applySnap(inv: Inventory, names: Map<string, string>, tick: number): Inventory {
  return {
    ...inv,
    datasets: inv.datasets.map((dataset) => {
      const name = names.get(dataset.subname);
      if (name === undefined) return dataset;
      return { ...dataset, snapshots: [...dataset.snapshots, snap(name, { createtxg: tick })] };
    }),
  };
}

describe("property: repeated snap rounds on one day", () => {
  test("never repeat a name in a dataset, and every name is valid", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.stringMatching(/^[A-Za-z0-9_]{0,4}$/),
        fc.integer({ min: 1, max: 14 }),
        fc.uniqueArray(fc.constantFrom("", "a", "a/b", "c"), { minLength: 1 }),
        (digits, suffix, rounds, subnames) => {
          const namerN = defaultNamer({ digits, suffix });
          let inv = inventory(
            "source",
            subnames.map((s) => src(s, [], { written: 1 })),
          );
          const cfg = config({ digits, suffix, alwaysChanged: true });
          for (let round = 0; round < rounds; round++) {
            const plan = planSnap(inv, cfg, new Map(), namerN, NOW);
            const names = new Map(
              (plan.actions[0]?.snapshots ?? []).map((s) => [s.subname, s.name] as const),
            );
            // each dataset either gets a name or an error, never both, never nothing
            expect(names.size + plan.errors.length).toBe(subnames.length);
            inv = applySnap(inv, names, round);
          }
          for (const dataset of inv.datasets) {
            const names = dataset.snapshots.map((s) => s.name);
            expect(new Set(names).size).toBe(names.length);
            for (const name of names) expect(checkSnapshotShortName(name)).toBeNull();
            expect(names.length).toBe(Math.min(rounds, 10 ** digits - 1));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
