import { describe, expect, test } from "bun:test";
import { planBackup, type TokenInfo } from "../../../lib/plan/backup.ts";
import { abbreviateNames } from "../../../lib/plan/conflicts.ts";
import { compareSnapshots, pairDatasets } from "../../../lib/plan/pairs.ts";
import type { SendAction } from "../../../lib/plan/types.ts";
import { config, dst, history, inventory, snap, src } from "./fixtures.ts";

const sends = (actions: readonly { kind: string }[]) =>
  actions.map((action) => {
    if (action.kind !== "send") return action.kind;
    const s = action as SendAction;
    return `${s.mode} ${s.subname} ${s.from ?? "-"}→${s.to} [${s.snapshots.join(" ")}]`;
  });

describe("pairs", () => {
  test("pairs by subname; include_root and exact ignore decide who takes part", () => {
    const pairs = pairDatasets(
      inventory("source", [src("", []), src("a", []), src("a/b", [])]),
      inventory("target", [dst("", []), dst("old", [])]),
      config({ includeRoot: false, ignore: ["a"] }),
    );
    expect(pairs.map((p) => [p.subname, !!p.source, !!p.target, p.excluded])).toEqual([
      ["", true, true, "root dataset left out (include_root: no)"],
      ["a", true, false, "ignored (listed in ignore)"],
      ["a/b", true, false, null],
      ["old", false, true, null],
    ]);
  });

  test("common means same name and same guid; a name with another guid is a mismatch", () => {
    const overlap = compareSnapshots(
      src("a", history("s1", "s2", "s3", "s4")),
      dst("a", history("s1", snap("s2", { guid: "other" }), "s3", "t1")),
    );
    expect(overlap.common.map((c) => c.source.name)).toEqual(["s1", "s3"]);
    expect(overlap.newestCommon?.source.name).toBe("s3");
    expect(overlap.mismatches).toEqual([{ name: "s2", sourceGuid: "g-s2", targetGuid: "other" }]);
    expect(overlap.sourceOnly).toEqual(["s4"]);
    expect(overlap.targetOnly).toEqual(["t1"]);
  });
});

describe("planBackup: sending", () => {
  test("target missing: full send of the oldest, then one -I to the newest; parents first", () => {
    const plan = planBackup(
      inventory("source", [src("", history("s1", "s2", "s3")), src("a", history("s2"))]),
      inventory("target", []),
      config(),
    );
    expect(sends(plan.actions)).toEqual([
      "full  -→s1 [s1]",
      "incremental  s1→s3 [s2 s3]",
      "full a -→s2 [s2]",
    ]);
    expect(plan.actions[0]).toMatchObject({
      sourceDataset: "tank/data",
      targetDataset: "backup/host",
    });
    expect(plan.conflicts).toEqual([]);
  });

  test("target present: -I from the newest common snapshot; up to date is skipped", () => {
    const plan = planBackup(
      inventory("source", [src("", history("s1", "s2", "s3", "s4")), src("b", history("s1"))]),
      inventory("target", [dst("", history("s1", "s2")), dst("b", history("s1"))]),
      config(),
    );
    expect(sends(plan.actions)).toEqual(["incremental  s2→s4 [s3 s4]"]);
    expect(plan.skipped).toEqual([{ subname: "b", reason: "up to date" }]);
  });

  test("a cleaned-up source still sends from the newest common snapshot", () => {
    const plan = planBackup(
      inventory("source", [src("", history("s3", "s4", "s5"))]),
      inventory("target", [dst("", history("s1", "s2", "s3", "s4"))]),
      config(),
    );
    expect(sends(plan.actions)).toEqual(["incremental  s4→s5 [s5]"]);
  });

  test("no snapshot yet, ignored, and root without include_root are skipped with reasons", () => {
    const plan = planBackup(
      inventory("source", [src("", history("s1")), src("a", []), src("b", history("s1"))]),
      inventory("target", [dst("", [])]),
      config({ includeRoot: false, ignore: ["b"] }),
    );
    expect(plan.actions).toEqual([]);
    expect(plan.skipped).toEqual([
      { subname: "", reason: "root dataset left out (include_root: no)" },
      { subname: "a", reason: "no snapshot yet; run snap first" },
      { subname: "b", reason: "ignored (listed in ignore)" },
    ]);
  });

  test("a child whose target parent will not exist is an error, not attempted", () => {
    const plan = planBackup(
      inventory("source", [
        src("", history("s1")),
        src("ign", history("s1")),
        src("ign/kid", history("s1")),
        src("empty", []),
        src("empty/kid", history("s1")),
        src("ok", history("s1")),
        src("ok/kid", history("s1")),
      ]),
      inventory("target", []),
      config({ ignore: ["ign"] }),
    );
    expect(sends(plan.actions)).toEqual([
      "full  -→s1 [s1]",
      "full ok -→s1 [s1]",
      "full ok/kid -→s1 [s1]",
    ]);
    expect(plan.errors.map((e) => e.subname)).toEqual(["ign/kid", "empty/kid"]);
    expect(plan.errors[0]?.message).toContain("its parent 'ign' is ignored");
    expect(plan.errors[1]?.message).toContain(
      "its parent backup/host/empty does not exist on the target and is not sent in this run",
    );
  });

  test("a child of the left-out root is received when the target root already exists", () => {
    const plan = planBackup(
      inventory("source", [src("", history("s1")), src("a", history("s1"))]),
      inventory("target", [dst("", [])]),
      config({ includeRoot: false }),
    );
    expect(sends(plan.actions)).toEqual(["full a -→s1 [s1]"]);
    const missingRoot = planBackup(
      inventory("source", [src("", history("s1")), src("a", history("s1"))]),
      inventory("target", []),
      config({ includeRoot: false }),
    );
    expect(missingRoot.errors[0]?.message).toContain("create backup/host by hand");
  });
});

describe("planBackup: conflicts are skipped and explained", () => {
  function only(sourceSnaps: string[], targetDataset: ReturnType<typeof dst>) {
    const plan = planBackup(
      inventory("source", [src("a", history(...sourceSnaps))]),
      inventory("target", [targetDataset]),
      config(),
    );
    expect(plan.actions).toEqual([]);
    return plan.conflicts;
  }

  test("no-common: the target shares no snapshot with the source", () => {
    const [conflict, ...rest] = only(["s1", "s2"], dst("a", history("x1")));
    expect(rest).toEqual([]);
    expect(conflict).toMatchObject({
      kind: "no-common",
      common: null,
      sourceOnly: ["s1", "s2"],
      targetOnly: ["x1"],
    });
    expect(conflict?.message).toContain(
      "newest common snapshot: none; source only: s1, s2; target only: x1",
    );
    expect(conflict?.message).toContain("never uses");
    expect(conflict?.message).toContain("backup/host/a");
  });

  test("no-common: an existing target without any snapshot", () => {
    const [conflict] = only(["s1"], dst("a", []));
    expect(conflict?.kind).toBe("no-common");
    expect(conflict?.message).toContain("the target exists but has no snapshot");
  });

  test("guid-mismatch: same name, other guid", () => {
    const conflicts = only(["s1", "s2", "s3"], dst("a", history("s1", snap("s2", { guid: "zz" }))));
    expect(conflicts.map((c) => c.kind)).toEqual(["guid-mismatch", "target-ahead"]);
    expect(conflicts[0]?.message).toContain(
      "snapshot(s) s2 exist on both sides with different guids",
    );
    expect(conflicts[0]?.message).toContain("newest common snapshot: s1");
    expect(conflicts[0]?.message).toContain("source only: s3");
  });

  test("target-ahead: target snapshots after the newest common one", () => {
    const [conflict] = only(["s1", "s2", "s3"], dst("a", history("s1", "s2", "t1", "t2")));
    expect(conflict).toMatchObject({
      kind: "target-ahead",
      common: "s2",
      sourceOnly: ["s3"],
      targetOnly: ["t1", "t2"],
    });
    expect(conflict?.message).toContain("2 snapshots after the newest common one s2: t1, t2");
    // they may be the only copies of newer data: keeping them is said first
    expect(conflict?.message).toContain(
      "keep them by renaming the target dataset out of the target root (zfs rename 'backup/host/a' …;",
    );
    expect(conflict?.message).toContain("otherwise roll back the target by hand");
    expect(conflict?.message).toContain("zfs rollback -r 'backup/host/a@s2'");
  });

  test("target-modified: data written on the target since the newest common snapshot", () => {
    const [conflict] = only(["s1", "s2"], dst("a", history("s1"), { written: 4096 }));
    expect(conflict).toMatchObject({
      kind: "target-modified",
      common: "s1",
      sourceOnly: ["s2"],
      targetOnly: [],
    });
    expect(conflict?.message).toContain("4096 bytes written since the newest common snapshot s1");
    expect(conflict?.message).toContain("readonly=on");
  });

  test("target-modified on a mounted target: where the write came from, and how to keep it unmounted", () => {
    const mounted = dst("a", history("s1"), {
      written: 4096,
      mounted: true,
      mountpoint: "/backup/host/a",
    });
    const [conflict] = only(["s1", "s2"], mounted);
    expect(conflict?.message).toContain(
      "It is mounted (at /backup/host/a), which is where something wrote: unless you are reading it now, unmount it (zfs unmount 'backup/host/a') and keep boot from mounting it again (zfs set canmount=noauto 'backup/host/a').",
    );
    // not mounted: not said
    const [unmounted] = only(
      ["s1", "s2"],
      dst("a", history("s1"), { written: 4096, mounted: false }),
    );
    expect(unmounted?.message).not.toContain("mounted");
  });

  test("target-modified also when already up to date: the target diverged", () => {
    const [conflict] = only(["s1"], dst("a", history("s1"), { written: 1 }));
    expect(conflict?.kind).toBe("target-modified");
  });

  test("type-mismatch: filesystem against volume", () => {
    const conflicts = only(
      ["s1", "s2"],
      dst("a", history("s1"), { type: "volume", mounted: null }),
    );
    expect(conflicts.map((c) => c.kind)).toEqual(["type-mismatch"]);
    expect(conflicts[0]?.message).toContain(
      "the source tank/data/a is a filesystem but the target is a volume",
    );
  });

  test("long lists are abbreviated at both ends", () => {
    const names = Array.from({ length: 20 }, (_, i) => `s${i}`);
    expect(abbreviateNames(names)).toBe("s0, s1, s2, s3, … 14 more …, s18, s19");
    const [conflict] = only(names, dst("a", history("x")));
    expect(conflict?.message).toContain("source only: s0, s1, s2, s3, … 14 more …, s18, s19");
    expect(conflict?.sourceOnly).toHaveLength(20);
  });
});

describe("planBackup: resume", () => {
  const token = "1-abc-def";

  test("a partial incremental with a valid token: resume first, then the rest", () => {
    const plan = planBackup(
      inventory("source", [src("a", history("s1", "s2", "s3", "s4"))]),
      inventory("target", [dst("a", history("s1"), { resumeToken: token })]),
      config(),
      new Map<string, TokenInfo>([["a", { ok: true, toname: "tank/data/a@s2", size: 10 }]]),
    );
    expect(sends(plan.actions)).toEqual(["resume a -→s2 [s2]", "incremental a s2→s4 [s3 s4]"]);
    expect(plan.actions[0]).toMatchObject({ token });
  });

  test("a cut full receive (token, no snapshot) is resumed, not a conflict", () => {
    const plan = planBackup(
      inventory("source", [src("a", history("s1", "s2"))]),
      inventory("target", [dst("a", [], { resumeToken: token })]),
      config(),
      new Map<string, TokenInfo>([["a", { ok: true, toname: "tank/data/a@s1" }]]),
    );
    expect(plan.conflicts).toEqual([]);
    expect(sends(plan.actions)).toEqual(["resume a -→s1 [s1]", "incremental a s1→s2 [s2]"]);
  });

  test("a token whose snapshot is gone: abort, then plan as if nothing was partial", () => {
    const plan = planBackup(
      inventory("source", [src("a", history("s1", "s3"))]),
      inventory("target", [dst("a", history("s1"), { resumeToken: token })]),
      config(),
      new Map<string, TokenInfo>([["a", { ok: true, toname: "tank/data/a@s2" }]]),
    );
    expect(sends(plan.actions)).toEqual(["abort-resume", "incremental a s1→s3 [s3]"]);
    expect(plan.actions[0]).toMatchObject({
      targetDataset: "backup/host/a",
      reason: "the token's snapshot tank/data/a@s2 no longer exists on the source",
    });
  });

  test("an invalid token on a cut full receive: abort, then a full send", () => {
    const plan = planBackup(
      inventory("source", [src("a", history("s1", "s2"))]),
      inventory("target", [dst("", []), dst("a", [], { resumeToken: token })]),
      config(),
      new Map<string, TokenInfo>([["a", { ok: false, reason: "resume token is corrupt" }]]),
    );
    expect(sends(plan.actions)).toEqual([
      "abort-resume",
      "full a -→s1 [s1]",
      "incremental a s1→s2 [s2]",
    ]);
    expect(plan.actions[0]).toMatchObject({ reason: "resume token is corrupt" });
  });

  test("a token nobody checked is an error, never a guess", () => {
    const plan = planBackup(
      inventory("source", [src("a", history("s1", "s2"))]),
      inventory("target", [dst("a", history("s1"), { resumeToken: token })]),
      config(),
    );
    expect(plan.actions).toEqual([]);
    expect(plan.errors[0]?.message).toContain("resume token was not checked");
  });
});
