// What a workflow script gets (`defineWorkflow(async (run) => …)`): the stages of one engine
// Run, the config, tap-only hooks and a log. Loading the script is the CLI's business
// (lib/cli/commands/run.ts); running it is the engine's, through the same runner as every
// command.

import { checkedSides } from "../config/load.ts";
import type { Config } from "../config/types.ts";
import type { Side } from "../zfs/model.ts";
import type { SidesChange, Workflow, WorkflowRun } from "./api.ts";
import { cancelledBy } from "./cancel.ts";
import type { ReadResult, Run } from "./runner.ts";
import { stages } from "./stages/index.ts";

/** a read-only stage's data, or its error (a workflow that reads a dead host should know) */
function dataOf(run: Run, result: ReadResult): ReadResult {
  if (result.outcome.status === "cancelled") throw cancelledBy(run.signal);
  if (result.outcome.status === "failed")
    throw result.outcome.error ?? new Error("the stage failed");
  return result;
}

export function workflowRun(run: Run, log: (text: string) => void): WorkflowRun {
  const hooks = run.hooksFor("workflow");
  const over = (current: Run): WorkflowRun => ({
    config: current.config,
    hooks,
    options: current.options,
    snap: () => stages.snap(current),
    backup: () => stages.backup(current),
    cleanup: (side: Side = "source") => {
      if (side !== "source" && side !== "target")
        throw new Error(
          `run.cleanup(side): side must be "source" or "target", not ${JSON.stringify(side)}`,
        );
      return stages.cleanup(current, side);
    },
    compare: async () => {
      const { comparison } = dataOf(current, await stages.compare(current));
      if (!comparison) throw new Error("compare produced no comparison");
      return comparison;
    },
    tree: async (side?: Side) =>
      dataOf(current, await stages.tree(current, side ? [side] : undefined)).inventories,
    with(change: SidesChange) {
      // checked as a config file's sides are: a typo in a key, a bad name, a target inside
      // the source are configuration errors here too, before anything runs against them
      const sides = checkedSides(
        {
          source: { ...current.config.source, ...change?.source },
          target: { ...current.config.target, ...change?.target },
        },
        `run.with() in the workflow (config ${current.config.file})`,
      );
      const config: Config = { ...current.config, ...sides };
      return over(current.with(config));
    },
    namer: () => current.namer(),
    log,
    get failed() {
      return current.failed;
    },
  });
  return over(run);
}

/** the workflow's own exit code when it returns one (an integer 0–255), else null */
export function returnedExitCode(returned: unknown): number | null {
  return typeof returned === "number" &&
    Number.isInteger(returned) &&
    returned >= 0 &&
    returned <= 255
    ? returned
    : null;
}

/** run `workflow` on `run`; its exit code, or null to take the stages' outcomes */
export async function runWorkflow(
  workflow: Workflow,
  run: Run,
  log: (text: string) => void,
): Promise<number | null> {
  const returned = await workflow.run(workflowRun(run, log));
  const code = returnedExitCode(returned);
  // a number or text meant as the exit code that is none (999, -1, "3") is said, not dropped
  // silently; anything else (`async (run) => run.backup()` returns a stage's result) is no code
  if (code === null && (typeof returned === "number" || typeof returned === "string"))
    run.ui.warn(
      `the workflow returned ${typeof returned === "string" ? JSON.stringify(returned) : String(returned)}, which is no exit code (an integer 0 to 255): the stages' outcome decides it`,
    );
  return code;
}
