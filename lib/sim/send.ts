// `zfs send`: full, -i, -I, -t (resume), -n/-v/-P estimates and progress lines, streaming
// real bytes to standard output.
import { isatty } from "node:tty";
import { BASE_FS, BASE_VOL, referencedAt, writtenBetween } from "./accounting.ts";
import type { SimContext } from "./context.ts";
import { lastValue, parseOptions, usageError, ZfsError } from "./errors.ts";
import { clockTime, nicebytes } from "./format.ts";
import { keyOf } from "./props.ts";
import { readState, type SimDataset, type SimSnapshot, type SimState } from "./state.ts";
import {
  CHUNK,
  encodeHeader,
  endRecord,
  SNAPSHOT_END,
  STREAM_END,
  type StreamHeader,
  type StreamSnapshot,
  snapshotStreamBytes,
  writeAll,
} from "./stream.ts";
import { decodeToken, describeToken, TokenError, type TokenFlag } from "./token.ts";
import { resolve } from "./tree.ts";

interface Base {
  createtxg: number;
  guid: string;
}

/** One snapshot's part of a stream, relative to `from` (null: full). */
export function streamSnapshot(
  ds: SimDataset,
  snap: SimSnapshot,
  from: Base | null,
): StreamSnapshot {
  const t = snap.createtxg;
  const ordered = [...ds.snapshots].sort((a, b) => a.createtxg - b.createtxg);
  if (!from) {
    const base = ds.type === "volume" ? BASE_VOL : BASE_FS;
    return {
      name: snap.name,
      guid: snap.guid,
      creation: snap.creation,
      fromguid: null,
      newBytes: Math.max(0, referencedAt(ds, t) - base),
      frees: [],
      changes: snap.changes,
    };
  }
  const p = from.createtxg;
  const frees = new Map<string | null, number>();
  for (const e of ds.extents) {
    if (e.born > p || e.died === null || e.died <= p || e.died > t) continue;
    const bornIn = ordered.find((s) => s.createtxg >= e.born);
    const key = bornIn ? bornIn.guid : null;
    frees.set(key, (frees.get(key) ?? 0) + e.bytes);
  }
  const changes = ordered
    .filter((s) => s.createtxg > p && s.createtxg <= t)
    .flatMap((s) => s.changes);
  return {
    name: snap.name,
    guid: snap.guid,
    creation: snap.creation,
    fromguid: from.guid,
    newBytes: writtenBetween(ds, p, t),
    frees: [...frees].map(([bornGuid, bytes]) => ({ bornGuid, bytes })),
    changes: [...new Set(changes)],
  };
}

interface Plan {
  header: StreamHeader;
  /** estimate lines' "from" label per snapshot (null for full) */
  fromLabels: Array<string | null>;
  /** full names of the snapshots sent */
  names: string[];
  /** -t: the decoded token, for -v output */
  tokenText?: string;
  /** -t: the features the token recorded (the resumed stream has them again) */
  tokenFlags?: TokenFlag[];
}

function headerFor(ds: SimDataset, snapshots: StreamSnapshot[], resumeOffset = 0): StreamHeader {
  return {
    version: 1,
    dataset: ds.name,
    type: ds.type,
    compressratio: ds.compressratio,
    volsize: ds.volsize,
    resumeOffset,
    resume: resumeOffset > 0,
    snapshots,
  };
}

function openSnapshot(state: SimState, name: string): { ds: SimDataset; snap: SimSnapshot } {
  const node = resolve(state, name);
  if (node?.kind !== "snapshot")
    throw new ZfsError(`cannot open '${name}': dataset does not exist`);
  return { ds: node.ds, snap: node.snap };
}

function planResume(
  state: SimState,
  tokenText: string,
  out: (s: string) => void,
  verbose: boolean,
): Plan {
  let token: ReturnType<typeof decodeToken>;
  try {
    token = decodeToken(tokenText);
  } catch (error) {
    if (error instanceof TokenError)
      throw new ZfsError(`cannot resume send: ${error.message}`, 255);
    throw error;
  }
  if (verbose) out(describeToken(token));
  const at = token.toname.indexOf("@");
  const ds = state.datasets[token.toname.slice(0, at)];
  const toguid = token.toguid.toString();
  const snap = ds?.snapshots.find((s) => s.guid === toguid);
  if (!ds || !snap) {
    const exists = resolve(state, token.toname) !== null;
    throw new ZfsError(
      exists
        ? `cannot resume send: '${token.toname}' is no longer the same snapshot used in the initial send`
        : `cannot resume send: '${token.toname}' used in the initial send no longer exists`,
      255,
    );
  }
  let from: Base | null = null;
  let fromLabel: string | null = null;
  if (token.fromguid !== undefined) {
    const fromguid = token.fromguid.toString();
    const fromSnap = ds.snapshots.find((s) => s.guid === fromguid);
    const fromBm = ds.bookmarks.find((b) => b.guid === fromguid);
    if (!fromSnap && !fromBm)
      throw new ZfsError(
        `cannot resume send: incremental source 0x${token.fromguid.toString(16)} no longer exists`,
        255,
      );
    from = (fromSnap ?? fromBm) as Base;
    fromLabel = fromSnap ? `${ds.name}@${fromSnap.name}` : `${ds.name}#${fromBm?.name}`;
  }
  const part = streamSnapshot(ds, snap, from);
  const offset = Number(token.offset);
  if (offset > part.newBytes)
    throw new ZfsError("cannot resume send: resume token is corrupt", 255);
  return {
    // a resuming stream even from offset 0 (the token of a receive still in flight)
    header: { ...headerFor(ds, [part], offset), resume: true },
    fromLabels: [fromLabel],
    names: [`${ds.name}@${snap.name}`],
    tokenFlags: token.flags ?? [],
  };
}

function planSend(
  state: SimState,
  target: string,
  fromArg: string | undefined,
  all: boolean,
): Plan {
  if (!target.includes("@")) {
    const ds = state.datasets[target];
    if (!ds) throw new ZfsError(`cannot open '${target}': dataset does not exist`);
    throw new ZfsError(
      `warning: cannot send '${target}': target is busy; if a filesystem, it must not be mounted`,
    );
  }
  const { ds, snap } = openSnapshot(state, target);
  if (fromArg === undefined)
    return {
      header: headerFor(ds, [streamSnapshot(ds, snap, null)]),
      fromLabels: [null],
      names: [target],
    };
  let fromName = fromArg;
  if (!fromName.includes("@") && !fromName.includes("#")) fromName = `@${fromName}`;
  if (fromName.startsWith("@") || fromName.startsWith("#")) fromName = `${ds.name}${fromName}`;
  const fromNode = resolve(state, fromName);
  if (!fromNode || (fromNode.kind !== "snapshot" && fromNode.kind !== "bookmark"))
    throw new ZfsError(`cannot open '${fromName}': dataset does not exist`);
  const from: Base = fromNode.kind === "snapshot" ? fromNode.snap : fromNode.bm;
  if (fromNode.ds !== ds)
    throw new ZfsError(
      `warning: cannot send '${target}': not an earlier snapshot from the same fs`,
    );
  if (!all) {
    if (from.createtxg >= snap.createtxg)
      throw new ZfsError(
        `warning: cannot send '${target}': not an earlier snapshot from the same fs`,
      );
    return {
      header: headerFor(ds, [streamSnapshot(ds, snap, from)]),
      fromLabels: [fromName],
      names: [target],
    };
  }
  if (fromNode.kind === "bookmark")
    throw new ZfsError("Error: multiple snapshots cannot be sent from a bookmark.");
  if (from.createtxg >= snap.createtxg)
    throw new ZfsError(
      `WARNING: could not send ${target}:\nincremental source (${fromName}) is not earlier than it`,
    );
  const between = [...ds.snapshots]
    .sort((a, b) => a.createtxg - b.createtxg)
    .filter((s) => s.createtxg > from.createtxg && s.createtxg <= snap.createtxg);
  const parts: StreamSnapshot[] = [];
  const labels: string[] = [];
  let prev: SimSnapshot = fromNode.snap;
  for (const s of between) {
    parts.push(streamSnapshot(ds, s, prev));
    labels.push(prev.name);
    prev = s;
  }
  return {
    header: { ...headerFor(ds, parts), compound: true },
    fromLabels: labels,
    names: between.map((s) => `${ds.name}@${s.name}`),
  };
}

function partSize(header: StreamHeader, index: number): number {
  const part = header.snapshots[index] as StreamSnapshot;
  return snapshotStreamBytes(part.newBytes - (index === 0 ? header.resumeOffset : 0));
}

function estimateText(plan: Plan, parsable: boolean): string {
  let text = "";
  let total = 0;
  plan.header.snapshots.forEach((_, i) => {
    const size = partSize(plan.header, i);
    total += size;
    const name = plan.names[i] as string;
    const from = plan.fromLabels[i] ?? null;
    if (parsable)
      text +=
        from === null ? `full\t${name}\t${size}\n` : `incremental\t${from}\t${name}\t${size}\n`;
    else {
      const what =
        from === null
          ? `full send of ${name}`
          : from.includes("@") || from.includes("#")
            ? `send from ${from} to ${name}`
            : `send from @${from} to ${name}`;
      text += `${what}${size !== 0 ? ` estimated size is ${nicebytes(size)}` : ""}\n`;
    }
  });
  text += parsable ? `size\t${total}\n` : `total estimated size is ${nicebytes(total)}\n`;
  return text;
}

class CutReached extends Error {}

/** Streams the plan to `fd`. ABGLEICH_SIM_CUT_AFTER=N stops after N bytes (a cut link). */
function streamOut(
  ctx: SimContext,
  plan: Plan,
  progress: { on: boolean; parsable: boolean },
): void {
  const fd = ctx.stdoutFd;
  const cutText = ctx.env.ABGLEICH_SIM_CUT_AFTER;
  let budget =
    cutText !== undefined && cutText !== ""
      ? Number.parseInt(cutText, 10)
      : Number.POSITIVE_INFINITY;
  const emit = (buf: Buffer, length = buf.length): void => {
    const n = Math.min(length, budget);
    if (n > 0) writeAll(fd, buf, n);
    budget -= n;
    if (n < length) throw new CutReached();
  };
  const filler = Buffer.allocUnsafe(CHUNK);
  for (let i = 0; i < CHUNK; i += 4) filler.writeUInt32LE((i * 2654435761) >>> 0, i);
  emit(encodeHeader(plan.header));
  plan.header.snapshots.forEach((part, i) => {
    const name = plan.names[i] as string;
    let left = part.newBytes - (i === 0 ? plan.header.resumeOffset : 0);
    let sent = 0;
    let nextReport = Date.now() + 1000;
    let firstReport = true;
    while (left > 0) {
      const n = Math.min(CHUNK, left);
      emit(filler, n);
      left -= n;
      sent += n;
      if (progress.on && Date.now() >= nextReport) {
        nextReport = Date.now() + 1000;
        const now = clockTime(new Date());
        if (progress.parsable) ctx.err(`${now}\t${sent}\t${name}\n`);
        else {
          if (firstReport) ctx.err(`TIME        SENT   SNAPSHOT ${name}\n`);
          ctx.err(`${now}   ${nicebytes(sent).padStart(5)}   ${name}\n`);
        }
        firstReport = false;
      }
    }
    emit(endRecord(SNAPSHOT_END, part.newBytes));
  });
  emit(endRecord(STREAM_END, plan.header.snapshots.length));
}

/** zfs send's long options (getopt_long) as their letters */
const LONG_OPTIONS: Record<string, string> = {
  "--dedup": "-D",
  "--props": "-p",
  "--parsable": "-P",
  "--verbose": "-v",
  "--dryrun": "-n",
  "--large-block": "-L",
  "--embed": "-e",
  "--resume": "-t",
  "--compressed": "-c",
  "--raw": "-w",
  "--backup": "-b",
  "--holds": "-h",
  "--replicate": "-R",
  "--saved": "-S",
};

/**
 * The features a stream carries and a resume token records (dmu_send.c): -L only where
 * large blocks are in use (never here), -e (or -w) unless the dataset is encrypted,
 * -c or -w, and -w of an encrypted dataset.
 */
function streamFeatures(flags: Set<string>, encrypted: boolean): TokenFlag[] {
  const features: TokenFlag[] = [];
  if ((flags.has("e") || flags.has("w")) && !encrypted) features.push("embedok");
  if (flags.has("c") || flags.has("w")) features.push("compressok");
  if (flags.has("w") && encrypted) features.push("rawok");
  return features;
}

/** Marks the plan's stream raw when it is: the cipher and the wrapped key go along. */
function applyEncryption(state: SimState, plan: Plan, ds: SimDataset, features: TokenFlag[]) {
  plan.header.features = features;
  const key = keyOf(state, ds);
  if (ds.crypt && key && features.includes("rawok")) {
    const { loaded: _l, keylocation: _k, ...wrapped } = key;
    plan.header.raw = { cipher: ds.crypt.cipher, key: wrapped };
  }
}

/** A decrypting send of an encrypted dataset needs its key (an estimate does not). */
function checkKey(state: SimState, plan: Plan, ds: SimDataset): void {
  if (ds.crypt && !plan.header.raw && !keyOf(state, ds)?.loaded)
    throw new ZfsError(
      `warning: cannot send '${plan.names[plan.names.length - 1]}': dataset key must be loaded`,
    );
}

export function zfsSend(ctx: SimContext, args: string[]): number {
  const parsed = parseOptions(
    "send",
    args.map((a) => LONG_OPTIONS[a] ?? a),
    "DnPpRVvLecwhbSsdi:I:t:",
  );
  if (parsed.flags.has("R")) throw new ZfsError("sim: zfs send -R is not simulated", 1);
  const token = lastValue(parsed, "t");
  const verbose = parsed.flags.has("v") || parsed.flags.has("P");
  const dry = parsed.flags.has("n");
  const parsable = parsed.flags.has("P");
  const write = dry ? ctx.out : ctx.err;
  if (token === undefined) {
    if (parsed.operands.length === 0) throw usageError("send", "missing snapshot argument");
    if (parsed.operands.length > 1) throw usageError("send", "too many arguments");
  }
  if (!dry && isatty(ctx.stdoutFd))
    throw new ZfsError(
      "Error: Stream can not be written to a terminal.\nYou must redirect standard output.",
    );
  const state = readState(ctx.stateDir);
  const incremental = lastValue(parsed, "I");
  const plan =
    token !== undefined
      ? planResume(state, token, write, verbose)
      : planSend(
          state,
          parsed.operands[0] as string,
          incremental ?? lastValue(parsed, "i"),
          incremental !== undefined,
        );
  const sendDs = state.datasets[plan.header.dataset] as SimDataset;
  applyEncryption(
    state,
    plan,
    sendDs,
    token !== undefined ? (plan.tokenFlags ?? []) : streamFeatures(parsed.flags, !!sendDs.crypt),
  );
  if (verbose) write(estimateText(plan, parsable));
  if (dry) return 0;
  checkKey(state, plan, sendDs);
  try {
    streamOut(ctx, plan, { on: parsed.flags.has("v"), parsable });
  } catch (error) {
    if (error instanceof CutReached) return 141;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EPIPE" || code === "ECONNRESET") return 141;
    throw error;
  }
  return 0;
}
