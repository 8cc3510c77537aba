// The engine's one runner. Every entry point — the single commands, the wizard, `run WORKFLOW`,
// the GUI — runs its stages through a Run: one way for data (config → inventory → plan →
// plugins → checked run → report), one exit-code rule, one `done`, one Ctrl-C path.
//
// The engine owns the plan. Plugins see copies or frozen objects; what comes out of the plan
// hook is copied, frozen, checked and shown, and exactly that runs: each action is checked by
// the guard against the engine's own inventories immediately before it executes, on the host
// of its side. Failures never crash a run: a failed action stops its dataset and those below
// it, the stage ends `failed`, and `afterStage`, the after-hooks and `done` always run.

import { ConfigError } from "../config/errors.ts";
import type { Config } from "../config/types.ts";
import { rootOf } from "../config/types.ts";
import type { Host } from "../hosts/host.ts";
import { closeAll, createHost, type HostOptions } from "../hosts/index.ts";
import { holdTags } from "../plan/chain.ts";
import { compareTrees } from "../plan/compare.ts";
import { defaultNamer, type Namer } from "../plan/naming.ts";
import { exclusionReason, sameDatasets } from "../plan/pairs.ts";
import { applyPlanned, plannedNames } from "../plan/simulate.ts";
import type { Action, Comparison, Plan, SendAction } from "../plan/types.ts";
import { GuidSharing } from "../zfs/list.ts";
import type { Inventory, Side } from "../zfs/model.ts";
import { checkSnapshotShortName } from "../zfs/names.ts";
import { NOT_RUN } from "../zfs/outcome.ts";
import { ZfsPort } from "../zfs/port.ts";
import { cancelExitCode, isCancelError, untilCancelled, withinGrace } from "./cancel.ts";
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "./exit.ts";
import { createGuard, planViolations, refuseSimulated, SafetyError, subnamesOf } from "./guard.ts";
import type {
  ActionOutcome,
  EngineHooks,
  Hooks,
  RunMode,
  RunSummary,
  StageInfo,
  StageName,
  StageOutcome,
} from "./hooks.ts";
import { planChecks, pluginHooks } from "./hooks.ts";
import { createSummaryBuilder, type SummaryBuilder } from "./summary.ts";
import { PlanTroubles, type StageUi } from "./ui.ts";

/** how long a hook that was running at a cancel may take to say what the cancel stopped */
const HOOK_CANCEL_GRACE_MS = 1000;

/** how long after-hooks may take once a run was cancelled, before the run ends without them */
const AFTER_CANCEL_GRACE_MS = 60_000;

/** transfers at once over one shared ssh connection (see transferLimit) */
const SSH_PARALLEL_LIMIT = 8;

export interface RunOptions {
  /** answer yes to every plain confirmation */
  yes: boolean;
  /** print the plan and stop */
  dryRun: boolean;
  /** machine-readable output only */
  json: boolean;
  /** stdin is a terminal: a question can be asked */
  interactive: boolean;
  /** cancelled on Ctrl-C or SIGTERM (reason "SIGINT"/"SIGTERM"): everything waiting stops */
  signal: AbortSignal;
  /** the clock, so tests and the demo can fix it */
  now: () => Date;
  hostOptions?: HostOptions;
  /** how long after-hooks may run once the run is cancelled (default 60 s; tests shorten it) */
  afterCancelGraceMs?: number;
  /** the Host of a side, instead of localhost or ssh (tests, an in-memory host) */
  hostFor?: (side: Side, config: Config) => Host;
  /** holds what a changing stage changes, so runs of one target never overlap; the release */
  lock?: (key: string, description: string) => Promise<() => void>;
  /**
   * the command as the user typed it when its stages go by other names (`run nightly`,
   * `wizard`): a run that meets the lock is told what to look for
   */
  command?: string;
}

export interface StageResult {
  outcome: StageOutcome;
  /** the plan as shown (frozen) */
  plan: Plan;
  /** actions that ran (or were not run because an earlier one failed), with their outcome */
  results: { action: Action; outcome: ActionOutcome }[];
}

/** what the read-only stages return besides their outcome */
export interface ReadResult extends StageResult {
  inventories: Partial<Record<Side, Inventory>>;
  comparison?: Comparison;
}

/** the sides a stage reads, what it needs them for, and what it does with the plan */
export interface ChangingStage {
  stage: Exclude<StageName, "inventory" | "compare">;
  /** for cleanup: the side it cleans (destroys elsewhere are refused) */
  side?: Side;
  /** the sides whose hosts must answer and whose trees are read */
  reads: readonly Side[];
  /** the sides it changes: locked for the stage, re-read by the next stage */
  changes: readonly Side[];
  /** cleanup target asks twice */
  danger?: boolean;
  /** problems that stop the stage before anything is planned: a missing root, a missing parent */
  preflight?(inventories: Inventories): Promise<void>;
  plan(inventories: Inventories): Promise<Plan>;
  /** size estimates for send actions, shown with the plan */
  estimate?(plan: Plan): Promise<Map<SendAction, number>>;
  /** run one checked action on the host of its side */
  execute(action: Action, estimates: ReadonlyMap<SendAction, number>): Promise<ActionOutcome>;
  /**
   * How many actions like this one may run as one batch (a backup's sends through one ssh
   * session per host); 1 or absent: each alone. Only with executeBatch.
   */
  batchSize?(action: Action): number;
  /**
   * Run several checked actions of one batch, in order, each only after the one before it
   * succeeded; `started` as each begins, `ended` as each ends when that is known before the
   * batch ends. An outcome per action, or null for one that did not run because an earlier
   * one failed: the engine runs it again later.
   */
  executeBatch?(
    actions: readonly Action[],
    estimates: ReadonlyMap<SendAction, number>,
    started: (action: Action) => void,
    ended: (action: Action, outcome: ActionOutcome) => void,
  ): Promise<(ActionOutcome | null)[]>;
  /** after the actions ran: e.g. wait for space to be freed and report it */
  finish?(results: StageResult["results"]): Promise<void>;
}

export interface Inventories {
  source: Inventory;
  /** an empty tree when the stage does not read the target (snap) */
  target: Inventory;
  /** for cleanup source: the other targets of the same source this run knows (`run.with()`) */
  otherTargets?: Inventory[];
}

// Built-ins the engine's checks rely on, taken before any plugin is loaded: a plugin that
// replaces the global ones later does not reach into the engine's copies and freezes.
const clone = globalThis.structuredClone;
const freeze = Object.freeze;
const isFrozen = Object.isFrozen;
const keysOf = Object.keys;

const GOOD: ReadonlySet<StageOutcome["status"]> = new Set(["ok", "nothing-to-do", "dry-run"]);
const EMPTY_PLAN: Plan = Object.freeze({
  actions: [],
  conflicts: [],
  skipped: [],
  errors: [],
}) as unknown as Plan;

/** roots frozen all the way down by deepFreeze (a shallow freeze by someone else is not enough) */
const deeplyFrozen = new WeakSet<object>();

/** objects handed to plugins cannot be changed behind the engine's back */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== "object" || value === null || deeplyFrozen.has(value)) return value;
  if (!isFrozen(value)) freeze(value);
  for (const key of keysOf(value)) deepFreeze((value as Record<string, unknown>)[key]);
  deeplyFrozen.add(value);
  return value;
}

/** the run was cancelled, or this error is a cancel */
const isCancel = (error: unknown, signal: AbortSignal) => signal.aborted || isCancelError(error);

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));
const asError = (error: unknown) => (error instanceof Error ? error : new Error(String(error)));

/**
 * A chain action covers many datasets: the entries of those whose sends failed are dropped
 * (their base did not arrive), so the rest are still protected. When none is left, the action
 * as planned: held back like any other action of a failed dataset, and reported so.
 */
function narrowChain(action: Action, failed: readonly string[]): Action {
  if (action.kind !== "chain" || failed.length === 0) return action;
  const entries = action.entries.filter(
    (entry) => !failed.some((subname) => isBelow(entry.subname, subname)),
  );
  if (entries.length === action.entries.length || entries.length === 0) return action;
  return deepFreeze({ kind: "chain", entries });
}

/**
 * What each action waits for (indices of earlier actions). One after another unless
 * `parallel`: then an action waits only for the earlier actions of its own dataset and its
 * ancestors (a child is received into its parent), and a chain or snapshot action waits for
 * everything before it, as everything after it waits for it.
 */
export function dependencies(actions: readonly Action[], parallel: boolean): number[][] {
  const lastOf = new Map<string, number>();
  const out: number[][] = [];
  let barrier: number | null = null;
  actions.forEach((action, index) => {
    const wholeStage = action.kind === "chain" || action.kind === "snapshot";
    let after: number[];
    if (!parallel) after = index > 0 ? [index - 1] : [];
    else if (wholeStage) after = Array.from({ length: index }, (_, i) => i);
    else {
      after = barrier === null ? [] : [barrier];
      for (const subname of subnamesOf(action)) {
        for (let s: string | null = subname; s !== null; s = parentOf(s)) {
          const last = lastOf.get(s);
          if (last !== undefined) after.push(last);
        }
      }
    }
    out.push([...new Set(after)]);
    if (wholeStage) barrier = index;
    for (const subname of subnamesOf(action)) lastOf.set(subname, index);
  });
  return out;
}

/**
 * Run every action once what it depends on has ended, in `lanes` lanes. A lane takes the
 * first action that is ready; if the stage batches actions of its kind, it takes more of
 * them, each of which would be ready on its own by the tree (its dataset's and its ancestors'
 * earlier actions have ended: no member waits for another, so each is checked against what
 * has arrived): with one lane those that directly follow it in plan order, with several the
 * ready ones, no more than a fair share, so every lane gets work. `run` returns the actions
 * of its batch that did not run (an earlier one failed); they wait again.
 */
export async function runInLanes(
  actions: readonly Action[],
  lanes: number,
  batchSize: (action: Action) => number,
  run: (batch: Action[]) => Promise<readonly Action[]>,
  stopped: () => boolean,
): Promise<void> {
  const after = dependencies(actions, lanes > 1);
  let busy = 0;
  const byTree = lanes > 1 ? after : dependencies(actions, true);
  const done = new Set<number>();
  /** not yet taken, in plan order */
  let waiting = actions.map((_, index) => index);
  let wake = () => {};
  let changed = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const notify = () => {
    const resolve = wake;
    changed = new Promise<void>((next) => {
      wake = next;
    });
    resolve();
  };
  const ready = (index: number) => (after[index] as number[]).every((d) => done.has(d));
  const readyByTree = (index: number) => (byTree[index] as number[]).every((d) => done.has(d));
  const take = (): number[] | null => {
    if (waiting.length === 0) return null;
    const first = waiting.find((index) => ready(index));
    if (first === undefined) return [];
    const size = batchSize(actions[first] as Action);
    const batch = [first];
    if (size > 1) {
      const kind = (actions[first] as Action).kind;
      const candidates = waiting.filter(
        (index) =>
          index > first &&
          (actions[index] as Action).kind === kind &&
          batchSize(actions[index] as Action) > 1,
      );
      if (lanes === 1) {
        for (const index of candidates) {
          const next = (batch[batch.length - 1] as number) + 1;
          if (batch.length >= size || index !== next || !readyByTree(index)) break;
          batch.push(index);
        }
      } else {
        const readyOnes = candidates.filter(ready);
        // shared among the lanes free to take work now
        const share = Math.ceil((readyOnes.length + 1) / (lanes - busy));
        batch.push(...readyOnes.slice(0, Math.min(size, share) - 1));
      }
    }
    return batch;
  };
  const lane = async (): Promise<void> => {
    for (;;) {
      if (stopped()) return;
      const batch = take();
      if (batch === null) return;
      if (batch.length === 0) {
        await changed;
        continue;
      }
      waiting = waiting.filter((index) => !batch.includes(index));
      let again: readonly Action[] = [];
      busy++;
      try {
        again = await run(batch.map((index) => actions[index] as Action));
      } finally {
        busy--;
        const back = batch.filter((index) => again.includes(actions[index] as Action));
        for (const index of batch) if (!back.includes(index)) done.add(index);
        if (back.length > 0) waiting = [...waiting, ...back].sort((a, b) => a - b);
        notify();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, lanes) }, lane));
}

const parentOf = (subname: string): string | null =>
  subname === "" ? null : subname.includes("/") ? subname.slice(0, subname.lastIndexOf("/")) : "";

const isBelow = (subname: string, failed: string) =>
  subname === failed || failed === "" || subname.startsWith(`${failed}/`);

/** a namer's answer, if it is one: `{name}` with a valid snapshot name, or `{error}` */
function checkedName(named: unknown): { name: string } | { error: string } {
  const shown = (value: unknown) => {
    try {
      return JSON.stringify(value) ?? String(value);
    } catch {
      return String(value);
    }
  };
  if (typeof named === "object" && named !== null) {
    const { name, error } = named as { name?: unknown; error?: unknown };
    if (typeof error === "string") return { error };
    if (typeof name === "string") {
      const bad = checkSnapshotShortName(name);
      return bad === null
        ? { name }
        : { error: `the naming scheme gave the name ${shown(name)}, which zfs refuses: ${bad}` };
    }
  }
  return {
    error: `the naming scheme's next() returned ${shown(named)}, not {name} or {error}: a naming plugin's mistake`,
  };
}

/** what several runs share when a workflow opens more with `run.with()` */
interface Shared {
  hooks: EngineHooks;
  ui: StageUi;
  options: RunOptions;
  mode: RunMode;
  summary: SummaryBuilder;
  outcomes: StageOutcome[];
  /**
   * lock keys this process holds or is taking, with their release: two stages of one workflow
   * that run at once (`Promise.all` of two targets' backups) share one taking, instead of the
   * second meeting the first's lock as another run's
   */
  locks: Map<string, Promise<() => void>>;
  runs: Run[];
  /**
   * dry run only: each side (by host:root) as it would be after the stages planned so far,
   * so the next stage's preview builds on them (plan/simulate.ts)
   */
  simulated: Map<string, Inventory>;
  warnedIgnore: boolean;
  warnedParallel: boolean;
}

export class Run {
  readonly hosts: Readonly<Record<Side, Host>>;
  /** every zfs query and single-command action of a side, with the run's timeout and signal */
  readonly ports: Readonly<Record<Side, ZfsPort>>;
  private readonly cache = new Map<Side, Promise<Inventory>>();
  private namerInForce: Namer | undefined;

  private constructor(
    readonly config: Config,
    private readonly shared: Shared,
  ) {
    // own properties only: nothing inherited (a polluted Object.prototype) picks the hosts
    const own = <K extends keyof RunOptions>(key: K) =>
      Object.hasOwn(shared.options, key) ? shared.options[key] : undefined;
    const hostOptions = own("hostOptions");
    const hostFor = own("hostFor");
    const host = (side: Side) =>
      hostFor ? hostFor(side, config) : createHost(side, config[side], config.ssh, hostOptions);
    this.hosts = { source: host("source"), target: host("target") };
    const portOptions = {
      timeoutMs: config.commandTimeout * 1000,
      signal: shared.options.signal,
    };
    this.ports = {
      source: new ZfsPort(this.hosts.source, portOptions),
      target: new ZfsPort(this.hosts.target, portOptions),
    };
    shared.runs.push(this);
  }

  static open(
    config: Config,
    hooks: EngineHooks,
    ui: StageUi,
    options: RunOptions,
    mode: RunMode,
  ): Run {
    // frozen: plugins read the same config and options the engine runs with, and cannot
    // change them (a workflow setting run.options.dryRun must not turn a dry run into a real one)
    return new Run(deepFreeze(config), {
      hooks,
      ui,
      options: freeze({ ...options }),
      mode,
      summary: createSummaryBuilder(config, mode),
      outcomes: [],
      locks: new Map(),
      runs: [],
      simulated: new Map(),
      warnedIgnore: false,
      warnedParallel: false,
    });
  }

  /** the same run against other sides (a second target), sharing hooks, ui, locks and summary */
  with(config: Config): Run {
    return new Run(deepFreeze(config), this.shared);
  }

  get options(): RunOptions {
    return this.shared.options;
  }
  get ui(): StageUi {
    return this.shared.ui;
  }
  get summary(): SummaryBuilder {
    return this.shared.summary;
  }
  get signal(): AbortSignal {
    return this.shared.options.signal;
  }
  /** true once a stage ended failed, declined or cancelled */
  get failed(): boolean {
    return this.shared.outcomes.some((outcome) => !GOOD.has(outcome.status));
  }

  /** the hooks as a workflow script sees them: tap-only, its taps named `name` */
  hooksFor(name: string): Hooks {
    return pluginHooks(this.shared.hooks, name);
  }

  /** the snapshot naming scheme after plugins had their say */
  namer(): Namer {
    if (this.namerInForce) return this.namerInForce;
    const namer = this.shared.hooks.namer.call(defaultNamer(this.config), this.config);
    if (typeof namer?.next !== "function" || typeof namer.isOwn !== "function") {
      // without isOwn, nothing could tell abgleich's snapshots from hand-made ones
      throw new Error(
        "the namer hook must return a Namer with next() and isOwn(): a naming plugin returned something else",
      );
    }
    // bound and frozen: a class-based namer works, and nobody can swap isOwn later
    // `utc` goes along: retention counts its periods in the time the names are written in
    const next = namer.next.bind(namer);
    this.namerInForce = freeze({
      // what a naming plugin returns is checked here, so a wrong shape or a name zfs would
      // refuse is a plan error naming the plugin's result, not an internal error or a failed
      // `zfs snapshot`
      next: (existing: readonly string[], now: Date) => checkedName(next(existing, now)),
      isOwn: namer.isOwn.bind(namer),
      ...(namer.utc === true ? { utc: true } : {}),
    });
    return this.namerInForce;
  }

  stageInfo(stage: StageName, side?: Side): StageInfo {
    const changing = stage !== "inventory" && stage !== "compare";
    return Object.freeze({
      stage,
      config: this.config,
      side,
      dryRun: this.options.dryRun,
      changes: changing && !this.options.dryRun,
      signal: this.signal,
    });
  }

  /** one side's tree, read once and cached until a stage changes that side */
  inventory(side: Side, sharing?: GuidSharing): Promise<Inventory> {
    let pending = this.cache.get(side);
    if (!pending) {
      pending = this.ports[side].inventory(rootOf(this.config[side]), sharing);
      this.cache.set(side, pending);
      pending.catch(() => this.cache.delete(side));
    }
    return untilCancelled(pending, this.signal);
  }

  /** where a side is, the key of its simulated view */
  private where(side: Side): string {
    return `${this.config[side].host}:${rootOf(this.config[side])}`;
  }

  /**
   * In a dry run, the side as the earlier stages' plans would have left it; null otherwise.
   * A real run never plans from it: the options are frozen per run, and act() refuses a view
   * with anything planned in it (refuseSimulated).
   */
  private simulatedView(side: Side): Inventory | null {
    if (!this.options.dryRun) return null;
    return this.shared.simulated.get(this.where(side)) ?? null;
  }

  private warn(text: string): void {
    this.ui.warn(text);
  }

  /** a transfer moved more bytes: the ui and the progress hook (a throwing tap is a warning) */
  progress(action: Action, bytesDone: number, bytesTotal: number | null): void {
    this.ui.actionProgress(action, bytesDone);
    if (!this.shared.hooks.progress.isUsed()) return;
    try {
      this.shared.hooks.progress.call({ action, bytesDone, bytesTotal });
    } catch (error) {
      this.warn(messageOf(error));
    }
  }

  /**
   * a hook's promise, given up on when the run is cancelled: after a moment for the hook to
   * say what the cancel stopped (a hook command's "was stopped"), which is then the error
   */
  private async fire(work: Promise<unknown>): Promise<unknown> {
    try {
      return await untilCancelled(work, this.signal);
    } catch (error) {
      if (!this.signal.aborted || !isCancelError(error)) throw error;
      const settled = await withinGrace(
        work.then(
          () => null,
          (reason: unknown) => reason,
        ),
        HOOK_CANCEL_GRACE_MS,
        () => {},
      );
      if (settled instanceof Error && !isCancelError(settled)) throw settled;
      throw error;
    }
  }

  /** a hook that reports rather than fails: after-hooks, error and done */
  private async report(what: string, work: () => Promise<unknown>): Promise<void> {
    const grace = this.options.afterCancelGraceMs ?? AFTER_CANCEL_GRACE_MS;
    const late = () =>
      this.warn(`${what} still running ${grace / 1000} s after the cancel; not waiting for it`);
    try {
      const pending = work();
      if (!this.signal.aborted) {
        // a cancel that arrives while the hook runs starts its grace period then
        const cancelled = await untilCancelled(pending, this.signal).then(
          () => false,
          (error) => {
            if (this.signal.aborted) return true;
            throw error;
          },
        );
        if (!cancelled) return;
      }
      await withinGrace(pending, grace, late);
    } catch (error) {
      this.warn(messageOf(error));
    }
  }

  private async checkHosts(sides: readonly Side[]): Promise<void> {
    await untilCancelled(
      Promise.all(sides.map((side) => this.hosts[side].ping({ signal: this.signal }))),
      this.signal,
    );
  }

  private async lock(stage: StageName, sides: readonly Side[]): Promise<void> {
    const lock = this.options.lock;
    if (!lock) return;
    // in the order of their keys, whatever the sides: two runs that take the same two keys
    // (a config and its reverse) take them alike, and so never wait for each other
    const keyOf = (side: Side) => `${this.config[side].host}:${rootOf(this.config[side])}`;
    const command = this.options.command;
    const what = command === undefined || command === stage ? stage : `${command}: ${stage}`;
    for (const side of [...sides].sort((a, b) => keyOf(a).localeCompare(keyOf(b)))) {
      const key = keyOf(side);
      let taking = this.shared.locks.get(key);
      if (taking === undefined) {
        taking = lock(key, `abgleich ${what} (${this.config.file}) changing ${side} ${key}`);
        this.shared.locks.set(key, taking);
        // refused (or cancelled): nothing is held, a later stage may try again
        taking.catch(() => {
          if (this.shared.locks.get(key) === taking) this.shared.locks.delete(key);
        });
      }
      await untilCancelled(taking, this.signal);
    }
  }

  /**
   * read the trees of `sides` (in a dry run's changing stage: as the earlier stages' plans
   * would have left them), tell the plugins once, and warn about what matches nothing
   */
  private async read(
    info: StageInfo,
    sides: readonly Side[],
    afterPlanned = false,
  ): Promise<Inventories> {
    // both sides read together share their guid strings (a target's snapshots are its source's)
    const sharing = new GuidSharing();
    const side = (which: Side) =>
      sides.includes(which)
        ? ((afterPlanned ? this.simulatedView(which) : null) ?? this.inventory(which, sharing))
        : null;
    const [source, target] = await Promise.all([side("source"), side("target")]);
    const empty = (side: Side): Inventory =>
      deepFreeze({ side, root: rootOf(this.config[side]), datasets: [] });
    const inventories = { source: source ?? empty("source"), target: target ?? empty("target") };
    if (source && target) await this.refuseOneTree(source, target);
    const { hooks } = this.shared;
    // handed to plugins frozen, so nothing can edit the trees the guard reads; freezing a
    // million snapshots takes seconds, so only when a plugin will see them
    if (hooks.inventory.isUsed() || hooks.plan.isUsed()) {
      deepFreeze(inventories.source);
      deepFreeze(inventories.target);
    }
    if (hooks.inventory.isUsed() && source) {
      await this.fire(hooks.inventory.promise(Object.freeze({ stage: info, source, target })));
    }
    if (!this.shared.warnedIgnore && source && source.datasets.length > 0) {
      this.shared.warnedIgnore = true;
      const known = new Set([
        ...source.datasets.map((d) => d.subname),
        ...(target?.datasets.map((d) => d.subname) ?? []),
      ]);
      for (const entry of this.config.ignore) {
        if (!known.has(entry))
          this.warn(
            `ignore entry "${entry}" matches no dataset under ${source.root} (a typo? entries are exact subnames)`,
          );
      }
    }
    return inventories;
  }

  /** why the config leaves a subname out, for the guard */
  private readonly excluded = (subname: string) => exclusionReason(subname, this.config);

  /**
   * The target is the source itself when a dataset is on both sides (equal dataset guids) in
   * one pool (equal pool guids): the config names one machine twice (`localhost` and
   * `127.0.0.1`, `nas` and `nas.lan`), or a target inside the source tree under another host
   * name. Every snapshot would look backed up and cleanup would free the only copies, so no
   * stage goes on. A block-level copy of the pool (`zpool split`, which gives the new pool a
   * guid of its own, or a disk image after `zpool reguid`) keeps the dataset guids and is a
   * target like any other.
   */
  private async refuseOneTree(source: Inventory, target: Inventory): Promise<void> {
    const same = sameDatasets(source, target);
    const first = same[0];
    if (first === undefined) return;
    const pool = (side: Side) => rootOf(this.config[side]).split("/")[0] as string;
    const [sourcePool, targetPool] = await Promise.all([
      this.ports.source.poolGuid(pool("source")),
      this.ports.target.poolGuid(pool("target")),
    ]);
    if (sourcePool !== null && targetPool !== null && sourcePool !== targetPool) return;
    const more = same.length > 1 ? ` (and ${same.length - 1} more)` : "";
    throw new ConfigError({
      file: this.config.file,
      keyPath: "target",
      line: null,
      column: null,
      reason:
        `the target is the source itself: ${first.target.name} on the target (${this.config.target.host}) ` +
        `is ${first.source.name} on the source (${this.config.source.host}), one dataset (guid ${first.source.guid}) in one pool (guid ${sourcePool ?? "unread"})${more}; ` +
        "the two host names reach one machine. Point target.zpool/target.prefix outside the source tree " +
        "(a target pool copied block by block from the source's keeps its guid: give it one of its own with zpool reguid)",
    });
  }

  /**
   * The other targets of this run's source (a workflow's `run.with()`), read afresh: cleaning
   * the source against one target must not destroy what another still needs as its base.
   */
  private async otherTargets(): Promise<Inventory[]> {
    const where = (run: Run, side: Side) => run.where(side);
    const seen = new Set([where(this, "target")]);
    const others: Run[] = [];
    for (const run of this.shared.runs) {
      if (where(run, "source") !== where(this, "source") || seen.has(where(run, "target")))
        continue;
      seen.add(where(run, "target"));
      others.push(run);
    }
    return Promise.all(
      others.map(async (run) => {
        const simulated = run.simulatedView("target");
        if (simulated) return simulated;
        run.cache.delete("target");
        try {
          await run.checkHosts(["target"]);
          return await run.inventory("target");
        } catch (error) {
          if (isCancel(error, this.signal)) throw error;
          throw new Error(
            `cannot check what the other target ${where(run, "target")} of this run still needs from the source: ${messageOf(error)}`,
          );
        }
      }),
    );
  }

  /** plugins see a copy of the plan; what they return is checked, copied again and frozen */
  private async pluginPlan(info: StageInfo, plan: Plan, inv: Inventories): Promise<Plan> {
    const { hooks } = this.shared;
    let result = plan;
    if (hooks.plan.isUsed()) {
      const planInfo = Object.freeze({ ...info, source: inv.source, target: inv.target });
      planChecks.set(planInfo, {
        isOwn: this.namer().isOwn,
        otherTargets: inv.otherTargets ?? [],
      });
      result = (await this.fire(hooks.plan.promise(clone(plan), planInfo))) as Plan;
    }
    let owned: Plan;
    try {
      const copy = clone(result);
      // a plugin may add conflicts and errors, never drop the planner's: they fail the stage
      const added = <T>(mine: readonly T[], theirs: unknown): T[] => {
        const known = new Set(mine.map((item) => JSON.stringify(item)));
        const extra = Array.isArray(theirs) ? (theirs as T[]) : [];
        return [...clone(mine), ...extra.filter((item) => !known.has(JSON.stringify(item)))];
      };
      owned = deepFreeze({
        actions: copy.actions,
        conflicts: added(plan.conflicts, copy.conflicts),
        errors: added(plan.errors, copy.errors),
        skipped: Array.isArray(copy.skipped) ? copy.skipped : clone(plan.skipped),
        // the planner's own verdicts on what retention keeps: an explanation no plugin rewrites
        ...(plan.retention ? { retention: clone(plan.retention) } : {}),
      });
    } catch (error) {
      throw new SafetyError([`the plan cannot be copied: ${messageOf(error)}`], "a plugin");
    }
    const violations = planViolations(
      info.stage,
      owned,
      inv.source,
      inv.target,
      info.side,
      this.namer().isOwn,
      inv.otherTargets,
      this.excluded,
    );
    if (violations.length > 0) throw new SafetyError(violations, "the plan");
    return owned;
  }

  /** plan, let plugins see it, show it, ask, then run the actions one by one, each checked */
  async changing(stage: ChangingStage): Promise<StageResult> {
    const { hooks, ui } = this.shared;
    const info = this.stageInfo(stage.stage, stage.side);
    const results: StageResult["results"] = [];
    let plan = EMPTY_PLAN;
    let failure: Error | undefined;
    let stopped: Error | undefined;
    let status: StageOutcome["status"];
    try {
      if (info.changes) await this.lock(stage.stage, stage.changes);
      await this.fire(hooks.beforeStage.promise(info));
      // read afresh: a before-hook (or another tool) may have changed the pools since an
      // earlier stage of this run read them, and the guard must see the pools as they are
      for (const side of stage.reads) this.cache.delete(side);
      await this.checkHosts(stage.reads);
      const inventories = await this.read(info, stage.reads, this.options.dryRun);
      if (stage.stage === "cleanup" && stage.side === "source")
        inventories.otherTargets = await this.otherTargets();
      await stage.preflight?.(inventories);
      plan = await this.pluginPlan(info, await stage.plan(inventories), inventories);
      if (this.options.dryRun) plan = this.advanceDryRun(stage, plan, inventories);
      for (const conflict of plan.conflicts)
        this.summary.conflict(conflict.subname, conflict.message);
      for (const problem of plan.errors) this.summary.failure(problem.subname, problem.message);
      const troubles = plan.conflicts.length + plan.errors.length;
      if (troubles > 0) failure = new PlanTroubles(stage.stage, plan);
      const estimates = stage.estimate
        ? await untilCancelled(stage.estimate(plan), this.signal)
        : new Map<SendAction, number>();
      ui.showPlan(info, plan, estimates);
      status = await this.act(info, stage, plan, estimates, results, inventories);
      // conflicts and planning errors fail the stage, even when everything else went well (or
      // would have: a dry run's too, so a cron'd dry run sees them)
      if (troubles > 0 && (status === "ok" || status === "nothing-to-do" || status === "dry-run"))
        status = "failed";
    } catch (error) {
      if (isCancel(error, this.signal)) {
        status = "cancelled";
        // what the cancel stopped, when it says so itself (a hook's command): the cancel alone
        // is no news
        if (!isCancelError(error)) stopped = asError(error);
      } else {
        status = "failed";
        failure = asError(error);
      }
    }
    if (results.length > 0) for (const side of stage.changes) this.cache.delete(side);
    if (status === "failed") {
      // what failed, apart from what was held back because of it
      const unsuccessful = results.filter((r) => !r.outcome.ok);
      const ran = unsuccessful.filter((r) => !r.outcome.error?.startsWith(NOT_RUN));
      const failed = ran.length > 0 ? ran : unsuccessful;
      const notRun = unsuccessful.length - failed.length;
      const heldBack = notRun > 0 ? `; ${notRun} not run because of it` : "";
      failure ??= new Error(
        `${stage.stage}: ${failed.length} action(s) failed: ${failed.map((r) => r.outcome.error?.split("\n")[0]).join("; ")}${heldBack}`,
      );
    }
    const error = status === "failed" ? failure : status === "cancelled" ? stopped : undefined;
    return this.end(info, { status, ...(error ? { error } : {}) }, plan, results);
  }

  /**
   * Dry run: the sides the stage read, as they would be had its plan run, for the next
   * stage's preview; the plan, marked with the snapshots only earlier plans would make.
   */
  private advanceDryRun(stage: ChangingStage, plan: Plan, inventories: Inventories): Plan {
    if (plan.actions.length > 0) {
      const after = applyPlanned(inventories, plan, {
        now: this.options.now(),
        holdTags: holdTags(this.config),
      });
      for (const side of stage.reads)
        this.shared.simulated.set(this.where(side), deepFreeze(after[side]));
    }
    const planned = plannedNames(plan, inventories);
    return planned.length === 0 ? plan : deepFreeze({ ...plan, planned });
  }

  /**
   * A destroy is checked against the pools as they are once the yes is given, not only as they
   * were when the plan was made: while the question waited (minutes, at a prompt), another
   * tool's pruning or a `zfs destroy` by hand may have taken the target's copy of a snapshot the
   * plan frees on the source. The trees are read again and the whole plan checked; if it no
   * longer holds, nothing is destroyed.
   */
  private async afterTheYes(
    info: StageInfo,
    stage: ChangingStage,
    plan: Plan,
    before: Inventories,
  ): Promise<Inventories> {
    for (const side of stage.reads) this.cache.delete(side);
    const sharing = new GuidSharing();
    const fresh = (side: Side) =>
      stage.reads.includes(side) ? this.inventory(side, sharing) : Promise.resolve(before[side]);
    const [source, target] = await Promise.all([fresh("source"), fresh("target")]);
    if (stage.reads.length === 2) await this.refuseOneTree(source, target);
    const now: Inventories = { source, target };
    if (before.otherTargets !== undefined) now.otherTargets = await this.otherTargets();
    const violations = planViolations(
      info.stage,
      plan,
      now.source,
      now.target,
      info.side,
      this.namer().isOwn,
      now.otherTargets,
      this.excluded,
    );
    if (violations.length > 0)
      throw new Error(
        `the pools changed while the plan waited for its yes, so nothing was destroyed: ${violations.join("; ")}. Run ${stage.stage} again: it plans from the pools as they are`,
      );
    return now;
  }

  /** from the plan to its last action; the stage's status */
  private async act(
    info: StageInfo,
    stage: ChangingStage,
    plan: Plan,
    estimates: ReadonlyMap<SendAction, number>,
    results: StageResult["results"],
    inventories: Inventories,
  ): Promise<StageOutcome["status"]> {
    const { hooks, ui } = this.shared;
    if (plan.actions.length === 0) return "nothing-to-do";
    if (this.options.dryRun) return "dry-run";
    if (!(await untilCancelled(ui.confirm(info, plan, stage.danger === true), this.signal)))
      return "declined";
    // the engine's own view, as read for the plan: never a plugin's copy, never a dry run's
    refuseSimulated([inventories.source, inventories.target, ...(inventories.otherTargets ?? [])]);
    const now =
      info.stage === "cleanup" ? await this.afterTheYes(info, stage, plan, inventories) : null;
    const guard = createGuard(
      info.stage,
      info.side,
      (now ?? inventories).source,
      (now ?? inventories).target,
      this.namer().isOwn,
      (now ?? inventories).otherTargets,
      this.excluded,
    );
    const failedSubnames: string[] = [];
    let failed = false;
    /** the first error that stops the stage (a broken rule, a cancel): nothing new starts */
    let stopped: unknown;
    /** checked by the guard and seen by the beforeAction hooks (once, even when run again) */
    const checked = new Set<Action>();
    /** told to the ui as started (once, even when its batch stopped before it and it runs again) */
    const announced = new Set<Action>();
    const announce = (action: Action) => {
      if (announced.has(action)) return;
      announced.add(action);
      ui.actionStarted(action, action.kind === "send" ? (estimates.get(action) ?? null) : null);
    };
    /** the checks before an action runs; null when it is not to run (held back by a failure) */
    const prepare = async (planned: Action): Promise<Action | null> => {
      const action = narrowChain(planned, failedSubnames);
      const subnames = subnamesOf(action);
      const blockedBy = failedSubnames.find((f) => subnames.some((s) => isBelow(s, f)));
      if (blockedBy !== undefined) {
        const outcome: ActionOutcome = {
          ok: false,
          error: `${NOT_RUN}: an earlier action for ${blockedBy === "" ? "the root" : blockedBy} failed`,
          durationMs: 0,
        };
        results.push({ action, outcome });
        ui.actionFinished(action, outcome);
        return null;
      }
      if (checked.has(action)) return action;
      const violations = guard.check(action);
      if (violations.length > 0) throw new SafetyError(violations, `the ${info.stage} action`);
      await this.fire(hooks.beforeAction.promise(action, info));
      // checked again after the last plugin had the action: it is frozen, so this is belt and braces
      const late = guard.check(action);
      if (late.length > 0) throw new SafetyError(late, "a beforeAction plugin");
      checked.add(action);
      return action;
    };
    /** what follows an action's end: the guard learns what arrived, the ui, the hooks, the summary */
    const conclude = async (action: Action, ended: ActionOutcome): Promise<void> => {
      const outcome = freeze({ ...ended });
      if (outcome.ok) guard.accept(action);
      results.push({ action, outcome });
      ui.actionFinished(action, outcome);
      await this.fire(hooks.afterAction.promise(action, outcome, info));
      if (!outcome.ok) {
        failed = true;
        const subnames = subnamesOf(action);
        for (const subname of subnames) this.summary.failure(subname, outcome.error ?? "failed");
        failedSubnames.push(...subnames);
      }
    };
    const failure = (error: unknown): ActionOutcome => {
      if (isCancel(error, this.signal)) throw error;
      return { ok: false, error: messageOf(error), durationMs: 0 };
    };
    /** one action, or a batch of them; the actions of a batch that did not run */
    const runBatch = async (batch: Action[]): Promise<readonly Action[]> => {
      if (stopped !== undefined || this.signal.aborted) return [];
      const actions: Action[] = [];
      for (const planned of batch) {
        const action = await prepare(planned);
        if (action !== null) actions.push(action);
      }
      if (actions.length === 1 || !stage.executeBatch) {
        for (const action of actions) {
          if (stopped !== undefined || this.signal.aborted) return [];
          announce(action);
          let outcome: ActionOutcome;
          try {
            outcome = await stage.execute(action, estimates);
          } catch (error) {
            outcome = failure(error);
          }
          await conclude(action, outcome);
        }
        return [];
      }
      if (actions.length === 0) return [];
      /** the actions the stage told as ended while the batch ran, and their conclusions */
      const concluded = new Map<Action, Promise<void>>();
      const ended = (action: Action, outcome: ActionOutcome) => {
        if (!concluded.has(action) && actions.includes(action))
          concluded.set(action, conclude(action, outcome));
      };
      let outcomes: (ActionOutcome | null)[];
      try {
        outcomes = await stage.executeBatch(actions, estimates, announce, ended);
      } catch (error) {
        const outcome = failure(error);
        outcomes = actions.map(() => outcome);
      }
      await Promise.all(concluded.values());
      const again: Action[] = [];
      for (const [index, action] of actions.entries()) {
        if (concluded.has(action)) continue;
        const outcome = outcomes[index];
        // the first of a batch always ran: an answer without it is the stage's mistake
        if (outcome === null && index > 0) again.push(action);
        else await conclude(action, outcome ?? { ok: false, error: NOT_RUN, durationMs: 0 });
      }
      return again;
    };
    // `transfer.parallel` transfers at once; every other stage, and parallel: 1, one by one
    const lanes = info.stage === "backup" ? this.transferLimit() : 1;
    await runInLanes(
      plan.actions,
      lanes,
      (action) => (stage.executeBatch && stage.batchSize ? stage.batchSize(action) : 1),
      async (batch) => {
        try {
          return await runBatch(batch);
        } catch (error) {
          stopped ??= error;
          return [];
        }
      },
      () => stopped !== undefined || this.signal.aborted,
    );
    if (stopped !== undefined) throw stopped;
    if (this.signal.aborted) return "cancelled";
    if (stage.finish) await untilCancelled(stage.finish(results), this.signal);
    return failed ? "failed" : "ok";
  }

  /**
   * How many transfers may run at once. Over ssh every transfer is a session of the shared
   * connection on each remote host, and sshd allows 10 per connection by default
   * (MaxSessions): 8 leaves room for the control commands that run beside them.
   */
  private transferLimit(): number {
    const wanted = Math.max(1, this.config.transfer.parallel);
    const remote = !this.hosts.source.isLocal || !this.hosts.target.isLocal;
    if (!remote || wanted <= SSH_PARALLEL_LIMIT) return wanted;
    if (!this.shared.warnedParallel) {
      this.shared.warnedParallel = true;
      this.warn(
        `transfer.parallel ${wanted} is more than the ${SSH_PARALLEL_LIMIT} sessions one ssh connection can carry with sshd's default MaxSessions 10: sending ${SSH_PARALLEL_LIMIT} at once`,
      );
    }
    return SSH_PARALLEL_LIMIT;
  }

  /** the end of every stage: error hook when it failed, afterStage, the ui, the summary */
  private async end<R extends StageResult>(
    info: StageInfo,
    outcome: StageOutcome,
    plan: Plan,
    results: StageResult["results"],
    extra?: Omit<R, keyof StageResult>,
  ): Promise<R> {
    const { hooks, ui } = this.shared;
    // frozen: an afterStage plugin cannot turn a failed stage into a good one
    if (outcome.error) freeze(outcome.error);
    freeze(outcome);
    this.shared.outcomes.push(outcome);
    this.summary.stage(info.stage, info.side, outcome, {
      source: this.where("source"),
      target: this.where("target"),
    });
    if (outcome.status === "failed" && outcome.error) {
      const error = outcome.error;
      await this.report("an error hook", () => hooks.error.promise(error, info));
    }
    await this.report("an afterStage hook", () => hooks.afterStage.promise(info, outcome));
    ui.stageFinished(info, outcome);
    return { outcome, plan, results, ...extra } as R;
  }

  /** `tree` and `compare`: read the sides, tell the plugins, change nothing */
  async reading(stage: "inventory" | "compare", sides: readonly Side[]): Promise<ReadResult> {
    const { hooks } = this.shared;
    const info = this.stageInfo(stage);
    const found: Partial<Record<Side, Inventory>> = {};
    let comparison: Comparison | undefined;
    let outcome: StageOutcome = { status: "ok" };
    try {
      await this.fire(hooks.beforeStage.promise(info));
      for (const side of sides) this.cache.delete(side);
      await this.checkHosts(sides);
      const inventories = await this.read(info, sides);
      for (const side of sides) {
        const inventory = inventories[side];
        found[side] = inventory;
        // a missing target root is normal before the first backup; a missing source is a typo
        if (side === "source" && inventory.datasets.length === 0)
          this.warn(
            `${side} root ${inventory.root} does not exist on ${this.hosts[side].name} (shown as empty): check ${side}.zpool and ${side}.prefix in ${this.config.file}`,
          );
      }
      if (stage === "compare")
        comparison = compareTrees(inventories.source, inventories.target, this.config);
    } catch (error) {
      outcome = isCancel(error, this.signal)
        ? { status: "cancelled" }
        : { status: "failed", error: asError(error) };
    }
    return this.end<ReadResult>(info, outcome, EMPTY_PLAN, [], {
      inventories: found,
      comparison,
    });
  }

  /**
   * The run's end: the exit code (its own, from a workflow, or from the stages' outcomes; 130
   * or 143 when cancelled), `done` exactly once, every host closed, every lock released.
   */
  async finish(code: number | null): Promise<{ code: number; summary: RunSummary }> {
    const exit = this.signal.aborted
      ? cancelExitCode(this.signal)
      : (code ?? this.exitOfOutcomes());
    const summary = deepFreeze(this.summary.finish(exit));
    await this.report("a done hook", () => this.shared.hooks.done.promise(summary));
    await this.close();
    return { code: exit, summary };
  }

  /** 0 when every stage went well; 2 when one ended on a config error (README: Exit codes) */
  private exitOfOutcomes(): number {
    const bad = this.shared.outcomes.filter((outcome) => !GOOD.has(outcome.status));
    if (bad.length === 0) return EXIT_OK;
    return bad.some((outcome) => outcome.error instanceof ConfigError) ? EXIT_USAGE : EXIT_FAILED;
  }

  private async close(): Promise<void> {
    const hosts = this.shared.runs.flatMap((run) => [run.hosts.source, run.hosts.target]);
    await closeAll(hosts).catch((error) => this.warn(`closing connections: ${messageOf(error)}`));
    const taken = await Promise.allSettled(this.shared.locks.values());
    for (const lock of taken) if (lock.status === "fulfilled") lock.value();
    this.shared.locks.clear();
  }
}

/** the exit code for an error that ended a run before or outside its stages */
export function exitCodeOfError(error: unknown, signal: AbortSignal): number {
  if (isCancel(error, signal)) return cancelExitCode(signal);
  return error instanceof ConfigError ? EXIT_USAGE : EXIT_FAILED;
}
