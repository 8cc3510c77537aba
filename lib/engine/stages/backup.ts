// The backup stage: send what the target lacks, parents first; resume cut transfers; report
// conflicts and skip them. Each transfer is one OS pipeline from the source host to the target
// host; bytes never pass through JavaScript.

import { HostDownError } from "../../hosts/host.ts";
import { isSshFailure, sshReason } from "../../hosts/ssh.ts";
import { planBackup, type TokenInfo } from "../../plan/backup.ts";
import type { Action, Plan, SendAction } from "../../plan/types.ts";
import { estimateSend, runAbortResume, runSend } from "../../run/actions.ts";
import { mapLimit, QUERY_CONCURRENCY } from "../../run/limit.ts";
import { estimatedSize, tokenTarget } from "../../run/send-output.ts";
import { zfsSend } from "../../zfs/commands.ts";
import type { Inventory } from "../../zfs/model.ts";
import type { ChangingStage, Run } from "../runner.ts";
import { requireSourceRoot, requireTargetParent } from "./preflight.ts";

/** what each partial receive on the target would resume, asked of the source (`send -nvP -t`) */
async function resumeTokens(run: Run, target: Inventory): Promise<Map<string, TokenInfo>> {
  const tokens = new Map<string, TokenInfo>();
  for (const dataset of target.datasets) {
    if (dataset.resumeToken === null) continue;
    const result = await run.hosts.source.run(
      zfsSend({ mode: "resume", token: dataset.resumeToken }, { progress: true, dryRun: true }),
    );
    const output = `${result.stdout}\n${result.stderr}`;
    if (isSshFailure(result)) throw new HostDownError("source", sshReason(result.stderr));
    const toname = tokenTarget(output);
    if (result.code === 0 && toname !== null) {
      tokens.set(dataset.subname, { ok: true, toname, size: estimatedSize(output) ?? undefined });
    } else {
      tokens.set(dataset.subname, {
        ok: false,
        reason: result.stderr.trim() || `zfs send -t failed (exit ${result.code})`,
      });
    }
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
        estimateSend(run.hosts.source, action),
      );
      const estimates = new Map<SendAction, number>();
      sends.forEach((action, i) => {
        const size = sizes[i];
        if (size !== null && size !== undefined) estimates.set(action, size);
      });
      return estimates;
    },
    execute: async (action: Action, estimates) => {
      if (action.kind === "abort-resume") return runAbortResume(run.hosts.target, action);
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
