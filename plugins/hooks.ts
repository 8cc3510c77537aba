// Bundled plugin `hooks`: the user's shell commands before and after each stage and on error.
// A failing `before` command aborts its stage before it reads or changes anything; `after`
// commands run whatever the outcome (ok, failed, declined, cancelled by Ctrl-C) and a failure
// there is only reported. Commands are the user's own shell code, run with zx under `shell`;
// what abgleich knows (stage, side, datasets, snapshots, result) goes in through the
// environment, never into the command text.

import { $, type ProcessOutput } from "zx/core";
import { rootOf } from "../lib/config/types.ts";
import { shellQuote } from "../lib/hosts/quote.ts";
import {
  type Action,
  definePlugin,
  type StageInfo,
  type StageName,
  type StageOutcome,
} from "../lib/engine/api.ts";

const STAGES = ["inventory", "snap", "compare", "backup", "cleanup"] as const;

/** per stage (or `all`), one command or a list run in order */
type Commands = Partial<Record<StageName | "all", string | string[]>>;

export interface ShellHooksOptions {
  before: Commands;
  after: Commands;
  /** run when a stage ends with an error */
  on_error: string | string[];
  /** seconds per command */
  timeout: number;
  shell: string;
}

const commandList = {
  anyOf: [
    { type: "string", minLength: 1 },
    { type: "array", items: { type: "string", minLength: 1 } },
  ],
};
const perStage = {
  type: "object",
  additionalProperties: false,
  properties: Object.fromEntries([...STAGES, "all"].map((stage) => [stage, commandList])),
  default: {},
};

const schema = {
  type: "object",
  additionalProperties: false,
  properties: {
    before: perStage,
    after: perStage,
    on_error: { ...commandList, default: [] },
    timeout: { type: "number", exclusiveMinimum: 0, default: 300 },
    shell: { type: "string", minLength: 1, default: "/bin/sh" },
  },
} as const;

const asList = (value: string | string[] | undefined): string[] =>
  value === undefined ? [] : typeof value === "string" ? [value] : value;

/** `all` first, then the stage's own commands */
export function commandsFor(commands: Commands, stage: StageName): string[] {
  return [...asList(commands.all), ...asList(commands[stage])];
}

/** what a stage touched, gathered from its plan and actions, for the environment */
interface StageRecord {
  /** datasets the plan concerns */
  datasets: Set<string>;
  /** `dataset@name` the plan would make, send or destroy */
  planned: Set<string>;
  /** `dataset@name` of actions that succeeded */
  done: Set<string>;
}

const emptyRecord = (): StageRecord => ({
  datasets: new Set(),
  planned: new Set(),
  done: new Set(),
});

function recordActions(
  record: StageRecord,
  actions: readonly Action[],
  into: "planned" | "done",
): void {
  for (const action of actions) {
    for (const [dataset, snapshot] of touched(action)) {
      record.datasets.add(dataset);
      if (snapshot) record[into].add(`${dataset}@${snapshot}`);
    }
  }
}

function touched(action: Action): [string, string | null][] {
  switch (action.kind) {
    case "snapshot":
      return action.snapshots.map((s) => [s.dataset, s.name]);
    case "send":
      return action.snapshots.map((name) => [action.targetDataset, name]);
    case "destroy":
      return action.snapshots.map((name) => [action.dataset, name]);
    case "abort-resume":
      return [[action.targetDataset, null]];
  }
}

/** the environment a command sees; everything is data, never part of the command text */
export function hookEnvironment(
  info: StageInfo,
  when: "before" | "after" | "error",
  record: StageRecord | undefined,
  outcome?: StageOutcome,
): Record<string, string> {
  const env: Record<string, string> = {
    ABGLEICH_STAGE: info.stage,
    ABGLEICH_WHEN: when,
    ABGLEICH_CONFIG: info.config.file,
    ABGLEICH_SIDE: info.side ?? "",
    ABGLEICH_SOURCE: rootOf(info.config.source),
    ABGLEICH_TARGET: rootOf(info.config.target),
    ABGLEICH_SOURCE_HOST: info.config.source.host,
    ABGLEICH_TARGET_HOST: info.config.target.host,
    ABGLEICH_DRY_RUN: info.dryRun ? "1" : "0",
    ABGLEICH_DATASETS: [...(record?.datasets ?? [])].join("\n"),
    ABGLEICH_PLANNED: [...(record?.planned ?? [])].join("\n"),
    ABGLEICH_SNAPSHOTS: [...(record?.done ?? [])].join("\n"),
  };
  if (outcome) env.ABGLEICH_RESULT = outcome.status;
  if (outcome?.error) env.ABGLEICH_ERROR = outcome.error.message;
  return env;
}

export interface CommandResult {
  command: string;
  ok: boolean;
  exitCode: number | null;
  output: string;
  timedOut: boolean;
}

/** run one user command under `shell` with zx; never throws */
export async function runShellCommand(
  command: string,
  env: Record<string, string>,
  options: { shell: string; timeoutSeconds: number },
): Promise<CommandResult> {
  const shell = $({
    shell: options.shell,
    // zx's default quoting is bash's $'…', which a POSIX sh does not read
    quote: shellQuote,
    prefix: "",
    postfix: "",
    env: { ...process.env, ...env },
    nothrow: true,
    quiet: true,
    verbose: false,
    timeout: options.timeoutSeconds * 1000,
    timeoutSignal: "SIGTERM",
  });
  // the command is the user's shell code: handed to `shell -c` as one quoted argument
  let result: ProcessOutput;
  // our own clock says whether the timeout struck: zx reports it as a signal or as the
  // shell's 143, depending on which process saw SIGTERM first
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
  }, options.timeoutSeconds * 1000);
  try {
    result = await shell`exec ${options.shell} -c ${command}`;
  } catch (error) {
    clearTimeout(timer);
    return {
      command,
      ok: false,
      exitCode: null,
      output: (error as Error).message,
      timedOut: false,
    };
  }
  const output = `${result.stdout}${result.stderr}`.trimEnd();
  clearTimeout(timer);
  const timedOut = expired && result.exitCode !== 0;
  return { command, ok: result.exitCode === 0, exitCode: result.exitCode, output, timedOut };
}

function describeFailure(result: CommandResult, timeoutSeconds: number): string {
  const why = result.timedOut
    ? `timed out after ${timeoutSeconds} s`
    : result.exitCode === null
      ? "was killed"
      : `exited with ${result.exitCode}`;
  return `"${result.command}" ${why}${result.output ? `: ${lastLines(result.output)}` : ""}`;
}

const lastLines = (text: string) => text.split("\n").slice(-5).join("\n");

export default definePlugin<ShellHooksOptions>({
  name: "hooks",
  options: schema,
  setup(hooks, { options, log, warn }) {
    const records = new Map<string, StageRecord>();
    const keyOf = (info: StageInfo) => `${info.stage}:${info.side ?? ""}`;
    const run = async (commands: string[], env: Record<string, string>, label: string) => {
      const failures: string[] = [];
      for (const command of commands) {
        const result = await runShellCommand(command, env, {
          shell: options.shell,
          timeoutSeconds: options.timeout,
        });
        if (result.output !== "") log(`${label} "${command}":\n${result.output}`);
        if (!result.ok) failures.push(describeFailure(result, options.timeout));
      }
      return failures;
    };

    hooks.beforeStage.tapPromise("hooks", async (info) => {
      const record = emptyRecord();
      records.set(keyOf(info), record);
      const commands = commandsFor(options.before, info.stage);
      if (commands.length === 0) return;
      // stop at the first failing command: the stage must not start
      for (const command of commands) {
        const failures = await run(
          [command],
          hookEnvironment(info, "before", record),
          `before ${info.stage}`,
        );
        if (failures.length > 0)
          throw new Error(`before-${info.stage} command ${failures[0]}; the stage did not start`);
      }
    });

    hooks.plan.tap("hooks", (plan, info) => {
      const record = records.get(keyOf(info));
      if (record) recordActions(record, plan.actions, "planned");
      return plan;
    });

    hooks.afterAction.tap("hooks", (action, outcome, info) => {
      const record = records.get(keyOf(info));
      if (record && outcome.ok) recordActions(record, [action], "done");
    });

    hooks.error.tapPromise("hooks", async (error, info) => {
      const commands = asList(options.on_error);
      if (commands.length === 0) return;
      const env = hookEnvironment(info, "error", records.get(keyOf(info)), {
        status: "failed",
        error,
      });
      for (const failure of await run(commands, env, `on error in ${info.stage}`)) {
        warn(`on-error command ${failure}`);
      }
    });

    hooks.afterStage.tapPromise("hooks", async (info, outcome) => {
      const commands = commandsFor(options.after, info.stage);
      const record = records.get(keyOf(info));
      records.delete(keyOf(info));
      if (commands.length === 0) return;
      const env = hookEnvironment(info, "after", record, outcome);
      // a failing post-hook cannot undo the stage: report it and go on
      for (const failure of await run(commands, env, `after ${info.stage}`))
        warn(`after-${info.stage} command ${failure}`);
    });
  },
});
