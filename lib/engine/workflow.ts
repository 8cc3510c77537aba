// Running a workflow script: `abgleich run WORKFLOW CONFIG`. WORKFLOW is a bundled name
// (workflows/index.ts) or a user's .ts/.js file exporting `defineWorkflow(async (run) => …)`.
// The run gets the stages, the config and the hooks; the exit code follows from the stages'
// outcomes unless the workflow returns its own number.

import { resolve } from "node:path";
import { BUNDLED_WORKFLOWS } from "../../workflows/index.ts";
import { interruptible } from "../cli/commands/change.ts";
import {
  commandIo,
  EXIT_FAILED,
  EXIT_OK,
  type GlobalFlags,
  reportError,
  runOptions,
} from "../cli/io.ts";
import { consoleUi } from "../cli/ui.ts";
import { ConfigError } from "../config/errors.ts";
import { loadConfig } from "../config/load.ts";
import type { Config } from "../config/types.ts";
import type { Side } from "../zfs/model.ts";
import { isWorkflow, type SidesChange, type Workflow, type WorkflowRun } from "./api.ts";
import { createRunContext, type RunContext, type RunOptions } from "./context.ts";
import { createHooks, type Hooks, type StageOutcome } from "./hooks.ts";
import { importUserFile, loadPlugins, type PluginIo } from "./plugins.ts";
import { backupStage } from "./stages/backup.ts";
import type { StageResult } from "./stages/changing.ts";
import { cleanupStage } from "./stages/cleanup.ts";
import { compareStage } from "./stages/compare.ts";
import { inventoryStage } from "./stages/inventory.ts";
import { snapStage } from "./stages/snap.ts";
import type { StageUi } from "./ui.ts";

/** the stages a workflow can call; tests replace them */
export interface StageRunners {
  snap: typeof snapStage;
  backup: typeof backupStage;
  cleanup: typeof cleanupStage;
  compare: typeof compareStage;
  tree: typeof inventoryStage;
}

export const defaultStages: StageRunners = {
  snap: snapStage,
  backup: backupStage,
  cleanup: cleanupStage,
  compare: compareStage,
  tree: inventoryStage,
};

const GOOD: ReadonlySet<StageOutcome["status"]> = new Set(["ok", "nothing-to-do", "dry-run"]);

/** a bundled workflow by name, or the user's file; a bad reference is a ConfigError (exit 2) */
export async function resolveWorkflow(ref: string): Promise<Workflow> {
  const bundled = BUNDLED_WORKFLOWS[ref];
  if (bundled) return bundled;
  const looksLikeFile = ref.includes("/") || /\.[cm]?[jt]s$/.test(ref);
  if (!looksLikeFile) {
    const known = Object.keys(BUNDLED_WORKFLOWS).join(", ");
    throw new ConfigError({
      file: ref,
      keyPath: "",
      line: null,
      column: null,
      reason: `no bundled workflow of this name (bundled: ${known}); give a path like ./${ref}.ts for a file of your own`,
    });
  }
  const file = resolve(ref);
  const value = await importUserFile(file, "the workflow of `abgleich run`");
  if (!isWorkflow(value)) {
    throw new ConfigError({
      file,
      keyPath: "",
      line: null,
      column: null,
      reason:
        "does not export a workflow: expected `export default defineWorkflow(async (run) => { … })`",
    });
  }
  return value;
}

/** the `run` a workflow function gets, over one RunContext and any it opens with `run.with` */
export function createWorkflowRun(
  ctx: RunContext,
  stages: StageRunners = defaultStages,
  log: (text: string) => void = (text) => process.stderr.write(`${text}\n`),
): { run: WorkflowRun; outcomes: StageOutcome[]; close(): Promise<void> } {
  const outcomes: StageOutcome[] = [];
  const opened: RunContext[] = [];
  const track = async (pending: Promise<StageResult>) => {
    const result = await pending;
    outcomes.push(result.outcome);
    return result;
  };
  const over = (context: RunContext): WorkflowRun => ({
    config: context.config,
    hooks: context.hooks,
    options: context.options,
    snap: () => track(stages.snap(context)),
    backup: () => track(stages.backup(context)),
    cleanup: (side: Side = "source") => track(stages.cleanup(context, side)),
    compare: () => stages.compare(context),
    tree: (side?: Side) => stages.tree(context, side ? [side] : undefined),
    namer: () => context.namer(),
    log,
    with(change: SidesChange) {
      const config: Config = {
        ...context.config,
        source: { ...context.config.source, ...change.source },
        target: { ...context.config.target, ...change.target },
      };
      // same hooks, ui and summary: plugins and the `done` summary see every target
      const child: RunContext = {
        ...createRunContext(config, context.options, context.ui, context.hooks),
        summary: context.summary,
      };
      opened.push(child);
      return over(child);
    },
    get failed() {
      return outcomes.some((outcome) => !GOOD.has(outcome.status));
    },
  });
  return {
    run: over(ctx),
    outcomes,
    close: async () => {
      await Promise.allSettled(opened.map((child) => child.close()));
    },
  };
}

/** the exit code of a finished workflow: its own number, else 1 when a stage did not end well */
export function workflowExitCode(returned: unknown, outcomes: readonly StageOutcome[]): number {
  if (
    typeof returned === "number" &&
    Number.isInteger(returned) &&
    returned >= 0 &&
    returned <= 255
  )
    return returned;
  return outcomes.every((outcome) => GOOD.has(outcome.status)) ? EXIT_OK : EXIT_FAILED;
}

/**
 * run `workflow` on an open context: the stages it calls, then the `done` hook with the summary.
 * An error the workflow does not catch ends it with exit 1 (2 for a ConfigError); `report`
 * prints it.
 */
export async function runWorkflow(
  workflow: Workflow,
  ctx: RunContext,
  options: {
    stages?: StageRunners;
    log?: (text: string) => void;
    report?: (error: unknown) => number;
  } = {},
): Promise<number> {
  const { run, outcomes, close } = createWorkflowRun(ctx, options.stages, options.log);
  let code: number;
  try {
    code = workflowExitCode(await workflow.run(run), outcomes);
  } catch (error) {
    code = options.report ? options.report(error) : error instanceof ConfigError ? 2 : EXIT_FAILED;
  } finally {
    await close();
  }
  try {
    await ctx.hooks.done.promise(ctx.summary.finish(code));
  } catch (error) {
    // the run is over; a failing `done` plugin is reported, it does not change what happened
    options.log?.(`warning: ${(error as Error).message}`);
  }
  return code;
}

export interface WorkflowFlags extends GlobalFlags {
  yesDestroyTarget?: boolean;
}

/** what `runWorkflowFile` talks to; the CLI's console by default, something scripted in tests */
export interface WorkflowEnvironment {
  ui?: StageUi;
  pluginIo?: PluginIo;
  stages?: StageRunners;
  signal?: AbortSignal;
  hooks?: Hooks;
  runOptions?: Partial<RunOptions>;
}

/** `abgleich run WORKFLOW CONFIG`: resolve, load config and plugins, run, report; the exit code */
export async function runWorkflowFile(
  workflowRef: string,
  configPath: string,
  flags: WorkflowFlags,
  environment: WorkflowEnvironment = {},
): Promise<number> {
  const io = commandIo(flags);
  const interrupt = environment.signal ? null : interruptible(io);
  const signal = environment.signal ?? interrupt?.signal ?? new AbortController().signal;
  const pluginIo: PluginIo = environment.pluginIo ?? {
    log: (text) => io.warn(text),
    warn: (text) => io.warn(`warning: ${text}`),
  };
  let ctx: RunContext | undefined;
  try {
    const workflow = await resolveWorkflow(workflowRef);
    const config = loadConfig(configPath);
    const hooks = environment.hooks ?? createHooks();
    await loadPlugins(config, hooks, pluginIo);
    const ui =
      environment.ui ??
      consoleUi(io, { yes: flags.yes === true, yesDestroyTarget: flags.yesDestroyTarget === true });
    ctx = createRunContext(
      config,
      { ...runOptions(flags, signal), ...environment.runOptions },
      ui,
      hooks,
    );
    return await runWorkflow(workflow, ctx, {
      stages: environment.stages,
      log: pluginIo.log,
      report: (error) => reportError(io, error),
    });
  } catch (error) {
    return reportError(io, error);
  } finally {
    interrupt?.dispose();
    await ctx?.close().catch(() => {});
  }
}
