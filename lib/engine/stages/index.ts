// The stages a run can take, each through the runner's one template.

import type { Side } from "../../zfs/model.ts";
import type { ReadResult, Run, StageResult } from "../runner.ts";
import { backupStage } from "./backup.ts";
import { cleanupStage } from "./cleanup.ts";
import { snapStage } from "./snap.ts";

export const stages = {
  snap: (run: Run): Promise<StageResult> => run.changing(snapStage(run)),
  backup: (run: Run): Promise<StageResult> => run.changing(backupStage(run)),
  cleanup: (run: Run, side: Side = "source"): Promise<StageResult> =>
    run.changing(cleanupStage(run, side)),
  tree: (run: Run, sides: readonly Side[] = ["source", "target"]): Promise<ReadResult> =>
    run.reading("inventory", sides),
  compare: (run: Run): Promise<ReadResult> => run.reading("compare", ["source", "target"]),
};

export type Stages = typeof stages;
