// The chain's protection after a backup: hold the base on both sides, bookmark it, release
// abgleich's older holds and bookmarks, and nothing when everything is in place already.

import { describe, expect, test } from "bun:test";
import { planViolations } from "../../../lib/engine/guard.ts";
import { planBackup } from "../../../lib/plan/backup.ts";
import { holdTags, withChain } from "../../../lib/plan/chain.ts";
import { defaultNamer } from "../../../lib/plan/naming.ts";
import type { ChainAction, ChainEntry, Plan } from "../../../lib/plan/types.ts";
import type { Bookmark, Inventory, Snapshot } from "../../../lib/zfs/model.ts";
import { config, dst, history, inventory, snap, src } from "./fixtures.ts";

const TAGS = holdTags(config());
const isOwn = (name: string) => /^\d+$/.test(name);

const held = (snapshot: Snapshot, ...tags: string[]): Snapshot => ({
  ...snapshot,
  userrefs: tags.length,
  holds: tags,
});
const bookmarkOf = (snapshot: Snapshot): Bookmark => ({
  name: snapshot.name,
  guid: snapshot.guid,
  createtxg: snapshot.createtxg,
  creation: snapshot.creation,
});

/** the backup plan with its chain action, as the backup stage builds it */
function planWithChain(source: Inventory, target: Inventory, cfg = config()): Plan {
  return withChain(planBackup(source, target, cfg), source, target, cfg, isOwn);
}

const chainOf = (plan: Plan) => plan.actions.find((a): a is ChainAction => a.kind === "chain");

describe("hold tags", () => {
  test("the target's tag is `abgleich`; the source's names the target, so two targets keep two chains", () => {
    expect(TAGS).toEqual({ source: "abgleich:backup/host", target: "abgleich" });
    const remote = config({ target: { ...config().target, host: "nas" } });
    expect(holdTags(remote).source).toBe("abgleich:nas:backup/host");
    // one gateway, two machines: the port (and user) tell them apart
    const forwarded = (port: number | null, user = "") =>
      holdTags(config({ target: { ...config().target, host: "bk", port, user } })).source;
    expect(new Set([forwarded(null), forwarded(2222), forwarded(2223)]).size).toBe(3);
    expect(forwarded(2222, "backup")).toBe("abgleich:backup@bk:2222:backup/host");
    const long = config({ target: { ...config().target, prefix: "p".repeat(260) } });
    expect(holdTags(long).source).toMatch(/^abgleich:[0-9a-f]{16}$/);
  });
});

describe("planChain", () => {
  const [a, b, c] = history("1001", "1002", "1003") as [Snapshot, Snapshot, Snapshot];

  test("after sends: hold the new base on both sides, bookmark it, release the old holds", () => {
    const source = inventory("source", [
      src("", [a, held(b, TAGS.source, "someone"), c], {
        bookmarks: [bookmarkOf(a), bookmarkOf(b)],
      }),
    ]);
    const target = inventory("target", [dst("", [a, held(b, TAGS.target)])]);
    const plan = planWithChain(source, target);
    expect(chainOf(plan)?.entries).toEqual([
      {
        subname: "",
        sourceDataset: "tank/data",
        targetDataset: "backup/host",
        base: "1003",
        holdSource: true,
        holdTarget: true,
        bookmark: true,
        releaseSource: ["1002"],
        releaseTarget: ["1002"],
        destroyBookmarks: ["1001", "1002"],
      },
    ]);
    expect(planViolations("backup", plan, source, target, undefined, isOwn)).toEqual([]);
  });

  test("up to date and protected: no chain action at all (a no-op run changes nothing)", () => {
    const source = inventory("source", [
      src("", [a, held(b, TAGS.source)], { bookmarks: [bookmarkOf(b)] }),
    ]);
    const target = inventory("target", [dst("", [a, held(b, TAGS.target)])]);
    expect(planWithChain(source, target).actions).toEqual([]);
  });

  test("up to date but never protected (first run with this version): hold and bookmark only", () => {
    const source = inventory("source", [src("", [a, b])]);
    const target = inventory("target", [dst("", [a, b])]);
    const entries = chainOf(planWithChain(source, target))?.entries ?? [];
    expect(entries.map((e) => [e.base, e.holdSource, e.holdTarget, e.bookmark])).toEqual([
      ["1002", true, true, true],
    ]);
  });

  test("ignored datasets and a left-out root get no holds or bookmarks", () => {
    const source = inventory("source", [src("", [a, b]), src("x", [a, b]), src("y", [a, b])]);
    const target = inventory("target", [dst("", [a, b]), dst("x", [a, b]), dst("y", [a, b])]);
    const plan = planWithChain(source, target, config({ ignore: ["x"], includeRoot: false }));
    expect(chainOf(plan)?.entries.map((e) => e.subname)).toEqual(["y"]);
  });

  test("another target's chain base keeps its bookmark (its hold is that target's tag)", () => {
    const source = inventory("source", [
      src("", [a, held(b, "abgleich:elsewhere/root"), c], {
        bookmarks: [bookmarkOf(a), bookmarkOf(b)],
      }),
    ]);
    const target = inventory("target", [dst("", [a, b])]);
    const entries = chainOf(planWithChain(source, target))?.entries ?? [];
    expect(entries.map((e) => [e.base, e.destroyBookmarks, e.releaseSource])).toEqual([
      ["1003", ["1001"], []],
    ]);
  });

  test("other tools' holds, foreign bookmarks and conflicted datasets are left alone", () => {
    const foreign: Bookmark = { ...bookmarkOf(a), name: "manual" };
    const source = inventory("source", [
      src("", [held(a, "backup-tool"), b], { bookmarks: [foreign] }),
      src("x", history("1001", "1002")),
    ]);
    const target = inventory("target", [
      dst("", [held(a, "backup-tool")]),
      dst("x", [snap("1001", { guid: "other" })]),
    ]);
    const plan = planWithChain(source, target);
    const entries = chainOf(plan)?.entries ?? [];
    expect(entries.map((e) => e.subname)).toEqual([""]);
    expect(entries[0]?.releaseSource).toEqual([]);
    expect(entries[0]?.releaseTarget).toEqual([]);
    expect(entries[0]?.destroyBookmarks).toEqual([]);
  });
});

describe("the guard on chain actions", () => {
  const [a, b] = history("1001", "1002") as [Snapshot, Snapshot];
  const source = inventory("source", [src("", [a, b], { bookmarks: [bookmarkOf(a)] })]);
  const target = inventory("target", [dst("", [a])]);
  const entry: ChainEntry = {
    subname: "",
    sourceDataset: "tank/data",
    targetDataset: "backup/host",
    base: "1001",
    holdSource: true,
    holdTarget: true,
    bookmark: false,
    releaseSource: [],
    releaseTarget: [],
    destroyBookmarks: [],
  };
  const check = (changes: Partial<ChainEntry>) =>
    planViolations(
      "backup",
      {
        actions: [{ kind: "chain", entries: [{ ...entry, ...changes }] }],
        conflicts: [],
        skipped: [],
        errors: [],
      },
      source,
      target,
      undefined,
      defaultNamer(config()).isOwn,
    );

  test("a base the target does not hold, or releasing the base's own hold, is refused", () => {
    expect(check({})).toEqual([]);
    expect(check({ base: "1002" })).toEqual([
      "tank/data@1002 is not on both sides, so it is no chain's base",
    ]);
    expect(check({ releaseTarget: ["1001"] })).toEqual([
      "a release of the hold on 1001, the base of tank/data's chain",
    ]);
  });

  test("only older bookmarks of abgleich's own may be destroyed", () => {
    const mine = inventory("source", [
      src("", [a, b], { bookmarks: [bookmarkOf(a), { ...bookmarkOf(a), name: "manual" }] }),
    ]);
    const violations = planViolations(
      "backup",
      {
        actions: [{ kind: "chain", entries: [{ ...entry, destroyBookmarks: ["1001", "manual"] }] }],
        conflicts: [],
        skipped: [],
        errors: [],
      },
      mine,
      target,
      undefined,
      (name) => /^\d+$/.test(name),
    );
    expect(violations).toEqual([
      "tank/data#1001 is not older than the chain's base 1001",
      "tank/data#manual is not older than the chain's base 1001",
      "tank/data#manual is not one of abgleich's own",
    ]);
  });
});
