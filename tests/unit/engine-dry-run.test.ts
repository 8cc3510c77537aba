// A dry run chains its previews: each stage plans against the sides as the earlier stages'
// plans would have left them. That view exists only in the dry run: a real run, even one
// opened after a dry run in the same process, plans and acts on the pools as they are.

import { describe, expect, test } from "bun:test";
import type { Config } from "../../lib/config/types.ts";
import { refuseSimulated, SafetyError } from "../../lib/engine/guard.ts";
import { createHooks } from "../../lib/engine/hooks.ts";
import { Run, type StageResult } from "../../lib/engine/runner.ts";
import { stages } from "../../lib/engine/stages/index.ts";
import type { StageUi } from "../../lib/engine/ui.ts";
import { plannedGuid } from "../../lib/plan/simulate.ts";
import type { DestroyAction, Plan, SendAction, SnapshotAction } from "../../lib/plan/types.ts";
import type { Side } from "../../lib/zfs/model.ts";
import { type MemoryHost, memoryHost } from "../helpers/memory-host.ts";
import { config, dst, history, inventory, snap, src } from "./plan/fixtures.ts";

const S1 = "2026112501";
const S2 = "2026112502";
const NOW = new Date(2026, 10, 30, 12);
// every snapshot but the newest common one may go: the chain decides what stays
const cfg = config({ checkDiff: false, keepBacklog: 0 });

function hosts() {
  return {
    // home has data written since its newest snapshot: snap would take one
    source: memoryHost(
      "source",
      inventory("source", [
        src("", history(S1, S2)),
        src("home", history(S1, S2), { written: 8192 }),
      ]),
    ),
    target: memoryHost(
      "target",
      inventory("target", [dst("", history(S1, S2)), dst("home", history(S1, S2))]),
    ),
  };
}

function open(sides: { source: MemoryHost; target: MemoryHost }, dryRun: boolean): Run {
  const ui: StageUi = {
    showPlan() {},
    confirm: async () => true,
    actionStarted() {},
    actionProgress() {},
    actionFinished() {},
    note() {},
    warn() {},
    stageFinished() {},
  };
  return Run.open(
    cfg,
    createHooks(),
    ui,
    {
      yes: true,
      dryRun,
      json: false,
      interactive: false,
      signal: new AbortController().signal,
      now: () => NOW,
      hostFor: (side: Side, _config: Config) => sides[side],
    },
    dryRun ? "dry-run" : "changing",
  );
}

const made = (result: StageResult) =>
  result.plan.actions.flatMap((a) => (a as SnapshotAction).snapshots.map((s) => s.name));
const sent = (plan: Plan) =>
  plan.actions
    .filter((a): a is SendAction => a.kind === "send")
    .map((a) => `${a.subname}:${a.from}→${a.to}`);
const destroyed = (plan: Plan) =>
  plan.actions.flatMap((a) => (a as DestroyAction).snapshots.map((n) => `${a.kind} ${n}`));
/** the zfs commands that change something */
const changes = (host: MemoryHost) =>
  host.calls
    .filter((argv) =>
      ["snapshot", "destroy", "hold", "release", "bookmark"].includes(argv[1] ?? ""),
    )
    .map((argv) => argv.join(" "));

describe("a dry run chains its stages", () => {
  test("backup previews the snapshot snap would make; cleanup previews after both; nothing changes", async () => {
    const sides = hosts();
    const run = open(sides, true);
    const snapped = await stages.snap(run);
    expect(snapped.outcome.status).toBe("dry-run");
    const [name] = made(snapped);
    expect(name).toBeDefined();

    const backup = await stages.backup(run);
    expect(backup.outcome.error?.message).toBeUndefined();
    expect(backup.outcome.status).toBe("dry-run");
    expect(sent(backup.plan)).toEqual([`home:${S2}→${name}`]);
    expect(backup.plan.planned).toEqual([`tank/data/home@${name}`]);

    // after the planned send, the planned snapshot is the newest common one: S2 may go
    const cleanup = await stages.cleanup(run, "source");
    expect(cleanup.outcome.status).toBe("dry-run");
    expect(destroyed(cleanup.plan)).toContain(`destroy ${S2}`);

    expect(changes(sides.source)).toEqual([]);
    expect(changes(sides.target)).toEqual([]);
    expect(sides.source.datasets[1]?.snapshots.map((s) => s.name)).toEqual([S1, S2]);
    expect((await run.finish(null)).code).toBe(0);
  });

  test("a real run after a dry run in the same process plans from the pools as they are", async () => {
    const sides = hosts();
    const dry = open(sides, true);
    await stages.snap(dry);
    await stages.backup(dry);
    await dry.finish(null);

    const real = open(sides, false);
    // S2 is really the newest common snapshot of home: the real cleanup keeps it
    const cleanup = await stages.cleanup(real, "source");
    expect(cleanup.outcome.status).toBe("ok");
    expect(cleanup.plan.planned).toBeUndefined();
    expect(destroyed(cleanup.plan)).not.toContain(`destroy ${S2}`);
    expect(sides.source.datasets[1]?.snapshots.map((s) => s.name)).toEqual([S2]);
    // and the real backup plans nothing: snap did not really run
    const backup = await stages.backup(real);
    expect(sent(backup.plan)).toEqual([]);
    expect((await real.finish(null)).code).toBe(0);
  });

  test("a run refuses to act on a view that holds a planned snapshot", () => {
    const planned = snap("2026113001", { guid: plannedGuid("tank/data/home@2026113001") });
    const source = inventory("source", [
      src("", history(S1)),
      src("home", [...history(S1), planned]),
    ]);
    const target = inventory("target", [dst("", history(S1))]);
    expect(() => refuseSimulated([source, target])).toThrow(SafetyError);
    expect(() => refuseSimulated([target, source])).toThrow(
      /tank\/data holds snapshots only a dry run planned/,
    );
    expect(() =>
      refuseSimulated([inventory("source", [src("", history(S1))]), target]),
    ).not.toThrow();
  });
});
