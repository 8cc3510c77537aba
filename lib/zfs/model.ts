// The in-memory model of one side's ZFS tree, as read by one `zfs list`.
// Sizes are bytes as JS numbers (exact up to 8 PiB); GUIDs exceed 2^53 and stay strings.

export type Side = "source" | "target";
export type DatasetType = "filesystem" | "volume";

export interface Snapshot {
  /** short name, after the `@` */
  name: string;
  guid: string;
  createtxg: number;
  /** seconds since the epoch; a received snapshot keeps the sender's */
  creation: number;
  used: number;
  referenced: number;
  /** bytes written between the previous snapshot and this one */
  written: number;
  compressratio: number;
  /** user holds; a held snapshot cannot be destroyed */
  userrefs: number;
  /** the tags of those holds (`zfs holds`), read for held snapshots only */
  holds?: string[];
}

/** a bookmark (`ds#name`): a snapshot's place in history, kept after the snapshot is gone */
export interface Bookmark {
  /** short name, after the `#` */
  name: string;
  guid: string;
  createtxg: number;
  creation: number;
}

export interface Dataset {
  /** full name, e.g. `tank/data/home` */
  name: string;
  /** name relative to the side's root: "" for the root itself */
  subname: string;
  type: DatasetType;
  guid: string;
  createtxg: number;
  creation: number;
  used: number;
  referenced: number;
  /** bytes written since the newest snapshot */
  written: number;
  compressratio: number;
  mountpoint: string;
  /** null for volumes */
  mounted: boolean | null;
  /** token of a partial `zfs receive -s`, null when none */
  resumeToken: string | null;
  /** `off`, or the cipher (`aes-256-gcm`, …) of an encrypted dataset */
  encryption: string;
  /** null when not encrypted; `unavailable` on a target that received raw and has no key */
  keystatus: "available" | "unavailable" | null;
  /** in createtxg order, oldest first */
  bookmarks: Bookmark[];
  /** in createtxg order, oldest first */
  snapshots: Snapshot[];
}

export interface Inventory {
  side: Side;
  /** `zpool` or `zpool/prefix` */
  root: string;
  /** parents before children, in `zfs list` order; empty when the root does not exist */
  datasets: Dataset[];
}

/** full dataset name for a subname under a root */
export function joinSubname(root: string, subname: string): string {
  return subname === "" ? root : `${root}/${subname}`;
}

export function newestSnapshot(dataset: Dataset): Snapshot | undefined {
  return dataset.snapshots[dataset.snapshots.length - 1];
}
