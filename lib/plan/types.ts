// What the pure planners produce and the runner executes. Every changing step is an Action;
// a Plan is listed in full before anything runs.

import type { Side } from "../zfs/model.ts";

/** one `zfs snapshot` call per pool: all of its snapshots are taken atomically */
export interface SnapshotAction {
  kind: "snapshot";
  pool: string;
  snapshots: { dataset: string; subname: string; name: string; written: number }[];
}

/**
 * One transfer: `zfs send` on the source piped into `zfs receive -s -u` on the target.
 * - full: `zfs send SRC@to`
 * - incremental: `zfs send -I SRC@from SRC@to` (every intermediate snapshot too)
 * - resume: `zfs send -t TOKEN`
 */
export interface SendAction {
  kind: "send";
  subname: string;
  sourceDataset: string;
  targetDataset: string;
  mode: "full" | "incremental" | "resume";
  /** short snapshot name; null for full and resume */
  from: string | null;
  /** short snapshot name the target will hold afterwards */
  to: string;
  /** snapshot names that arrive on the target with this stream, oldest first */
  snapshots: string[];
  /** for mode "resume" */
  token: string | null;
  /** `zfs send -w`: the source is encrypted, so its blocks travel and land as ciphertext */
  raw: boolean;
  /** the incremental's base `from` is the source's bookmark `ds#from` (its snapshot is gone) */
  fromBookmark: boolean;
  /**
   * `zfs receive -o canmount=noauto`: a new filesystem is received so that `zfs mount -a` (at
   * boot) leaves it unmounted, where a write would make the next backup refuse it. True for a
   * filesystem's first receive (a full send, or the resume of a cut one); false for volumes
   * (they refuse the property) and incrementals (it would undo a `zfs set canmount` made since)
   */
  keepUnmounted: boolean;
}

/** `zfs receive -A`: a partial receive whose source snapshot is gone */
export interface AbortResumeAction {
  kind: "abort-resume";
  subname: string;
  targetDataset: string;
  reason: string;
}

/** one `zfs destroy DS@a,b,c` */
export interface DestroyAction {
  kind: "destroy";
  side: Side;
  subname: string;
  dataset: string;
  /** short names, oldest first */
  snapshots: string[];
  /** bytes the snapshots use, as listed (a lower bound of what is freed) */
  used: number;
  /** of `snapshots`, those held only by abgleich itself: its hold is released first */
  release?: string[];
}

/** where one dataset's incremental chain rests after a backup, and how it is protected */
export interface ChainEntry {
  subname: string;
  sourceDataset: string;
  targetDataset: string;
  /** short name of the newest snapshot both sides share once the stage's sends ran */
  base: string;
  /** put abgleich's hold on the base: on the source (tag naming the target) and the target */
  holdSource: boolean;
  holdTarget: boolean;
  /** bookmark the base on the source (`ds#base`), so a later incremental survives its loss */
  bookmark: boolean;
  /** short names whose abgleich hold is released: older bases (other holds stay) */
  releaseSource: string[];
  releaseTarget: string[];
  /** abgleich's own older source bookmarks, no longer a base of this chain */
  destroyBookmarks: string[];
}

/**
 * The last action of a backup: hold each chain's base on both sides, bookmark it, release
 * abgleich's holds on older bases. Batched per host (a few commands, not a few per dataset);
 * entries of datasets whose sends failed are dropped before it runs.
 */
export interface ChainAction {
  kind: "chain";
  entries: ChainEntry[];
}

export type Action = SnapshotAction | SendAction | AbortResumeAction | DestroyAction | ChainAction;

export type ConflictKind =
  /** same snapshot name on both sides with different guids */
  | "guid-mismatch"
  /** the target dataset exists but shares no snapshot with the source */
  | "no-common"
  /** the target has snapshots after the newest common one */
  | "target-ahead"
  /** the target's data changed since the newest common snapshot (written > 0) */
  | "target-modified"
  /** the target is a volume and the source a filesystem, or the reverse */
  | "type-mismatch";

/** a dataset skipped because sending to it could lose data; the run ends with exit 1 */
export interface Conflict {
  subname: string;
  kind: ConflictKind;
  /** one sentence naming what happened and what to do */
  message: string;
  /** newest common snapshot, if any */
  common: string | null;
  sourceOnly: string[];
  targetOnly: string[];
}

/** a dataset the planner looked at and left alone, with why (shown in verbose plans) */
export interface Skip {
  subname: string;
  reason: string;
}

/** one snapshot in a cleanup with retention: kept or destroyed, and the rules that decided */
export interface RetentionVerdict {
  name: string;
  kept: boolean;
  /** `newest common`, `keep_snapshots`, `latest`, `daily 2026-11-28`, … or `outside retention` */
  reasons: string[];
}

/** why cleanup keeps or destroys each snapshot of one dataset, when the side has retention rules */
export interface RetentionReport {
  side: Side;
  subname: string;
  dataset: string;
  /** every snapshot of the dataset, oldest first */
  snapshots: RetentionVerdict[];
}

export interface Plan<A extends Action = Action> {
  actions: A[];
  conflicts: Conflict[];
  skipped: Skip[];
  /** per-dataset problems that are not conflicts, e.g. a snapshot counter that ran out */
  errors: { subname: string; message: string }[];
  /** cleanup with retention rules: every snapshot's verdict, per dataset looked at */
  retention?: RetentionReport[];
  /**
   * dry run: full names of the snapshots this plan names that only an earlier step of the
   * same dry run would make (the preview is planned after those steps); absent otherwise
   */
  planned?: string[];
}

/** where a snapshot (or dataset) exists, for `compare` */
export type Presence = "both" | "source" | "target";

export interface CompareSnapshotRow {
  name: string;
  presence: Presence;
  /** same name on both sides but different guid */
  guidMismatch: boolean;
  /** user holds (`userrefs`) on each side; 0 where the snapshot is not */
  sourceHolds: number;
  targetHolds: number;
}

/** what `compare` tells of one side's dataset besides its snapshots */
export interface CompareSide {
  /** `off`, or the cipher */
  encryption: string;
  /** null when not encrypted; `unavailable`: the key is not loaded (e.g. a raw-received target) */
  keystatus: "available" | "unavailable" | null;
  bookmarks: number;
  /** short name of the newest bookmark, null when there is none */
  newestBookmark: string | null;
  /** a cut receive waits in it (a resume token): the next backup resumes it */
  partialReceive: boolean;
}

export interface CompareDatasetRow {
  subname: string;
  presence: Presence;
  ignored: boolean;
  /** null on a side where the dataset does not exist */
  source: CompareSide | null;
  target: CompareSide | null;
  /** oldest first, merged from both sides in creation order */
  snapshots: CompareSnapshotRow[];
  /** conflicts found for this pair (see backup), empty when none */
  conflicts: Conflict[];
}

export interface Comparison {
  sourceRoot: string;
  targetRoot: string;
  rows: CompareDatasetRow[];
}
