// The backup stage: send what the target lacks, parents first; resume cut transfers; report
// conflicts and skip them. Each transfer is one OS pipeline from the source host to the target
// host; bytes never pass through JavaScript.

import { planBackup, type TokenInfo } from "../../plan/backup.ts";
import type { Action, Plan, SendAction } from "../../plan/types.ts";
import { runSend, sendSpec } from "../../run/actions.ts";
import { mapLimit, QUERY_CONCURRENCY } from "../../run/limit.ts";
import type { Inventory } from "../../zfs/model.ts";
import type { ChangingStage, Run } from "../runner.ts";
import { requireSourceRoot, requireTargetParent } from "./preflight.ts";

/** what each partial receive on the target would resume, asked of the source (`send -nvP -t`) */
async function resumeTokens(run: Run, target: Inventory): Promise<Map<string, TokenInfo>> {
  const tokens = new Map<string, TokenInfo>();
  for (const dataset of target.datasets) {
    if (dataset.resumeToken === null) continue;
    tokens.set(dataset.subname, await run.ports.source.resumeTarget(dataset.resumeToken));
  }
  return tokens;
}

export function backupStage(run: Run): ChangingStage {
  return {
    stage: "backup",
    reads: ["source", "target"],
    changes: ["target"],
    preflight: async ({ source, target }) => {
      requireSourceRoot(run, source);
      await requireTargetParent(run, target);
    },
    plan: async ({ source, target }) =>
      planBackup(source, target, run.config, await resumeTokens(run, target)),
    estimate: async (plan: Plan) => {
      const sends = plan.actions.filter((action): action is SendAction => action.kind === "send");
      const sizes = await mapLimit(sends, QUERY_CONCURRENCY, (action) =>
        run.ports.source.estimateSend(sendSpec(action)),
      );
      const estimates = new Map<SendAction, number>();
      sends.forEach((action, i) => {
        const size = sizes[i];
        if (size !== null && size !== undefined) estimates.set(action, size);
      });
      return estimates;
    },
    execute: async (action: Action, estimates) => {
      if (action.kind === "abort-resume")
        return run.ports.target.abortReceive(action.targetDataset);
      if (action.kind !== "send") throw new Error(`backup cannot run a ${action.kind} action`);
      const outcome = await runSend(run.hosts.source, run.hosts.target, action, {
        signal: run.signal,
        expectedBytes: estimates.get(action) ?? null,
        onBytes: (bytes) => run.progress(action, bytes, estimates.get(action) ?? null),
      });
      if (outcome.ok) run.summary.sent(action.subname, outcome.bytes ?? 0, action.snapshots);
      return outcome;
    },
  };
}
