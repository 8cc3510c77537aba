// Resume tokens in the real OpenZFS format:
//   1-<fletcher4 word 0 of the compressed bytes, hex>-<packed length, hex>-<zlib hex>
// where the compressed payload is a native little-endian packed nvlist (XDR is not used
// for tokens). Only uint64 and string pairs occur in tokens, so only those are encoded.
import { deflateSync, inflateSync } from "node:zlib";

export interface ResumeToken {
  fromguid?: bigint;
  object: bigint;
  offset: bigint;
  bytes: bigint;
  toguid: bigint;
  toname: string;
  /** boolean pairs the receive recorded from the stream's features, in the kernel's order */
  flags?: TokenFlag[];
}

/** the stream features a token records, in dsl_dataset.c's order (send -L, -e, -c, -w) */
export const TOKEN_FLAGS = ["largeblockok", "embedok", "compressok", "rawok"] as const;
export type TokenFlag = (typeof TOKEN_FLAGS)[number];

const TYPE_BOOLEAN = 1;
const TYPE_UINT64 = 8;
const TYPE_STRING = 9;
const align8 = (n: number): number => (n + 7) & ~7;

/** true: a DATA_TYPE_BOOLEAN pair (a name without a value) */
type NvValue = bigint | string | true;

/** Packs pairs as nvlist_pack(NV_ENCODE_NATIVE) does on little-endian hosts. */
export function packNvlist(pairs: Array<[string, NvValue]>): Buffer {
  const parts: Buffer[] = [Buffer.from([0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0])];
  for (const [name, value] of pairs) {
    const nameBytes = Buffer.from(`${name}\0`);
    const valueBytes =
      value === true
        ? Buffer.alloc(0)
        : typeof value === "bigint"
          ? (() => {
              const b = Buffer.alloc(8);
              b.writeBigUInt64LE(BigInt.asUintN(64, value));
              return b;
            })()
          : Buffer.from(`${value}\0`);
    const size = 16 + align8(nameBytes.length) + align8(valueBytes.length);
    const pair = Buffer.alloc(size);
    pair.writeInt32LE(size, 0);
    pair.writeInt16LE(nameBytes.length, 4);
    pair.writeInt32LE(value === true ? 0 : 1, 8);
    pair.writeInt32LE(
      value === true ? TYPE_BOOLEAN : typeof value === "bigint" ? TYPE_UINT64 : TYPE_STRING,
      12,
    );
    nameBytes.copy(pair, 16);
    valueBytes.copy(pair, 16 + align8(nameBytes.length));
    parts.push(pair);
  }
  parts.push(Buffer.alloc(4));
  return Buffer.concat(parts);
}

export function unpackNvlist(buf: Buffer): Array<[string, NvValue]> {
  if (buf.length < 12 || buf[0] !== 0 || buf[1] !== 1) throw new Error("not a native nvlist");
  const pairs: Array<[string, NvValue]> = [];
  let pos = 12;
  while (pos + 4 <= buf.length) {
    const size = buf.readInt32LE(pos);
    if (size === 0) return pairs;
    if (size < 16 || pos + size > buf.length) throw new Error("bad nvpair size");
    const nameLen = buf.readInt16LE(pos + 4);
    const type = buf.readInt32LE(pos + 12);
    const name = buf.toString("utf8", pos + 16, pos + 16 + nameLen - 1);
    const valuePos = pos + 16 + align8(nameLen);
    if (type === TYPE_BOOLEAN) pairs.push([name, true]);
    else if (type === TYPE_UINT64) pairs.push([name, buf.readBigUInt64LE(valuePos)]);
    else if (type === TYPE_STRING) {
      const end = buf.indexOf(0, valuePos);
      pairs.push([name, buf.toString("utf8", valuePos, end)]);
    } else throw new Error(`unsupported nvpair type ${type}`);
    pos += size;
  }
  throw new Error("nvlist without terminator");
}

/** fletcher_4_native over whole 32-bit little-endian words; returns word 0 (the plain sum). */
export function fletcher4Word0(buf: Buffer): bigint {
  let sum = 0n;
  const words = Math.floor(buf.length / 4);
  for (let i = 0; i < words; i++) sum += BigInt(buf.readUInt32LE(i * 4));
  return BigInt.asUintN(64, sum);
}

export function encodeToken(token: ResumeToken): string {
  const pairs: Array<[string, NvValue]> = [];
  if (token.fromguid !== undefined) pairs.push(["fromguid", token.fromguid]);
  pairs.push(
    ["object", token.object],
    ["offset", token.offset],
    ["bytes", token.bytes],
    ["toguid", token.toguid],
    ["toname", token.toname],
  );
  for (const flag of TOKEN_FLAGS) if (token.flags?.includes(flag)) pairs.push([flag, true]);
  const packed = packNvlist(pairs);
  const compressed = deflateSync(packed, { level: 6 });
  return `1-${fletcher4Word0(compressed).toString(16)}-${packed.length.toString(16)}-${compressed.toString("hex")}`;
}

export class TokenError extends Error {}

/** Decodes a token; errors carry libzfs's wording ("resume token is corrupt (...)"). */
export function decodeToken(text: string): ResumeToken {
  const match = /^(\d+)-([0-9a-fA-F]+)-([0-9a-fA-F]+)-([0-9a-fA-F]*)$/.exec(text);
  if (!match) throw new TokenError("resume token is corrupt (invalid format)");
  const [, version, checksum, packedLen, hex] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
  ];
  if (version !== "1") throw new TokenError(`resume token is corrupt (invalid version ${version})`);
  if (hex.length % 2 !== 0)
    throw new TokenError("resume token is corrupt (payload is not hex-encoded)");
  const compressed = Buffer.from(hex, "hex");
  if (fletcher4Word0(compressed) !== BigInt(`0x${checksum}`))
    throw new TokenError("resume token is corrupt (incorrect checksum)");
  let packed: Buffer;
  try {
    packed = inflateSync(compressed);
  } catch {
    throw new TokenError("resume token is corrupt (decompression failed)");
  }
  if (packed.length !== Number.parseInt(packedLen, 16))
    throw new TokenError("resume token is corrupt (decompression failed)");
  let pairs: Array<[string, NvValue]>;
  try {
    pairs = unpackNvlist(packed);
  } catch {
    throw new TokenError("resume token is corrupt (nvlist_unpack failed)");
  }
  const map = new Map(pairs);
  const num = (key: string): bigint | undefined => {
    const v = map.get(key);
    return typeof v === "bigint" ? v : undefined;
  };
  const toname = map.get("toname");
  const object = num("object");
  const offset = num("offset");
  const bytes = num("bytes");
  const toguid = num("toguid");
  if (
    typeof toname !== "string" ||
    object === undefined ||
    offset === undefined ||
    bytes === undefined ||
    toguid === undefined
  )
    throw new TokenError("resume token is corrupt");
  const fromguid = num("fromguid");
  const flags = TOKEN_FLAGS.filter((flag) => map.get(flag) === true);
  return {
    ...(fromguid !== undefined ? { fromguid } : {}),
    object,
    offset,
    bytes,
    toguid,
    toname,
    ...(flags.length > 0 ? { flags } : {}),
  };
}

/** The "resume token contents:" block of `zfs send -nv -t` (nvlist_print). */
export function describeToken(token: ResumeToken): string {
  const lines = ["resume token contents:", "nvlist version: 0"];
  if (token.fromguid !== undefined) lines.push(`\tfromguid = 0x${token.fromguid.toString(16)}`);
  lines.push(
    `\tobject = 0x${token.object.toString(16)}`,
    `\toffset = 0x${token.offset.toString(16)}`,
    `\tbytes = 0x${token.bytes.toString(16)}`,
    `\ttoguid = 0x${token.toguid.toString(16)}`,
    `\ttoname = ${token.toname}`,
  );
  for (const flag of token.flags ?? []) lines.push(`\t${flag} = 1`);
  return `${lines.join("\n")}\n`;
}
