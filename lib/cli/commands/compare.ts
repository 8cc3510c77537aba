// `compare CONFIG`: source and target side by side, conflicts called out.

import { stages } from "../../engine/stages/index.ts";
import type { GlobalFlags } from "../io.ts";
import { comparisonJson, comparisonPieces } from "../render/compare.ts";
import { runSession } from "../session.ts";

export function compareCommand(configPath: string, flags: GlobalFlags): Promise<number> {
  return runSession(configPath, flags, { readOnly: true, summary: "never" }, async (run, io) => {
    const { comparison } = await stages.compare(run);
    if (!comparison) return null;
    if (io.json) io.emit(comparisonJson(comparison));
    else {
      // written as it is made: a large tree's text is tens of MB
      for (const piece of comparisonPieces(comparison, io.style)) io.out.write(piece);
    }
    return null;
  });
}
