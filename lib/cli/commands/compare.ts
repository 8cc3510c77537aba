// `compare CONFIG`: source and target side by side, conflicts called out.
import type { RunContext } from "../../engine/context.ts";

import { compareStage } from "../../engine/stages/compare.ts";
import { commandIo, EXIT_OK, type GlobalFlags, openRun, reportError } from "../io.ts";
import { comparisonJson, renderComparison } from "../render/compare.ts";

export async function compareCommand(configPath: string, flags: GlobalFlags): Promise<number> {
  const io = commandIo(flags);
  const controller = new AbortController();
  let ctx: RunContext | undefined;
  try {
    ctx = await openRun(configPath, flags, controller.signal, undefined, io);
    const comparison = await compareStage(ctx);
    if (io.json) io.emit(comparisonJson(comparison));
    else io.print(renderComparison(comparison, io.style));
    return EXIT_OK;
  } catch (error) {
    return reportError(io, error);
  } finally {
    await ctx?.close();
  }
}
