// The backup stage: send what the target lacks, parents first; resume cut transfers; report
// conflicts and skip them. Each transfer is one OS pipeline.

import { HostDownError } from "../../hosts/host.ts";
import { isSshFailure, sshReason } from "../../hosts/ssh.ts";
import { planBackup, type TokenInfo } from "../../plan/backup.ts";
import type { Action, Plan, SendAction } from "../../plan/types.ts";
import { estimateSend, runAbortResume, runSend } from "../../run/actions.ts";
import { mapLimit, QUERY_CONCURRENCY } from "../../run/limit.ts";
import { estimatedSize, tokenTarget } from "../../run/send-output.ts";
import { zfsSend } from "../../zfs/commands.ts";
import type { Inventory } from "../../zfs/model.ts";
import type { RunContext } from "../context.ts";
import { runChangingStage, type StageResult } from "./changing.ts";
import { bothSides, checkHosts } from "./inventory.ts";

/** what each partial receive on the target would resume, asked of the source (`send -nvP -t`) */
async function resumeTokens(ctx: RunContext, target: Inventory): Promise<Map<string, TokenInfo>> {
  const tokens = new Map<string, TokenInfo>();
  for (const dataset of target.datasets) {
    if (dataset.resumeToken === null) continue;
    const result = await ctx.hosts.source.run(
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

export async function backupStage(ctx: RunContext): Promise<StageResult> {
  await checkHosts(ctx, ["source", "target"]);
  const result = await runChangingStage(ctx, {
    stage: "backup",
    inventories: () => bothSides(ctx),
    plan: async () => {
      const { source, target } = await bothSides(ctx);
      return planBackup(source, target, ctx.config, await resumeTokens(ctx, target));
    },
    estimate: async (plan: Plan) => {
      const sends = plan.actions.filter((action): action is SendAction => action.kind === "send");
      const sizes = await mapLimit(sends, QUERY_CONCURRENCY, (action) =>
        estimateSend(ctx.hosts.source, action),
      );
      const estimates = new Map<SendAction, number>();
      sends.forEach((action, i) => {
        const size = sizes[i];
        if (size !== null && size !== undefined) estimates.set(action, size);
      });
      return estimates;
    },
    execute: async (action: Action, estimates) => {
      if (action.kind === "abort-resume") return runAbortResume(ctx.hosts.target, action);
      if (action.kind !== "send") throw new Error(`backup cannot run a ${action.kind} action`);
      const outcome = await runSend(ctx.hosts.source, ctx.hosts.target, action, {
        signal: ctx.options.signal,
        expectedBytes: estimates.get(action) ?? null,
        onBytes: (bytes) => {
          ctx.ui.actionProgress(action, bytes);
          ctx.hooks.progress.call({
            action,
            bytesDone: bytes,
            bytesTotal: estimates.get(action) ?? null,
          });
        },
      });
      if (outcome.ok) ctx.summary.sent(action.subname, outcome.bytes ?? 0, action.snapshots);
      return outcome;
    },
  });
  if (result.results.length > 0) ctx.invalidate("target");
  return result;
}
