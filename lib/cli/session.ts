// One command-line run around the engine's runner: load the config and its plugins, open a Run
// with the console's ui, listen for Ctrl-C/SIGTERM, run the command's body, report, and end
// with `done` and the exit code. Every command goes through here, so they all share one exit
// code rule, one Ctrl-C path and one summary.

import { loadConfig } from "../config/load.ts";
import { summaryText } from "../engine/api.ts";
import { cancelOnSignals, isCancelError } from "../engine/cancel.ts";
import { createHooks, type EngineHooks } from "../engine/hooks.ts";
import { acquireRunLock } from "../engine/lock.ts";
import { loadPlugins, type PluginIo } from "../engine/plugins.ts";
import { addSecrets, secretsOf } from "../engine/redact.ts";
import { deepFreeze, exitCodeOfError, Run, type RunOptions } from "../engine/runner.ts";
import { summaryLine, summaryTotals } from "../engine/summary.ts";
import type { StageUi } from "../engine/ui.ts";
import { parseWaitDuration } from "../engine/wait.ts";
import { createHost, type Host, sudoArgvOf } from "../hosts/index.ts";
import { shellJoin } from "../hosts/quote.ts";
import { recordRun } from "../status/state.ts";
import { summaryEvent } from "./events.ts";
import { type CommandIo, commandIo, type GlobalFlags, reportError } from "./io.ts";
import { quietUi } from "./quiet.ts";
import { type ConsoleUi, consoleUi, readOnlyUi } from "./ui.ts";

export interface SessionFlags extends GlobalFlags {
  yesDestroyTarget?: boolean;
  /** `--wait[=DURATION]`: wait for a run holding the same target instead of refusing */
  wait?: string | true;
}

export interface Session {
  /** tree and compare change nothing: no lock, no start or success pings */
  readOnly: boolean;
  /** print the run's summary at the end (several stages, or a failure) */
  summary?: "always" | "on-failure" | "never";
  makeUi?: (io: CommandIo) => StageUi;
  /** the command, when its stages go by other names (`run nightly`, `wizard`): for the lock */
  command?: string;
  /** a failure before the body (the config, a plugin): handed to the command, not reported */
  startFailed?: (error: unknown) => void;
}

/** what tests (and the GUI) replace: the signal, the hooks, where plugin lines go, run options */
export interface SessionEnvironment {
  signal?: AbortSignal;
  hooks?: EngineHooks;
  pluginIo?: PluginIo;
  ui?: StageUi;
  runOptions?: Partial<RunOptions>;
}

export function runOptionsOf(flags: GlobalFlags, signal: AbortSignal): RunOptions {
  return {
    yes: flags.yes === true,
    dryRun: flags.dryRun === true,
    json: flags.json === true,
    interactive: process.stdin.isTTY === true,
    signal,
    now: () => new Date(),
  };
}

/** run `body` as one engine Run; the exit code (0, 1, 2, 130, 143, or the body's own) */
export async function runSession(
  configPath: string,
  flags: SessionFlags,
  session: Session,
  body: (run: Run, io: CommandIo) => Promise<number | null | undefined>,
  environment: SessionEnvironment = {},
): Promise<number> {
  // a changing run writes a log (timestamped off a terminal); tree and compare a document
  const io = commandIo(flags, session.readOnly ? "document" : "log");
  const cancel = environment.signal ? null : cancelOnSignals((text) => io.warn(text));
  const signal = environment.signal ?? (cancel as { signal: AbortSignal }).signal;
  const pluginIo: PluginIo = environment.pluginIo ?? {
    log: (text) => io.log(text),
    // an event in a changing run's stream; tree, compare and status print one document
    warn: (text) =>
      io.json && !session.readOnly ? io.event("warning", { text }) : io.warn(`warning: ${text}`),
  };
  try {
    // frozen before any plugin's setup sees it: what the engine plans with is what was loaded
    const config = deepFreeze(loadConfig(configPath));
    // a notify token or a webhook's password never shows in a line of this run
    addSecrets(secretsOf(config.plugins));
    const hooks = environment.hooks ?? createHooks();
    await loadPlugins(config, hooks, pluginIo);
    const ui =
      environment.ui ??
      (
        session.makeUi ??
        (session.readOnly ? readOnlyUi : (consoleIo) => changingUi(consoleIo, flags))
      )(io);
    const waitMs = flags.wait === undefined ? 0 : parseWaitDuration(flags.wait);
    const options: RunOptions = {
      ...runOptionsOf(flags, signal),
      ...(io.verbose
        ? {
            hostFor: (side, sides) =>
              traced(
                createHost(side, sides[side], sides.ssh, environment.runOptions?.hostOptions),
                io,
              ),
          }
        : {}),
      ...(session.command === undefined ? {} : { command: session.command }),
      lock: async (key, description) => {
        const held = await acquireRunLock({
          key,
          description,
          waitMs,
          signal,
          onWait: (text) => io.log(text),
        });
        return () => held.release();
      },
      ...environment.runOptions,
    };
    const mode = session.readOnly ? "read-only" : options.dryRun ? "dry-run" : "changing";
    const run = Run.open(config, hooks, ui, options, mode);
    let code: number | null;
    let cancelReported = false;
    try {
      code = (await body(run, io)) ?? null;
    } catch (error) {
      cancelReported = isCancelError(error);
      reportError(io, error);
      code = exitCodeOfError(error, signal);
    }
    const finished = await run.finish(code);
    recordRun(finished.summary, (text) => io.warn(`warning: ${text}`));
    const show = session.summary ?? "on-failure";
    // a changing run Ctrl-C or SIGTERM ended inside a stage (a cancel outside one was reported
    // above); tree and compare print one document, not events
    if (io.json && !session.readOnly && signal.aborted && !cancelReported)
      io.event("cancelled", {
        reason: typeof signal.reason === "string" ? signal.reason : "cancelled",
      });
    if (io.json) {
      // the last event of a changing run (tree and compare print one document instead)
      if (!session.readOnly) io.event("summary", summaryEvent(finished.summary));
    } else if (io.quiet) {
      // one line, and none at all for an idle run
      const line = session.readOnly ? null : summaryLine(finished.summary);
      if (line !== null) io.print(line);
    } else if (show === "always" || (show === "on-failure" && finished.code !== 0)) {
      // conflicts are counted, not quoted again, when the console's plans showed each whole
      const shown = (ui as ConsoleUi).conflictsShown?.() ?? 0;
      const conflicts = summaryTotals(finished.summary).conflicts;
      io.print(summaryText(finished.summary, { conflictsShown: shown >= conflicts }));
    }
    return finished.code;
  } catch (error) {
    // the config or a plugin could not be loaded: nothing ran
    if (session.startFailed) session.startFailed(error);
    else reportError(io, error);
    return exitCodeOfError(error, signal);
  } finally {
    cancel?.dispose();
  }
}

/** the ui of a changing command: events with --json, almost nothing with --quiet, else the console */
function changingUi(io: CommandIo, flags: SessionFlags): StageUi {
  const options = consoleOptions(flags);
  // with --json the console's ui is the event stream, whatever --quiet says
  return io.quiet && !io.json ? quietUi(io, options) : consoleUi(io, options);
}

/** `-v`: a host that says each command before running it (argv as a shell would read it) */
function traced(host: Host, io: CommandIo): Host {
  const say = (argv: readonly string[], what: string) =>
    io.debug(`${host.side} (${host.name}) ${what}: ${shellJoin(argv)}`, {
      side: host.side,
      host: host.name,
      argv: [...argv],
    });
  return {
    side: host.side,
    name: host.name,
    isLocal: host.isLocal,
    // the transfer pipeline reads it to put the side's zfs stages under sudo
    sudo: host.sudo === true,
    run: (argv, options) => {
      say(sudoArgvOf(host, argv), "runs");
      return host.run(argv, options);
    },
    // a transfer's stages: wrapped for the pipeline, which runs them
    wrap: (argv) => {
      say(argv, "pipes");
      return host.wrap(argv);
    },
    // the stages a transfer runs on this machine: nothing wraps them
    trace: (argv) => say(argv, "pipes"),
    ping: (options) => host.ping(options),
    close: () => host.close(),
  };
}

export const consoleOptions = (flags: SessionFlags) => ({
  yes: flags.yes === true,
  yesDestroyTarget: flags.yesDestroyTarget === true,
});
