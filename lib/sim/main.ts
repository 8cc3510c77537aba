// Entry point of the ZFS simulator: `zfs …`, `zpool …` and the sim-only verbs, with the
// state directory from `--state DIR` or ABGLEICH_SIM_STATE. Kept light: it imports only
// the simulator's own modules (yaml is loaded lazily for scenarios).
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  zfsBookmark,
  zfsCreate,
  zfsDestroy,
  zfsHold,
  zfsMount,
  zfsProgram,
  zfsRelease,
  zfsSnapshot,
  zfsUnmount,
} from "./cmd-admin.ts";
import { simDump, simPool, simWrite, zfsDiff } from "./cmd-data.ts";
import { zfsGet, zfsHolds, zfsList, zfsVersion, zpoolGet, zpoolList } from "./cmd-query.ts";
import type { SimContext } from "./context.ts";
import { zfsLoadKey, zfsUnloadKey } from "./crypt.ts";
import { UsageError, ZfsError } from "./errors.ts";
import { zfsReceive } from "./receive.ts";
import { loadScenario, seedState } from "./scenario.ts";
import { zfsSend } from "./send.ts";
import { writeAll } from "./stream.ts";
import { simVersion, versionIn } from "./version.ts";

export type { Scenario, ScenarioDataset, ScenarioPool, ScenarioSnapshot } from "./scenario.ts";
export { buildState, loadScenario, seedState } from "./scenario.ts";

type Handler = (ctx: SimContext, args: string[]) => number | Promise<number>;

const SIM_VERBS: Record<string, Handler> = {
  "sim-write": simWrite,
  "sim-pool": simPool,
  "sim-dump": (ctx) => simDump(ctx),
  "sim-version": simVersion,
  "sim-seed": async (ctx, args) => {
    const [file] = args;
    if (!file) throw new ZfsError("usage: sim-seed SCENARIO_FILE", 2);
    seedState(ctx.stateDir, await loadScenario(file), ctx.env);
    return 0;
  },
};

const ZFS_VERBS: Record<string, Handler> = {
  list: zfsList,
  get: zfsGet,
  create: zfsCreate,
  snapshot: zfsSnapshot,
  snap: zfsSnapshot,
  destroy: zfsDestroy,
  bookmark: zfsBookmark,
  program: zfsProgram,
  hold: zfsHold,
  release: zfsRelease,
  holds: zfsHolds,
  diff: zfsDiff,
  mount: zfsMount,
  unmount: zfsUnmount,
  umount: zfsUnmount,
  send: zfsSend,
  receive: zfsReceive,
  recv: zfsReceive,
  version: (ctx) => zfsVersion(ctx),
  "load-key": zfsLoadKey,
  "unload-key": zfsUnloadKey,
  ...SIM_VERBS,
};

const ZPOOL_VERBS: Record<string, Handler> = { list: zpoolList, get: zpoolGet };

/** Writes all of `text`, however slowly the pipe drains (see writeAll). */
function writeFd(fd: number, text: string): void {
  try {
    writeAll(fd, Buffer.from(text));
  } catch {
    // A closed stdout/stderr must not turn into a crash report.
  }
}

/**
 * Runs one simulated command. args: [--state DIR] (zfs|zpool) VERB ARGS… or a sim verb
 * (sim-write, sim-seed, sim-pool, sim-dump, sim-version). Returns the exit code.
 */
export async function simMain(
  args: string[],
  options: {
    env?: Record<string, string | undefined>;
    stdinFd?: number;
    stdoutFd?: number;
    stderrFd?: number;
  } = {},
): Promise<number> {
  const env = options.env ?? process.env;
  const stdoutFd = options.stdoutFd ?? 1;
  const stderrFd = options.stderrFd ?? 2;
  const pending: string[] = [];
  const ctx: SimContext = {
    stateDir: "",
    env,
    out: (text) => pending.push(text),
    err: (text) => writeFd(stderrFd, text),
    stdinFd: options.stdinFd ?? 0,
    stdoutFd,
  };
  let rest = [...args];
  if (rest[0] === "--state") {
    ctx.stateDir = rest[1] ?? "";
    rest = rest.slice(2);
  } else ctx.stateDir = env.ABGLEICH_SIM_STATE ?? "";
  let code: number;
  try {
    if (!ctx.stateDir)
      throw new ZfsError("sim: no state directory: pass --state DIR or set ABGLEICH_SIM_STATE", 2);
    const [command, verb, ...verbArgs] = rest;
    const table = command === "zfs" ? ZFS_VERBS : command === "zpool" ? ZPOOL_VERBS : null;
    let handler: Handler | undefined;
    let handlerArgs: string[];
    if (command && SIM_VERBS[command]) {
      handler = SIM_VERBS[command];
      handlerArgs = rest.slice(1);
    } else {
      handler = verb !== undefined ? table?.[verb] : undefined;
      handlerArgs = verbArgs;
    }
    if (!table && !handler)
      throw new ZfsError(
        `sim: unknown command '${command ?? ""}' (expected zfs, zpool or a sim-* verb)`,
        2,
      );
    if (!handler)
      throw new ZfsError(
        verb === undefined ? "missing command" : `unrecognized command '${verb}'`,
        2,
      );
    code = await handler(ctx, handlerArgs);
  } catch (error) {
    if (error instanceof UsageError) {
      writeFd(stderrFd, `${error.render(versionIn(ctx.stateDir))}\n`);
      code = error.code;
    } else if (error instanceof ZfsError) {
      writeFd(stderrFd, `${error.message}\n`);
      code = error.code;
    } else {
      writeFd(stderrFd, `sim: internal error: ${(error as Error).stack ?? String(error)}\n`);
      code = 1;
    }
  }
  if (pending.length > 0) writeFd(stdoutFd, pending.join(""));
  return code;
}

/** Single-quotes a word for POSIX sh. */
function shQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Writes executable `zfs` and `zpool` shims into binDir that run
 * `command… --state STATEDIR zfs|zpool "$@"`. command defaults to bun running this file.
 */
export function writeShims(
  binDir: string,
  stateDir: string,
  command: string[] = [process.execPath, join(import.meta.dir, "main.ts")],
): void {
  mkdirSync(binDir, { recursive: true });
  for (const tool of ["zfs", "zpool"]) {
    const path = join(binDir, tool);
    const words = [...command, "--state", stateDir, tool].map(shQuote).join(" ");
    writeFileSync(path, `#!/bin/sh\nexec ${words} "$@"\n`);
    chmodSync(path, 0o755);
  }
}

if (import.meta.main) {
  const code = await simMain(process.argv.slice(2));
  process.exit(code);
}
