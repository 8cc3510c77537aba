// The simulator's send stream: a small JSON header naming what is sent, then per snapshot
// `payload` filler bytes and an end record, then a stream end record. A cut stream misses
// an end record, so the receiver notices; payload sizes follow the data written, so
// pipelines, progress and interruption behave as with real streams. I/O is synchronous
// with one preallocated buffer: bounded memory and kernel pipe speed.
import * as fs from "node:fs";
import type { SimKey } from "./state.ts";
import type { TokenFlag } from "./token.ts";

export const STREAM_MAGIC = Buffer.from("ABGLSIM1");
export const SNAPSHOT_END = Buffer.from("ABSNAPOK");
export const STREAM_END = Buffer.from("ABSTREND");
export const RECORD_BYTES = 16;
export const CHUNK = 1 << 20;

/** Data freed in a snapshot's interval, by the snapshot after whose interval it was born. */
export interface StreamFree {
  bornGuid: string | null;
  bytes: number;
}

export interface StreamSnapshot {
  /** short name */
  name: string;
  guid: string;
  creation: number;
  /** guid of the snapshot this one is relative to; null for a full stream */
  fromguid: string | null;
  /** bytes of new data this snapshot adds */
  newBytes: number;
  frees: StreamFree[];
  changes: string[];
}

export interface StreamHeader {
  version: 1;
  /** the sending dataset's full name */
  dataset: string;
  type: "filesystem" | "volume";
  compressratio: number;
  volsize: number;
  /** payload bytes already delivered before this (resumed) stream */
  resumeOffset: number;
  resume: boolean;
  /**
   * a package of substreams (`send -I`, even of one snapshot) rather than one plain stream
   * (full, -i, -t); absent in streams of older simulators
   */
  compound?: boolean;
  /** the stream's features a resume token records (send -L -e -c -w; absent: none) */
  features?: TokenFlag[];
  /** a raw stream of an encrypted dataset: its cipher and wrapped key travel with it */
  raw?: { cipher: string; key: Omit<SimKey, "loaded" | "keylocation"> };
  snapshots: StreamSnapshot[];
}

export function encodeHeader(header: StreamHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const head = Buffer.alloc(STREAM_MAGIC.length + 4);
  STREAM_MAGIC.copy(head);
  head.writeUInt32LE(json.length, STREAM_MAGIC.length);
  return Buffer.concat([head, json]);
}

export function endRecord(magic: Buffer, value: number): Buffer {
  const buf = Buffer.alloc(RECORD_BYTES);
  magic.copy(buf);
  buf.writeBigUInt64LE(BigInt(value), 8);
  return buf;
}

/** Stream bytes a snapshot's part takes: its payload plus its end record. */
export function snapshotStreamBytes(payload: number): number {
  return payload + RECORD_BYTES;
}

export class StreamCut extends Error {}

/** Blocking reads from a file descriptor that know how many bytes they consumed. */
export class FdReader {
  consumed = 0;
  private readonly scratch = Buffer.allocUnsafe(CHUNK);
  constructor(private readonly fd: number) {}

  private readSome(buf: Buffer, offset: number, length: number): number {
    for (;;) {
      try {
        const n = fs.readSync(this.fd, buf, offset, length, null);
        this.consumed += n;
        return n;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EAGAIN" || code === "EWOULDBLOCK") {
          Bun.sleepSync(1);
          continue;
        }
        if (code === "EOF") return 0;
        throw error;
      }
    }
  }

  /** Exactly `length` bytes, or a StreamCut error at end of input. */
  readExact(length: number): Buffer {
    const buf = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const n = this.readSome(buf, got, length - got);
      if (n === 0) throw new StreamCut("stream ended early");
      got += n;
    }
    return buf;
  }

  /** Skips up to `length` bytes; returns how many arrived before end of input. */
  skip(length: number, onProgress?: (skipped: number) => boolean): number {
    let done = 0;
    while (done < length) {
      const n = this.readSome(this.scratch, 0, Math.min(CHUNK, length - done));
      if (n === 0) return done;
      done += n;
      if (onProgress && !onProgress(done)) return done;
    }
    return done;
  }
}

export class BadStream extends Error {}

export function readHeader(reader: FdReader): StreamHeader {
  const head = reader.readExact(STREAM_MAGIC.length + 4);
  if (!head.subarray(0, STREAM_MAGIC.length).equals(STREAM_MAGIC))
    throw new BadStream("invalid stream (bad magic number)");
  const length = head.readUInt32LE(STREAM_MAGIC.length);
  if (length > 64 * 1024 * 1024) throw new BadStream("invalid stream (header too large)");
  const header = JSON.parse(reader.readExact(length).toString("utf8")) as StreamHeader;
  if (header.version !== 1 || !Array.isArray(header.snapshots))
    throw new BadStream("invalid stream (unsupported version)");
  return header;
}

export function checkRecord(buf: Buffer, magic: Buffer, value: number): boolean {
  return buf.subarray(0, 8).equals(magic) && buf.readBigUInt64LE(8) === BigInt(value);
}

/**
 * Writes all of `buf` to `fd`: a partial write (a pipe takes at most its free space, 64 KiB
 * when empty) continues with the rest, and a full non-blocking pipe (EAGAIN; Bun makes its
 * stdio pipes non-blocking) is waited on. EPIPE and other errors propagate.
 */
export function writeAll(fd: number, buf: Uint8Array, length = buf.length): void {
  let done = 0;
  let wait = 1;
  while (done < length) {
    try {
      done += fs.writeSync(fd, buf, done, length - done);
      wait = 1;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EAGAIN" || code === "EWOULDBLOCK") {
        // a slow reader: back off up to 8 ms between tries rather than spin
        Bun.sleepSync(wait);
        wait = Math.min(wait * 2, 8);
        continue;
      }
      if (code === "EINTR") continue;
      throw error;
    }
  }
}
