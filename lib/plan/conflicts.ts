// The conflicts of one source/target pair: every reason why sending into the target without
// `-F` could fail or lose data. Backup, cleanup and compare all ask this one function.
// Like zrepl's diff, every message names the newest common snapshot, the source-only and the
// target-only snapshots, and what the user can do.

import type { Dataset } from "../zfs/model.ts";
import { bookmarkBase, compareSnapshots } from "./pairs.ts";
import type { Conflict, ConflictKind } from "./types.ts";

/** how many names a message lists before it shortens the list to its ends */
export const NAMES_SHOWN = 6;

/** a list of names, shortened to its ends when long */
export function abbreviateNames(names: readonly string[], keep = NAMES_SHOWN): string {
  if (names.length === 0) return "none";
  if (names.length <= keep) return names.join(", ");
  const head = names.slice(0, keep - 2);
  const tail = names.slice(-2);
  return `${head.join(", ")}, … ${names.length - keep} more …, ${tail.join(", ")}`;
}

/** where a pair's snapshots are, as every planner's conflict message says it */
export function situationText(
  conflict: Pick<Conflict, "common" | "sourceOnly" | "targetOnly">,
): string {
  return (
    `newest common snapshot: ${conflict.common ?? "none"}; ` +
    `source only: ${abbreviateNames(conflict.sourceOnly)}; ` +
    `target only: ${abbreviateNames(conflict.targetOnly)}`
  );
}

/**
 * A target that exists only as a cut full receive (resume token, no snapshot yet) is not a
 * conflict: it is a target still on its way, resumed or aborted by backup.
 */
export function isPartialFullReceive(target: Dataset): boolean {
  return target.snapshots.length === 0 && target.resumeToken !== null;
}

/**
 * Where a write to the target most likely came from: it is mounted (a backup received before
 * abgleich set canmount=noauto is mounted at boot), so say how to keep it from happening again
 */
function whileMounted(target: Dataset): string {
  if (target.mounted !== true) return "";
  return ` It is mounted (at ${target.mountpoint}), which is where something wrote: unless you are reading it now, unmount it (zfs unmount '${target.name}') and keep boot from mounting it again (zfs set canmount=noauto '${target.name}').`;
}

/** conflicts of a pair, most fundamental first; empty when an incremental send is safe */
export function pairConflicts(subname: string, source: Dataset, target: Dataset): Conflict[] {
  // nothing to compare yet: backup skips a source without snapshots anyway
  if (source.snapshots.length === 0 || isPartialFullReceive(target)) return [];
  const overlap = compareSnapshots(source, target);
  const where = {
    common: overlap.newestCommon?.source.name ?? null,
    sourceOnly: overlap.sourceOnly,
    targetOnly: overlap.targetOnly,
  };
  const make = (kind: ConflictKind, what: string, todo: string): Conflict => ({
    subname,
    kind,
    message: `${target.name}: ${what} (${situationText(where)}). ${todo}`,
    ...where,
  });

  if (source.type !== target.type) {
    return [
      make(
        "type-mismatch",
        `the source ${source.name} is a ${source.type} but the target is a ${target.type}`,
        `Backup sends nothing to it. Rename or destroy the target by hand, or add '${subname}' to ignore.`,
      ),
    ];
  }

  const conflicts: Conflict[] = [];
  if (overlap.mismatches.length > 0) {
    const names = abbreviateNames(overlap.mismatches.map((m) => m.name));
    conflicts.push(
      make(
        "guid-mismatch",
        `snapshot(s) ${names} exist on both sides with different guids, so the target is not a copy of ${source.name} there`,
        "Backup sends nothing to it. Destroy or rename the mismatching target snapshots by hand " +
          `(or the whole target dataset), or add '${subname}' to ignore, then run backup again.`,
      ),
    );
  }

  const newest = overlap.newestCommon;
  const viaBookmark = bookmarkBase(source, target);
  if (viaBookmark !== undefined) {
    // the target ends at a snapshot the source keeps only as a bookmark: still a chain
    if (target.written > 0) {
      conflicts.push(
        make(
          "target-modified",
          `the target has ${target.written} bytes written since ${viaBookmark.target.name}, the source's bookmark #${viaBookmark.bookmark.name}`,
          "Backup sends nothing to it. Roll back the target by hand " +
            `(zfs rollback '${target.name}@${viaBookmark.target.name}'), then run backup again.` +
            whileMounted(target),
        ),
      );
    }
    return conflicts;
  }
  if (newest === undefined) {
    const what =
      target.snapshots.length === 0
        ? `the target exists but has no snapshot, so it shares none with ${source.name}`
        : `the target shares no snapshot (same name and guid) with ${source.name}`;
    conflicts.push(
      make(
        "no-common",
        what,
        "Backup sends nothing to it: receiving over it would need -F, which abgleich never uses. " +
          `Rename or destroy the target by hand to have it sent in full, or add '${subname}' to ignore` +
          (subname === "" && target.snapshots.length === 0
            ? " (an empty target root made by hand: destroy it and let backup create it, or set include_root: no)."
            : "."),
      ),
    );
    return conflicts;
  }

  const commonIndex = target.snapshots.findIndex(
    (snapshot) => snapshot.name === newest.target.name && snapshot.guid === newest.target.guid,
  );
  const after = target.snapshots.slice(commonIndex + 1).map((snapshot) => snapshot.name);
  if (after.length > 0) {
    conflicts.push(
      make(
        "target-ahead",
        `the target has ${after.length} ${after.length === 1 ? "snapshot" : "snapshots"} after the newest common one ${newest.source.name}: ${abbreviateNames(after)}`,
        "Backup sends nothing to it. Those snapshots are on the target alone: if they hold data " +
          "you still need (the source was rolled back, or restored from an older snapshot), keep " +
          `them by renaming the target dataset out of the target root (zfs rename '${target.name}' …; ` +
          "its children go with it), and the next backup sends the source afresh; otherwise roll " +
          "back the target by hand " +
          `(e.g. zfs rollback -r '${target.name}@${newest.target.name}'), then run backup again.`,
      ),
    );
  } else if (target.written > 0) {
    conflicts.push(
      make(
        "target-modified",
        `the target has ${target.written} bytes written since the newest common snapshot ${newest.source.name}`,
        "Backup sends nothing to it. Roll back the target by hand " +
          `(zfs rollback '${target.name}@${newest.target.name}'), then run backup again; ` +
          "setting readonly=on on the target keeps this from happening again." +
          whileMounted(target),
      ),
    );
  }
  return conflicts;
}
