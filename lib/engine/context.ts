// One run of abgleich: the config, the hooks with their plugins, a Host per side, and what has
// been read so far. Stages take a RunContext; nothing in it is global.

import type { Config } from "../config/types.ts";
import { rootOf } from "../config/types.ts";
import type { Host } from "../hosts/host.ts";
import { closeAll, createHost, type HostOptions } from "../hosts/index.ts";
import { defaultNamer, type Namer } from "../plan/naming.ts";
import { readInventory } from "../zfs/inventory.ts";
import type { Inventory, Side } from "../zfs/model.ts";
import { createHooks, type Hooks, type StageInfo, type StageName } from "./hooks.ts";
import { guardPlanHook } from "./safety.ts";
import { createSummaryBuilder, type SummaryBuilder } from "./summary.ts";
import { type StageUi, silentUi } from "./ui.ts";

export interface RunOptions {
  /** answer yes to every plain confirmation */
  yes: boolean;
  /** print the plan and stop */
  dryRun: boolean;
  /** machine-readable output only */
  json: boolean;
  /** stdin is a terminal: a question can be asked */
  interactive: boolean;
  /** cancelled on Ctrl-C: stages stop before their next action */
  signal: AbortSignal;
  /** the clock, so tests and the demo can fix it */
  now: () => Date;
  hostOptions?: HostOptions;
}

export interface RunContext {
  readonly config: Config;
  readonly hooks: Hooks;
  readonly options: RunOptions;
  readonly hosts: Readonly<Record<Side, Host>>;
  readonly summary: SummaryBuilder;
  readonly ui: StageUi;
  /** the snapshot naming scheme after plugins had their say (hooks.namer) */
  namer(): Namer;
  /** both sides' trees, read once and cached until a stage changes a side */
  inventory(side: Side): Promise<Inventory>;
  /** forget a side's tree after changing it, so the next stage reads it anew */
  invalidate(side: Side): void;
  stageInfo(stage: StageName, side?: Side): StageInfo;
  close(): Promise<void>;
}

export function createRunContext(
  config: Config,
  options: RunOptions,
  ui: StageUi = silentUi,
  hooks: Hooks = createHooks(),
): RunContext {
  const hosts = {
    source: createHost("source", config.source, config.ssh, options.hostOptions),
    target: createHost("target", config.target, config.ssh, options.hostOptions),
  };
  const cache = new Map<Side, Promise<Inventory>>();
  let namer: Namer | undefined;
  guardPlanHook(hooks.plan);
  return {
    config,
    hooks,
    options,
    hosts,
    summary: createSummaryBuilder(config),
    ui,
    namer() {
      namer ??= hooks.namer.call(defaultNamer(config), config);
      return namer;
    },
    inventory(side) {
      let pending = cache.get(side);
      if (!pending) {
        pending = readInventory(hosts[side], rootOf(config[side]));
        cache.set(side, pending);
        pending.catch(() => cache.delete(side));
      }
      return pending;
    },
    invalidate(side) {
      cache.delete(side);
    },
    stageInfo(stage, side) {
      return { stage, config, side, dryRun: options.dryRun, signal: options.signal };
    },
    close: () => closeAll([hosts.source, hosts.target]),
  };
}
