// Native encryption: `zfs create -o encryption=… -o keyformat=… -o keylocation=…`, the key
// material read from a file or standard input, and `zfs load-key`/`unload-key`. Nothing is
// enciphered: a key is kept as a salted fingerprint, enough to tell a right key from a wrong
// one and to carry it in a raw stream (the wrapped key travels with the data).
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import type { SimContext } from "./context.ts";
import { parseOptions, usageError, ZfsError } from "./errors.ts";
import { keyOf } from "./props.ts";
import type { SimDataset, SimKey, SimState } from "./state.ts";
import { withState } from "./state.ts";
import type { StreamHeader } from "./stream.ts";
import { descendantsOf } from "./tree.ts";

export const CIPHERS = [
  "aes-128-ccm",
  "aes-192-ccm",
  "aes-256-ccm",
  "aes-128-gcm",
  "aes-192-gcm",
  "aes-256-gcm",
];
/** what `encryption=on` means in OpenZFS 2.x */
export const DEFAULT_CIPHER = "aes-256-gcm";
/** the default pbkdf2iters of a passphrase key */
export const DEFAULT_PBKDF2_ITERS = 350000;
/** load-key and unload-key fail with exit code 255 (-1 from zfs_do_*) */
const KEY_ERROR = 255;
const KEYFORMATS = ["passphrase", "hex", "raw"] as const;

function fingerprint(salt: string, material: Buffer): string {
  return createHash("sha256").update(salt).update(material).digest("hex");
}

/** Reads the key material from `keylocation` (file:// or prompt = standard input). */
function readKeyMaterial(
  ctx: SimContext,
  keyformat: SimKey["keyformat"],
  keylocation: string,
): Buffer {
  let raw: Buffer;
  if (keylocation === "prompt") {
    try {
      raw = fs.readFileSync(ctx.stdinFd);
    } catch {
      raw = Buffer.alloc(0);
    }
  } else {
    const path = keylocation.slice("file://".length);
    try {
      raw = fs.readFileSync(path);
    } catch {
      throw new ZfsError("Failed to open key material file: No such file or directory");
    }
  }
  if (keyformat === "raw") {
    if (raw.length < 32) throw new ZfsError("Raw key too short (expected 32).");
    if (raw.length > 32) throw new ZfsError("Raw key too long (expected 32).");
    return raw;
  }
  // passphrase and hex keys are one line
  const nl = raw.indexOf(10);
  const line = nl >= 0 ? raw.subarray(0, nl) : raw;
  if (keyformat === "hex") {
    if (line.length !== 64 || !/^[0-9a-fA-F]+$/.test(line.toString()))
      throw new ZfsError("Hex key too short (expected 64).");
    return Buffer.from(line.toString().toLowerCase(), "hex");
  }
  if (line.length < 8) throw new ZfsError("Passphrase too short (min 8).");
  if (line.length > 512) throw new ZfsError("Passphrase too long (max 512).");
  return line;
}

/**
 * The encryption of a new dataset from its `-o` properties and its parent: a new encryption
 * root (with its key read now) or the parent's encryption inherited. Removes the crypt
 * properties from `props`.
 */
export function createCrypt(
  ctx: SimContext,
  state: SimState,
  name: string,
  parent: SimDataset | undefined,
  props: Record<string, string>,
): { crypt: SimDataset["crypt"]; key: SimKey | null } {
  const what = `cannot create '${name}'`;
  const encryption = props.encryption;
  const keyformat = props.keyformat;
  const keylocation = props.keylocation;
  const pbkdf2iters = props.pbkdf2iters;
  for (const p of ["encryption", "keyformat", "keylocation", "pbkdf2iters"]) delete props[p];
  const parentCrypt = parent?.crypt ?? null;
  if (encryption !== undefined && encryption !== "on" && encryption !== "off")
    if (!CIPHERS.includes(encryption))
      throw new ZfsError(
        `${what}: 'encryption' must be one of 'on | off | ${CIPHERS.join(" | ")}'`,
        1,
      );
  if (encryption === undefined && !parentCrypt && (keyformat ?? keylocation) !== undefined)
    throw new ZfsError(`${what}: Encryption must be turned on to set encryption properties.`);
  if (encryption === "off") {
    // 2.1 allows a plain child below an encrypted parent when asked for explicitly
    if (keyformat !== undefined || keylocation !== undefined)
      throw new ZfsError(`${what}: Encryption must be turned on to set encryption properties.`);
    return { crypt: null, key: null };
  }
  const newRoot =
    keyformat !== undefined ||
    keylocation !== undefined ||
    (encryption !== undefined && !parentCrypt);
  if (!newRoot) {
    if (!parentCrypt) return { crypt: null, key: null };
    const parentKey = parent ? keyOf(state, parent) : null;
    if (!parentKey?.loaded)
      throw new ZfsError(`${what}: encryption root's key is not loaded or provided`);
    return {
      crypt: {
        cipher: encryption === undefined || encryption === "on" ? parentCrypt.cipher : encryption,
        root: parentCrypt.root,
      },
      key: null,
    };
  }
  if (keyformat === undefined)
    throw new ZfsError(`${what}: Keyformat required for new encryption root.`);
  if (!(KEYFORMATS as readonly string[]).includes(keyformat))
    throw new ZfsError(`${what}: 'keyformat' must be one of 'none | raw | hex | passphrase'`);
  const location = keylocation ?? "prompt";
  if (location !== "prompt" && !location.startsWith("file://"))
    throw new ZfsError(`${what}: invalid keylocation '${location}'`);
  const format = keyformat as SimKey["keyformat"];
  let material: Buffer;
  try {
    material = readKeyMaterial(ctx, format, location);
  } catch (error) {
    if (error instanceof ZfsError) throw new ZfsError(`${what}: ${error.message}`);
    throw error;
  }
  const salt = randomBytes(8).toString("hex");
  return {
    crypt: {
      cipher: encryption === undefined || encryption === "on" ? DEFAULT_CIPHER : encryption,
      root: name,
    },
    key: {
      keyformat: format,
      keylocation: location,
      salt,
      fingerprint: fingerprint(salt, material),
      pbkdf2iters: format === "passphrase" ? Number(pbkdf2iters ?? DEFAULT_PBKDF2_ITERS) : 0,
      loaded: true,
    },
  };
}

/** `zfs load-key [-a | -r] [-n] [-L keylocation] DATASET…` */
export function zfsLoadKey(ctx: SimContext, args: string[]): number {
  const parsed = parseOptions("load-key", args, "anrL:");
  const all = parsed.flags.has("a");
  if (!all && parsed.operands.length === 0)
    throw usageError("load-key", "missing dataset argument");
  const location = parsed.values.find(([l]) => l === "L")?.[1];
  return withState(ctx.stateDir, (state) => {
    const roots: SimDataset[] = [];
    if (all) roots.push(...Object.values(state.datasets).filter((d) => d.key));
    for (const name of parsed.operands) {
      const ds = state.datasets[name];
      if (!ds) throw new ZfsError(`cannot open '${name}': dataset does not exist`);
      const scope = parsed.flags.has("r") ? [ds, ...descendantsOf(state, name)] : [ds];
      if (!parsed.flags.has("r") && !ds.key) {
        throw new ZfsError(
          ds.crypt
            ? `Key load error: Keys must be loaded for encryption root of '${name}' (${ds.crypt.root}).`
            : `Key load error: '${name}' is not encrypted.`,
          KEY_ERROR,
        );
      }
      roots.push(...scope.filter((d) => d.key));
    }
    let loaded = 0;
    let failed = false;
    for (const ds of roots) {
      const key = ds.key as SimKey;
      const what = `Key load error: `;
      if (key.loaded && !parsed.flags.has("n")) {
        ctx.err(`Key load error: Key already loaded for '${ds.name}'.\n`);
        failed = true;
        continue;
      }
      const keylocation = location ?? key.keylocation;
      let material: Buffer;
      try {
        material = readKeyMaterial(ctx, key.keyformat, keylocation);
      } catch (error) {
        if (!(error instanceof ZfsError)) throw error;
        ctx.err(`${what}${error.message.trim()}\n`);
        failed = true;
        continue;
      }
      if (fingerprint(key.salt, material) !== key.fingerprint) {
        ctx.err(`Key load error: Incorrect key provided for '${ds.name}'.\n`);
        failed = true;
        continue;
      }
      if (!parsed.flags.has("n")) key.loaded = true;
      loaded++;
    }
    if (all || parsed.flags.has("r"))
      ctx.out(
        `${loaded} / ${roots.length} key(s) successfully ${parsed.flags.has("n") ? "verified" : "loaded"}\n`,
      );
    return { save: loaded > 0 && !parsed.flags.has("n"), value: failed ? KEY_ERROR : 0 };
  });
}

/** `zfs unload-key [-a | -r] DATASET…` */
export function zfsUnloadKey(ctx: SimContext, args: string[]): number {
  const parsed = parseOptions("unload-key", args, "ar");
  const all = parsed.flags.has("a");
  if (!all && parsed.operands.length === 0)
    throw usageError("unload-key", "missing dataset argument");
  return withState(ctx.stateDir, (state) => {
    const roots: SimDataset[] = [];
    if (all) roots.push(...Object.values(state.datasets).filter((d) => d.key));
    for (const name of parsed.operands) {
      const ds = state.datasets[name];
      if (!ds) throw new ZfsError(`cannot open '${name}': dataset does not exist`);
      if (!parsed.flags.has("r") && !ds.key)
        throw new ZfsError(
          ds.crypt
            ? `Key unload error: Keys must be unloaded for encryption root of '${name}' (${ds.crypt.root}).`
            : `Key unload error: '${name}' is not encrypted.`,
          KEY_ERROR,
        );
      const scope = parsed.flags.has("r") ? [ds, ...descendantsOf(state, name)] : [ds];
      roots.push(...scope.filter((d) => d.key));
    }
    let failed = false;
    let unloaded = 0;
    for (const ds of roots) {
      const key = ds.key as SimKey;
      if (!key.loaded) {
        ctx.err(`Key unload error: Key already unloaded for '${ds.name}'.\n`);
        failed = true;
        continue;
      }
      const users = [ds, ...descendantsOf(state, ds.name)].filter((d) => d.crypt?.root === ds.name);
      if (users.some((d) => d.mounted)) {
        ctx.err(`Key unload error: '${ds.name}' is busy.\n`);
        failed = true;
        continue;
      }
      key.loaded = false;
      unloaded++;
    }
    if (all || parsed.flags.has("r"))
      ctx.out(`${unloaded} / ${roots.length} key(s) successfully unloaded\n`);
    return { save: unloaded > 0, value: failed ? KEY_ERROR : 0 };
  });
}

/**
 * The encryption a full stream's new dataset gets: a raw stream's own (an encryption root
 * whose key is not loaded: the wrapped key came along, the wrapping key did not), else the
 * parent's inherited. Throws the kernel's refusal when the inherited key is not loaded.
 */
export function receivedCrypt(
  state: SimState,
  name: string,
  parent: SimDataset | undefined,
  raw: StreamHeader["raw"],
  prefix: string,
): { crypt: SimDataset["crypt"]; key: SimKey | null } {
  if (raw)
    return {
      crypt: { cipher: raw.cipher, root: name, rawReceived: true },
      key: { ...raw.key, keylocation: "prompt", loaded: false },
    };
  if (!parent?.crypt) return { crypt: null, key: null };
  if (!keyOf(state, parent)?.loaded) throw new ZfsError(`${prefix}: inherited key must be loaded`);
  return { crypt: { ...parent.crypt }, key: null };
}
