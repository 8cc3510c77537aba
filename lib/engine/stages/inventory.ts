// The inventory stage: make sure the hosts answer, then read each side's tree once.

import type { Inventory, Side } from "../../zfs/model.ts";
import type { RunContext } from "../context.ts";

/** ping the hosts of `sides` in parallel; a host that does not answer throws HostDownError */
export async function checkHosts(ctx: RunContext, sides: readonly Side[]): Promise<void> {
  await Promise.all(sides.map((side) => ctx.hosts[side].ping()));
}

/** read the trees of `sides` (both by default) and tell the plugins */
export async function inventoryStage(
  ctx: RunContext,
  sides: readonly Side[] = ["source", "target"],
): Promise<Partial<Record<Side, Inventory>>> {
  const info = ctx.stageInfo("inventory");
  await ctx.hooks.beforeStage.promise(info);
  try {
    await checkHosts(ctx, sides);
    const read = await Promise.all(sides.map((side) => ctx.inventory(side)));
    const result: Partial<Record<Side, Inventory>> = {};
    sides.forEach((side, i) => {
      result[side] = read[i];
    });
    if (result.source && result.target) {
      await ctx.hooks.inventory.promise({ source: result.source, target: result.target });
    }
    await ctx.hooks.afterStage.promise(info, { status: "ok" });
    return result;
  } catch (error) {
    await ctx.hooks.error.promise(error as Error, info);
    await ctx.hooks.afterStage.promise(info, { status: "failed", error: error as Error });
    throw error;
  }
}

/** both trees, read once per run and cached (a stage that changes a side invalidates it) */
export async function bothSides(
  ctx: RunContext,
): Promise<{ source: Inventory; target: Inventory }> {
  const [source, target] = await Promise.all([ctx.inventory("source"), ctx.inventory("target")]);
  return { source, target };
}
