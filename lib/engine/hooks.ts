// Every hook of abgleich's engine, in one place and in the order a run meets them: this file is
// the table of contents of the plugin API. Each hook is fired by exactly one owner, the engine's
// runner (lib/engine/runner.ts); plugins only tap them, through the frozen view made by
// `pluginHooks` below, which has no way to call, intercept or untap a hook.

import { AsyncSeriesHook, AsyncSeriesWaterfallHook, SyncHook, SyncWaterfallHook } from "tapable";
import type { Config } from "../config/types.ts";
import type { Namer } from "../plan/naming.ts";
import { exclusionReason } from "../plan/pairs.ts";
import type { Action, Plan } from "../plan/types.ts";
import type { Inventory, Side } from "../zfs/model.ts";
import type { ActionOutcome } from "../zfs/outcome.ts";
import { planViolations, SafetyError } from "./guard.ts";

export type { ActionOutcome } from "../zfs/outcome.ts";

export type StageName = "inventory" | "snap" | "compare" | "backup" | "cleanup";

/** a stage as people read its name: `backup`, `cleanup source` */
export const stageTitle = (stage: StageName, side?: Side): string =>
  side ? `${stage} ${side}` : stage;

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
  /** stages that ran, with their outcome and the sides they ran on (`host:pool/prefix`; a
   * workflow's `run.with()` may give a stage other sides than the config's) */
  stages: {
    stage: StageName;
    side?: Side;
    outcome: StageOutcome;
    where: { source: string; target: string };
  }[];
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

/** an error thrown by a plugin's tap, with the plugin and hook named */
export class PluginError extends Error {
  override readonly name = "PluginError";
  constructor(
    readonly plugin: string,
    readonly hook: string,
    override readonly cause: unknown,
  ) {
    super(
      `plugin "${plugin}" failed in ${hook === "setup" ? "setup" : `hook ${hook}`}: ${messageOf(cause)}`,
    );
  }
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

type AnyFn = (...args: unknown[]) => unknown;

const TAP_METHODS: Record<HookName, readonly ("tap" | "tapPromise" | "tapAsync")[]> = {
  namer: ["tap"],
  beforeStage: ["tap", "tapPromise", "tapAsync"],
  inventory: ["tap", "tapPromise", "tapAsync"],
  plan: ["tap", "tapPromise", "tapAsync"],
  beforeAction: ["tap", "tapPromise", "tapAsync"],
  progress: ["tap"],
  afterAction: ["tap", "tapPromise", "tapAsync"],
  error: ["tap", "tapPromise", "tapAsync"],
  afterStage: ["tap", "tapPromise", "tapAsync"],
  done: ["tap", "tapPromise", "tapAsync"],
};

/**
 * What the engine checks a plan against besides the PlanInfo plugins see: which snapshots are
 * abgleich's own, and the other targets of this run. Set by the engine for the PlanInfo it
 * hands to the plan hook, so each plugin's plan is checked by every rule the plan as a whole is
 * (the engine checks the whole plan again after the last plugin, whatever this holds).
 */
export const planChecks = new WeakMap<
  PlanInfo,
  { isOwn: (name: string) => boolean; otherTargets: readonly Inventory[] }
>();

/** a plan a plugin returned from the plan hook, checked before the next plugin sees it */
function checkedPlan(plugin: string, plan: unknown, info: PlanInfo): Plan {
  const more = planChecks.get(info);
  const violations = planViolations(
    info.stage,
    plan as Plan,
    info.source,
    info.target,
    info.side,
    more?.isOwn,
    more?.otherTargets,
    (subname) => exclusionReason(subname, info.config),
  );
  if (violations.length > 0) throw new SafetyError(violations, `plugin "${plugin}"`);
  return plan as Plan;
}

/**
 * The hooks as one plugin (or workflow) sees them: a frozen object of frozen hooks that can
 * only be tapped. Nothing here can call, intercept or untap a hook, so no plugin can switch
 * the engine's checks off. Every tap is named after the plugin, its errors name the plugin and
 * the hook, and what a plugin returns from the plan hook is checked against the safety rules
 * before the next plugin sees it.
 */
export function pluginHooks(hooks: EngineHooks, plugin: string): Hooks {
  const view: Record<string, unknown> = {};
  for (const name of Object.keys(TAP_METHODS) as HookName[]) {
    const hook = hooks[name] as unknown as Record<string, AnyFn>;
    const fail = (error: unknown) =>
      error instanceof PluginError || error instanceof SafetyError
        ? error
        : new PluginError(plugin, name, error);
    // only the name (always the plugin's), `stage` and `before` pass: a plugin cannot hand
    // tapable its own `fn` or `type` and slip past the wrappers below
    const options = (given: unknown) => {
      const tap: Record<string, unknown> = { name: plugin };
      if (typeof given === "object" && given !== null) {
        const { stage, before } = given as Record<string, unknown>;
        if (typeof stage === "number") tap.stage = stage;
        if (typeof before === "string" || Array.isArray(before)) tap.before = before;
      }
      return tap;
    };
    // only the plan hook's result matters to safety; the others' results are ignored by tapable
    const result = (value: unknown, args: unknown[]) =>
      name === "plan" ? checkedPlan(plugin, value, args[1] as PlanInfo) : value;
    const isThenable = (value: unknown) =>
      typeof (value as { then?: unknown } | null)?.then === "function";
    const sync = TAP_METHODS[name].length === 1;
    const methods: Record<string, AnyFn> = {
      // on an async hook, `tap` with an async function is awaited like `tapPromise` (tapable
      // would drop the promise, and with it the plugin's veto); a sync hook refuses a promise
      tap: (given, fn) =>
        sync
          ? hook.tap?.call(hook, options(given), (...args: unknown[]) => {
              let value: unknown;
              try {
                value = (fn as AnyFn)(...args);
              } catch (error) {
                throw fail(error);
              }
              if (isThenable(value))
                throw fail(
                  new TypeError(`the ${name} hook is synchronous: return a value, not a promise`),
                );
              return result(value, args);
            })
          : methods.tapPromise?.(given, fn),
      tapPromise: (given, fn) =>
        hook.tapPromise?.call(hook, options(given), async (...args: unknown[]) => {
          let value: unknown;
          try {
            value = await (fn as AnyFn)(...args);
          } catch (error) {
            throw fail(error);
          }
          return result(value, args);
        }),
      tapAsync: (given, fn) =>
        hook.tapAsync?.call(hook, options(given), (...args: unknown[]) => {
          const callback = args.pop() as (error: unknown, value?: unknown) => void;
          // the first answer counts: a second callback, or a throw after one, is ignored
          let answered = false;
          const once = (error: unknown, value?: unknown) => {
            if (answered) return;
            answered = true;
            callback(error, value);
          };
          const finish = (error: unknown, value?: unknown) => {
            if (error) return once(fail(error));
            let checked: unknown;
            try {
              checked = result(value, args);
            } catch (thrown) {
              return once(thrown);
            }
            once(null, checked);
          };
          try {
            (fn as AnyFn)(...args, finish);
          } catch (error) {
            once(fail(error));
          }
        }),
    };
    const facade: Record<string, AnyFn> = {};
    for (const method of TAP_METHODS[name]) {
      const tapWith = methods[method] as AnyFn;
      facade[method] = (given: unknown, fn: unknown) => {
        if (typeof fn !== "function")
          throw new PluginError(plugin, name, new TypeError(`${method} needs a function`));
        tapWith(given, fn);
      };
    }
    view[name] = Object.freeze(facade);
  }
  return Object.freeze(view) as unknown as Hooks;
}
