// mergeSnapshots and compareSnapshots look names up only past the common prefix of both lists
// (mergeSnapshots sorts only when out of order); checked against the plain versions (every
// name in a Map, every row sorted).

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mergeSnapshots } from "../../../lib/plan/compare.ts";
import { compareSnapshots } from "../../../lib/plan/pairs.ts";
import type { CompareSnapshotRow } from "../../../lib/plan/types.ts";
import type { Dataset, Snapshot } from "../../../lib/zfs/model.ts";

function dataset(snapshots: Snapshot[]): Dataset {
  return {
    name: "tank/a",
    subname: "a",
    type: "filesystem",
    guid: "1",
    createtxg: 1,
    creation: 1,
    used: 0,
    referenced: 0,
    written: 0,
    compressratio: 1,
    mountpoint: "/tank/a",
    mounted: true,
    resumeToken: null,
    encryption: "off",
    keystatus: null,
    bookmarks: [],
    snapshots,
  };
}

function plainMerge(source: Dataset | undefined, target: Dataset | undefined) {
  const targets = new Map((target?.snapshots ?? []).map((s) => [s.name, s]));
  const sources = new Set((source?.snapshots ?? []).map((s) => s.name));
  const entries: { row: CompareSnapshotRow; key: [number, number, number] }[] = [];
  for (const s of source?.snapshots ?? []) {
    const t = targets.get(s.name);
    entries.push({
      row: {
        name: s.name,
        presence: t ? "both" : "source",
        guidMismatch: t !== undefined && t.guid !== s.guid,
        sourceHolds: s.userrefs,
        targetHolds: t?.userrefs ?? 0,
      },
      key: [s.creation, 0, s.createtxg],
    });
  }
  for (const t of target?.snapshots ?? []) {
    if (sources.has(t.name)) continue;
    entries.push({
      row: {
        name: t.name,
        presence: "target",
        guidMismatch: false,
        sourceHolds: 0,
        targetHolds: t.userrefs,
      },
      key: [t.creation, 1, t.createtxg],
    });
  }
  entries.sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1] || a.key[2] - b.key[2]);
  return entries.map((e) => e.row);
}

/** a side: unique names from a small pool (so the sides overlap), createtxg ascending */
const side = fc
  .uniqueArray(
    fc.record({
      name: fc.constantFrom("a", "b", "c", "d", "e", "f", "g", "h"),
      guid: fc.constantFrom("1", "2"),
      creation: fc.integer({ min: 0, max: 5 }),
      userrefs: fc.integer({ min: 0, max: 2 }),
    }),
    { selector: (s) => s.name, maxLength: 8 },
  )
  .map((list) =>
    list.map(
      (s, i): Snapshot => ({
        ...s,
        createtxg: i + 1,
        used: 0,
        referenced: 0,
        written: 0,
        compressratio: 1,
      }),
    ),
  );

describe("mergeSnapshots", () => {
  test("the same rows in the same order as the plain Map-and-sort merge", () => {
    fc.assert(
      fc.property(side, side, fc.boolean(), fc.boolean(), (s, t, hasSource, hasTarget) => {
        const source = hasSource ? dataset(s) : undefined;
        const target = hasTarget ? dataset(t) : undefined;
        expect(mergeSnapshots(source, target)).toEqual(plainMerge(source, target));
      }),
      { numRuns: 2000 },
    );
  });

  test("a target behind its source: the common prefix, then the source's newer ones", () => {
    const snap = (name: string, i: number, userrefs = 0): Snapshot => ({
      name,
      guid: name === "b" ? `${i}x` : `${i}`,
      createtxg: i,
      creation: i,
      used: 0,
      referenced: 0,
      written: 0,
      compressratio: 1,
      userrefs,
    });
    const rows = mergeSnapshots(
      dataset([snap("a", 1), snap("b", 2, 1), snap("c", 3)]),
      dataset([snap("a", 1, 2), { ...snap("b", 2), guid: "other" }]),
    );
    expect(rows).toEqual([
      { name: "a", presence: "both", guidMismatch: false, sourceHolds: 0, targetHolds: 2 },
      { name: "b", presence: "both", guidMismatch: true, sourceHolds: 1, targetHolds: 0 },
      { name: "c", presence: "source", guidMismatch: false, sourceHolds: 0, targetHolds: 0 },
    ]);
  });
});

function plainOverlap(source: Dataset, target: Dataset) {
  const targets = new Map(target.snapshots.map((s) => [s.name, s]));
  const sources = new Set(source.snapshots.map((s) => s.name));
  const common = source.snapshots.flatMap((s) => {
    const t = targets.get(s.name);
    return t && t.guid === s.guid ? [{ source: s, target: t }] : [];
  });
  return {
    common,
    newestCommon: common[common.length - 1],
    mismatches: source.snapshots.flatMap((s) => {
      const t = targets.get(s.name);
      return t && t.guid !== s.guid
        ? [{ name: s.name, sourceGuid: s.guid, targetGuid: t.guid }]
        : [];
    }),
    sourceOnly: source.snapshots.filter((s) => !targets.has(s.name)).map((s) => s.name),
    targetOnly: target.snapshots.filter((t) => !sources.has(t.name)).map((t) => t.name),
  };
}

describe("compareSnapshots", () => {
  test("the same overlap as the plain Map version", () => {
    fc.assert(
      fc.property(side, side, (s, t) => {
        expect(compareSnapshots(dataset(s), dataset(t))).toEqual(
          plainOverlap(dataset(s), dataset(t)),
        );
      }),
      { numRuns: 2000 },
    );
  });
});
