// `compare CONFIG`: source and target side by side, conflicts called out.

import { stages } from "../../engine/stages/index.ts";
import type { GlobalFlags } from "../io.ts";
import { comparisonJson, renderComparison } from "../render/compare.ts";
import { runSession } from "../session.ts";

export function compareCommand(configPath: string, flags: GlobalFlags): Promise<number> {
  return runSession(configPath, flags, { readOnly: true, summary: "never" }, async (run, io) => {
    const { comparison } = await stages.compare(run);
    if (!comparison) return null;
    if (io.json) io.emit(comparisonJson(comparison));
    else io.print(renderComparison(comparison, io.style));
    return null;
  });
}
