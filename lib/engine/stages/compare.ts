// The compare stage: both trees side by side, with the conflicts backup would report.

import { compareTrees } from "../../plan/compare.ts";
import type { Comparison } from "../../plan/types.ts";
import type { RunContext } from "../context.ts";
import { bothSides, inventoryStage } from "./inventory.ts";

export async function compareStage(ctx: RunContext): Promise<Comparison> {
  await inventoryStage(ctx);
  const { source, target } = await bothSides(ctx);
  const info = ctx.stageInfo("compare");
  await ctx.hooks.beforeStage.promise(info);
  const comparison = compareTrees(source, target, ctx.config);
  await ctx.hooks.afterStage.promise(info, { status: "ok" });
  return comparison;
}
