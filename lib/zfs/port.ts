// The one way abgleich asks zfs something or changes something with a single command, on one
// host. Argv is built and output is parsed here, nowhere else; every command runs with the
// port's timeout and signal.
//
// How results come back:
// - a query answers (tree, yes/no, number, or null for "zfs cannot tell");
// - a query whose command fails throws ZfsCommandError;
// - an action returns an ActionOutcome, ok or with the command, exit code and stderr;
// - a connection that failed (lib/hosts/failure.ts) throws HostDownError from a query, and is
//   named in an action's error;
// - a timeout or a cancel rejects with CommandTimeoutError or CancelledError, from both.
//
// Transfers (`zfs send | zfs receive`) are not here: they are one OS pipeline (lib/run).

import { hostFailure } from "../hosts/failure.ts";
import type { Host, RunOptions, RunResult } from "../hosts/host.ts";
import { shellJoin } from "../hosts/quote.ts";
import {
  argBatches,
  type BookmarkPair,
  destroyBatches,
  NO_PROGRAMS,
  pairWords,
  shownBookmarkProgram,
  zfsAvailable,
  zfsBookmarkProgram,
  zfsBookmarks,
  zfsDestroyBookmarks,
  zfsDestroySnapshots,
  zfsDiff,
  zfsHold,
  zfsHolds,
  zfsList,
  zfsListName,
  zfsReceiveAbort,
  zfsRelease,
  zfsResumeToken,
  zfsSend,
  zfsSnapshot,
  zfsUsed,
  zpoolFreeing,
  zpoolGuid,
} from "./commands.ts";
import { commandFailure, describeHost, missingProgramHint, ZfsCommandError } from "./errors.ts";
import { type GuidSharing, ListParser } from "./list.ts";
import type { Inventory } from "./model.ts";
import type { ActionOutcome } from "./outcome.ts";

export interface PortOptions {
  /** limit for every command, in ms (the config's command_timeout × 1000); none: no limit */
  timeoutMs?: number;
  /** aborting kills the running command and rejects every later one */
  signal?: AbortSignal;
}

/** what a partial receive would resume, as `zfs send -nvP -t TOKEN` tells */
export type ResumeTarget =
  | { ok: true; toname: string; size?: number }
  | { ok: false; reason: string };

/** `cannot open 'NAME': dataset does not exist` (OpenZFS 2.1.11, exit 1) */
function isMissing(result: RunResult, name: string): boolean {
  return (
    result.code === 1 && result.stderr.includes(`cannot open '${name}': dataset does not exist`)
  );
}

/** the `size` line of a `-n -v -P` estimate (`size\tBYTES`), or null when there is none */
export function parseEstimate(output: string): number | null {
  const match = /^size\t(\d+)$/m.exec(output);
  return match ? Number(match[1]) : null;
}

/** the `toname = …` line of a resume token's contents (`zfs send -nvP -t TOKEN`) */
export function parseToname(output: string): string | null {
  const match = /^\s*toname = (.+)$/m.exec(output);
  return match ? (match[1] as string).trim() : null;
}

/** `POOL\tfreeing\tBYTES\t-` of `zpool get -H -p freeing POOL`, or null when it is not that */
export function parseFreeing(output: string, pool: string): number | null {
  const value = poolNumber(output, pool, "freeing");
  return value === null ? null : Number(value);
}

/** the digits of `POOL\tPROPERTY\tVALUE\t-` (`zpool get -Hp PROPERTY POOL`), or null */
function poolNumber(output: string, pool: string, property: string): string | null {
  const [name, named, value] = output.trimEnd().split("\n")[0]?.split("\t") ?? [];
  return name === pool && named === property && /^\d+$/.test(value ?? "")
    ? (value as string)
    : null;
}

/** one number alone on its line (`zfs list -H -p -o used DS`), or null */
export function parseBytes(output: string): number | null {
  const text = output.trim();
  return /^\d+$/.test(text) ? Number(text) : null;
}

/** a long destroy list, shortened for messages */
function showDestroy(dataset: string, names: readonly string[]): string {
  if (names.length <= 3) return shellJoin(zfsDestroySnapshots(dataset, names));
  return `zfs destroy ${dataset}@${names[0]},${names[1]},…,${names.at(-1)} (${names.length} snapshots)`;
}

/**
 * Commands of one chain step run side by side on a host (ZfsPort.batched); two steps at once
 * stay within the 8 sessions abgleich uses of one ssh connection (sshd's MaxSessions 10)
 */
export const CHAIN_LANES = 4;

export class ZfsPort {
  private readonly where: string;

  constructor(
    readonly host: Host,
    private readonly options: PortOptions = {},
  ) {
    this.where = describeHost(host);
  }

  private run(argv: readonly string[], readStdout?: RunOptions["readStdout"]): Promise<RunResult> {
    const { timeoutMs, signal } = this.options;
    return this.host.run(argv, { timeoutMs, signal, ...(readStdout ? { readStdout } : {}) });
  }

  /** run a query; a failed connection throws HostDownError */
  private async query(
    argv: readonly string[],
    readStdout?: RunOptions["readStdout"],
  ): Promise<RunResult> {
    const result = await this.run(argv, readStdout);
    const failure = hostFailure(this.host, result);
    if (failure) throw failure;
    return result;
  }

  private fail(argv: readonly string[], result: RunResult): never {
    throw new ZfsCommandError(
      this.where,
      argv,
      result.code,
      result.stderr,
      missingProgramHint(this.host, result.code, result.stderr),
    );
  }

  /** run one action's command */
  private async action(argv: readonly string[]): Promise<ActionOutcome> {
    const started = performance.now();
    const result = await this.run(argv);
    const durationMs = Math.round(performance.now() - started);
    if (result.code === 0) return { ok: true, durationMs };
    return {
      ok: false,
      error: commandFailure(this.host, argv, result.code, result.stderr),
      durationMs,
    };
  }

  // ---- queries

  /** the side's whole tree in one `zfs list`; a root that does not exist is an empty tree */
  /** `sharing`: the other side is read at the same time; their parsers share guid strings */
  async inventory(root: string, sharing?: GuidSharing): Promise<Inventory> {
    const argv = zfsList(root);
    // parsed as it is read: no text of a million rows is ever held
    const parser = new ListParser(this.host.side, root, this.where, sharing);
    let parseError: unknown;
    const result = await this.query(argv, (piece) => {
      if (parseError !== undefined) return;
      try {
        parser.push(piece);
      } catch (error) {
        parseError = error;
      }
    });
    if (result.code !== 0) {
      // what zfs said matters then, not what its partial output looked like
      if (isMissing(result, root)) return { side: this.host.side, root, datasets: [] };
      this.fail(argv, result);
    }
    if (parseError !== undefined) throw parseError;
    const inventory = parser.end();
    await this.readHolds(inventory);
    return inventory;
  }

  /**
   * The tags of every held snapshot (userrefs > 0), in as few `zfs holds` as fit the argument
   * limit: abgleich's own holds mark where each incremental chain rests.
   */
  private async readHolds(inventory: Inventory): Promise<void> {
    const held = inventory.datasets.flatMap((dataset) =>
      dataset.snapshots
        .filter((snapshot) => snapshot.userrefs > 0)
        .map((snapshot) => ({ full: `${dataset.name}@${snapshot.name}`, snapshot })),
    );
    if (held.length === 0) return;
    const byName = new Map(held.map((entry) => [entry.full, entry.snapshot]));
    for (const { snapshot } of held) snapshot.holds = [];
    for (const batch of argBatches(zfsHolds([]), held, (entry) => [entry.full])) {
      const argv = zfsHolds(batch.map((entry) => entry.full));
      const result = await this.query(argv);
      // a snapshot destroyed since the list makes zfs fail for it alone: the rest still print
      for (const line of result.stdout.split("\n")) {
        const [name, tag] = line.split("\t");
        if (name !== undefined && tag !== undefined) byName.get(name)?.holds?.push(tag);
      }
      if (result.code !== 0 && result.stdout.trim() === "") this.fail(argv, result);
    }
  }

  /** does the dataset (or pool) exist? */
  async exists(dataset: string): Promise<boolean> {
    const argv = zfsListName(dataset);
    const result = await this.query(argv);
    if (result.code === 0) return true;
    if (isMissing(result, dataset)) return false;
    return this.fail(argv, result);
  }

  /** did anything change since `dataset@snapshot`? (`zfs diff` prints anything at all) */
  async changedSince(snapshot: string): Promise<boolean> {
    const argv = zfsDiff(snapshot);
    const result = await this.query(argv);
    if (result.code !== 0) this.fail(argv, result);
    return result.stdout.trim() !== "";
  }

  /** what a partial receive with `token` would resume, asked of the sending side */
  async resumeTarget(token: string): Promise<ResumeTarget> {
    const result = await this.query(
      zfsSend({ mode: "resume", token }, { progress: true, dryRun: true }),
    );
    const output = `${result.stdout}\n${result.stderr}`;
    const toname = parseToname(output);
    if (result.code === 0 && toname !== null) {
      const size = parseEstimate(output);
      return size === null ? { ok: true, toname } : { ok: true, toname, size };
    }
    return {
      ok: false,
      reason: result.stderr.trim() || `zfs send -t failed (exit ${result.code})`,
    };
  }

  /** the token of `dataset`'s partial receive, or null when there is none */
  async resumeToken(dataset: string): Promise<string | null> {
    const argv = zfsResumeToken(dataset);
    const result = await this.query(argv);
    if (result.code !== 0) {
      if (isMissing(result, dataset)) return null;
      this.fail(argv, result);
    }
    const token = result.stdout.trim();
    return token === "" || token === "-" ? null : token;
  }

  /** bytes the pool is still freeing asynchronously, or null when unreadable */
  async freeing(pool: string): Promise<number | null> {
    const result = await this.query(zpoolFreeing(pool));
    return result.code === 0 ? parseFreeing(result.stdout, pool) : null;
  }

  /** the pool's guid (digits), or null when unreadable */
  async poolGuid(pool: string): Promise<string | null> {
    const result = await this.query(zpoolGuid(pool));
    return result.code === 0 ? poolNumber(result.stdout, pool, "guid") : null;
  }

  /** the dataset's `used` bytes, or null when unreadable */
  used(dataset: string): Promise<number | null> {
    return this.bytes(zfsUsed(dataset));
  }

  /** the dataset's `available` bytes, or null when unreadable */
  available(dataset: string): Promise<number | null> {
    return this.bytes(zfsAvailable(dataset));
  }

  /** the one number a `zfs list -H -p -o PROPERTY` prints, or null when unreadable */
  private async bytes(argv: string[]): Promise<number | null> {
    const result = await this.query(argv);
    return result.code === 0 ? parseBytes(result.stdout) : null;
  }

  // ---- actions

  /** all `dataset@name` in one atomic `zfs snapshot` (they must share a pool) */
  snapshot(fullNames: readonly string[]): Promise<ActionOutcome> {
    return this.action(zfsSnapshot(fullNames));
  }

  /**
   * Destroy `names` (short names, oldest first) of `dataset`: one `zfs destroy ds@a,b,…` per
   * batch that fits the argument limit, in order; the first failing batch ends it and is
   * reported, with how many were destroyed before it.
   */
  async destroy(dataset: string, names: readonly string[]): Promise<ActionOutcome> {
    const batches = destroyBatches(dataset, names);
    if (batches.length === 0) throw new Error("destroy: no snapshots");
    const started = performance.now();
    let destroyed = 0;
    for (const [index, batch] of batches.entries()) {
      const result = await this.run(zfsDestroySnapshots(dataset, batch));
      if (result.code !== 0) {
        let error = commandFailure(
          this.host,
          showDestroy(dataset, batch),
          result.code,
          result.stderr,
        );
        if (batches.length > 1) {
          error += `\nbatch ${index + 1} of ${batches.length}: ${destroyed} older snapshot(s) were destroyed before it, ${names.length - destroyed - batch.length} newer one(s) were not tried`;
        }
        return { ok: false, error, durationMs: Math.round(performance.now() - started) };
      }
      destroyed += batch.length;
    }
    return { ok: true, durationMs: Math.round(performance.now() - started) };
  }

  /**
   * The items in up to CHAIN_LANES commands at once, each lane's share in order, in as few
   * commands as the argument limit allows. A hold, a release, a bookmark or its destroy each
   * waits for a transaction group to sync, one after another within a command; commands side
   * by side share those waits (100 holds in one command: 18 s in an emulated VM). A failed
   * command ends its lane; the first failure is the outcome.
   */
  private async batched<T>(
    items: readonly T[],
    build: (batch: readonly T[]) => string[],
    words: (item: T) => readonly string[],
  ): Promise<ActionOutcome> {
    const started = performance.now();
    const size = Math.ceil(items.length / CHAIN_LANES);
    const lanes: (readonly T[])[] = [];
    for (let at = 0; at < items.length; at += size) lanes.push(items.slice(at, at + size));
    const outcomes = await Promise.all(
      lanes.map(async (lane) => {
        for (const batch of argBatches(build([]), lane, words)) {
          const outcome = await this.action(build(batch));
          if (!outcome.ok) return outcome;
        }
        return null;
      }),
    );
    const failed = outcomes.find((outcome) => outcome !== null);
    const durationMs = Math.round(performance.now() - started);
    return failed ? { ...failed, durationMs } : { ok: true, durationMs };
  }

  /** `zfs hold TAG` on each snapshot (full names) */
  hold(tag: string, snapshots: readonly string[]): Promise<ActionOutcome> {
    return this.batched(
      snapshots,
      (batch) => zfsHold(tag, batch),
      (name) => [name],
    );
  }

  /** `zfs release TAG` from each snapshot: holds with other tags stay */
  release(tag: string, snapshots: readonly string[]): Promise<ActionOutcome> {
    return this.batched(
      snapshots,
      (batch) => zfsRelease(tag, batch),
      (name) => [name],
    );
  }

  /**
   * Each pair's bookmark (full names): per pool in a channel program (one transaction group
   * for all, see BOOKMARK_PROGRAM; more than one where the names exceed the argument limit),
   * or, where zfs runs no programs (a user with `zfs allow` permissions, not root; OpenZFS
   * before 2.0), by `zfs bookmark` commands (ZfsPort.batched) from then on.
   */
  async bookmark(pairs: readonly BookmarkPair[]): Promise<ActionOutcome> {
    if (pairs.length > 0 && this.programs) {
      const outcome = await this.bookmarkByProgram(pairs);
      if (outcome !== "refused") return outcome;
      this.programs = false;
    }
    return this.batched(pairs, zfsBookmarks, pairWords);
  }

  /** false once zfs refused a channel program here: it would refuse the next one too */
  private programs = true;

  private async bookmarkByProgram(
    pairs: readonly BookmarkPair[],
  ): Promise<ActionOutcome | "refused"> {
    const started = performance.now();
    let ran = false;
    const byPool = Map.groupBy(pairs, (pair) => pair.snapshot.split(/[/@]/, 1)[0] as string);
    for (const [pool, onPool] of byPool) {
      for (const batch of argBatches(zfsBookmarkProgram(pool, []), onPool, pairWords)) {
        const argv = zfsBookmarkProgram(pool, batch);
        const result = await this.run(argv);
        if (result.code === 0) {
          ran = true;
          continue;
        }
        // refused before it ran: nothing was made (the first program here tells)
        const lines = result.stderr.split("\n").map((line) => line.trim());
        if (!ran && NO_PROGRAMS.some((line) => lines.includes(line))) return "refused";
        const shown = shownBookmarkProgram(pool, batch);
        return {
          ok: false,
          error: commandFailure(this.host, shown, result.code, result.stderr),
          durationMs: Math.round(performance.now() - started),
        };
      }
    }
    return { ok: true, durationMs: Math.round(performance.now() - started) };
  }

  /** destroy each bookmark (`ds#name`) */
  destroyBookmarks(bookmarks: readonly string[]): Promise<ActionOutcome> {
    return this.batched(bookmarks, zfsDestroyBookmarks, (name) => [name]);
  }

  /** drop a partial receive's state (`zfs receive -A`) */
  abortReceive(dataset: string): Promise<ActionOutcome> {
    return this.action(zfsReceiveAbort(dataset));
  }
}
