// The cleanup stage: destroy snapshots the other side makes redundant, one `zfs destroy
// ds@a,b,c` per dataset, on the host of the side it cleans, then report the space freed once
// the pool has really freed it.

import { formatBytes } from "../../cli/render/units.ts";
import { rootOf } from "../../config/types.ts";
import { holdTags } from "../../plan/chain.ts";
import { planCleanup } from "../../plan/cleanup.ts";
import type { Action } from "../../plan/types.ts";
import type { Side } from "../../zfs/model.ts";
import type { ZfsPort } from "../../zfs/port.ts";
import type { ChangingStage, Run } from "../runner.ts";
import { requireSourceRoot, requireTargetRoot } from "./preflight.ts";

/** how long to wait for a pool's asynchronous `freeing` to reach 0 before reporting anyway */
const FREEING_WAIT_MS = 30_000;

/** poll `freeing` with a growing interval until it is 0 or the bounded wait is over */
export async function waitForFreeing(
  port: ZfsPort,
  pool: string,
  limitMs = FREEING_WAIT_MS,
): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  let interval = 100;
  for (;;) {
    const freeing = await port.freeing(pool);
    if (freeing === null) return false;
    if (freeing === 0) return true;
    if (Date.now() + interval > deadline) return false;
    await Bun.sleep(interval);
    interval = Math.min(interval * 2, 2000);
  }
}

export function cleanupStage(run: Run, side: Side): ChangingStage {
  const port = run.ports[side];
  const root = rootOf(run.config[side]);
  let usedBefore: number | null = null;
  return {
    stage: "cleanup",
    side,
    danger: side === "target",
    reads: ["source", "target"],
    changes: [side],
    preflight: async ({ source, target }) => {
      requireSourceRoot(run, source);
      requireTargetRoot(run, target);
    },
    plan: async ({ source, target }) => {
      usedBefore = (side === "source" ? source : target).datasets[0]?.used ?? null;
      return planCleanup(source, target, run.config, side, run.namer());
    },
    execute: async (action: Action) => {
      if (action.kind !== "destroy") throw new Error(`cleanup cannot run a ${action.kind} action`);
      // the guard has checked that the action's side is this stage's side: run it there
      const port = run.ports[action.side];
      if (action.release && action.release.length > 0) {
        const tag = holdTags(run.config)[action.side];
        const released = await port.release(
          tag,
          action.release.map((name) => `${action.dataset}@${name}`),
        );
        if (!released.ok) return released;
      }
      const outcome = await port.destroy(action.dataset, action.snapshots);
      if (outcome.ok) run.summary.destroyed(action.subname, action.side, action.snapshots);
      return outcome;
    },
    finish: async (results) => {
      if (!results.some((r) => r.outcome.ok)) return;
      const settled = await waitForFreeing(port, run.config[side].zpool);
      const usedAfter = await port.used(root);
      if (usedBefore !== null && usedAfter !== null) {
        const freed = Math.max(0, usedBefore - usedAfter);
        run.ui.note(
          run.stageInfo("cleanup", side),
          `space freed on ${side} ${root}: ${formatBytes(freed)}${settled ? "" : " so far (the pool is still freeing)"}`,
        );
      }
    },
  };
}
