// The run state file: what the last changing run of a configuration did and when, so `status`
// can tell a timer that stopped (no new snapshots, so nothing looks behind) from a quiet week.
// Every snap, backup, cleanup, wizard and workflow run writes it once, at the end of its session;
// tree, compare, status and dry runs change nothing and write nothing.
//
// Location: $ABGLEICH_STATE_DIR, else /var/lib/abgleich for root, else
// ${XDG_STATE_HOME:-~/.local/state}/abgleich; one file per configuration, named after the config
// file and a hash of its absolute path (`nightly-1a2b3c4d5e6f.json`), so two configs with the
// same name in different folders never share one.

import { createHash } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, extname, isAbsolute, join, resolve } from "node:path";
import type { RunSummary } from "../engine/hooks.ts";
import { stageNames } from "../engine/summary.ts";

export type RunResult = "ok" | "failed" | "declined" | "cancelled";

/** one run, as the state file keeps it */
export interface RunRecord {
  /** the stages it ran, e.g. `snap`, `backup`, `cleanup source` */
  stages: string[];
  result: RunResult;
  exitCode: number;
  /** ISO 8601 */
  startedAt: string;
  finishedAt: string;
  /** the first stage error's first line, when it failed */
  error: string | null;
}

export interface RunState {
  version: 1;
  /** the configuration file's absolute path */
  config: string;
  lastRun: RunRecord;
  /** the newest run that ended well; null until one did */
  lastSuccess: RunRecord | null;
}

type Env = Record<string, string | undefined>;

/** where state files live (see the header) */
export function stateDirectory(
  env: Env = process.env,
  uid: number = process.getuid?.() ?? -1,
): string {
  if (env.ABGLEICH_STATE_DIR) return resolve(env.ABGLEICH_STATE_DIR);
  if (uid === 0) return "/var/lib/abgleich";
  // the XDG spec says a relative XDG_STATE_HOME is to be ignored
  const xdg = env.XDG_STATE_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), ".local", "state");
  return join(base, "abgleich");
}

/** the state file of one configuration file */
export function stateFile(configFile: string, env: Env = process.env, uid?: number): string {
  const absolute = resolve(configFile);
  const name = basename(absolute, extname(absolute)).replace(/[^A-Za-z0-9._-]/g, "_") || "config";
  const hash = createHash("sha256").update(absolute).digest("hex").slice(0, 12);
  return join(stateDirectory(env, uid), `${name}-${hash}.json`);
}

const CANCELLED_CODES = new Set([130, 143]);

/** the recorded error's first line is kept this long at most (status shows it in one line) */
const MAX_ERROR_CHARS = 300;

/** at most `max` characters, cut after a whole word and marked with `…` when cut */
export function shortened(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max - 1);
  const space = cut.lastIndexOf(" ");
  return `${(space > max / 2 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

/** a finished run's summary as a record; null for runs that change nothing */
export function runRecord(summary: RunSummary): RunRecord | null {
  if (summary.mode !== "changing") return null;
  const statuses = summary.stages.map((entry) => entry.outcome.status);
  const result: RunResult =
    summary.exitCode === 0
      ? "ok"
      : CANCELLED_CODES.has(summary.exitCode) || statuses.includes("cancelled")
        ? "cancelled"
        : statuses.includes("declined")
          ? "declined"
          : "failed";
  const failure = summary.stages.find((entry) => entry.outcome.error)?.outcome.error;
  // a step skipped in the wizard (declined, the run still ok) did not run
  const names = stageNames(summary);
  const stages =
    result === "ok"
      ? names.filter((_, index) => summary.stages[index]?.outcome.status !== "declined")
      : names;
  return {
    stages,
    result,
    exitCode: summary.exitCode,
    startedAt: summary.startedAt.toISOString(),
    finishedAt: summary.finishedAt.toISOString(),
    error: failure ? shortened(failure.message.split("\n")[0] ?? "", MAX_ERROR_CHARS) : null,
  };
}

/** replace `file` with `text` so a reader sees the old file or the new one, never half of one */
export function writeFileAtomically(file: string, text: string, mode = 0o644): void {
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    const fd = openSync(temp, "w", mode);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

/** the state file's content, null when there is none; throws when it cannot be read as one */
export function readRunState(file: string): RunState | null {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new Error(`cannot read the state file ${file}: ${(error as Error).message}`);
  }
  try {
    const state = JSON.parse(text) as RunState;
    if (state?.version !== 1 || typeof state.lastRun?.finishedAt !== "string")
      throw new Error("not an abgleich state file of version 1");
    return state;
  } catch (error) {
    throw new Error(
      `the state file ${file} is damaged (${(error as Error).message}); delete it, the next run writes it again`,
    );
  }
}

/**
 * Record a finished run in its configuration's state file. A run's outcome never depends on
 * this: a state directory that cannot be written is a warning.
 */
export function recordRun(
  summary: RunSummary,
  warn: (text: string) => void,
  env: Env = process.env,
): void {
  const record = runRecord(summary);
  if (record === null) return;
  const file = stateFile(summary.config.file, env);
  try {
    let previous: RunState | null = null;
    try {
      previous = readRunState(file);
    } catch {
      // a damaged file is replaced; its last success is lost, which status then reports
    }
    const state: RunState = {
      version: 1,
      config: resolve(summary.config.file),
      lastRun: record,
      lastSuccess: record.result === "ok" ? record : (previous?.lastSuccess ?? null),
    };
    mkdirSync(dirname(file), { recursive: true });
    writeFileAtomically(file, `${JSON.stringify(state, null, 2)}\n`);
  } catch (error) {
    warn(
      `could not record this run for \`abgleich status\` in ${file}: ${(error as Error).message} (set ABGLEICH_STATE_DIR to a writable folder)`,
    );
  }
}
