// The snap stage: decide which source datasets changed (SPEC section 4, `zfs diff` only where
// the cheaper rules could not decide), then take all new snapshots of the pool in one call.

import { rootOf } from "../../config/types.ts";
import { decideChanges, planSnap } from "../../plan/snap.ts";
import type { Action } from "../../plan/types.ts";
import { commandFailure, runSnapshot } from "../../run/actions.ts";
import { mapLimit, QUERY_CONCURRENCY } from "../../run/limit.ts";
import { zfsDiff } from "../../zfs/commands.ts";
import type { RunContext } from "../context.ts";
import { runChangingStage, type StageResult } from "./changing.ts";
import { checkHosts } from "./inventory.ts";

/** rule 8: does `zfs diff DATASET@NEWEST` print anything? One call per undecided dataset. */
async function diffs(
  ctx: RunContext,
  targets: { subname: string; dataset: string; newest: string }[],
) {
  const changed = await mapLimit(targets, QUERY_CONCURRENCY, async ({ dataset, newest }) => {
    const argv = zfsDiff(`${dataset}@${newest}`);
    const result = await ctx.hosts.source.run(argv);
    if (result.code !== 0)
      throw new Error(commandFailure(ctx.hosts.source, argv, result.code, result.stderr));
    return result.stdout.trim() !== "";
  });
  return new Map(targets.map((target, i) => [target.subname, changed[i] as boolean]));
}

export async function snapStage(ctx: RunContext): Promise<StageResult> {
  // snapshots need only the source: snap works while the backup host is away
  await checkHosts(ctx, ["source"]);
  const result = await runChangingStage(ctx, {
    stage: "snap",
    inventories: async () => ({
      source: await ctx.inventory("source"),
      target: { side: "target", root: rootOf(ctx.config.target), datasets: [] },
    }),
    plan: async () => {
      const source = await ctx.inventory("source");
      const undecided = decideChanges(source, ctx.config).decisions.flatMap((d) =>
        d.changed === "diff" && d.newest !== null
          ? [{ subname: d.subname, dataset: d.dataset, newest: d.newest }]
          : [],
      );
      return planSnap(
        source,
        ctx.config,
        await diffs(ctx, undecided),
        ctx.namer(),
        ctx.options.now(),
      );
    },
    execute: async (action: Action) => {
      if (action.kind !== "snapshot") throw new Error(`snap cannot run a ${action.kind} action`);
      const outcome = await runSnapshot(ctx.hosts.source, action);
      if (outcome.ok) for (const s of action.snapshots) ctx.summary.snapshotMade(s.subname, s.name);
      return outcome;
    },
  });
  if (result.results.length > 0) ctx.invalidate("source");
  return result;
}
