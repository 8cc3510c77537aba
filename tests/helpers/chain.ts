// A chain entry as planChain makes it for a dataset whose base is new on both sides: hold it
// on each, bookmark it, nothing to release. For tests that need chain actions, not their plan.

import type { ChainEntry } from "../../lib/plan/types.ts";

export function newChainEntry(
  subname: string,
  roots: { source: string; target: string },
  base: string,
): ChainEntry {
  const under = (root: string) => (subname === "" ? root : `${root}/${subname}`);
  return {
    subname,
    sourceDataset: under(roots.source),
    targetDataset: under(roots.target),
    base,
    holdSource: true,
    holdTarget: true,
    bookmark: true,
    releaseSource: [],
    releaseTarget: [],
    destroyBookmarks: [],
  };
}
