// Running one control command on this machine with zx, bounded in time and cancellable.
//
// zx hands the command line to /bin/sh, so argv is quoted here with the project's POSIX
// quoting (every argument data, never syntax) and prefixed with `exec`: the shell becomes the
// command. The command starts in a process group of its own (`detached`), so a timeout or a
// cancel reaches everything it started: SIGTERM to the group, SIGKILL after a grace period and
// once more when it ended, in case a straggler outlived the leader. The call then rejects with
// CommandTimeoutError or CancelledError. Transfers do not come here: they are one OS pipeline
// (lib/run/pipeline.ts), their bytes never pass through JavaScript.

import { randomBytes } from "node:crypto";
import { closeSync, openSync, readSync, unlinkSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx/core";
import {
  CancelledError,
  type CommandInfo,
  CommandTimeoutError,
  type RunOptions,
  type RunResult,
} from "./host.ts";
import { shellJoin, shellQuote } from "./quote.ts";

/** exit code a shell reports for a command it cannot find or start */
export const SPAWN_FAILED = 127;

/** after SIGTERM, how long the command's processes may take before SIGKILL */
export const KILL_GRACE_MS = 1000;

/** how long a held stdin's end-of-input goes ahead of SIGTERM (see `stop`) */
const STDIN_EOF_HEAD_START_MS = 250;

/** after SIGKILL, how long to wait for the pipes to close before giving up on them */
const GIVE_UP_MS = 2000;

export interface ExecOptions extends RunOptions {
  /** when the caller's time started (Date.now()): time spent before spawning counts too */
  since?: number;
  /** keep the command's stdin open until it ends (no `stdin` given): the ssh watchdog reads it */
  holdStdin?: boolean;
}

/** signal a whole process group; gone already is fine */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined || !(pid > 1)) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone
  }
}

/** the code a shell would report for a command killed by `signal` */
function signalCode(signal: string | null): number | null {
  if (signal === null) return null;
  const number = (constants.signals as Record<string, number>)[signal];
  return number === undefined ? null : 128 + number;
}

/**
 * A temporary file for a command's stdout (RunOptions.readStdout): created exclusively,
 * readable by us only, removed once read.
 */
interface Spool {
  fd: number;
  path: string;
}

/** undefined when no file can be made there: the pipe is used then, slower but as correct */
function openSpool(): Spool | undefined {
  const path = join(tmpdir(), `abgleich-out-${process.pid}-${randomBytes(6).toString("hex")}`);
  try {
    return { fd: openSync(path, "wx+", 0o600), path };
  } catch {
    return undefined;
  }
}

/** the pieces one read of the spool hands over */
const SPOOL_PIECE_BYTES = 1 << 20;

/** the spool from its start, a piece at a time, into `read` */
function readSpool(spool: Spool, read: (piece: Uint8Array) => void): void {
  const buffer = Buffer.allocUnsafe(SPOOL_PIECE_BYTES);
  let position = 0;
  for (;;) {
    const count = readSync(spool.fd, buffer, 0, buffer.length, position);
    if (count === 0) return;
    read(buffer.subarray(0, count));
    position += count;
  }
}

function closeSpool(spool: Spool | undefined): void {
  if (spool === undefined) return;
  try {
    closeSync(spool.fd);
  } finally {
    unlinkSync(spool.path);
  }
}

/** a throw-away list for zx's copy of all output (stdout and stderr are kept separately) */
function discard(): Buffer[] {
  const list: Buffer[] = [];
  list.push = () => 0;
  return list;
}

/**
 * Check the timeout and signal options and return the time left; throws the typed error when
 * there is none left already.
 */
export function timeLeft(
  options: ExecOptions,
  info: CommandInfo,
  command: string,
): number | undefined {
  const { timeoutMs, signal } = options;
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new Error(`timeoutMs must be a positive number of ms, got ${timeoutMs}`);
  }
  if (signal?.aborted) throw new CancelledError(info, command, signal);
  if (timeoutMs === undefined) return undefined;
  const left = timeoutMs - (Date.now() - (options.since ?? Date.now()));
  if (left <= 0) throw new CommandTimeoutError(info, command, timeoutMs);
  return left;
}

/** run argv here, collect its output; a command that cannot start gives code 127 */
export async function execArgv(
  argv: readonly string[],
  options: ExecOptions,
  info: CommandInfo,
): Promise<RunResult> {
  const program = argv[0];
  if (program === undefined) throw new Error("cannot run an empty command");
  // `exec -x` would be read as an option by some shells: no command is named like that
  if (program.startsWith("-")) throw new Error(`a command must not start with "-": ${program}`);
  const command = shellJoin(info.argv);
  const left = timeLeft(options, info, command);

  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const spool = options.readStdout ? openSpool() : undefined;
  try {
    return await collect(argv, options, info, command, left, spool, stdout, stderr);
  } finally {
    closeSpool(spool);
  }
}

async function collect(
  argv: readonly string[],
  options: ExecOptions,
  info: CommandInfo,
  command: string,
  left: number | undefined,
  spool: Spool | undefined,
  stdout: Buffer[],
  stderr: Buffer[],
): Promise<RunResult> {
  const program = argv[0] as string;
  const child = $({
    shell: "/bin/sh",
    quote: shellQuote,
    prefix: "exec ",
    postfix: "",
    // a buffer, so stdin is written and closed: a command reading it sees EOF; or, held, a
    // pipe left open until the command ends
    ...(options.holdStdin ? {} : { input: Buffer.from(options.stdin ?? "") }),
    // stdout into the spool file, read back after the command ended
    ...(spool ? { stdio: ["pipe", spool.fd, "pipe"] as const } : {}),
    // env given explicitly: the PATH of now, not of when the process started
    env: process.env,
    detached: true,
    nothrow: true,
    quiet: true,
    verbose: false,
    // pinned, so ZX_* variables in the user's environment change nothing: our own timer kills
    // (zx's would kill by a `ps` process walk), our PATH is the one searched, and the working
    // directory is the current one, not the one of when zx was loaded
    timeout: 0,
    preferLocal: false,
    cwd: process.cwd(),
    store: { stdout, stderr, stdall: discard() },
  })`${argv}`;
  // a command that exits without reading its stdin must not crash us with EPIPE
  child.stdin?.on("error", () => {});
  const pid = child.pid;

  // an object, not a `let`: it changes inside callbacks, which narrowing does not see
  const state: { stopped: "timeout" | "cancel" | null } = { stopped: null };
  let escalate: ReturnType<typeof setTimeout> | undefined;
  let giveUp: ReturnType<typeof setTimeout> | undefined;
  let abandon: (() => void) | undefined;
  const abandoned = new Promise<null>((resolve) => {
    abandon = () => resolve(null);
  });
  // Once a stopped command's process has exited, its output no longer matters: stop reading.
  // Someone else may hold the pipes open: an ssh mux client hands its stdout and stderr to the
  // ControlMaster, which keeps them until the remote command ends.
  const dropOutput = () => {
    child.stdout?.destroy();
    child.stderr?.destroy();
  };
  const stop = (why: "timeout" | "cancel") => {
    if (state.stopped !== null) return;
    state.stopped = why;
    // a held stdin ends now: over ssh, that end-of-input is what tells the remote watchdog to
    // stop the command (the ssh master shares the pipe and would keep the channel open)
    if (options.holdStdin) child.stdin?.end();
    const spawned = child.child;
    if (spawned && (spawned.exitCode !== null || spawned.signalCode !== null)) dropOutput();
    else spawned?.once("exit", dropOutput);
    const terminate = () => {
      killGroup(pid, "SIGTERM");
      escalate = setTimeout(() => {
        killGroup(pid, "SIGKILL");
        // a process stuck in the kernel keeps the pipes open: do not wait for it forever
        giveUp = setTimeout(() => abandon?.(), GIVE_UP_MS);
      }, KILL_GRACE_MS);
    };
    // with a held stdin, the ssh client gets a moment to pass the end-of-input on before it is
    // killed: killed first, its master may drop the channel without telling the remote side
    if (options.holdStdin) escalate = setTimeout(terminate, STDIN_EOF_HEAD_START_MS);
    else terminate();
  };
  const timer = left === undefined ? undefined : setTimeout(() => stop("timeout"), left);
  const onAbort = () => stop("cancel");
  options.signal?.addEventListener("abort", onAbort, { once: true });

  let output: Awaited<typeof child> | null;
  try {
    output = await Promise.race([child, abandoned]);
  } finally {
    // a held stdin is closed once the command ended (it is no use to anyone then)
    if (options.holdStdin) child.stdin?.end();
    clearTimeout(timer);
    clearTimeout(escalate);
    clearTimeout(giveUp);
    options.signal?.removeEventListener("abort", onAbort);
    // whatever of the group is still there (it ignored SIGTERM, or outlived the leader)
    if (state.stopped !== null) killGroup(pid, "SIGKILL");
  }
  if (output === null) dropOutput();
  if (state.stopped === "timeout") {
    throw new CommandTimeoutError(info, command, options.timeoutMs as number);
  }
  if (state.stopped === "cancel") throw new CancelledError(info, command, options.signal);
  const result = output as NonNullable<typeof output>;

  const text = (chunks: Buffer[]) => Buffer.concat(chunks).toString("utf8");
  const code = result.exitCode ?? signalCode(result.signal);
  if (code === null) {
    const reason = result.cause instanceof Error ? result.cause.message : "it did not start";
    return { code: SPAWN_FAILED, stdout: "", stderr: `cannot run ${program}: ${reason}\n` };
  }
  const { readStdout } = options;
  if (readStdout) {
    if (spool) readSpool(spool, readStdout);
    // no spool could be made: the pipe's chunks, as they came
    else for (const chunk of stdout) readStdout(chunk);
  }
  return { code, stdout: readStdout ? "" : text(stdout), stderr: text(stderr) };
}
