// snap, backup and cleanup from the command line: load, plan, show, ask, act, summarise.
// Ctrl-C stops before the next action (a running transfer is cut and stays resumable); a second
// Ctrl-C ends at once.

import { summaryText } from "../../engine/api.ts";
import type { RunContext } from "../../engine/context.ts";
import type { StageOutcome } from "../../engine/hooks.ts";
import { backupStage } from "../../engine/stages/backup.ts";
import type { StageResult } from "../../engine/stages/changing.ts";
import { cleanupStage } from "../../engine/stages/cleanup.ts";
import { snapStage } from "../../engine/stages/snap.ts";
import type { StageUi } from "../../engine/ui.ts";
import type { Side } from "../../zfs/model.ts";
import {
  type CommandIo,
  commandIo,
  EXIT_FAILED,
  EXIT_OK,
  type GlobalFlags,
  openRun,
  reportError,
} from "../io.ts";
import { consoleUi } from "../ui.ts";

export interface ChangeFlags extends GlobalFlags {
  yesDestroyTarget?: boolean;
}

export function exitCodeOf(outcomes: readonly StageOutcome[]): number {
  const good = new Set<StageOutcome["status"]>(["ok", "nothing-to-do", "dry-run"]);
  return outcomes.every((o) => good.has(o.status)) ? EXIT_OK : EXIT_FAILED;
}

/** Ctrl-C aborts the run's signal; a second one exits */
export function interruptible(io: CommandIo): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    io.warn("\ninterrupted: stopping after the current step (Ctrl-C again to quit at once)");
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

/** run `stages` one after another, stopping at the first that does not end well */
export async function runStages(
  configPath: string,
  flags: ChangeFlags,
  stages: ((ctx: RunContext) => Promise<StageResult>)[],
  makeUi: (io: CommandIo) => StageUi = (io) =>
    consoleUi(io, { yes: flags.yes === true, yesDestroyTarget: flags.yesDestroyTarget === true }),
): Promise<number> {
  const io = commandIo(flags);
  const interrupt = interruptible(io);
  let ctx: RunContext | undefined;
  try {
    ctx = await openRun(configPath, flags, interrupt.signal, makeUi, io);
    const outcomes: StageOutcome[] = [];
    for (const stage of stages) {
      const { outcome } = await stage(ctx);
      outcomes.push(outcome);
      if (exitCodeOf([outcome]) !== EXIT_OK) break;
    }
    const code = exitCodeOf(outcomes);
    const summary = ctx.summary.finish(code);
    // after several stages, a failure or Ctrl-C: say what was done
    if (!io.json && (stages.length > 1 || code !== EXIT_OK)) io.print(summaryText(summary));
    await ctx.hooks.done.promise(summary);
    return code;
  } catch (error) {
    const code = reportError(io, error);
    if (ctx) await ctx.hooks.done.promise(ctx.summary.finish(code)).catch(() => {});
    return code;
  } finally {
    interrupt.dispose();
    await ctx?.close();
  }
}

export const snapCommand = (config: string, flags: ChangeFlags) =>
  runStages(config, flags, [snapStage]);
export const backupCommand = (config: string, flags: ChangeFlags) =>
  runStages(config, flags, [backupStage]);
export const cleanupCommand = (config: string, side: Side | undefined, flags: ChangeFlags) =>
  runStages(config, flags, [(ctx) => cleanupStage(ctx, side ?? "source")]);
