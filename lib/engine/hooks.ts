// Every hook of abgleich's workflow, in one place: this object is the table of contents of the
// plugin API. Stages call them; plugins tap them (see lib/engine/api.ts).

import { AsyncSeriesHook, AsyncSeriesWaterfallHook, SyncHook, SyncWaterfallHook } from "tapable";
import type { Config } from "../config/types.ts";
import type { Namer } from "../plan/naming.ts";
import type { Action, Plan } from "../plan/types.ts";
import type { Inventory, Side } from "../zfs/model.ts";

export type StageName = "inventory" | "snap" | "compare" | "backup" | "cleanup";

export interface StageInfo {
  stage: StageName;
  config: Config;
  /** for cleanup: which side it cleans */
  side?: Side;
  dryRun: boolean;
  /** aborted on Ctrl-C or SIGTERM: anything a hook waits for should stop */
  signal: AbortSignal;
}

export interface StageOutcome {
  /** "declined": the user said no; "failed": an action failed or a hook threw */
  status: "ok" | "nothing-to-do" | "declined" | "dry-run" | "failed" | "cancelled";
  error?: Error;
}

export interface ActionOutcome {
  ok: boolean;
  /** bytes moved by a send */
  bytes?: number;
  /** the failing command, exit code and stderr, when !ok */
  error?: string;
  durationMs: number;
}

export interface ProgressEvent {
  action: Action;
  bytesDone: number;
  bytesTotal: number | null;
}

/** what a stage's plan is checked against after every plugin that touched it */
export interface PlanInfo extends StageInfo {
  source: Inventory;
  target: Inventory;
}

export interface DatasetSummary {
  subname: string;
  snapshotsMade: string[];
  bytesSent: number;
  snapshotsReceived: string[];
  destroyed: { side: Side; snapshots: string[] }[];
  conflicts: string[];
  failures: string[];
}

export interface RunSummary {
  config: Config;
  /** stages that ran, with their outcome */
  stages: { stage: StageName; outcome: StageOutcome }[];
  datasets: DatasetSummary[];
  /** 0, 1 or 2 as in SPEC section 7 */
  exitCode: number;
  startedAt: Date;
  finishedAt: Date;
}

export function createHooks() {
  return {
    /** before a stage reads or changes anything; throwing aborts the stage */
    beforeStage: new AsyncSeriesHook<[StageInfo]>(["stage"]),
    /** after a stage, also after a failure or a decline */
    afterStage: new AsyncSeriesHook<[StageInfo, StageOutcome]>(["stage", "outcome"]),
    /** both sides' trees as read, once per run (read-only for plugins) */
    inventory: new AsyncSeriesHook<[{ source: Inventory; target: Inventory }]>(["inventories"]),
    /**
     * The plan of a stage, before it is shown: a waterfall, so a plugin may drop or annotate
     * actions. The safety rules are checked again after every plugin (lib/engine/safety.ts).
     */
    plan: new AsyncSeriesWaterfallHook<[Plan, PlanInfo]>(["plan", "stage"]),
    /**
     * The snapshot naming scheme: a waterfall over the default Namer (SPEC section 5). A plugin
     * returns its own Namer; its `isOwn` tells cleanup and compare which snapshots are the tool's.
     */
    namer: new SyncWaterfallHook<[Namer, Config]>(["namer", "config"]),
    /** right before an action runs; throwing stops the plan before it */
    beforeAction: new AsyncSeriesHook<[Action, StageInfo]>(["action", "stage"]),
    /** after an action, whether it succeeded or not */
    afterAction: new AsyncSeriesHook<[Action, ActionOutcome, StageInfo]>([
      "action",
      "outcome",
      "stage",
    ]),
    /** transfer progress, at most a few times per second */
    progress: new SyncHook<[ProgressEvent]>(["progress"]),
    /** an error that ends a stage */
    error: new AsyncSeriesHook<[Error, StageInfo]>(["error", "stage"]),
    /** the end of a run, with what happened per dataset */
    done: new AsyncSeriesHook<[RunSummary]>(["summary"]),
  };
}

export type Hooks = ReturnType<typeof createHooks>;
export type HookName = keyof Hooks;
