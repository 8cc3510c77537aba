// Every hook of abgleich's engine, in one place and in the order a run meets them: this file is
// the table of contents of the plugin API. Each hook is fired by exactly one owner, the engine's
// runner (lib/engine/runner.ts); plugins only tap them, through the frozen view made by
// `pluginHooks` below, which has no way to call, intercept or untap a hook.

import { AsyncSeriesHook, AsyncSeriesWaterfallHook, SyncHook, SyncWaterfallHook } from "tapable";
import type { Config } from "../config/types.ts";
import type { Namer } from "../plan/naming.ts";
import type { Action, Plan } from "../plan/types.ts";
import type { Inventory, Side } from "../zfs/model.ts";

export interface ActionOutcome {
  ok: boolean;
  /** bytes moved by a send */
  bytes?: number;
  /** the failing command, exit code and stderr, when !ok */
  error?: string;
  durationMs: number;
}

export type StageName = "inventory" | "snap" | "compare" | "backup" | "cleanup";

/** what kind of run this is: read-only commands and dry runs change nothing */
export type RunMode = "read-only" | "dry-run" | "changing";

export interface StageInfo {
  readonly stage: StageName;
  readonly config: Config;
  /** for cleanup: which side it cleans */
  readonly side?: Side;
  readonly dryRun: boolean;
  /** true when the stage may change a pool: a changing stage that is not a dry run */
  readonly changes: boolean;
  /** aborted on Ctrl-C or SIGTERM: anything a hook waits for should stop */
  readonly signal: AbortSignal;
}

export interface StageOutcome {
  /** "declined": the user said no; "failed": an action, a check or a hook failed */
  status: "ok" | "nothing-to-do" | "declined" | "dry-run" | "failed" | "cancelled";
  error?: Error;
}

export interface ProgressEvent {
  action: Action;
  bytesDone: number;
  bytesTotal: number | null;
}

/** both sides as the engine read them; frozen. `target` is null for snap, which needs no target */
export interface InventoryInfo {
  stage: StageInfo;
  source: Inventory;
  target: Inventory | null;
}

/** what a stage's plan is checked against after every plugin that touched it (frozen) */
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
  /** read-only (tree, compare), dry-run, or changing */
  mode: RunMode;
  /** stages that ran, with their outcome */
  stages: { stage: StageName; side?: Side; outcome: StageOutcome }[];
  datasets: DatasetSummary[];
  /** the run's exit code: 0 ok, 1 failed, 2 usage, 130/143 cancelled */
  exitCode: number;
  startedAt: Date;
  finishedAt: Date;
}

/** the hooks, in lifecycle order; created by the engine, fired only by the engine */
export function createHooks() {
  return Object.freeze({
    /** the snapshot naming scheme: a waterfall over the default Namer; `isOwn` tells cleanup
     * and compare which snapshots are the tool's */
    namer: new SyncWaterfallHook<[Namer, Config]>(["namer", "config"]),
    /** a stage begins, before its hosts are checked (a hook may wake a host or import a pool);
     * throwing fails the stage before it reads or changes anything */
    beforeStage: new AsyncSeriesHook<[StageInfo]>(["stage"]),
    /** both sides as read, once per stage (frozen: read-only) */
    inventory: new AsyncSeriesHook<[InventoryInfo]>(["inventories"]),
    /** the plan before it is shown: a waterfall; a plugin may drop or add actions and returns
     * the plan. Every plugin's result is checked against the safety rules; what comes out is
     * frozen, shown, and is exactly what runs */
    plan: new AsyncSeriesWaterfallHook<[Plan, PlanInfo]>(["plan", "stage"]),
    /** right before an action runs (the action is frozen); throwing stops the stage */
    beforeAction: new AsyncSeriesHook<[Action, StageInfo]>(["action", "stage"]),
    /** transfer progress, at most a few times per second */
    progress: new SyncHook<[ProgressEvent]>(["progress"]),
    /** after an action, whether it succeeded or not */
    afterAction: new AsyncSeriesHook<[Action, ActionOutcome, StageInfo]>([
      "action",
      "outcome",
      "stage",
    ]),
    /** a stage ends failed: an action, a check, a host or a hook failed */
    error: new AsyncSeriesHook<[Error, StageInfo]>(["error", "stage"]),
    /** a stage ended, whatever its outcome (also failed, declined, cancelled, host down) */
    afterStage: new AsyncSeriesHook<[StageInfo, StageOutcome]>(["stage", "outcome"]),
    /** the run is over: once per run, with what happened per dataset */
    done: new AsyncSeriesHook<[RunSummary]>(["summary"]),
  });
}

export type EngineHooks = ReturnType<typeof createHooks>;
export type HookName = keyof EngineHooks;

type Sync<H extends { tap: unknown }> = Readonly<Pick<H, "tap">>;
type Async<H extends { tap: unknown; tapPromise: unknown; tapAsync: unknown }> = Readonly<
  Pick<H, "tap" | "tapPromise" | "tapAsync">
>;

/** the hooks as a plugin or workflow sees them: tap methods only, frozen */
export interface Hooks {
  readonly namer: Sync<EngineHooks["namer"]>;
  readonly beforeStage: Async<EngineHooks["beforeStage"]>;
  readonly inventory: Async<EngineHooks["inventory"]>;
  readonly plan: Async<EngineHooks["plan"]>;
  readonly beforeAction: Async<EngineHooks["beforeAction"]>;
  readonly progress: Sync<EngineHooks["progress"]>;
  readonly afterAction: Async<EngineHooks["afterAction"]>;
  readonly error: Async<EngineHooks["error"]>;
  readonly afterStage: Async<EngineHooks["afterStage"]>;
  readonly done: Async<EngineHooks["done"]>;
}
