// Small shared wording, so every renderer names things the same way.

import type { Side } from "../../zfs/model.ts";

/** a subname as a reader sees it: the root (subname "") has no name of its own */
export function subnameLabel(subname: string): string {
  return subname === "" ? "(root)" : subname;
}

/** "1 snapshot", "3 snapshots" */
export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

/**
 * a dataset holding a cut receive (its resume token), in words: on a target the next backup
 * resumes it; on a source it is no receive of this config's
 */
export function partialReceiveWords(side: Side): string {
  return side === "target"
    ? "a cut transfer waits here: the next backup resumes it"
    : "a cut receive waits here (another run's, into this pool)";
}

/** `encrypted`, `encrypted, key not loaded` (a raw-received copy without its key), or null */
export function encryptionWords(dataset: {
  encryption: string;
  keystatus: "available" | "unavailable" | null;
}): string | null {
  if (dataset.encryption === "off") return null;
  return dataset.keystatus === "unavailable" ? "encrypted, key not loaded" : "encrypted";
}

/** after a snapshot to destroy that only abgleich's own hold keeps (an old chain base) */
export const RELEASED_FIRST = "(abgleich's own hold released first)";

/** under a plan with a filesystem's first receive: what `keepUnmounted` does to it */
export const KEPT_UNMOUNTED =
  "new filesystems arrive with canmount=noauto: zfs mount -a (at boot) leaves them unmounted, so nothing writes to them between backups";
