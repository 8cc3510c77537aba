// The public API of abgleich, imported by plugins and workflow scripts as `abgleich`
// (`import { definePlugin } from "abgleich"`). Inside the compiled binary that import is served
// by a virtual module (lib/engine/plugins.ts), so keep this module free of side effects.
//
// A plugin is a plain object: a name, optional options checking, and a setup that taps the
// hooks it cares about (Rollup style). A workflow is one async function that runs stages.

import { plural } from "../cli/render/labels.ts";
import { formatBytes } from "../cli/render/units.ts";
import type { Config, SideConfig } from "../config/types.ts";
import type { Namer } from "../plan/naming.ts";
import type { Comparison } from "../plan/types.ts";
import type { Inventory, Side } from "../zfs/model.ts";
import type { Hooks, RunSummary } from "./hooks.ts";
import type { RunOptions, StageResult } from "./runner.ts";
import { stagesText } from "./summary.ts";

export type { Config, PluginEntry, SideConfig } from "../config/types.ts";
/** `zpool/prefix` of a side: `rootOf(config.target)` */
export { rootOf } from "../config/types.ts";
/** a word quoted for a POSIX shell: data never becomes shell syntax */
export { shellQuote } from "../hosts/quote.ts";
export { defaultNamer, type Namer } from "../plan/naming.ts";
export type {
  AbortResumeAction,
  Action,
  Comparison,
  Conflict,
  DestroyAction,
  Plan,
  SendAction,
  SnapshotAction,
} from "../plan/types.ts";
export type { Dataset, Inventory, Side, Snapshot } from "../zfs/model.ts";
export { checkSnapshotShortName } from "../zfs/names.ts";
export { planViolations, SafetyError } from "./guard.ts";
export type {
  ActionOutcome,
  DatasetSummary,
  HookName,
  Hooks,
  InventoryInfo,
  PlanInfo,
  ProgressEvent,
  RunMode,
  RunSummary,
  StageInfo,
  StageName,
  StageOutcome,
} from "./hooks.ts";
export type { RunOptions, StageResult } from "./runner.ts";

/** thrown by an options parser: `path` is relative to the plugin's `options` (e.g. ["ntfy", "url"]) */
export class PluginOptionError extends Error {
  override readonly name = "PluginOptionError";
  constructor(
    readonly path: readonly (string | number)[],
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** a JSON Schema (draft-07) for the options; defaults in it are filled in */
export type OptionsSchema = Record<string, unknown> & { type: "object" };

/** turns the raw `options:` mapping into the plugin's typed options, or throws PluginOptionError */
export type OptionsParser<O> = (raw: Record<string, unknown>) => O;

export interface PluginContext<O> {
  /** the plugin's name, as in its definition */
  name: string;
  config: Config;
  /** the checked options (an empty object when the config gives none) */
  options: O;
  /** a line for the log (the console or the JSON event stream) */
  log(text: string): void;
  /** a warning: something went wrong that does not stop the run */
  warn(text: string): void;
}

export interface Plugin<O = Record<string, unknown>> {
  name: string;
  /**
   * how to check `options:`: a JSON Schema, a parser, or both (the schema first, with its
   * defaults filled in, then the parser for rules a schema cannot say)
   */
  options?: OptionsSchema | OptionsParser<O> | { schema: OptionsSchema; parse: OptionsParser<O> };
  /**
   * tap the hooks here. Every tap is named after the plugin, and an error it throws reads
   * `plugin "NAME" failed in hook HOOK: …`.
   */
  setup(hooks: Hooks, context: PluginContext<O>): void | Promise<void>;
}

/** declares a plugin; the identity function, there for type checking in the user's editor */
export function definePlugin<O = Record<string, unknown>>(plugin: Plugin<O>): Plugin<O> {
  return plugin;
}

/** a change of sides for `run.with()`: e.g. another target pool or host */
export interface SidesChange {
  source?: Partial<SideConfig>;
  target?: Partial<SideConfig>;
}

/** what a workflow script gets: the stages, the config and the hooks of one run */
export interface WorkflowRun {
  readonly config: Config;
  readonly hooks: Hooks;
  readonly options: RunOptions;
  /** snapshot the changed source datasets */
  snap(): Promise<StageResult>;
  /** send what the target lacks */
  backup(): Promise<StageResult>;
  /** free common snapshots on `side` (source by default) */
  cleanup(side?: Side): Promise<StageResult>;
  /** both trees side by side, with conflicts */
  compare(): Promise<Comparison>;
  /** the trees as read (both sides by default) */
  tree(side?: Side): Promise<Partial<Record<Side, Inventory>>>;
  /** the same run against other sides (e.g. a second target), sharing hooks, ui and summary */
  with(change: SidesChange): WorkflowRun;
  /** the naming scheme in force (after naming plugins) */
  namer(): Namer;
  /** a line for the log */
  log(text: string): void;
  /** true once a stage ended failed, declined or cancelled */
  readonly failed: boolean;
}

/** a workflow may resolve to an exit code (a number); otherwise it follows from the stages' outcomes */
export type WorkflowFunction = (run: WorkflowRun) => Promise<unknown>;

export interface Workflow {
  readonly kind: "abgleich-workflow";
  readonly run: WorkflowFunction;
  readonly description?: string;
}

/** declares a workflow script: `export default defineWorkflow(async (run) => { … })` */
export function defineWorkflow(run: WorkflowFunction, description?: string): Workflow {
  if (typeof run !== "function") throw new TypeError("defineWorkflow expects an async function");
  return { kind: "abgleich-workflow", run, description };
}

export function isWorkflow(value: unknown): value is Workflow {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as Workflow).kind === "abgleich-workflow" &&
    typeof (value as Workflow).run === "function"
  );
}

/**
 * The summary, as one short text (for notifications and logs). `conflictsShown`: the reader
 * has just seen each conflict whole in the plan, so a dataset's are counted, not quoted again.
 */
export function summaryText(
  summary: RunSummary,
  options: { conflictsShown?: boolean } = {},
): string {
  const lines: string[] = [];
  const failed = summary.exitCode !== 0;
  lines.push(`abgleich ${failed ? "FAILED" : "ok"}: ${stagesText(summary) || "no stages"}`);
  for (const d of summary.datasets) {
    const parts: string[] = [];
    if (d.snapshotsMade.length > 0)
      parts.push(`${plural(d.snapshotsMade.length, "snapshot")} made`);
    if (d.bytesSent > 0 || d.snapshotsReceived.length > 0) {
      parts.push(
        `${formatBytes(d.bytesSent)} sent (${plural(d.snapshotsReceived.length, "snapshot")})`,
      );
    }
    const destroyed = d.destroyed.reduce((n, entry) => n + entry.snapshots.length, 0);
    if (destroyed > 0) parts.push(`${destroyed} destroyed`);
    if (d.conflicts.length > 0)
      parts.push(
        options.conflictsShown
          ? `${plural(d.conflicts.length, "conflict")}, shown in the plan`
          : `conflict: ${d.conflicts.join("; ")}`,
      );
    if (d.failures.length > 0) parts.push(`failed: ${d.failures.join("; ")}`);
    if (parts.length > 0)
      lines.push(`${d.subname === "" ? "(root)" : d.subname}: ${parts.join(", ")}`);
  }
  return lines.join("\n");
}

/** binary units, one decimal: `1.9 MiB` */
export { formatBytes };
