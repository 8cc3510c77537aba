// The pure planners, in one import for the runner and the CLI.

export { type BackupAction, planBackup, type TokenInfo } from "./backup.ts";
export { planCleanup } from "./cleanup.ts";
export { compareSubnames, compareTrees, mergeSnapshots } from "./compare.ts";
export { abbreviateNames, isPartialFullReceive, pairConflicts } from "./conflicts.ts";
export { type DefaultNamerOptions, defaultNamer, localDateStamp, type Namer } from "./naming.ts";
export {
  compareSnapshots,
  exclusionReason,
  type GuidMismatch,
  type Pair,
  pairDatasets,
  parentSubname,
  type SnapshotOverlap,
  takesPart,
} from "./pairs.ts";
export {
  type ChangeDecision,
  type ChangeDecisions,
  decideChanges,
  planSnap,
  poolOf,
} from "./snap.ts";
export type * from "./types.ts";
