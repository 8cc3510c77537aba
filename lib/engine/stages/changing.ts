// The shape every changing stage (snap, backup, cleanup) shares: plan, let plugins see the plan
// (checked again for safety), show it, ask, then run the actions one by one. A failed action
// stops its dataset (and the datasets below it) but not the others; Ctrl-C stops before the
// next action.

import type { Action, Plan, SendAction } from "../../plan/types.ts";
import type { Inventory, Side } from "../../zfs/model.ts";
import type { RunContext } from "../context.ts";
import type { ActionOutcome, StageInfo, StageName, StageOutcome } from "../hooks.ts";

export interface StageResult {
  outcome: StageOutcome;
  plan: Plan;
  /** actions that ran, with their outcome */
  results: { action: Action; outcome: ActionOutcome }[];
}

export interface ChangingStage {
  stage: StageName;
  side?: Side;
  /** cleanup target asks twice */
  danger?: boolean;
  /** the inventories the plan is checked against */
  inventories(): Promise<{ source: Inventory; target: Inventory }>;
  plan(): Promise<Plan>;
  /** size estimates for send actions, shown with the plan; empty for other stages */
  estimate?(plan: Plan): Promise<Map<SendAction, number>>;
  execute(action: Action, estimates: ReadonlyMap<SendAction, number>): Promise<ActionOutcome>;
  /** after the actions ran: e.g. wait for space to be freed and report it */
  finish?(results: StageResult["results"]): Promise<void>;
}

/** subnames an action concerns, for stopping a failed dataset's later actions */
function subnamesOf(action: Action): string[] {
  return action.kind === "snapshot" ? action.snapshots.map((s) => s.subname) : [action.subname];
}

const isBelow = (subname: string, failed: string) =>
  subname === failed || failed === "" || subname.startsWith(`${failed}/`);

export async function runChangingStage(
  ctx: RunContext,
  stage: ChangingStage,
): Promise<StageResult> {
  const info: StageInfo = ctx.stageInfo(stage.stage, stage.side);
  const results: StageResult["results"] = [];
  let plan: Plan = { actions: [], conflicts: [], skipped: [], errors: [] };
  const end = async (outcome: StageOutcome): Promise<StageResult> => {
    ctx.summary.stage(stage.stage, outcome);
    await ctx.hooks.afterStage.promise(info, outcome);
    ctx.ui.stageFinished(info, outcome);
    return { outcome, plan, results };
  };

  try {
    await ctx.hooks.beforeStage.promise(info);
    const inventories = await stage.inventories();
    plan = await ctx.hooks.plan.promise(await stage.plan(), { ...info, ...inventories });
  } catch (error) {
    await ctx.hooks.error.promise(error as Error, info);
    return end({ status: "failed", error: error as Error });
  }
  for (const conflict of plan.conflicts) ctx.summary.conflict(conflict.subname, conflict.message);
  for (const problem of plan.errors) ctx.summary.failure(problem.subname, problem.message);
  const troubled = plan.conflicts.length > 0 || plan.errors.length > 0;

  const estimates = stage.estimate ? await stage.estimate(plan) : new Map<SendAction, number>();
  ctx.ui.showPlan(info, plan, estimates);
  if (plan.actions.length === 0) return end({ status: troubled ? "failed" : "nothing-to-do" });
  if (ctx.options.dryRun) return end({ status: "dry-run" });
  if (!(await ctx.ui.confirm(info, plan, stage.danger === true)))
    return end({ status: "declined" });

  const failedSubnames: string[] = [];
  let failed = troubled;
  for (const action of plan.actions) {
    if (ctx.options.signal.aborted) return end({ status: "cancelled" });
    const subnames = subnamesOf(action);
    const blockedBy = failedSubnames.find((f) => subnames.some((s) => isBelow(s, f)));
    if (blockedBy !== undefined) {
      const outcome: ActionOutcome = {
        ok: false,
        error: `not run: an earlier action for ${blockedBy === "" ? "the root" : blockedBy} failed`,
        durationMs: 0,
      };
      results.push({ action, outcome });
      ctx.ui.actionFinished(action, outcome);
      continue;
    }
    let outcome: ActionOutcome;
    try {
      await ctx.hooks.beforeAction.promise(action, info);
      ctx.ui.actionStarted(action, action.kind === "send" ? (estimates.get(action) ?? null) : null);
      outcome = await stage.execute(action, estimates);
    } catch (error) {
      // a throwing hook or runner: stop the whole stage before anything else changes
      outcome = { ok: false, error: (error as Error).message, durationMs: 0 };
      results.push({ action, outcome });
      ctx.ui.actionFinished(action, outcome);
      await ctx.hooks.afterAction.promise(action, outcome, info);
      await ctx.hooks.error.promise(error as Error, info);
      return end({ status: "failed", error: error as Error });
    }
    results.push({ action, outcome });
    ctx.ui.actionFinished(action, outcome);
    await ctx.hooks.afterAction.promise(action, outcome, info);
    if (!outcome.ok) {
      failed = true;
      for (const subname of subnames) ctx.summary.failure(subname, outcome.error ?? "failed");
      failedSubnames.push(...subnames);
      if (ctx.options.signal.aborted) return end({ status: "cancelled" });
    }
  }
  if (stage.finish) await stage.finish(results);
  return end({ status: failed ? "failed" : "ok" });
}
