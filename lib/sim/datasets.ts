// Creating datasets and pools and changing their data: the shared building blocks of
// `zfs create`, `zfs receive`, `sim-pool`, `sim-write` and the scenario seeder.
import { BASE_FS, BASE_VOL, compactExtents, freeBytes, poolAvailable } from "./accounting.ts";
import { ZfsError } from "./errors.ts";
import {
  newGuid,
  nextTxg,
  poolOf,
  type SimCrypt,
  type SimDataset,
  type SimKey,
  type SimState,
} from "./state.ts";

// zfs_namecheck.c valid_char(): letters, digits and "-_.: " (a space is legal in ZFS names)
const NAME_COMPONENT = /^[A-Za-z0-9_.: -]+$/;

export function validDatasetName(name: string): boolean {
  return name.split("/").every((part) => NAME_COMPONENT.test(part));
}

export function validSnapshotName(name: string): boolean {
  return NAME_COMPONENT.test(name);
}

export interface CreateOptions {
  type?: "filesystem" | "volume";
  volsize?: number;
  compressratio?: number;
  mounted?: boolean;
  props?: Record<string, string>;
  creation: number;
  guid?: string;
  crypt?: SimCrypt | null;
  key?: SimKey | null;
}

/** Adds a dataset (its parent must exist) with its base extent in a new txg. */
export function addDataset(state: SimState, name: string, options: CreateOptions): SimDataset {
  const type = options.type ?? "filesystem";
  const txg = nextTxg(state, name);
  const props = { ...(options.props ?? {}) };
  const parent = name.includes("/")
    ? state.datasets[name.slice(0, name.lastIndexOf("/"))]
    : undefined;
  const mountpoint =
    type === "volume"
      ? "-"
      : (props.mountpoint ??
        (parent && parent.mountpoint !== "-" && parent.mountpoint !== "none"
          ? `${parent.mountpoint === "/" ? "" : parent.mountpoint}/${name.slice(name.lastIndexOf("/") + 1)}`
          : `/${name}`));
  const ds: SimDataset = {
    name,
    type,
    guid: options.guid ?? newGuid(),
    createtxg: txg,
    creation: options.creation,
    compressratio: options.compressratio ?? 1,
    mountpoint,
    mounted: type === "filesystem" && (options.mounted ?? true),
    volsize: options.volsize ?? 0,
    props,
    extents: [{ born: txg, died: null, bytes: type === "volume" ? BASE_VOL : BASE_FS, base: true }],
    changes: [],
    snapshots: [],
    bookmarks: [],
    partial: null,
    ...(options.crypt ? { crypt: options.crypt } : {}),
    ...(options.key ? { key: options.key } : {}),
  };
  state.datasets[name] = ds;
  return ds;
}

export function addPool(state: SimState, name: string, size: number, creation: number): SimDataset {
  if (!validDatasetName(name) || name.includes("/"))
    throw new ZfsError(`invalid pool name '${name}'`, 2);
  if (state.pools[name]) throw new ZfsError(`cannot create '${name}': pool already exists`);
  state.pools[name] = { name, size, guid: newGuid(), txg: 0, freeing: 0 };
  return addDataset(state, name, { creation });
}

/** Turns change specs ("/f", "M /d/", "- /f", "R /a -> /b") into diff entries plus parent dirs. */
export function changeEntries(specs: string[]): string[] {
  const entries: string[] = [];
  const push = (entry: string): void => {
    if (!entries.includes(entry)) entries.push(entry);
  };
  for (const spec of specs) {
    const match = /^([+\-MR])\s+(.*)$/.exec(spec);
    const kind = match ? (match[1] as string) : "+";
    const path = match ? (match[2] as string) : spec;
    if (!path.startsWith("/"))
      throw new ZfsError(`sim-write: path must start with '/': ${spec}`, 2);
    push(`${kind}\t${path}`);
    if (kind !== "M") {
      const first = kind === "R" ? (path.split(" -> ")[0] as string) : path;
      const dir = first.slice(0, first.lastIndexOf("/") + 1) || "/";
      push(`M\t${dir}`);
    }
  }
  return entries;
}

/**
 * Writes `bytes` of new data (and frees `free` bytes of old data) in one txg, recording the
 * changed paths. Writes what fits and throws the out-of-space error after that.
 */
export function writeData(
  state: SimState,
  ds: SimDataset,
  bytes: number,
  free: number,
  changes: string[],
): void {
  const txg = nextTxg(state, ds.name);
  if (free > 0) freeBytes(ds, free, txg);
  const available = poolAvailable(state, poolOf(ds.name));
  const fits = Math.min(bytes, available);
  if (fits > 0) ds.extents.push({ born: txg, died: null, bytes: fits });
  compactExtents(ds);
  if (ds.type === "filesystem")
    for (const entry of changeEntries(changes))
      if (!ds.changes.includes(entry)) ds.changes.push(entry);
  if (fits < bytes)
    throw new ZfsError(`sim-write: error writing to '${ds.name}': No space left on device`);
}

/** `canmount=noauto` and `off` keep a filesystem from being mounted by create and `mount -a` */
export const autoMounts = (props: Record<string, string>) =>
  props.canmount === undefined || props.canmount === "on";
