// The OpenZFS version the simulator answers as: 2.1.11 (the default) or 2.3.2. It is part of
// the state (set by `sim-version` or a scenario's `zfsVersion`), so every command on one
// state — however it is started — behaves as the same release.
import type { SimContext } from "./context.ts";
import { ZfsError } from "./errors.ts";
import { loadState, type SimState, withState } from "./state.ts";

/** the releases the simulator models, each as the Debian package `zfs version` names */
export const ZFS_VERSIONS = {
  "2.1.11": "2.1.11-1+deb12u1",
  "2.3.2": "2.3.2-2~bpo12+2",
} as const;

export type ZfsVersion = keyof typeof ZFS_VERSIONS;

export const DEFAULT_ZFS_VERSION: ZfsVersion = "2.1.11";

/** "2.3", "2.3.2" or "zfs-2.3.2-…" → the modelled release of that series; null if none */
export function parseZfsVersion(text: string): ZfsVersion | null {
  const match = /^(?:zfs-)?(\d+)\.(\d+)(?:\.(\d+))?/.exec(text.trim());
  if (!match) return null;
  const found = (Object.keys(ZFS_VERSIONS) as ZfsVersion[]).find((v) => {
    const [major, minor, patch] = v.split(".");
    return (
      major === match[1] && minor === match[2] && (match[3] === undefined || patch === match[3])
    );
  });
  return found ?? null;
}

export function versionOf(state: SimState): ZfsVersion {
  return state.zfsVersion ?? DEFAULT_ZFS_VERSION;
}

/** 2.3 and later (the behaviour that changed since 2.1) */
export function isZfs23(state: SimState): boolean {
  return versionOf(state) !== "2.1.11";
}

/**
 * The version of the state in stateDir, read without the lock (the file is replaced
 * atomically): for answers given before or without a state (usage texts).
 */
export function versionIn(stateDir: string): ZfsVersion {
  try {
    return versionOf(loadState(stateDir));
  } catch {
    return DEFAULT_ZFS_VERSION;
  }
}

/**
 * `sim-version [VERSION]`: prints the release the simulator answers as, or makes it VERSION
 * ("2.1", "2.1.11", "2.3", "2.3.2").
 */
export function simVersion(ctx: SimContext, args: string[]): number {
  const [text, extra] = args;
  if (extra !== undefined) throw new ZfsError("usage: sim-version [2.1|2.3]", 2);
  if (text === undefined) {
    ctx.out(`${versionIn(ctx.stateDir)}\n`);
    return 0;
  }
  const version = parseZfsVersion(text);
  if (!version)
    throw new ZfsError(
      `sim-version: not a modelled OpenZFS version: '${text}' (one of ${Object.keys(ZFS_VERSIONS).join(", ")})`,
      2,
    );
  withState(ctx.stateDir, (state) => {
    // 2.1.11 is the default: its states stay as they were
    if (version === DEFAULT_ZFS_VERSION) delete state.zfsVersion;
    else state.zfsVersion = version;
    return { save: true, value: undefined };
  });
  return 0;
}
