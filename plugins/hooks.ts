// Bundled plugin `hooks`: the user's shell commands before and after each stage and on error.
// A failing `before` command aborts its stage before it reads or changes anything; `after`
// commands run whatever the outcome (ok, failed, declined, cancelled by Ctrl-C) and a failure
// there is only reported. Commands are the user's own shell code, run with zx under `shell`;
// what abgleich knows (stage, side, datasets, snapshots, result) goes in through the
// environment, never into the command text; lists also through files, as they can outgrow it.
// A command never hangs the run: at its timeout, or when the run is cancelled while it runs,
// its whole process group gets SIGTERM (SIGKILL after a grace) and the plugin goes on at once.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $, type ProcessOutput } from "zx/core";
import {
  type Action,
  definePlugin,
  rootOf,
  type StageInfo,
  type StageName,
  type StageOutcome,
  shellQuote,
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
    timeout: { type: "number", exclusiveMinimum: 0, maximum: 2_147_483, default: 300 },
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
    case "chain":
      // holds and bookmarks change no snapshot's data
      return [];
  }
}

/** a list variable stays in the environment up to this size; the file always holds it */
export const LIST_VARIABLE_LIMIT = 16 * 1024;
/** ABGLEICH_ERROR is cut to this size (the kernel refuses a string over 128 KiB with E2BIG) */
const ERROR_VARIABLE_LIMIT = 16 * 1024;

/** what a command sees: small variables, and each list in full in a file */
export interface HookEnvironment {
  env: Record<string, string>;
  /** variable naming the file → the file's text */
  files: Record<string, string>;
}

const byteLength = (text: string) => Buffer.byteLength(text, "utf8");

/** at most `limit` bytes of `text`, never a broken character */
function cut(text: string, limit: number): string {
  if (byteLength(text) <= limit) return text;
  const marker = "… (cut)";
  const head = Buffer.from(text, "utf8")
    .subarray(0, limit - byteLength(marker))
    .toString("utf8")
    .replace(/\uFFFD+$/, "");
  return `${head}${marker}`;
}

/** the environment a command sees; everything is data, never part of the command text */
export function hookEnvironment(
  info: StageInfo,
  when: "before" | "after" | "error",
  record: StageRecord | undefined,
  outcome?: StageOutcome,
): HookEnvironment {
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
  };
  const lists = {
    ABGLEICH_DATASETS: record?.datasets,
    ABGLEICH_PLANNED: record?.planned,
    ABGLEICH_SNAPSHOTS: record?.done,
  };
  const files: Record<string, string> = {};
  for (const [variable, list] of Object.entries(lists)) {
    const items = [...(list ?? [])];
    const text = items.join("\n");
    // thousands of snapshot names would not fit: the variable is emptied, the file has them
    env[variable] = byteLength(text) <= LIST_VARIABLE_LIMIT ? text : "";
    files[`${variable}_FILE`] = items.length > 0 ? `${text}\n` : "";
  }
  if (outcome) env.ABGLEICH_RESULT = outcome.status;
  if (outcome?.error) env.ABGLEICH_ERROR = cut(outcome.error.message, ERROR_VARIABLE_LIMIT);
  return { env, files };
}

export interface CommandResult {
  command: string;
  ok: boolean;
  /** the shell's exit code; null when it was stopped, killed or never ran */
  exitCode: number | null;
  output: string;
  /** stopped because it ran past its timeout */
  timedOut: boolean;
  /** stopped because the run was cancelled (or not started: the signal had already fired) */
  cancelled: boolean;
  /** when stopped: the shell itself had exited, something it started still held its output */
  leftBehind: boolean;
}

/** seconds between SIGTERM and SIGKILL for a stopped command's process group */
export const GRACE_SECONDS = 5;

/**
 * Process groups of commands that run or are being stopped. A command runs in its own session
 * and process group (zx's `detached`), so one signal reaches the shell and everything it
 * started, also what outlived the shell; if abgleich exits meanwhile (a second Ctrl-C), the
 * groups are killed on the way out, never left behind.
 */
const groups = new Set<number>();
let exitHandler = false;

function track(pgid: number): void {
  groups.add(pgid);
  if (exitHandler) return;
  exitHandler = true;
  process.on("exit", () => {
    for (const group of groups) signalGroup(group, "SIGKILL");
  });
}

/** false once no process of the group is left (ESRCH) */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** SIGTERM to the whole group now, SIGKILL to whatever is left of it after `graceMs` */
function stopGroup(pgid: number, graceMs: number): void {
  if (!signalGroup(pgid, "SIGTERM")) {
    groups.delete(pgid);
    return;
  }
  const deadline = Date.now() + graceMs;
  // while one process of the group lives, its id cannot be given to another group
  const poll = setInterval(
    () => {
      const alive = signalGroup(pgid, 0);
      if (alive && Date.now() < deadline) return;
      if (alive) signalGroup(pgid, "SIGKILL");
      clearInterval(poll);
      groups.delete(pgid);
    },
    Math.max(10, Math.min(100, graceMs)),
  );
}

export interface RunOptions {
  shell: string;
  timeoutSeconds: number;
  /** stops the command when it fires while the command runs; an already fired one: not started */
  signal?: AbortSignal;
  /** between SIGTERM and SIGKILL; GRACE_SECONDS unless told */
  graceSeconds?: number;
  /** variable → text: each written to a file in a private directory, the variable holds its path */
  files?: Record<string, string>;
}

const fileName = (variable: string) =>
  variable
    .replace(/^ABGLEICH_/, "")
    .replace(/_FILE$/, "")
    .toLowerCase();

/** run one user command under `shell` with zx; never throws, never waits past the timeout */
export async function runShellCommand(
  command: string,
  env: Record<string, string>,
  options: RunOptions,
): Promise<CommandResult> {
  const failed = (output: string, how: Partial<CommandResult> = {}): CommandResult => ({
    command,
    ok: false,
    exitCode: null,
    output,
    timedOut: false,
    cancelled: false,
    leftBehind: false,
    ...how,
  });
  if (options.signal?.aborted) return failed("", { cancelled: true });
  const files = Object.entries(options.files ?? {});
  let dir: string | undefined;
  try {
    const paths: Record<string, string> = {};
    if (files.length > 0) {
      // mkdtemp makes the directory 0700: the lists are for this command only
      dir = await mkdtemp(join(tmpdir(), "abgleich-hook-"));
      for (const [variable, text] of files) {
        paths[variable] = join(dir, fileName(variable));
        await writeFile(paths[variable], text, { mode: 0o600 });
      }
    }
    return await runDetached(command, { ...env, ...paths }, options, failed);
  } catch (error) {
    return failed((error as Error).message);
  } finally {
    if (dir) await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

function runDetached(
  command: string,
  env: Record<string, string>,
  options: RunOptions,
  failed: (output: string, how?: Partial<CommandResult>) => CommandResult,
): Promise<CommandResult> {
  const graceMs = (options.graceSeconds ?? GRACE_SECONDS) * 1000;
  // zx spawns it; stopping it is ours: zx's timeout and abort signal only the shell (its
  // kill() looks for children with ps, which misses what the shell left behind), and its
  // promise waits for the output pipes to close, which a background child can hold forever
  const running = $({
    shell: options.shell,
    // zx's default quoting is bash's $'…', which a POSIX sh does not read
    quote: shellQuote,
    prefix: "",
    postfix: "",
    env: { ...process.env, ...env },
    // own session and process group; no stdin: nothing to wait for there
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    nothrow: true,
    quiet: true,
    verbose: false,
  })`exec ${options.shell} -c ${command}`;
  const child = running.child;
  const pgid = running.pid;
  if (pgid !== undefined) track(pgid);
  // what arrived before a stop; zx's own copy comes only with its (late) result
  const chunks: { stdout: Buffer[]; stderr: Buffer[] } = { stdout: [], stderr: [] };
  child?.stdout?.on("data", (data: Buffer) => chunks.stdout.push(data));
  child?.stderr?.on("data", (data: Buffer) => chunks.stderr.push(data));
  let shellExited = false;
  child?.once("exit", () => {
    shellExited = true;
  });

  return new Promise<CommandResult>((resolve) => {
    let settled = false;
    const finish = (result: CommandResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      resolve(result);
    };
    const stop = (why: "timeout" | "cancelled") => {
      if (settled) return;
      if (pgid !== undefined) stopGroup(pgid, graceMs);
      // stop reading: whatever still holds the pipes gets EPIPE, and nothing keeps us waiting
      child?.stdout?.destroy();
      child?.stderr?.destroy();
      const output = `${Buffer.concat(chunks.stdout)}${Buffer.concat(chunks.stderr)}`.trimEnd();
      finish(
        failed(output, {
          timedOut: why === "timeout",
          cancelled: why === "cancelled",
          leftBehind: shellExited,
        }),
      );
    };
    const timer = setTimeout(() => stop("timeout"), options.timeoutSeconds * 1000);
    const onAbort = () => stop("cancelled");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    running.then(
      (result: ProcessOutput) => {
        if (settled) return;
        // done, pipes closed: what it started and detached from its output may go on
        if (pgid !== undefined) groups.delete(pgid);
        // a shell that could not start: zx's cause says why (its exit code would be -errno)
        if (result.cause) return finish(failed(result.cause.message));
        const output = `${result.stdout}${result.stderr}`.trimEnd();
        finish({ ...failed(output), ok: result.exitCode === 0, exitCode: result.exitCode });
      },
      (error: unknown) => finish(failed((error as Error).message)),
    );
  });
}

function describeFailure(result: CommandResult, timeoutSeconds: number): string {
  const why = result.timedOut
    ? `timed out after ${timeoutSeconds} s${result.leftBehind ? " (it had exited, but something it started kept its output open)" : ""}`
    : result.cancelled
      ? "was stopped: the run was cancelled"
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
    const runOne = async (
      command: string,
      environment: HookEnvironment,
      label: string,
      signal: AbortSignal | undefined,
    ) => {
      const result = await runShellCommand(command, environment.env, {
        shell: options.shell,
        timeoutSeconds: options.timeout,
        signal,
        files: environment.files,
      });
      if (result.output !== "") log(`${label} "${command}":\n${result.output}`);
      return result.ok ? null : describeFailure(result, options.timeout);
    };
    /**
     * after and on-error commands are how users clean up: they run also after a cancel. The
     * signal only stops a command that runs when it fires; the ones after it still run.
     */
    const runAll = async (
      commands: string[],
      environment: HookEnvironment,
      label: string,
      signal: AbortSignal,
    ) => {
      const failures: string[] = [];
      for (const command of commands) {
        const failure = await runOne(
          command,
          environment,
          label,
          signal.aborted ? undefined : signal,
        );
        if (failure !== null) failures.push(failure);
      }
      return failures;
    };

    hooks.beforeStage.tapPromise("hooks", async (info) => {
      const record = emptyRecord();
      records.set(keyOf(info), record);
      const commands = commandsFor(options.before, info.stage);
      if (commands.length === 0) return;
      // stop at the first failing command: the stage must not start; nor after a cancel
      for (const command of commands) {
        if (info.signal.aborted)
          throw new Error(
            `before-${info.stage} command "${command}" not run: the run was cancelled; the stage did not start`,
          );
        const failure = await runOne(
          command,
          hookEnvironment(info, "before", record),
          `before ${info.stage}`,
          info.signal,
        );
        if (failure !== null)
          throw new Error(`before-${info.stage} command ${failure}; the stage did not start`);
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
      for (const failure of await runAll(commands, env, `on error in ${info.stage}`, info.signal)) {
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
      for (const failure of await runAll(commands, env, `after ${info.stage}`, info.signal))
        warn(`after-${info.stage} command ${failure}`);
    });
  },
});
