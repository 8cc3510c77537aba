// Validators for ZFS names, after OpenZFS's zfs_namecheck.c (2.1).
// Each returns null when the name is valid, else a reason a user can act on.
// The configuration's JSON Schema mirrors these rules as regex patterns;
// tests/unit/names.test.ts checks that both agree.

/** ZFS_MAX_DATASET_NAME_LEN is 256 including the terminating NUL. */
export const MAX_NAME_LENGTH = 255;

/**
 * Pools are limited further: the kernel keeps room for `pool/$ORIGIN@$ORIGIN`,
 * so a pool name must be shorter than 256 - 2 - 2 * "$ORIGIN".length = 240.
 */
export const MAX_POOL_NAME_LENGTH = 239;

/** The only characters ZFS allows in a name component. */
const COMPONENT_CHAR = /^[A-Za-z0-9_.: -]$/;

/** Pool names the kernel refuses because they are vdev keywords. */
const RESERVED_POOL_NAMES = new Set(["mirror", "raidz", "draid"]);

function describeChar(char: string): string {
  const code = char.codePointAt(0) ?? 0;
  if (code < 0x20 || code === 0x7f) return `control character U+${hex4(code)}`;
  return `'${char}'`;
}

function hex4(code: number): string {
  return code.toString(16).toUpperCase().padStart(4, "0");
}

function firstInvalidChar(text: string): string | null {
  for (const char of text) {
    if (!COMPONENT_CHAR.test(char)) return char;
  }
  return null;
}

/** One component between `/` (or the part after `@`): non-empty, allowed chars, not `.` or `..`. */
function checkComponent(component: string): string | null {
  if (component === "") return "empty component (two '/' in a row, or one at either end)";
  if (component === "." || component === "..") return `component '${component}' is not allowed`;
  const bad = firstInvalidChar(component);
  if (bad !== null) {
    return `invalid character ${describeChar(bad)} (allowed: letters, digits, '_', '-', ':', '.', space)`;
  }
  return null;
}

function checkPath(name: string): string | null {
  if (name === "") return "name is empty";
  if (name.length > MAX_NAME_LENGTH) return `name is longer than ${MAX_NAME_LENGTH} characters`;
  if (name.startsWith("/")) return "leading '/'";
  if (name.endsWith("/")) return "trailing '/'";
  for (const component of name.split("/")) {
    const reason = checkComponent(component);
    if (reason !== null) return reason;
  }
  return null;
}

/** A pool name: one component that starts with a letter and is not a vdev keyword. */
export function checkPoolName(name: string): string | null {
  if (name === "") return "pool name is empty";
  if (name.includes("/")) return "a pool name cannot contain '/'";
  if (name.length > MAX_POOL_NAME_LENGTH) {
    return `pool name is longer than ${MAX_POOL_NAME_LENGTH} characters`;
  }
  const componentReason = checkComponent(name);
  if (componentReason !== null) return componentReason;
  if (!/^[A-Za-z]/.test(name)) return "a pool name must start with a letter";
  if (RESERVED_POOL_NAMES.has(name)) return `'${name}' is a reserved name`;
  return null;
}

/** A full dataset name such as `tank/data/home` (no `@` or `#`). */
export function checkDatasetName(name: string): string | null {
  const reason = checkPath(name);
  if (reason !== null) return reason;
  const pool = name.split("/")[0] ?? "";
  return checkPoolName(pool);
}

/**
 * A name relative to a root, such as a prefix (`backup/host`) or an ignored
 * subname (`home/user/CACHE`): one or more components, no pool rules.
 */
export function checkRelativeName(name: string): string | null {
  return checkPath(name);
}

/** The short name of a snapshot, the part after `@`. */
export function checkSnapshotShortName(name: string): string | null {
  if (name === "") return "snapshot name is empty";
  if (name.length > MAX_NAME_LENGTH) return `name is longer than ${MAX_NAME_LENGTH} characters`;
  return checkComponent(name);
}

/** A full snapshot name `dataset@short`; the whole must fit ZFS's length limit. */
export function checkSnapshotName(name: string): string | null {
  const at = name.indexOf("@");
  if (at < 0) return "missing '@' in snapshot name";
  const datasetReason = checkDatasetName(name.slice(0, at));
  if (datasetReason !== null) return datasetReason;
  const shortReason = checkSnapshotShortName(name.slice(at + 1));
  if (shortReason !== null) return shortReason;
  if (name.length > MAX_NAME_LENGTH) return `name is longer than ${MAX_NAME_LENGTH} characters`;
  return null;
}
