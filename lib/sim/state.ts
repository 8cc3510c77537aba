// The simulator's persistent state: one JSON file in the state directory, changed only
// under a lock (acquireLock) so that concurrent sim processes (a `send` and a `receive`
// in one pipeline, holds side by side) never lose each other's updates. The lock is never held while
// stream bytes flow: callers read under the lock, stream, then apply under the lock.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { join } from "node:path";
import { loadLibc, tryFlock, unflock } from "../engine/flock.ts";
import { processAlive, processStart } from "../engine/proc.ts";
import type { TokenFlag } from "./token.ts";
import type { ZfsVersion } from "./version.ts";

/**
 * A run of bytes written in one txg. `died` is the txg that freed it (null = live).
 * A snapshot with createtxg t references the extent when born <= t < died.
 */
export interface Extent {
  born: number;
  died: number | null;
  bytes: number;
  /** the dataset's own metadata, never freed */
  base?: boolean;
}

export interface Hold {
  tag: string;
  /** epoch seconds */
  time: number;
}

export interface SimSnapshot {
  name: string;
  guid: string;
  createtxg: number;
  creation: number;
  holds: Hold[];
  /** `zfs diff` lines (without mountpoint) changed between the previous snapshot and this one */
  changes: string[];
}

export interface SimBookmark {
  name: string;
  guid: string;
  createtxg: number;
  creation: number;
  referenced: number;
}

/** What a `zfs receive -s` that was cut short left behind. */
export interface PartialReceive {
  toguid: string;
  fromguid: string | null;
  toname: string;
  /** payload bytes of the snapshot already received */
  received: number;
  /** stream bytes already received, including records */
  streamBytes: number;
  /** whether the interrupted stream was creating this dataset (full stream) */
  newfs: boolean;
  /** the stream's features the token records (compressok, rawok, …) */
  flags?: TokenFlag[];
}

/**
 * A `zfs receive` in flight into this dataset (claimed under the state lock when its stream
 * begins, released when it ends): a second receive meets it as real ZFS meets the first
 * one's kernel state. A claim whose process is gone is reaped (see reapReceives).
 */
export interface InFlightReceive {
  /** unique per receive: several may run in one process (simMain in-process) */
  id: string;
  /** the receiving process */
  pid: number;
  /** its start time (/proc/PID/stat), so that a reused pid is not taken for it */
  start?: string | null;
  /** the receive created the dataset (a full stream into a new name) */
  newfs: boolean;
  /** -s: an interrupted receive leaves a resumable partial (already set while in flight) */
  resumable: boolean;
}

/** Encryption of a dataset: its cipher and the dataset whose key wraps it. */
export interface SimCrypt {
  /** e.g. aes-256-gcm */
  cipher: string;
  /** the encryption root's name (the dataset itself, or an ancestor) */
  root: string;
  /** raw-received and not mounted since: the first mount writes (space accounting) */
  rawReceived?: boolean;
}

/** The wrapping key of an encryption root. */
export interface SimKey {
  keyformat: "passphrase" | "hex" | "raw";
  /** "prompt" or "file:///…" */
  keylocation: string;
  /** random per key; a raw receive keeps it (the wrapped key travels with the stream) */
  salt: string;
  /** sha256 of salt and key material: what load-key checks */
  fingerprint: string;
  pbkdf2iters: number;
  loaded: boolean;
}

export interface SimDataset {
  name: string;
  type: "filesystem" | "volume";
  guid: string;
  createtxg: number;
  creation: number;
  compressratio: number;
  /** mountpoint of a filesystem ("-" for volumes) */
  mountpoint: string;
  mounted: boolean;
  volsize: number;
  /** locally set properties, e.g. compression */
  props: Record<string, string>;
  extents: Extent[];
  /** diff lines since the newest snapshot */
  changes: string[];
  snapshots: SimSnapshot[];
  bookmarks: SimBookmark[];
  partial: PartialReceive | null;
  /** a receive in flight (absent in states written before it existed) */
  receiving?: InFlightReceive | null;
  /** encryption (absent: not encrypted) */
  crypt?: SimCrypt | null;
  /** the wrapping key, on an encryption root only */
  key?: SimKey | null;
}

export interface SimPool {
  name: string;
  size: number;
  guid: string;
  txg: number;
  /** bytes freed by destroys that `zpool get freeing` still reports (always 0 here) */
  freeing: number;
}

export interface SimState {
  version: 1;
  /** the OpenZFS release the simulator answers as (absent: 2.1.11; see version.ts) */
  zfsVersion?: ZfsVersion;
  pools: Record<string, SimPool>;
  datasets: Record<string, SimDataset>;
}

export const STATE_FILE = "state.json";
/** flock(2)ed; while held it names its holder ("PID START"), for processes without libc */
const LOCK_FILE = "state.lock";
/** the lock of processes without libc: created exclusively, naming its holder the same way */
const EXCL_FILE = "state.excl";
/** an exclusive lock file still empty after this long lost its writer (open and write are
 * back to back); well inside LOCK_TIMEOUT_MS, so the next caller does not time out on it */
const STALE_LOCK_MS = 10_000;
const LOCK_TIMEOUT_MS = 20_000;

export function emptyState(): SimState {
  return { version: 1, pools: {}, datasets: {} };
}

export function loadState(stateDir: string): SimState {
  let text: string;
  try {
    text = fs.readFileSync(join(stateDir, STATE_FILE), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return emptyState();
    throw error;
  }
  const state = JSON.parse(text) as SimState;
  if (state.version !== 1) throw new Error(`unsupported sim state version in ${stateDir}`);
  return state;
}

/** Writes atomically (temp file + rename) so a reader never sees half a file. */
export function saveState(stateDir: string, state: SimState): void {
  fs.mkdirSync(stateDir, { recursive: true });
  const tmp = join(stateDir, `${STATE_FILE}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify(state));
  fs.renameSync(tmp, join(stateDir, STATE_FILE));
}

/** "PID START": this process, as a lock file names its holder */
function holderLine(): string {
  return `${process.pid} ${processStart(process.pid) ?? ""}`;
}

/** the holder a lock file names: alive, gone, or unknown (no such file, nothing written yet) */
function lockHolder(path: string): "alive" | "gone" | "unknown" {
  let text: string;
  try {
    text = fs.readFileSync(path, "utf8");
  } catch {
    return "unknown";
  }
  const [pidText, start] = text.trim().split(" ");
  const pid = Number.parseInt(pidText ?? "", 10);
  if (!(pid > 0)) return "unknown";
  return processAlive(pid, start || null) ? "alive" : "gone";
}

/** an exclusive lock file whose holder is gone, or that stayed empty too long */
function lockIsStale(lockPath: string): boolean {
  const holder = lockHolder(lockPath);
  if (holder !== "unknown") return holder === "gone";
  try {
    return Date.now() - fs.statSync(lockPath).mtimeMs > STALE_LOCK_MS;
  } catch {
    return false;
  }
}

/**
 * The state lock: flock(2) on a file that stays, released by the kernel when its holder ends
 * however it ends. Only where no libc loads (bun:ffi needs the JIT: BUN_JSC_useJIT=0 turns it
 * off), a file created exclusively and broken when its holder is gone; that judgement can race
 * with a holder that just ended and a new one, which loses an update now and then when many sim
 * processes run at once. Both kinds can meet on one state (whether libc loads under qemu-user
 * varies from process to process), so each also looks for the other's holder once it holds its
 * own lock, and gives way to a live one: at least one of two that start together sees the other.
 */
function acquireLock(stateDir: string): () => void {
  fs.mkdirSync(stateDir, { recursive: true });
  const lockPath = join(stateDir, LOCK_FILE);
  const exclPath = join(stateDir, EXCL_FILE);
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  const waitOrFail = (path: string) => {
    if (Date.now() > deadline) throw new Error(`sim state is locked: ${path}`);
    Bun.sleepSync(2);
  };
  const lib = loadLibc();
  if (lib !== null) {
    const fd = fs.openSync(lockPath, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    try {
      for (;;) {
        if (tryFlock(lib, fd, lockPath)) {
          fs.ftruncateSync(fd, 0);
          fs.writeSync(fd, holderLine(), 0);
          if (lockHolder(exclPath) !== "alive") {
            return () => {
              fs.ftruncateSync(fd, 0);
              fs.closeSync(fd);
            };
          }
          fs.ftruncateSync(fd, 0);
          unflock(lib, fd);
        }
        waitOrFail(lockPath);
      }
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }
  for (;;) {
    try {
      const fd = fs.openSync(exclPath, "wx");
      fs.writeSync(fd, holderLine());
      fs.closeSync(fd);
      if (lockHolder(lockPath) !== "alive") return () => fs.rmSync(exclPath, { force: true });
      fs.rmSync(exclPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      if (lockIsStale(exclPath)) {
        fs.rmSync(exclPath, { force: true });
        continue;
      }
    }
    waitOrFail(exclPath);
  }
}

/**
 * Ends the receives whose process died without ending them (killed, crashed), as the kernel
 * does when a receiving process goes away: with -s the partial stays resumable; without, a
 * dataset the receive was creating is destroyed and an existing one is left as it was.
 * Returns whether anything changed.
 */
export function reapReceives(state: SimState): boolean {
  let changed = false;
  for (const ds of Object.values(state.datasets)) {
    const claim = ds.receiving;
    if (!claim || processAlive(claim.pid, claim.start)) continue;
    changed = true;
    ds.receiving = null;
    if (claim.resumable && ds.partial) continue;
    if (claim.newfs) delete state.datasets[ds.name];
  }
  return changed;
}

/** Runs fn on the current state under the lock; the state is saved if fn returns true. */
export function withState<T>(
  stateDir: string,
  fn: (state: SimState) => { save: boolean; value: T },
): T {
  const release = acquireLock(stateDir);
  try {
    const state = loadState(stateDir);
    const reaped = reapReceives(state);
    const { save, value } = fn(state);
    if (save || reaped) saveState(stateDir, state);
    return value;
  } finally {
    release();
  }
}

/** Reads a consistent snapshot of the state (under the lock, released at once). */
export function readState(stateDir: string): SimState {
  return withState(stateDir, (state) => ({ save: false, value: state }));
}

/** A random non-zero 64-bit GUID as a decimal string (often above 2^53). */
export function newGuid(): string {
  for (;;) {
    const value = randomBytes(8).readBigUInt64LE();
    if (value !== 0n) return value.toString();
  }
}

/** Clock in epoch seconds; ABGLEICH_SIM_NOW fixes it for reproducible tests and demos. */
export function nowSeconds(env: Record<string, string | undefined> = process.env): number {
  const fixed = env.ABGLEICH_SIM_NOW;
  if (fixed !== undefined && fixed !== "") {
    const value = Number.parseInt(fixed, 10);
    if (Number.isFinite(value)) return value;
  }
  return Math.floor(Date.now() / 1000);
}

export function poolOf(name: string): string {
  return name.split(/[/@#]/, 1)[0] as string;
}

export function parentOf(name: string): string | null {
  const slash = name.lastIndexOf("/");
  return slash < 0 ? null : name.slice(0, slash);
}

/** Starts a new txg in the dataset's pool and returns its number. */
export function nextTxg(state: SimState, datasetName: string): number {
  const pool = state.pools[poolOf(datasetName)];
  if (!pool) throw new Error(`no pool for ${datasetName}`);
  pool.txg += 1;
  return pool.txg;
}
