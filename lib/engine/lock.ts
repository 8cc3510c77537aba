// One run per target at a time. abgleich runs from timers and cron; two runs that change the same
// target (or source) must never overlap. A run takes a lock per thing it changes, named by a key
// ("backup target localhost:backup/tank-data"); a second run on the same key is refused with the
// first one's pid, start time and description, or waits for it (`--wait[=DURATION]`).
//
//   const lock = await acquireRunLock({ key, description, waitMs: parseWaitDuration(flag) }); // ./wait.ts
//   try { … } finally { lock.release(); }     // or: using lock = await acquireRunLock(…)
//
// Mechanism ("flock"): flock(2) on a file in lockDirectory(), called through bun:ffi (node:fs has
// no flock). The kernel drops the lock when the process dies, however it dies (kill -9 included),
// so a crashed run never blocks the next one and there is no stale-lock guessing at all. The file
// holds the holder's pid, start time and description as JSON, for the refusal message.
// The protocol, race-free for runs that start at the same instant:
//   - a run writes its JSON into a fresh temp file and flocks it, then puts it in place:
//     link(temp, lock) when there is no lock file; when there is one, it flocks that file and,
//     if it got the lock (the holder is gone) and the file is still the one at the lock path,
//     rename(temp, lock). So the file at the lock path is always complete, and whoever replaces
//     it holds the lock of the file it replaces: two runs can never both put theirs in place.
//   - release unlinks the file while still holding it, then closes it. A run that opened the old
//     file and gets its lock afterwards sees it is no longer the file at the path and starts over.
// The file descriptors are O_CLOEXEC (Bun opens every file so), so child processes (zfs, ssh) do
// not inherit the lock and keep it alive after abgleich itself was killed.
//
// Fallback ("claims"), used when no libc can be loaded (bun:ffi unavailable, an unknown libc):
// every run publishes its own claim file <hash>.<pid>.<process start>.<random>.claim (written to a
// temp name, then renamed, so it is never seen half-written), then lists the directory. It holds
// the lock if no other live claim for the key is there; otherwise it withdraws its claim and tries
// again later. Two runs cannot both hold: the later of the two to publish must see the earlier's
// claim. No file is ever shared, so nobody has to decide whether to break someone else's lock;
// a claim whose process is dead is simply deleted by whoever sees it. "Dead" means
// process.kill(pid, 0) says ESRCH, or the process under that pid is a zombie or started at
// another time than the claim records (/proc/PID/stat field 22), so a reused pid does not count.
// The two mechanisms see each other, should one run load libc and another not (bun:ffi needs
// the JIT, which BUN_JSC_useJIT=0 or a MemoryDenyWriteExecute= unit turns off): a flock run that
// placed its lock file gives way to a live claim, and a claim run to a lock file whose process
// lives.
// Its limits: runs in different pid namespaces (containers) or hosts sharing one lock directory
// cannot judge each other's liveness (a claim from another host always counts as alive), and
// without /proc (macOS, BSD) a reused pid keeps a dead claim alive until that process ends.
// A lock directory on NFS may hide a fresh claim from another client for a while: keep it local.
//
// Several keys (source and target) should be taken in sorted order, so two runs that wait can
// never wait for each other. Taking a key the same process already holds is refused as well.

import { createHash, randomBytes } from "node:crypto";
import {
  accessSync,
  chmodSync,
  closeSync,
  constants,
  fstatSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { type Libc, loadLibc, tryFlock } from "./flock.ts";
import { processAlive, processStart } from "./proc.ts";
import { localIsoTime } from "./time.ts";

export interface RunLockRequest {
  /** what the run changes, e.g. "backup target localhost:backup/tank-data"; hashed into a file name */
  key: string;
  /** shown to the second run: e.g. "abgleich backup /etc/abgleich/nightly.yaml" */
  description: string;
  /** 0: refuse at once; a number of ms: wait up to that long; Infinity: wait until free or cancelled */
  waitMs: number;
  /** cancels a wait: acquireRunLock then rejects with signal.reason */
  signal?: AbortSignal;
  /** where lock files live; default lockDirectory() */
  dir?: string;
  /** default lockMechanism(); tests pick "claims" to run the fallback on a machine with libc */
  mechanism?: LockMechanism;
  /** told once, when the lock is busy and the run starts to wait for it (waitMs > 0) */
  onWait?: (text: string) => void;
}

/** "flock": kernel lock through libc (the normal case); "claims": per-run claim files */
export type LockMechanism = "flock" | "claims";

/** who holds a lock, as the holder wrote it */
export interface LockHolder {
  pid: number;
  /** when the holder took the lock */
  started: Date;
  description: string;
  /** the machine it runs on, when another than this one shares the lock directory */
  host?: string;
}

export interface RunLock {
  /** the lock file (flock) or claim file (claims) */
  readonly path: string;
  /** gives the lock up; idempotent, and done by itself on a normal process exit */
  release(): void;
  [Symbol.dispose](): void;
}

export class LockBusyError extends Error {
  constructor(
    readonly key: string,
    /** null when the holder's details could not be read */
    readonly holder: LockHolder | null,
    /** how long this run waited before giving up; 0 when it did not wait */
    readonly waitedMs: number,
  ) {
    const who = holderText(holder);
    const hint =
      waitedMs > 0
        ? "wait longer with --wait=DURATION, or with --wait alone until it is free"
        : "wait for it with --wait, or at most a while with --wait=DURATION (e.g. --wait=30m)";
    const state =
      waitedMs > 0 ? `is still in use after waiting ${formatMs(waitedMs)}` : "is in use";
    super(`${key} ${state} by ${who}; ${hint}`);
    this.name = "LockBusyError";
  }
}

// ---------------------------------------------------------------------------------------------
// where

const SYSTEM_DIR = "/run/lock/abgleich";

/**
 * The directory for lock files, created if missing: $ABGLEICH_LOCK_DIR (taken as given, e.g. a
 * directory shared by several users); else /run/lock/abgleich for root (0755: others may read
 * who holds what); else $XDG_RUNTIME_DIR/abgleich; else <tmpdir>/abgleich-<uid> (both 0700).
 * Runs as different users only exclude each other through a shared $ABGLEICH_LOCK_DIR.
 * The default directories must be ours and writable by nobody else (/run/lock and /tmp are
 * world-writable: someone else's directory there could plant symlinks or hold our locks).
 */
export function lockDirectory(env: Record<string, string | undefined> = process.env): string {
  const explicit = env.ABGLEICH_LOCK_DIR;
  if (explicit) {
    // relative, runs started in two folders would lock in two places and never meet
    if (!isAbsolute(explicit))
      throw new Error(
        `ABGLEICH_LOCK_DIR must be an absolute path, not ${JSON.stringify(explicit)}: runs started in other folders would not see each other's locks`,
      );
    // made if missing; a file there (or on the way) fails mkdir, so what it returns is a folder
    try {
      mkdirSync(explicit, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new Error(
        `ABGLEICH_LOCK_DIR ${explicit} cannot be the lock directory (${errorCode(error) === "EEXIST" ? "it is a file" : (error as Error).message}): point it at a folder, or unset it for the default`,
      );
    }
    return explicit;
  }
  const uid = process.getuid?.() ?? null;
  if (uid === 0 && writable("/run/lock")) return ownDirectory(SYSTEM_DIR, 0o755, uid);
  if (env.XDG_RUNTIME_DIR) return ownDirectory(join(env.XDG_RUNTIME_DIR, "abgleich"), 0o700, uid);
  return ownDirectory(join(tmpdir(), `abgleich-${uid ?? "user"}`), 0o700, uid);
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

function ownDirectory(dir: string, mode: number, uid: number | null): string {
  try {
    mkdirSync(dir, { mode });
    chmodSync(dir, mode); // mkdir's mode went through the umask
  } catch (error) {
    if (errorCode(error) !== "EEXIST") throw error;
  }
  const stats = lstatSync(dir);
  const problem = !stats.isDirectory()
    ? "is not a directory"
    : uid !== null && stats.uid !== uid
      ? `belongs to uid ${stats.uid}, not to this user (uid ${uid})`
      : (stats.mode & 0o022) !== 0
        ? "is writable by others"
        : null;
  if (problem) {
    throw new Error(
      `the lock directory ${dir} ${problem}; remove it, or set ABGLEICH_LOCK_DIR to another one`,
    );
  }
  return dir;
}

// ---------------------------------------------------------------------------------------------
// flock through libc (./flock.ts)

/** the mechanism acquireRunLock uses here: "flock" when libc loads, else "claims" */
export function lockMechanism(): LockMechanism {
  return loadLibc() ? "flock" : "claims";
}

// ---------------------------------------------------------------------------------------------
// acquire

/**
 * Tests only: afterOpen runs between opening an existing lock file and flock()ing it, so a test
 * can release and retake the lock right there: the race the inode check guards against.
 */
export const lockTestHooks: { afterOpen?: () => void } = {};

type Attempt = { held: RunLock } | { holder: LockHolder | null };

interface Self {
  pid: number;
  /** clock ticks after boot, from /proc; "x" where there is no /proc */
  procStart: string;
  host: string;
}

/**
 * Takes the lock on request.key, waiting as request.waitMs says. Throws LockBusyError when it
 * is still held when the wait is over, and signal.reason when the signal aborts the wait.
 */
export async function acquireRunLock(request: RunLockRequest): Promise<RunLock> {
  const { key, waitMs, signal } = request;
  if (!(waitMs >= 0)) throw new RangeError(`waitMs must be 0 or more, not ${waitMs}`);
  let dir = request.dir;
  if (dir === undefined) dir = lockDirectory();
  else mkdirSync(dir, { recursive: true, mode: 0o700 });
  const mechanism = request.mechanism ?? lockMechanism();
  const lib = mechanism === "flock" ? loadLibc() : null;
  if (mechanism === "flock" && !lib) throw new Error("flock: no libc could be loaded");
  const hash = createHash("sha256").update(key).digest("hex").slice(0, 32);
  const self: Self = {
    pid: process.pid,
    procStart: processStart(process.pid) ?? "x",
    host: hostname(),
  };

  // a refusal by a claim may be a run that started at the same instant and withdraws again
  // (flock runs see claims too); a few short tries tell such a passer-by from a holder
  const grace = 4;
  const begun = Date.now();
  let delay = 5;
  let told = false;
  for (let attempt = 0; ; attempt++) {
    signal?.throwIfAborted();
    const result = lib
      ? attemptFlock(lib, dir, hash, request, self)
      : attemptClaim(dir, hash, request, self);
    if ("held" in result) return result.held;
    const now = Date.now();
    const left = begun + waitMs - now;
    if (left <= 0 && attempt >= grace) {
      throw new LockBusyError(key, result.holder, waitMs > 0 ? now - begun : 0);
    }
    if (!told && left > 0 && attempt >= grace && request.onWait) {
      told = true;
      const until = Number.isFinite(waitMs) ? ` (at most ${formatMs(waitMs)})` : "";
      request.onWait(
        `${key} is in use by ${holderText(result.holder)}: waiting for it${until}; Ctrl-C stops waiting`,
      );
    }
    const pause = left > 0 ? Math.min(delay, left) : delay;
    await sleep(pause * (0.5 + Math.random()), signal);
    delay = Math.min(delay * 2, 200);
  }
}

/** `pid 4242 (abgleich snap …) since 2026-11-26T02:00:01+01:00` */
function holderText(holder: LockHolder | null): string {
  return holder
    ? `pid ${holder.pid}${holder.host ? ` on ${holder.host}` : ""} (${holder.description}) since ${localIsoTime(holder.started)}`
    : "another run (it left no details)";
}

function attemptFlock(
  lib: Libc,
  dir: string,
  hash: string,
  request: RunLockRequest,
  self: Self,
): Attempt {
  const lockPath = join(dir, `${hash}.lock`);
  const tempPath = join(dir, `${hash}.${self.pid}.${self.procStart}.${token()}.tmp`);
  const tempFd = createWith(tempPath, holderJson(request, self));
  let placed = false;
  try {
    if (!tryFlock(lib, tempFd, tempPath)) throw new Error(`${tempPath} is locked by someone else`);
    for (let round = 0; round < 1000; round++) {
      try {
        linkSync(tempPath, lockPath);
        placed = true;
        break;
      } catch (error) {
        if (errorCode(error) !== "EEXIST") throw error;
      }
      let fd: number;
      try {
        fd = openSync(lockPath, constants.O_RDONLY | constants.O_NOFOLLOW);
      } catch (error) {
        if (errorCode(error) === "ENOENT") continue; // released meanwhile: link again
        throw error;
      }
      try {
        lockTestHooks.afterOpen?.();
        const locked = tryFlock(lib, fd, lockPath);
        // the file we opened may have been released or replaced since: then look again
        if (!sameFile(fstatSync(fd), statOrNull(lockPath))) continue;
        if (!locked) return { holder: readHolder(fd) };
        renameSync(tempPath, lockPath); // its holder is gone (killed): ours replaces it
        placed = true;
        break;
      } finally {
        closeSync(fd);
      }
    }
    if (!placed) throw new Error(`cannot take the lock ${lockPath}: it keeps changing`);
  } finally {
    try {
      unlinkQuietly(tempPath); // after link, the lock path keeps the file; after rename it is gone
    } catch {
      // a temp name left over: swept once its process has ended
    }
    if (!placed) closeSync(tempFd);
  }
  const free = () => {
    try {
      // only our own file: someone may have removed it by hand and another run made a new one
      if (sameFile(fstatSync(tempFd), statOrNull(lockPath))) unlinkQuietly(lockPath);
    } finally {
      closeSync(tempFd); // the kernel drops the flock here
    }
  };
  // A run that could not load libc holds by a claim, which no flock sees: a live claim wins.
  // (That run looks for this file after publishing its claim; we look for claims after placing
  // the file, so of two runs at the same instant at least one sees the other.)
  let claims: (LockHolder | null)[];
  try {
    claims = sweepDead(dir, hash, self, null); // also temp files of runs killed halfway
  } catch (error) {
    free();
    throw error;
  }
  if (claims.length > 0) {
    free();
    return { holder: earliest(claims) };
  }
  return { held: holding(lockPath, free) };
}

function attemptClaim(dir: string, hash: string, request: RunLockRequest, self: Self): Attempt {
  const name = `${hash}.${self.pid}.${self.procStart}.${token()}`;
  const claimPath = join(dir, `${name}.claim`);
  const tempPath = join(dir, `${name}.tmp`);
  try {
    closeSync(createWith(tempPath, holderJson(request, self)));
    renameSync(tempPath, claimPath);
  } catch (error) {
    unlinkQuietly(tempPath);
    throw error;
  }
  let others: (LockHolder | null)[];
  try {
    others = sweepDead(dir, hash, self, `${name}.claim`);
    // a run that loaded libc holds by flock, which this run cannot test: its lock file names it
    const locker = flockHolder(join(dir, `${hash}.lock`), self);
    if (locker !== undefined) others.push(locker);
  } catch (error) {
    unlinkQuietly(claimPath);
    throw error;
  }
  if (others.length === 0) return { held: holding(claimPath, () => unlinkQuietly(claimPath)) };
  unlinkQuietly(claimPath);
  return { holder: earliest(others) };
}

/** of several holders, the one that took its lock first (null: none left details) */
function earliest(holders: readonly (LockHolder | null)[]): LockHolder | null {
  const known = holders.filter((h) => h !== null);
  known.sort((a, b) => a.started.getTime() - b.started.getTime());
  return known[0] ?? null;
}

/**
 * The holder a flock lock file names while its process lives; undefined when there is no such
 * file, its process is gone (killed before it could remove the file: the next flock run
 * replaces it) or it names nobody (half-written). A file another host wrote (its processes
 * cannot be checked from here), or one this user may not read, counts as held.
 */
function flockHolder(lockPath: string, self: Self): LockHolder | null | undefined {
  let text: string;
  try {
    text = readFileSync(lockPath, "utf8");
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    return null; // there, but not ours to read: count it
  }
  let content: Record<string, unknown> | null;
  try {
    content = JSON.parse(text);
  } catch {
    // a live flock holder's file is always whole (linked or renamed in once written): this
    // one was left half-written (a crash, a power loss), and a flock run would replace it
    return undefined;
  }
  const holder = holderOf(content);
  if (!holder) return undefined; // not a lock file's JSON: nobody's
  const start = typeof content?.procStart === "string" ? content.procStart : "x";
  return gone(content, holder.pid, start, self) ? undefined : holder;
}

/**
 * Whether the holder a lock file or claim names has ended: a process of this machine no longer
 * alive (`start` "x": written where there was no /proc). Another machine's cannot be judged here.
 */
function gone(
  content: Record<string, unknown> | null,
  pid: number,
  start: string,
  self: Self,
): boolean {
  const foreign = typeof content?.host === "string" && content.host !== self.host;
  return !foreign && !processAlive(pid, start === "x" ? null : start);
}

/** a held lock: release once, by hand or at exit */
function holding(path: string, free: () => void): RunLock {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off("exit", atExit);
    free();
  };
  const atExit = () => {
    try {
      release();
    } catch {
      // exiting anyway; a flock dies with the process, a claim with it is judged dead
    }
  };
  process.on("exit", atExit);
  return { path, release, [Symbol.dispose]: release };
}

/**
 * Deletes this key's claim and temp files of dead processes; returns the holders written in the
 * live claims other than `own` (null where unreadable). Files of other keys are not touched.
 */
function sweepDead(
  dir: string,
  hash: string,
  self: Self,
  own: string | null,
): (LockHolder | null)[] {
  const live: (LockHolder | null)[] = [];
  for (const entry of readdirSync(dir)) {
    if (!entry.startsWith(`${hash}.`) || entry === own) continue;
    const match = /^[0-9a-f]{32}\.(\d+)\.(\d+|x)\.[0-9a-f]+\.(claim|tmp)$/.exec(entry);
    if (!match) continue;
    const [, pid, start, kind] = match as unknown as [string, string, string, string];
    const path = join(dir, entry);
    let content: Record<string, unknown> | null = null;
    try {
      content = JSON.parse(readFileSync(path, "utf8"));
    } catch {
      // gone meanwhile, or a temp file half written: judged by its name alone
    }
    if (gone(content, Number(pid), start, self)) {
      try {
        unlinkQuietly(path);
      } catch (error) {
        // another user's, in a shared sticky directory: dead all the same, so it holds nothing
        const code = errorCode(error);
        if (code !== "EPERM" && code !== "EACCES") throw error;
      }
      continue;
    }
    if (kind === "claim") live.push(holderOf(content));
  }
  return live;
}

// ---------------------------------------------------------------------------------------------
// holders and processes

function holderJson(request: RunLockRequest, self: Self): string {
  return `${JSON.stringify({
    pid: self.pid,
    started: new Date().toISOString(),
    description: request.description,
    key: request.key,
    host: self.host,
    procStart: self.procStart,
  })}\n`;
}

function holderOf(content: Record<string, unknown> | null): LockHolder | null {
  if (!content) return null;
  const { pid, started, description, host } = content;
  if (typeof pid !== "number" || typeof started !== "string") return null;
  const date = new Date(started);
  if (Number.isNaN(date.getTime())) return null;
  const holder = {
    pid,
    started: date,
    description: typeof description === "string" ? description : "",
  };
  return typeof host === "string" && host !== hostname() ? { ...holder, host } : holder;
}

function readHolder(fd: number): LockHolder | null {
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    return holderOf(JSON.parse(buffer.subarray(0, length).toString("utf8")));
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// small helpers

/** a new file with `content`, O_EXCL (never through a planted symlink), kept open */
function createWith(path: string, content: string): number {
  const fd = openSync(
    path,
    constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o644,
  );
  try {
    writeSync(fd, content);
    return fd;
  } catch (error) {
    closeSync(fd);
    unlinkQuietly(path);
    throw error;
  }
}

function sameFile(a: Stats, b: Stats | null): boolean {
  return b !== null && a.ino === b.ino && a.dev === b.dev;
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return null;
    throw error;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if (errorCode(error) !== "ENOENT") throw error;
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

function token(): string {
  return randomBytes(6).toString("hex");
}

/** resolves after `ms`, or early when the signal aborts */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)}s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)}m`;
  return `${Math.round(ms / 3_600_000)}h`;
}
