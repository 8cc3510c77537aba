// `status CONFIG`: is the backup fresh? Both trees and the last run's state file, judged
// against the thresholds, reported the way monitoring plugins do: the exit code (0 OK,
// 1 WARNING, 2 CRITICAL, 3 UNKNOWN) and a one-line summary first. Anything that keeps the check
// from judging — an unreadable config, a bad threshold, a host that is down — is UNKNOWN, not
// the usual exit 2 or 1: a monitoring system reads 2 as CRITICAL.

import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { loadConfig } from "../../config/load.ts";
import type { Config } from "../../config/types.ts";
import { stages } from "../../engine/stages/index.ts";
import { silentUi } from "../../engine/ui.ts";
import { durationProblem, formatThreshold, parseDuration } from "../../status/duration.ts";
import { exposition, statusMetrics, writeTextfile } from "../../status/prometheus.ts";
import { firstLine, renderStatus, statusJson, unknownJson } from "../../status/render.ts";
import {
  type Level,
  type StatusInput,
  type StatusReport,
  statusReport,
  type Thresholds,
  UNKNOWN,
} from "../../status/report.ts";
import { type RunState, readRunState, stateFile } from "../../status/state.ts";
import { type CommandIo, commandIo, type GlobalFlags } from "../io.ts";
import { runSession } from "../session.ts";

export interface StatusFlags extends GlobalFlags {
  warn?: string;
  crit?: string;
  /** write a node_exporter textfile here */
  prometheus?: string;
}

/** the config's thresholds, overridden by --warn/--crit; throws when they do not fit together */
export function thresholdsOf(flags: StatusFlags, config: Config): Thresholds {
  const pick = (flag: "warn" | "crit"): { seconds: number; from: string } => {
    const given = flags[flag];
    if (given === undefined)
      return { seconds: config.status[flag], from: `status.${flag} in ${config.file}` };
    const problem = durationProblem(given);
    if (problem !== null) throw new Error(`--${flag}: ${problem}`);
    return { seconds: parseDuration(given), from: `--${flag}` };
  };
  const warn = pick("warn");
  const crit = pick("crit");
  if (crit.seconds < warn.seconds) {
    throw new Error(
      `the critical threshold ${formatThreshold(crit.seconds)} (${crit.from}) is shorter than the warning threshold ${formatThreshold(warn.seconds)} (${warn.from}): crit must be at least as long as warn`,
    );
  }
  return { warn: warn.seconds, crit: crit.seconds };
}

interface Outcome {
  level: Level;
  report: StatusReport | null;
  /** why the check could not judge (UNKNOWN), when it could not */
  error: string | null;
}

/** where Debian's prometheus-node-exporter reads textfiles (and the shipped status unit writes) */
const DEBIAN_TEXTFILE_FOLDER = "/var/lib/prometheus/node-exporter";

const unknown = (error: string): Outcome => ({ level: UNKNOWN, report: null, error });

export async function statusCommand(configPath: string, flags: StatusFlags): Promise<number> {
  const io = commandIo(flags);
  const now = Math.floor(Date.now() / 1000);
  const configFile = resolve(configPath);
  const stateAt = stateFile(configFile);
  let state: RunState | null = null;
  let stateProblem: string | null = null;
  try {
    state = readRunState(stateAt);
  } catch (error) {
    stateProblem = (error as Error).message;
  }
  const outcome = await check(configPath, flags, {
    now,
    state,
    stateFile: stateAt,
    stateProblem,
  });
  // cancelled (130, 143): nothing to report
  if (typeof outcome === "number") return outcome;
  return finish(io, outcome, configFile, now, state, flags.prometheus);
}

type CheckContext = Pick<StatusInput, "now" | "state" | "stateFile" | "stateProblem">;

/** read the config and both trees and judge them; an exit code when the run was cancelled */
async function check(
  configPath: string,
  flags: StatusFlags,
  context: CheckContext,
): Promise<Outcome | number> {
  let thresholds: Thresholds;
  try {
    // read here first, so a bad config is UNKNOWN with its message on the first line
    thresholds = thresholdsOf(flags, loadConfig(configPath));
  } catch (error) {
    return unknown((error as Error).message);
  }
  let judged = null as Outcome | null;
  let startError = null as string | null;
  const code = await runSession(
    configPath,
    flags,
    {
      readOnly: true,
      summary: "never",
      // what goes wrong is reported by this command, on its first line (and as JSON)
      makeUi: (io) => ({ ...silentUi, warn: (text) => io.warn(`warning: ${text}`) }),
      // a plugin that cannot load: its message is the check's first line, and --json stays one
      // document
      startFailed: (error) => {
        startError = (error as Error).message ?? String(error);
      },
    },
    async (run) => {
      const { outcome, inventories } = await stages.compare(run);
      if (outcome.status === "cancelled") return null;
      if (outcome.status !== "ok" || !inventories.source || !inventories.target) {
        judged = unknown(outcome.error?.message ?? `reading the trees ended ${outcome.status}`);
        return UNKNOWN;
      }
      const report = statusReport({
        ...context,
        config: run.config,
        source: inventories.source,
        target: inventories.target,
        thresholds,
        sourceHost: run.hosts.source.name,
        targetHost: run.hosts.target.name,
      });
      judged = { level: report.level, report, error: null };
      return report.level;
    },
  );
  if (code > UNKNOWN) return code;
  return judged ?? unknown(startError ?? `the check ended with exit code ${code} before judging`);
}

function finish(
  io: CommandIo,
  outcome: Outcome,
  configFile: string,
  now: number,
  state: RunState | null,
  prometheus: string | undefined,
): number {
  let { level, error } = outcome;
  const { report } = outcome;
  if (prometheus !== undefined) {
    try {
      writeTextfile(prometheus, exposition(statusMetrics(configFile, level, now, report, state)));
    } catch (problem) {
      // a textfile that stays old would look fresh to Prometheus: the check itself failed
      level = UNKNOWN;
      const folder = dirname(resolve(prometheus));
      const hint = existsSync(folder)
        ? ""
        : `: give --prometheus a file in the folder node_exporter reads (its --collector.textfile.directory; Debian's prometheus-node-exporter makes ${DEBIAN_TEXTFILE_FOLDER})`;
      error = `cannot write the textfile ${prometheus}: ${(problem as Error).message}${hint}`;
    }
  }
  if (error !== null || report === null) {
    const message = error ?? "no report";
    if (io.json) io.emit(unknownJson(message, configFile, now, state));
    else {
      io.print(firstLine(UNKNOWN, message.split("\n")[0] ?? message));
      if (message.includes("\n")) io.print(message);
    }
    return UNKNOWN;
  }
  if (io.json) io.emit(statusJson(report, configFile));
  else {
    io.print(firstLine(report.level, report.summary, report.perfdata));
    // --quiet: the first line alone, as a plugin's short output
    if (!io.quiet) io.print(renderStatus(report, io.style));
  }
  return level;
}
