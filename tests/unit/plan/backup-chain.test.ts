// Encrypted sources are sent raw; a bookmark keeps the chain when the base snapshot is gone.

import { describe, expect, test } from "bun:test";
import { planViolations } from "../../../lib/engine/guard.ts";
import { planBackup } from "../../../lib/plan/backup.ts";
import { pairConflicts } from "../../../lib/plan/conflicts.ts";
import type { SendAction } from "../../../lib/plan/types.ts";
import type { Bookmark, Snapshot } from "../../../lib/zfs/model.ts";
import { config, dst, history, inventory, src } from "./fixtures.ts";

/** a bookmark of a snapshot: same name, guid and createtxg */
const bookmarkOf = (snapshot: Snapshot): Bookmark => ({
  name: snapshot.name,
  guid: snapshot.guid,
  createtxg: snapshot.createtxg,
  creation: snapshot.creation,
});

const described = (actions: readonly { kind: string }[]) =>
  actions.map((action) => {
    const s = action as SendAction;
    const base = s.fromBookmark ? `#${s.from}` : (s.from ?? "-");
    return `${s.mode}${s.raw ? " raw" : ""} ${base}→${s.to} [${s.snapshots.join(" ")}]`;
  });

describe("encrypted sources", () => {
  test("every stream of an encrypted dataset is raw; a plain one is not", () => {
    const encrypted = { encryption: "aes-256-gcm", keystatus: "available" as const };
    const source = inventory("source", [
      src("", history("s1", "s2")),
      src("secret", history("s1", "s2"), encrypted),
    ]);
    const plan = planBackup(source, inventory("target", [dst("", history("s1"))]), config());
    expect(described(plan.actions)).toEqual([
      "incremental s1→s2 [s2]",
      "full raw -→s1 [s1]",
      "incremental raw s1→s2 [s2]",
    ]);
    expect(
      planViolations("backup", plan, source, inventory("target", [dst("", history("s1"))])),
    ).toEqual([]);
  });

  test("the guard refuses a plaintext stream of an encrypted dataset, whoever planned it", () => {
    const source = inventory("source", [
      src("", history("s1"), { encryption: "aes-256-gcm", keystatus: "available" }),
    ]);
    const target = inventory("target", []);
    const plan = planBackup(source, target, config());
    const action = plan.actions[0] as SendAction;
    const plaintext = { ...plan, actions: [{ ...action, raw: false }] };
    expect(planViolations("backup", plaintext, source, target)).toEqual([
      "tank/data is encrypted and would be sent as plaintext (not raw)",
    ]);
  });
});

describe("backups are not mounted at boot", () => {
  test("a filesystem's full send sets canmount=noauto; a volume's and every later one does not", () => {
    const source = inventory("source", [
      src("", history("s1", "s2")),
      src("fs", history("s1")),
      src("vol", history("s1"), { type: "volume", mounted: null }),
    ]);
    const target = inventory("target", [dst("", history("s1"))]);
    const plan = planBackup(source, target, config());
    const sends = plan.actions as SendAction[];
    expect(sends.map((s) => `${s.subname || "(root)"} ${s.mode} ${s.keepUnmounted}`)).toEqual([
      "(root) incremental false",
      "fs full true",
      "vol full false",
    ]);
    expect(planViolations("backup", plan, source, target)).toEqual([]);
  });

  test("the guard refuses canmount on a volume's receive or on a later one", () => {
    const source = inventory("source", [
      src("", history("s1", "s2")),
      src("vol", history("s1"), { type: "volume", mounted: null }),
    ]);
    const target = inventory("target", [dst("", history("s1"))]);
    const plan = planBackup(source, target, config());
    const actions = (plan.actions as SendAction[]).map((s) => ({ ...s, keepUnmounted: true }));
    expect(planViolations("backup", { ...plan, actions }, source, target)).toEqual([
      "an incremental send into backup/host that sets canmount (only a filesystem's first receive does)",
      "a full send into backup/host/vol that sets canmount (only a filesystem's first receive does)",
    ]);
  });

  test("the guard refuses a filesystem's full send without it: the plan shows one line for all", () => {
    const source = inventory("source", [src("", history("s1"))]);
    const target = inventory("target", []);
    const plan = planBackup(source, target, config());
    const actions = (plan.actions as SendAction[]).map((s) => ({ ...s, keepUnmounted: false }));
    expect(planViolations("backup", { ...plan, actions }, source, target)).toEqual([
      "a full send into backup/host without canmount=noauto (a new backup would be mounted at boot)",
    ]);
  });

  test("the resume of a cut first receive sets it (the cut one may not have); of an incremental not", () => {
    const source = inventory("source", [src("", history("s1", "s2")), src("cut", history("s1"))]);
    const target = inventory("target", [
      dst("", history("s1"), { resumeToken: "1-incremental" }),
      dst("cut", [], { resumeToken: "1-full" }),
    ]);
    const tokens = new Map([
      ["", { ok: true as const, toname: "tank/data@s2" }],
      ["cut", { ok: true as const, toname: "tank/data/cut@s1" }],
    ]);
    const plan = planBackup(source, target, config(), tokens);
    const sends = plan.actions as SendAction[];
    expect(sends.map((s) => `${s.subname || "(root)"} ${s.mode} ${s.keepUnmounted}`)).toEqual([
      "(root) resume false",
      "cut resume true",
    ]);
    expect(planViolations("backup", plan, source, target)).toEqual([]);
  });
});

describe("bookmarks keep the chain", () => {
  const full = history("s1", "s2", "s3", "s4");
  const [s1, s2, s3, s4] = full as [Snapshot, Snapshot, Snapshot, Snapshot];

  test("the newest common snapshot destroyed on the source: -i from its bookmark, then -I", () => {
    // the target ends at s2; the source destroyed s1 and s2 but kept the bookmark #s2
    const source = inventory("source", [src("", [s3, s4], { bookmarks: [bookmarkOf(s2)] })]);
    const target = inventory("target", [dst("", [s1, s2])]);
    const plan = planBackup(source, target, config());
    expect(plan.conflicts).toEqual([]);
    expect(described(plan.actions)).toEqual(["incremental #s2→s3 [s3]", "incremental s3→s4 [s4]"]);
    expect(planViolations("backup", plan, source, target)).toEqual([]);
  });

  test("with the snapshot still there, the snapshot is the base, not the bookmark", () => {
    const source = inventory("source", [src("", full, { bookmarks: [bookmarkOf(s2)] })]);
    const target = inventory("target", [dst("", [s1, s2])]);
    expect(described(planBackup(source, target, config()).actions)).toEqual([
      "incremental s2→s4 [s3 s4]",
    ]);
  });

  test("a bookmark of an older snapshot than where the target ends is no base", () => {
    // the target ends at s3, which the source no longer has; only #s2 is left: no chain
    const source = inventory("source", [src("", [s4], { bookmarks: [bookmarkOf(s2)] })]);
    const target = inventory("target", [dst("", [s1, s2, s3])]);
    const plan = planBackup(source, target, config());
    expect(plan.actions).toEqual([]);
    expect(plan.conflicts.map((c) => c.kind)).toEqual(["no-common"]);
  });

  test("a target written to since the bookmarked snapshot is a conflict", () => {
    const source = inventory("source", [src("", [s3], { bookmarks: [bookmarkOf(s2)] })]);
    const target = dst("", [s1, s2], { written: 4096 });
    expect(pairConflicts("", source.datasets[0] as never, target).map((c) => c.kind)).toEqual([
      "target-modified",
    ]);
  });

  test("the guard refuses a bookmark base that is not where the target ends", () => {
    const source = inventory("source", [
      src("", [s3, s4], { bookmarks: [bookmarkOf(s1), bookmarkOf(s2)] }),
    ]);
    const target = inventory("target", [dst("", [s1, s2])]);
    const plan = planBackup(source, target, config());
    const first = plan.actions[0] as SendAction;
    const wrong = { ...plan, actions: [{ ...first, from: "s1" }] };
    expect(planViolations("backup", wrong, source, target)).toEqual([
      "an incremental from bookmark #s1, which is not where backup/host ends",
    ]);
    const missing = { ...plan, actions: [{ ...first, from: "nosuch" }] };
    expect(planViolations("backup", missing, source, target)).toEqual([
      "a send from bookmark tank/data#nosuch, which does not exist",
    ]);
  });
});
