// The safety rules (README: Safety) that the planners could break, checked over generated
// trees and histories (see generate.ts). Oracles here are written from the rules, not by
// calling the planners' own helpers.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { planBackup } from "../../../lib/plan/backup.ts";
import { planCleanup } from "../../../lib/plan/cleanup.ts";
import { compareTrees } from "../../../lib/plan/compare.ts";
import { defaultNamer } from "../../../lib/plan/naming.ts";
import type { Action } from "../../../lib/plan/types.ts";
import type { Dataset, Inventory } from "../../../lib/zfs/model.ts";
import { type Scenario, scenario } from "./generate.ts";

const RUNS = { numRuns: 400 };
const namer = defaultNamer({ digits: 2, suffix: "" });

function takesPart(subname: string, s: Scenario): boolean {
  return !(subname === "" && !s.config.includeRoot) && !s.config.ignore.includes(subname);
}

const key = (snapshot: { name: string; guid: string }) => `${snapshot.name}\u0000${snapshot.guid}`;

/** whether an incremental send without -F could fail or lose target data (README: Safety) */
function unsafe(source: Dataset, target: Dataset): boolean {
  if (source.snapshots.length === 0) return false;
  if (target.snapshots.length === 0 && target.resumeToken !== null) return false; // still arriving
  if (source.type !== target.type) return true;
  const sourceGuids = new Map(source.snapshots.map((s) => [s.name, s.guid]));
  const mismatch = target.snapshots.some(
    (t) => sourceGuids.has(t.name) && sourceGuids.get(t.name) !== t.guid,
  );
  if (mismatch) return true;
  const lastCommon = target.snapshots.findLastIndex((t) => sourceGuids.get(t.name) === t.guid);
  if (lastCommon < 0) return true; // nothing to send from
  if (lastCommon < target.snapshots.length - 1) return true; // target ahead
  return target.written > 0; // changed since the common snapshot
}

function unsafeSubnames(s: Scenario): string[] {
  const targets = new Map(s.target.datasets.map((d) => [d.subname, d]));
  return s.source.datasets
    .filter((d) => takesPart(d.subname, s))
    .filter((d) => {
      const target = targets.get(d.subname);
      return target !== undefined && unsafe(d, target);
    })
    .map((d) => d.subname);
}

interface ModelDataset {
  snapshots: { name: string; guid: string }[];
  partial: boolean;
}

/** apply backup actions to an in-memory target the way `zfs receive -s -u` (no -F) would */
function applyBackup(s: Scenario, actions: readonly Action[]): Map<string, ModelDataset> {
  const model = new Map<string, ModelDataset>(
    s.target.datasets.map((d) => [
      d.subname,
      {
        snapshots: d.snapshots.map((x) => ({ name: x.name, guid: x.guid })),
        partial: d.resumeToken !== null,
      },
    ]),
  );
  const sources = new Map(s.source.datasets.map((d) => [d.subname, d]));
  for (const action of actions) {
    if (action.kind === "abort-resume") {
      const target = model.get(action.subname);
      expect(target?.partial).toBe(true);
      if (target?.snapshots.length === 0) model.delete(action.subname);
      else if (target) target.partial = false;
      continue;
    }
    expect(action.kind).toBe("send");
    if (action.kind !== "send") continue;
    const source = sources.get(action.subname);
    if (source === undefined) throw new Error(`send for unknown source ${action.subname}`);
    expect(action.sourceDataset).toBe(source.name);
    const index = (name: string | null) => source.snapshots.findIndex((x) => x.name === name);
    const toIndex = index(action.to);
    expect(toIndex).toBeGreaterThanOrEqual(0);
    const target = model.get(action.subname);
    if (action.mode === "full") {
      expect(target).toBeUndefined();
      const slash = action.subname.lastIndexOf("/");
      const parent = action.subname === "" ? null : slash < 0 ? "" : action.subname.slice(0, slash);
      // the target root's own parent is outside the tree; every other parent must exist by now
      if (parent !== null) expect(model.has(parent)).toBe(true);
      const arrived = source.snapshots.slice(toIndex, toIndex + 1);
      expect(action.snapshots).toEqual(arrived.map((x) => x.name));
      model.set(action.subname, {
        snapshots: arrived.map(({ name, guid }) => ({ name, guid })),
        partial: false,
      });
    } else if (action.mode === "resume") {
      expect(target?.partial).toBe(true);
      const arrived = source.snapshots.slice(toIndex, toIndex + 1);
      expect(action.snapshots).toEqual([action.to]);
      target?.snapshots.push(...arrived.map(({ name, guid }) => ({ name, guid })));
      if (target) target.partial = false;
    } else {
      expect(target).toBeDefined();
      expect(target?.partial).toBe(false);
      const fromIndex = index(action.from);
      const from = source.snapshots[fromIndex];
      // the target's newest snapshot must be the base, same guid: no -F needed, nothing lost
      expect(target?.snapshots.at(-1)).toEqual({
        name: from?.name ?? "?",
        guid: from?.guid ?? "?",
      });
      const arrived = source.snapshots.slice(fromIndex + 1, toIndex + 1);
      expect(arrived.length).toBeGreaterThan(0);
      expect(action.snapshots).toEqual(arrived.map((x) => x.name));
      target?.snapshots.push(...arrived.map(({ name, guid }) => ({ name, guid })));
    }
  }
  return model;
}

function byKey(inventory: Inventory) {
  return new Map(inventory.datasets.map((d) => [d.subname, d]));
}

describe("backup properties", () => {
  test("(b) only sends and abort-resumes: no destroy, no force flag, no rollback", () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const plan = planBackup(s.source, s.target, s.config, s.tokens);
        for (const action of plan.actions) {
          expect(["send", "abort-resume"]).toContain(action.kind);
          const keys = Object.keys(action).sort();
          if (action.kind === "send") {
            expect(keys).toEqual(
              [
                "from",
                "fromBookmark",
                "keepUnmounted",
                "kind",
                "mode",
                "raw",
                "snapshots",
                "sourceDataset",
                "subname",
                "targetDataset",
                "to",
                "token",
              ].sort(),
            );
            expect(["full", "incremental", "resume"]).toContain(action.mode);
            // canmount is set on a filesystem's first receive only (a full send, or the
            // resume of a cut one), never on a volume
            const from = s.source.datasets.find((d) => d.subname === action.subname);
            const into = s.target.datasets.find((d) => d.subname === action.subname);
            const first =
              action.mode === "full" || (action.mode === "resume" && into?.snapshots.length === 0);
            expect(action.keepUnmounted).toBe(first && from?.type === "filesystem");
          } else {
            expect(keys).toEqual(["kind", "reason", "subname", "targetDataset"]);
          }
        }
      }),
      RUNS,
    );
  });

  test("(c) applied to a model of the target, every safe pair ends with every source snapshot from the base on", () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const plan = planBackup(s.source, s.target, s.config, s.tokens);
        const model = applyBackup(s, plan.actions);
        const targets = byKey(s.target);
        const conflicted = new Set(plan.conflicts.map((c) => c.subname));
        const failed = new Set(plan.errors.map((e) => e.subname));
        for (const error of plan.errors) {
          expect(error.message).toMatch(
            /cannot be received: its parent|resume token was not checked/,
          );
        }
        for (const source of s.source.datasets) {
          const { subname } = source;
          if (!takesPart(subname, s) || source.snapshots.length === 0) continue;
          if (conflicted.has(subname) || failed.has(subname)) continue;
          const before = targets.get(subname);
          const after = model.get(subname);
          expect(after).toBeDefined();
          const wanted = source.snapshots.map(({ name, guid }) => ({ name, guid }));
          const got = after?.snapshots ?? [];
          // the base: the newest snapshot shared before the run, or the first one received
          const known = new Set((before?.snapshots ?? []).map(key));
          const baseIndex = wanted.findLastIndex((x) => known.has(key(x)));
          const fromBase = wanted.slice(Math.max(0, baseIndex));
          expect(got.slice(got.length - fromBase.length)).toEqual(fromBase);
          if (
            before === undefined ||
            (before.snapshots.length === 0 && before.resumeToken !== null)
          ) {
            // a new target (or a cut full receive): the oldest it got on is the start of the source
            const firstArrived = got[0];
            expect(firstArrived).toBeDefined();
            expect(got).toEqual(
              wanted.slice(wanted.findIndex((x) => key(x) === key(firstArrived ?? x))),
            );
          }
          expect(got.at(-1)).toEqual(wanted.at(-1));
        }
      }),
      RUNS,
    );
  });

  test("(e) conflicts are exactly the unsafe pairs, in backup, compare and cleanup alike", () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const expected = unsafeSubnames(s).sort();
        const backup = planBackup(s.source, s.target, s.config, s.tokens);
        expect([...new Set(backup.conflicts.map((c) => c.subname))].sort()).toEqual(expected);
        const comparison = compareTrees(s.source, s.target, s.config);
        const compared = comparison.rows
          .filter((r) => r.conflicts.length > 0)
          .map((r) => r.subname);
        expect(compared.sort()).toEqual(expected);
        const cleanup = planCleanup(s.source, s.target, s.config, "source", namer);
        expect([...new Set(cleanup.conflicts.map((c) => c.subname))].sort()).toEqual(expected);
        // every conflict is explained: common, source-only and target-only in its message
        for (const conflict of backup.conflicts) {
          expect(conflict.message).toContain(
            `newest common snapshot: ${conflict.common ?? "none"}`,
          );
          expect(conflict.message).toContain("source only: ");
          expect(conflict.message).toContain("target only: ");
        }
        // and no unsafe pair gets a single action
        const unsafeSet = new Set(expected);
        for (const action of backup.actions) expect(unsafeSet.has(action.subname)).toBe(false);
      }),
      RUNS,
    );
  });

  test("every taking-part source dataset with snapshots is sent, up to date, in conflict or in error", () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const plan = planBackup(s.source, s.target, s.config, s.tokens);
        const accounted = new Set([
          ...plan.actions.map((a) => a.subname),
          ...plan.conflicts.map((c) => c.subname),
          ...plan.errors.map((e) => e.subname),
          ...plan.skipped.filter((k) => k.reason === "up to date").map((k) => k.subname),
        ]);
        for (const source of s.source.datasets) {
          if (takesPart(source.subname, s) && source.snapshots.length > 0) {
            expect(accounted.has(source.subname)).toBe(true);
          }
        }
      }),
      RUNS,
    );
  });
});

describe("cleanup properties", () => {
  test("(a) never destroys a snapshot missing on the target, the newest common one, a foreign or held one", () => {
    fc.assert(
      fc.property(scenario, fc.constantFrom("source" as const, "target" as const), (s, side) => {
        const plan = planCleanup(s.source, s.target, s.config, side, namer);
        const sources = byKey(s.source);
        const targets = byKey(s.target);
        const unsafeSet = new Set(unsafeSubnames(s));
        const seen = new Set<string>();
        for (const action of plan.actions) {
          expect(action.kind).toBe("destroy");
          expect(action.side).toBe(side);
          expect(seen.has(action.subname)).toBe(false); // one action per dataset
          seen.add(action.subname);
          expect(takesPart(action.subname, s)).toBe(true);
          expect(unsafeSet.has(action.subname)).toBe(false);
          const source = sources.get(action.subname);
          const target = targets.get(action.subname);
          if (source === undefined || target === undefined)
            throw new Error("destroy without a pair");
          const own = side === "source" ? source : target;
          expect(action.dataset).toBe(own.name);
          expect(action.snapshots.length).toBeGreaterThan(0);

          const onTarget = new Set(target.snapshots.map(key));
          const onSource = new Set(source.snapshots.map(key));
          const common = source.snapshots.filter((x) => onTarget.has(key(x)));
          const newestCommon = common.at(-1);
          expect(newestCommon).toBeDefined();
          const doomed = action.snapshots.map((name) => own.snapshots.find((x) => x.name === name));
          let used = 0;
          for (const snapshot of doomed) {
            if (snapshot === undefined) throw new Error("destroys a snapshot that does not exist");
            used += snapshot.used;
            expect(snapshot.name).not.toBe(newestCommon?.name);
            expect(namer.isOwn(snapshot.name)).toBe(true);
            expect(snapshot.userrefs).toBe(0);
            if (side === "source") {
              expect(onTarget.has(key(snapshot))).toBe(true); // safety rule 1
            } else {
              expect(onSource.has(key(snapshot))).toBe(false);
              const firstCommon = target.snapshots.findIndex((x) => onSource.has(key(x)));
              expect(target.snapshots.indexOf(snapshot)).toBeLessThan(firstCommon);
            }
          }
          expect(action.used).toBe(used);
          if (side === "source") {
            const kept = common.filter((x) => !action.snapshots.includes(x.name));
            expect(kept.length).toBeGreaterThanOrEqual(
              Math.min(common.length, s.config.keepSnapshots),
            );
          } else {
            expect(s.config.keepBacklog).toBeGreaterThanOrEqual(0);
            const firstCommon = target.snapshots.findIndex((x) => onSource.has(key(x)));
            const backlogKept = firstCommon - action.snapshots.length;
            expect(backlogKept).toBeGreaterThanOrEqual(Math.min(firstCommon, s.config.keepBacklog));
          }
        }
      }),
      RUNS,
    );
  });
});
