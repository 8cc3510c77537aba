// `zfs receive [-s] [-u] [-F] [-v] [-n] [-d|-e] TARGET` and `zfs receive -A TARGET`.
// The header is read first; checking it against the state and claiming the target (an
// in-flight receive, `receiving` in the state) happen in one step under the state lock, so
// two receives into one target — two processes — never both begin. Payload bytes are then
// consumed without holding the lock; each snapshot is applied (under the lock) as soon as
// its end record arrives, like the real per-snapshot commit; the claim ends with the stream.
import { compactExtents, datasetWritten, freeBytes, poolAvailable } from "./accounting.ts";
import type { SimContext } from "./context.ts";
import { addDataset } from "./datasets.ts";
import { parseOptions, usageError, ZfsError } from "./errors.ts";
import { nicebytes } from "./format.ts";
import { tokenOf } from "./props.ts";
import {
  nextTxg,
  nowSeconds,
  parentOf,
  poolOf,
  readState,
  type SimDataset,
  type SimState,
  withState,
} from "./state.ts";
import {
  BadStream,
  checkRecord,
  FdReader,
  RECORD_BYTES,
  readHeader,
  SNAPSHOT_END,
  STREAM_END,
  StreamCut,
  type StreamHeader,
  type StreamSnapshot,
} from "./stream.ts";

function abort(ctx: SimContext, name: string): number {
  return withState(ctx.stateDir, (state) => {
    const ds = state.datasets[name];
    if (!ds) throw usageError("receive", `cannot open '${name}': dataset does not exist`);
    if (!ds.partial)
      throw new ZfsError(`'${name}' does not have any resumable receive state to abort`);
    if (ds.partial.newfs) delete state.datasets[name];
    else ds.partial = null;
    return { save: true, value: 0 };
  });
}

function targetName(
  operand: string,
  header: StreamHeader,
  flags: Set<string>,
): { dataset: string; snapName: string | null } {
  const at = operand.indexOf("@");
  const base = at >= 0 ? operand.slice(0, at) : operand;
  const snapName = at >= 0 ? operand.slice(at + 1) : null;
  if (flags.has("d"))
    return { dataset: [base, ...header.dataset.split("/").slice(1)].join("/"), snapName };
  if (flags.has("e")) return { dataset: `${base}/${header.dataset.split("/").pop()}`, snapName };
  return { dataset: base, snapName };
}

/** Checks the stream against the target; returns an error text (after "cannot receive ...: ") or null. */
function check(
  state: SimState,
  header: StreamHeader,
  name: string,
  flags: Set<string>,
): string | null {
  const first = header.snapshots[0] as StreamSnapshot;
  const ds = state.datasets[name];
  if (header.resume) {
    if (!ds?.partial) return `destination '${name}' does not have any resumable receive state`;
    if (ds.partial.toguid !== first.guid || ds.partial.received !== header.resumeOffset)
      return `destination '${name}' has resumable state that does not match this stream`;
    return null;
  }
  if (ds?.partial)
    return `destination ${name} contains partially-complete state from "zfs receive -s".`;
  if (first.fromguid === null) {
    if (ds) {
      if (!flags.has("F")) return `destination '${name}' exists\nmust specify -F to overwrite it`;
      const snap = ds.snapshots[0];
      if (snap)
        return `destination has snapshots (eg. ${name}@${snap.name})\nmust destroy them to overwrite it`;
    }
    if (!name.includes("/")) return `destination '${name}' exists\nmust specify -F to overwrite it`;
    return null;
  }
  if (!ds) return `destination '${name}' does not exist`;
  if (!ds.snapshots.some((s) => s.guid === first.fromguid))
    return `most recent snapshot of ${name} does not\nmatch incremental source`;
  if (!flags.has("F") && datasetWritten(ds) > 0)
    return `destination ${name} has been modified\nsince most recent snapshot`;
  return null;
}

/** Applies one completed snapshot of the stream to the target. */
function applySnapshot(
  state: SimState,
  header: StreamHeader,
  part: StreamSnapshot,
  name: string,
  snapName: string,
  options: { force: boolean; mount: boolean; creation: number },
): void {
  let ds: SimDataset | undefined = state.datasets[name];
  if (part.fromguid === null && !ds?.partial) {
    if (ds) delete state.datasets[name];
    ds = addDataset(state, name, {
      type: header.type,
      volsize: header.volsize,
      compressratio: header.compressratio,
      mounted: false,
      creation: options.creation,
    });
  }
  if (!ds) throw new ZfsError(`destination '${name}' does not exist`);
  const wasNew = ds.partial?.newfs ?? part.fromguid === null;
  const from = part.fromguid === null ? null : ds.snapshots.find((s) => s.guid === part.fromguid);
  if (options.force && from) {
    const newest = Math.max(...ds.snapshots.map((s) => s.createtxg));
    ds.extents = ds.extents.filter((e) => e.base || e.born <= newest);
    for (const e of ds.extents) if (e.died !== null && e.died > newest) e.died = null;
    ds.changes = [];
    ds.snapshots = ds.snapshots.filter((s) => s.createtxg <= from.createtxg);
    compactExtents(ds);
  }
  const txg = nextTxg(state, name);
  for (const free of part.frees) {
    const born = free.bornGuid ? ds.snapshots.find((s) => s.guid === free.bornGuid) : undefined;
    freeBytes(ds, free.bytes, txg, (born ?? from)?.createtxg ?? txg);
  }
  if (part.newBytes > 0) ds.extents.push({ born: txg, died: null, bytes: part.newBytes });
  ds.snapshots.push({
    name: snapName,
    guid: part.guid,
    createtxg: txg,
    creation: part.creation,
    holds: [],
    changes: part.changes,
  });
  ds.changes = [];
  ds.partial = null;
  if (wasNew && options.mount && ds.type === "filesystem") ds.mounted = true;
  compactExtents(ds);
}

function savePartial(
  ctx: SimContext,
  header: StreamHeader,
  part: StreamSnapshot,
  name: string,
  received: number,
  streamBytes: number,
  creation: number,
): string | null {
  return withState(ctx.stateDir, (state) => {
    let ds = state.datasets[name];
    const newfs = part.fromguid === null;
    if (!ds) {
      ds = addDataset(state, name, {
        type: header.type,
        volsize: header.volsize,
        compressratio: header.compressratio,
        mounted: false,
        creation,
      });
    }
    const previous = ds.partial;
    ds.partial = {
      toguid: part.guid,
      fromguid: part.fromguid,
      toname: `${header.dataset}@${part.name}`,
      received,
      streamBytes: (previous && header.resume ? previous.streamBytes : 0) + streamBytes,
      newfs: previous?.newfs ?? newfs,
    };
    return { save: true, value: tokenOf(ds) };
  });
}

export function zfsReceive(ctx: SimContext, args: string[]): number {
  const parsed = parseOptions("receive", args, "vMnsFhuAdeo:x:");
  if (parsed.operands.length === 0) throw usageError("receive", "missing snapshot argument");
  if (parsed.operands.length > 1) throw usageError("receive", "too many arguments");
  const operand = parsed.operands[0] as string;
  if (parsed.flags.has("A")) return abort(ctx, operand);
  const flags = parsed.flags;
  const reader = new FdReader(ctx.stdinFd);
  let header: StreamHeader;
  try {
    header = readHeader(reader);
  } catch (error) {
    if (error instanceof StreamCut || error instanceof SyntaxError)
      throw new ZfsError("cannot receive: failed to read from stream");
    if (error instanceof BadStream) throw new ZfsError(`cannot receive: ${error.message}`);
    throw error;
  }
  const first = header.snapshots[0];
  if (!first) throw new ZfsError("cannot receive: invalid stream (no snapshots)");
  const { dataset: name, snapName } = targetName(operand, header, flags);
  const what = header.resume
    ? "resume stream"
    : first.fromguid === null
      ? "new filesystem stream"
      : "incremental stream";
  const prefix = `cannot receive ${what}`;
  const started = Date.now();
  const creation = nowSeconds(ctx.env);
  const state = readState(ctx.stateDir);
  const parent = parentOf(name);
  if (
    first.fromguid === null &&
    !header.resume &&
    parent &&
    !state.datasets[parent] &&
    !state.datasets[name]
  )
    throw new ZfsError(
      `cannot open '${parent}': dataset does not exist\n${prefix}: unable to restore to destination`,
    );
  if (!state.pools[poolOf(name)])
    throw new ZfsError(`${prefix}: destination '${name}' does not exist`);
  const problem = check(state, header, name, flags);
  if (problem) throw new ZfsError(`${prefix}: ${problem}`);
  // A snapshot of the stream that the target already has (same guid) is skipped, as zfs does.
  let space = poolAvailable(state, poolOf(name));
  let streamBytes = reader.consumed;
  for (let i = 0; i < header.snapshots.length; i++) {
    const part = header.snapshots[i] as StreamSnapshot;
    const offset = i === 0 ? header.resumeOffset : 0;
    const fullName = `${name}@${i === header.snapshots.length - 1 && snapName ? snapName : part.name}`;
    if (flags.has("v"))
      ctx.out(
        `${flags.has("n") ? "would receive" : "receiving"} ${part.fromguid ? "incremental" : "full"} stream of ${header.dataset}@${part.name} into ${fullName}\n`,
      );
    const want = part.newBytes - offset;
    const before = reader.consumed;
    const got = reader.skip(want, (done) => done <= space);
    const outOfSpace = got > space;
    const complete = got === want && !outOfSpace;
    let recordOk = false;
    if (complete) {
      try {
        recordOk = checkRecord(reader.readExact(RECORD_BYTES), SNAPSHOT_END, part.newBytes);
      } catch (error) {
        if (!(error instanceof StreamCut)) throw error;
      }
    }
    streamBytes += reader.consumed - before;
    if (!recordOk) {
      const received = offset + Math.min(got, space);
      const keep = flags.has("s") && !flags.has("n");
      if (outOfSpace) {
        if (keep) savePartial(ctx, header, part, name, received, streamBytes, creation);
        throw new ZfsError(`${prefix}: out of space`);
      }
      if (keep) {
        const token = savePartial(ctx, header, part, name, received, streamBytes, creation);
        throw new ZfsError(
          `${prefix}: checksum mismatch or incomplete stream.\nPartially received snapshot is saved.\nA resuming stream can be generated on the sending system by running:\n    zfs send -t ${token}`,
        );
      }
      throw new ZfsError(`${prefix}: ${complete ? "checksum mismatch" : "incomplete stream"}`);
    }
    space -= got;
    if (flags.has("n")) continue;
    withState(ctx.stateDir, (current) => {
      const target = current.datasets[name];
      if (target?.snapshots.some((s) => s.guid === part.guid)) {
        if (flags.has("v")) ctx.out(`snap ${fullName} already exists; ignoring\n`);
        return { save: false, value: undefined };
      }
      const snapShort = fullName.slice(fullName.indexOf("@") + 1);
      if (target?.snapshots.some((s) => s.name === snapShort))
        throw new ZfsError(
          `cannot receive: failed to read from stream\ncannot restore to ${fullName}: destination already exists`,
        );
      applySnapshot(current, header, part, name, snapShort, {
        force: flags.has("F"),
        mount: !flags.has("u"),
        creation,
      });
      return { save: true, value: undefined };
    });
  }
  try {
    if (!checkRecord(reader.readExact(RECORD_BYTES), STREAM_END, header.snapshots.length))
      throw new ZfsError(`${prefix}: invalid stream (bad end record)`);
  } catch (error) {
    if (error instanceof StreamCut) throw new ZfsError(`${prefix}: incomplete stream`);
    throw error;
  }
  if (flags.has("v")) {
    const seconds = Math.max(1, Math.round((Date.now() - started) / 1000));
    ctx.out(
      `received ${nicebytes(reader.consumed)} stream in ${seconds} seconds (${nicebytes(Math.floor(reader.consumed / seconds))}/sec)\n`,
    );
  }
  return 0;
}
