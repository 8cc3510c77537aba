// `zfs receive [-s] [-u] [-F] [-v] [-n] [-d|-e] TARGET` and `zfs receive -A TARGET`.
// The header is read first. Each snapshot of the stream then begins like its own receive
// (as each substream of a real -I package does): it is checked against the state and
// claims the target (`receiving`, an in-flight receive) in one step under the state lock,
// so that two receives into one target — two processes — never both begin. Payload bytes
// are consumed without holding the lock; the snapshot is applied (under the lock) as soon
// as its end record arrives, like the real per-snapshot commit, and the claim ends there.

import { processStart } from "../engine/proc.ts";
import { compactExtents, datasetWritten, freeBytes, poolAvailable } from "./accounting.ts";
import type { SimContext } from "./context.ts";
import { receivedCrypt } from "./crypt.ts";
import { addDataset, autoMounts } from "./datasets.ts";
import { parseOptions, parseProps, usageError, ZfsError } from "./errors.ts";
import { nicebytes } from "./format.ts";
import { keyOf, tokenOf } from "./props.ts";
import {
  type InFlightReceive,
  newGuid,
  nextTxg,
  nowSeconds,
  type PartialReceive,
  parentOf,
  poolOf,
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
import { DEFAULT_ZFS_VERSION, versionOf, type ZfsVersion } from "./version.ts";

/** An in-flight receive into an existing dataset works in its hidden `%recv` clone. */
function inClone(ds: SimDataset): boolean {
  return !!ds.receiving && !ds.receiving.newfs && !ds.partial?.newfs;
}

function abort(ctx: SimContext, name: string): number {
  return withState(ctx.stateDir, (state) => {
    const ds = state.datasets[name];
    if (!ds) throw usageError("receive", `cannot open '${name}': dataset does not exist`);
    // zfs destroys the `%recv` clone if there is one, else the inconsistent dataset itself
    if (ds.receiving && inClone(ds))
      throw new ZfsError(`cannot destroy '${name}/%recv': dataset is busy`);
    if (!ds.partial)
      throw new ZfsError(`'${name}' does not have any resumable receive state to abort`);
    if (ds.receiving) throw new ZfsError(`cannot destroy '${name}': dataset is busy`);
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

/** What checking one snapshot of the stream against the target found. */
type Check =
  | { ok: true }
  /** the target has this snapshot already (same guid): zfs consumes it and goes on */
  /** the target has this snapshot; `version`: the release answering (how it skips it) */
  | { ok: false; existing: true; version: ZfsVersion }
  /** the receive fails: the whole message; `kernel`: found after `-v`'s "receiving …" line */
  | { ok: false; existing: false; message: string; kernel: boolean };

const OK: Check = { ok: true };

/**
 * Checks one snapshot of the stream against the target, in zfs's order: libzfs's checks
 * first, then the kernel's (an in-flight `%recv` clone or resume state, then the snapshot
 * name, then the incremental source, then changes since it).
 */
function check(
  state: SimState,
  header: StreamHeader,
  part: StreamSnapshot,
  name: string,
  fullName: string,
  flags: Set<string>,
  prefix: string,
): Check {
  const ds = state.datasets[name];
  const fail = (message: string, kernel = false): Check => ({
    ok: false,
    existing: false,
    message,
    kernel,
  });
  const busy = (ds: SimDataset): Check =>
    fail(
      ds.partial
        ? `${prefix}: destination ${name} contains partially-complete state from "zfs receive -s".`
        : `${prefix}: dataset is busy`,
      true,
    );
  if (header.resume) {
    if (!ds?.partial)
      return fail(`${prefix}: destination '${name}' does not have any resumable receive state`);
    // the interrupted receive is still running: the dataset is owned by it
    if (ds.receiving) return busy(ds);
    if (ds.partial.toguid !== part.guid || ds.partial.received !== header.resumeOffset)
      return fail(
        `${prefix}: destination '${name}' has resumable state that does not match this stream`,
      );
    return OK;
  }
  if (part.fromguid === null) {
    if (ds) {
      if (!flags.has("F"))
        return fail(`${prefix}: destination '${name}' exists\nmust specify -F to overwrite it`);
      const snap = ds.snapshots[0];
      if (snap)
        return fail(
          `${prefix}: destination has snapshots (eg. ${name}@${snap.name})\nmust destroy them to overwrite it`,
        );
      if (ds.crypt || header.raw)
        return fail(
          `${prefix}: zfs receive -F cannot be used to destroy an encrypted filesystem or overwrite an unencrypted one with an encrypted one`,
        );
      if (ds.partial || ds.receiving) return busy(ds);
    }
    if (!name.includes("/"))
      return fail(`${prefix}: destination '${name}' exists\nmust specify -F to overwrite it`);
    return OK;
  }
  if (!ds) return fail(`${prefix}: destination '${name}' does not exist`);
  if (header.raw && !ds.crypt)
    return fail(`${prefix}: cannot perform raw receive on top of existing unencrypted dataset`);
  if (ds.partial || inClone(ds)) return busy(ds);
  // a decrypted stream is written with the target's key
  if (!header.raw && ds.crypt && !keyOf(state, ds)?.loaded)
    return fail(`${prefix}: inherited key must be loaded`, true);
  const short = fullName.slice(fullName.indexOf("@") + 1);
  const same = ds.snapshots.find((s) => s.name === short);
  if (same) {
    if (same.guid === part.guid) return { ok: false, existing: true, version: versionOf(state) };
    return fail(`cannot restore to ${fullName}: destination already exists`, true);
  }
  if (!ds.snapshots.some((s) => s.guid === part.fromguid))
    return fail(
      `${prefix}: most recent snapshot of ${name} does not\nmatch incremental source`,
      true,
    );
  if (!flags.has("F") && datasetWritten(ds) > 0)
    return fail(
      `${prefix}: destination ${name} has been modified\nsince most recent snapshot`,
      true,
    );
  return OK;
}

/** Applies one completed snapshot of the stream to the target. */
function applySnapshot(
  state: SimState,
  header: StreamHeader,
  part: StreamSnapshot,
  name: string,
  snapName: string,
  options: { force: boolean; mount: boolean; creation: number; claim: InFlightReceive },
): void {
  let ds: SimDataset | undefined = state.datasets[name];
  if (part.fromguid === null && ds && !options.claim.newfs && !ds.partial) {
    // -F over an existing dataset without snapshots: it is replaced
    delete state.datasets[name];
    ds = addDataset(state, name, {
      type: header.type,
      volsize: header.volsize,
      compressratio: header.compressratio,
      mounted: false,
      creation: options.creation,
      ...receivedCrypt(state, name, state.datasets[parentOf(name) ?? ""], header.raw, ""),
    });
  }
  if (!ds) throw new ZfsError(`destination '${name}' does not exist`);
  const wasNew = options.claim.newfs || (ds.partial?.newfs ?? part.fromguid === null);
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
  ds.receiving = null;
  // a raw-received dataset has no key loaded: nothing to mount
  if (
    wasNew &&
    options.mount &&
    ds.type === "filesystem" &&
    autoMounts(ds.props) &&
    (!ds.crypt || keyOf(state, ds)?.loaded)
  )
    ds.mounted = true;
  compactExtents(ds);
}

/** The receive's claim on `name`, or an error if something took it away (it never should). */
function claimed(state: SimState, name: string, claim: InFlightReceive): SimDataset {
  const ds = state.datasets[name];
  if (!ds || ds.receiving?.id !== claim.id)
    throw new ZfsError(`sim: the receive into '${name}' lost its claim on the dataset`);
  return ds;
}

/**
 * Claims the target for one snapshot of the stream after checking it, in one step under the
 * state lock: a full stream into a new name creates the dataset at once (as the kernel does),
 * a resumable receive shows its token from the start (and keeps a resumed one's), and a
 * second receive into the same target meets the first one's state.
 */
function begin(
  ctx: SimContext,
  header: StreamHeader,
  part: StreamSnapshot,
  names: { dataset: string; snapshot: string },
  flags: Set<string>,
  props: Record<string, string>,
  prefix: string,
  claim: InFlightReceive,
  creation: number,
): { check: Check; space: number } {
  const name = names.dataset;
  return withState(ctx.stateDir, (state) => {
    const parent = parentOf(name);
    if (
      part.fromguid === null &&
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
    const found = check(state, header, part, name, names.snapshot, flags, prefix);
    const space = poolAvailable(state, poolOf(name));
    // checked before the kernel is asked: a volume's stream with -o canmount is refused whole
    if (props.canmount !== undefined && header.type === "volume")
      throw new ZfsError(`${prefix}: property 'canmount' does not apply to datasets of this type`);
    if (!found.ok || flags.has("n")) return { save: false, value: { check: found, space } };
    let ds = state.datasets[name];
    claim.newfs = !ds;
    if (!ds)
      ds = addDataset(state, name, {
        type: header.type,
        volsize: header.volsize,
        compressratio: header.compressratio,
        mounted: false,
        creation,
        ...receivedCrypt(state, name, state.datasets[parent ?? ""], header.raw, prefix),
      });
    // a partial receive shows them already, and keeps them for its resume
    Object.assign(ds.props, props);
    if (claim.resumable && !header.resume) {
      const partial: PartialReceive = {
        toguid: part.guid,
        fromguid: part.fromguid,
        toname: `${header.dataset}@${part.name}`,
        received: 0,
        streamBytes: 0,
        newfs: claim.newfs,
        flags: header.features ?? [],
      };
      ds.partial = partial;
    }
    ds.receiving = claim;
    return { save: true, value: { check: found, space } };
  });
}

/**
 * Ends a claim whose receive failed without keeping a partial: a dataset it created goes
 * away, the token it showed while in flight too; a resumed receive's partial stays.
 */
function release(ctx: SimContext, name: string, claim: InFlightReceive, resumed: boolean): void {
  withState(ctx.stateDir, (state) => {
    const ds = state.datasets[name];
    if (!ds || ds.receiving?.id !== claim.id) return { save: false, value: undefined };
    ds.receiving = null;
    if (claim.newfs) delete state.datasets[name];
    else if (!resumed) ds.partial = null;
    return { save: true, value: undefined };
  });
}

function savePartial(
  ctx: SimContext,
  header: StreamHeader,
  part: StreamSnapshot,
  name: string,
  claim: InFlightReceive,
  received: number,
  streamBytes: number,
): string | null {
  return withState(ctx.stateDir, (state) => {
    const ds = claimed(state, name, claim);
    const previous = ds.partial;
    ds.partial = {
      toguid: part.guid,
      fromguid: part.fromguid,
      toname: `${header.dataset}@${part.name}`,
      received,
      streamBytes: (previous && header.resume ? previous.streamBytes : 0) + streamBytes,
      newfs: previous?.newfs ?? claim.newfs,
      flags: header.features ?? [],
    };
    ds.receiving = null;
    return { save: true, value: tokenOf(ds) };
  });
}

/** A snapshot's part carries nothing (BEGIN and END records only in a real stream). */
function isEmpty(part: StreamSnapshot): boolean {
  return part.newBytes === 0 && part.frees.length === 0 && part.changes.length === 0;
}

function receivedLine(bytes: number, started: number): string {
  const seconds = Math.max(1, Math.round((Date.now() - started) / 1000));
  return `received ${nicebytes(bytes)} stream in ${seconds} seconds (${nicebytes(Math.floor(bytes / seconds))}/sec)\n`;
}

/** what the sim's receive sets with `-o`: canmount only (abgleich's `-o canmount=noauto`) */
function receivedProps(values: Array<[string, string]>): Record<string, string> {
  const props = parseProps("receive", values);
  for (const [prop, value] of Object.entries(props)) {
    if (prop !== "canmount")
      throw new ZfsError(`sim: zfs receive -o ${prop} is not simulated (only canmount)`);
    // only what abgleich sets, and the differential holds to real ZFS
    if (value !== "noauto")
      throw new ZfsError(`sim: zfs receive -o canmount=${value} is not simulated`);
  }
  return props;
}

export function zfsReceive(ctx: SimContext, args: string[]): number {
  const parsed = parseOptions("receive", args, "vMnsFhuAdeo:x:");
  if (parsed.operands.length === 0) throw usageError("receive", "missing snapshot argument");
  if (parsed.operands.length > 1) throw usageError("receive", "too many arguments");
  const operand = parsed.operands[0] as string;
  if (parsed.flags.has("A")) return abort(ctx, operand);
  const flags = parsed.flags;
  const props = receivedProps(parsed.values);
  const verbose = flags.has("v");
  const dry = flags.has("n");
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
  const parts = header.snapshots;
  if (parts.length === 0) throw new ZfsError("cannot receive: invalid stream (no snapshots)");
  const { dataset: name, snapName } = targetName(operand, header, flags);
  const creation = nowSeconds(ctx.env);
  const failedRead = "cannot receive: failed to read from stream";
  /** the rest of a part (payload and end record) read and dropped; false: the stream ended */
  const drop = (part: StreamSnapshot, offset = 0): boolean => {
    const want = part.newBytes - offset + RECORD_BYTES;
    return reader.skip(want) === want;
  };
  let firstPrefix = "";
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as StreamSnapshot;
    const started = Date.now();
    const offset = i === 0 ? header.resumeOffset : 0;
    const resumed = i === 0 && header.resume;
    const fullName = `${name}@${i === parts.length - 1 && snapName ? snapName : part.name}`;
    const snapShort = fullName.slice(fullName.indexOf("@") + 1);
    const what = resumed
      ? "resume stream"
      : part.fromguid === null
        ? "new filesystem stream"
        : "incremental stream";
    const prefix = `cannot receive ${what}`;
    if (i === 0) firstPrefix = prefix;
    const receiving = `${dry ? "would receive" : "receiving"} ${part.fromguid ? "incremental" : "full"} stream of ${header.dataset}@${part.name} into ${fullName}\n`;
    const claim: InFlightReceive = {
      id: newGuid(),
      pid: process.pid,
      start: processStart(process.pid),
      newfs: false,
      resumable: flags.has("s"),
    };
    const found = begin(
      ctx,
      header,
      part,
      { dataset: name, snapshot: fullName },
      flags,
      props,
      prefix,
      claim,
      creation,
    );
    let space = found.space;
    // -n reads the stream without asking the kernel: only libzfs's own checks apply
    const dryOk = dry && (found.check.ok || found.check.existing || found.check.kernel);
    if (!found.check.ok && !dryOk) {
      if (!found.check.existing) {
        if (found.check.kernel && verbose) ctx.out(receiving);
        throw new ZfsError(found.check.message);
      }
      // The target has this snapshot (same guid): the kernel refuses it (EEXIST) after
      // reading the record that follows BEGIN, then libzfs skips the rest of the substream.
      // A substream with data stays in step; an empty one (BEGIN, END) has lost its END to
      // the kernel, so the skip runs on through the next substream — or off the end.
      // 2.3 reads ahead only when BEGIN has a payload (raw and resume streams here).
      if (verbose) ctx.out(`${receiving}snap ${fullName} already exists; ignoring\n`);
      const restore = `${failedRead}\ncannot restore to ${fullName}: destination already exists`;
      if (!drop(part)) throw new ZfsError(restore);
      if (
        isEmpty(part) &&
        (header.raw || header.resume || found.check.version === DEFAULT_ZFS_VERSION)
      ) {
        if (!header.compound) {
          reader.skip(RECORD_BYTES);
          throw new ZfsError(restore);
        }
        const swallowed = parts[i + 1];
        if (!swallowed) {
          // the skip read the package's END; the next substream's BEGIN is not there
          if (verbose) ctx.out(receivedLine(0, started));
          reader.skip(RECORD_BYTES);
          throw new ZfsError(failedRead);
        }
        if (!drop(swallowed)) throw new ZfsError(restore);
        i++;
      }
      if (verbose) ctx.out(receivedLine(0, started));
      continue;
    }
    if (verbose) ctx.out(receiving);
    const partStart = reader.consumed;
    let ended = dry;
    try {
      const want = part.newBytes - offset;
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
      if (!recordOk) {
        const received = offset + Math.min(got, space);
        const keep = flags.has("s") && !dry;
        const save = () => {
          ended = true;
          return savePartial(ctx, header, part, name, claim, received, reader.consumed);
        };
        if (outOfSpace) {
          if (keep) save();
          throw new ZfsError(`${prefix}: out of space`);
        }
        if (keep) {
          const token = save();
          throw new ZfsError(
            `${prefix}: checksum mismatch or incomplete stream.\nPartially received snapshot is saved.\nA resuming stream can be generated on the sending system by running:\n    zfs send -t ${token}`,
          );
        }
        throw new ZfsError(`${prefix}: ${complete ? "checksum mismatch" : "incomplete stream"}`);
      }
      space -= got;
      if (!dry)
        withState(ctx.stateDir, (current) => {
          claimed(current, name, claim);
          applySnapshot(current, header, part, name, snapShort, {
            force: flags.has("F"),
            mount: !flags.has("u"),
            creation,
            claim,
          });
          return { save: true, value: undefined };
        });
      ended = true;
    } finally {
      if (!ended) release(ctx, name, claim, resumed);
    }
    if (verbose) ctx.out(receivedLine(reader.consumed - partStart, started));
  }
  try {
    if (!checkRecord(reader.readExact(RECORD_BYTES), STREAM_END, parts.length))
      throw new ZfsError(`${firstPrefix}: invalid stream (bad end record)`);
  } catch (error) {
    if (error instanceof StreamCut) throw new ZfsError(`${firstPrefix}: incomplete stream`);
    throw error;
  }
  return 0;
}
