// Keeping each incremental chain intact. After a backup the newest snapshot both sides share
// (the base of the next incremental) is held on both sides, so a `zfs destroy` by hand or
// another tool's pruning cannot remove it, and bookmarked on the source, so even if it goes
// the next incremental can start from the bookmark. abgleich's holds on older bases are
// released and its older bookmarks destroyed. Pure: trees in, one action out.

import type { Config } from "../config/types.ts";
import { rootOf } from "../config/types.ts";
import type { Dataset, Inventory } from "../zfs/model.ts";
import { compareSnapshots, exclusionReason } from "./pairs.ts";
import type { Action, ChainAction, ChainEntry, Plan, SendAction } from "./types.ts";

/** a hold tag may be at most 255 bytes (ZFS_MAX_DATASET_NAME_LEN - 1) */
const MAX_TAG_BYTES = 255;

/**
 * The tags of abgleich's holds. On the target: `abgleich`. On the source: one per target
 * (`abgleich:[USER@]HOST[:PORT]:POOL/PREFIX`, or `abgleich:POOL/PREFIX` for a local target), so
 * backing up one source to two targets keeps both chains: each run releases only its own
 * target's holds. The user and port are part of it: two machines behind one gateway (`bk`,
 * ports 22 and 2222) with alike pools are two targets.
 */
export function holdTags(config: Config): { source: string; target: string } {
  const { host, user, port } = config.target;
  const login = `${user === "" ? "" : `${user}@`}${host}${port === null ? "" : `:${port}`}`;
  const where = host === "localhost" ? rootOf(config.target) : `${login}:${rootOf(config.target)}`;
  let source = `abgleich:${where}`;
  if (Buffer.byteLength(source) > MAX_TAG_BYTES) {
    const digest = new Bun.CryptoHasher("sha256").update(where).digest("hex").slice(0, 16);
    source = `abgleich:${digest}`;
  }
  return { source, target: "abgleich" };
}

const heldBy = (holds: readonly string[] | undefined, tag: string) => holds?.includes(tag) === true;

/**
 * The chain action for the datasets of `sends` and those already in step, or null when every
 * chain is protected already. `blocked` are subnames with conflicts or errors: left alone.
 */
export function planChain(
  source: Inventory,
  target: Inventory,
  sends: readonly SendAction[],
  blocked: ReadonlySet<string>,
  tags: { source: string; target: string },
  isOwn: (name: string) => boolean,
): ChainAction | null {
  const lastSend = new Map<string, SendAction>();
  for (const send of sends) lastSend.set(send.subname, send);
  const targets = new Map(target.datasets.map((dataset) => [dataset.subname, dataset]));
  const entries: ChainEntry[] = [];
  for (const dataset of source.datasets) {
    if (blocked.has(dataset.subname)) continue;
    const entry = chainEntry(dataset, targets.get(dataset.subname), lastSend.get(dataset.subname));
    if (entry === null) continue;
    const { base, targetBase } = entry;
    const baseSnapshot = dataset.snapshots.find((snapshot) => snapshot.name === base);
    if (baseSnapshot === undefined) continue;
    // another target's chain base (held under its own abgleich tag) keeps its bookmark: that
    // chain's way back if the snapshot goes after all
    const otherBases = new Set(
      dataset.snapshots
        .filter((snapshot) =>
          snapshot.holds?.some((hold) => hold.startsWith("abgleich:") && hold !== tags.source),
        )
        .map((snapshot) => snapshot.guid),
    );
    const chain: ChainEntry = {
      subname: dataset.subname,
      sourceDataset: dataset.name,
      targetDataset: entry.targetName,
      base,
      holdSource: !heldBy(baseSnapshot.holds, tags.source),
      holdTarget: targetBase === null || !heldBy(targetBase.holds, tags.target),
      // a bookmark of that name that is not this snapshot's is someone else's: leave it
      bookmark: !dataset.bookmarks.some((bookmark) => bookmark.name === base),
      releaseSource: dataset.snapshots
        .filter((snapshot) => snapshot.name !== base && heldBy(snapshot.holds, tags.source))
        .map((snapshot) => snapshot.name),
      releaseTarget: (entry.target?.snapshots ?? [])
        .filter((snapshot) => snapshot.name !== base && heldBy(snapshot.holds, tags.target))
        .map((snapshot) => snapshot.name),
      destroyBookmarks: dataset.bookmarks
        .filter(
          (bookmark) =>
            bookmark.name !== base &&
            bookmark.createtxg < baseSnapshot.createtxg &&
            isOwn(bookmark.name) &&
            !otherBases.has(bookmark.guid),
        )
        .map((bookmark) => bookmark.name),
    };
    const work =
      chain.holdSource ||
      chain.holdTarget ||
      chain.bookmark ||
      chain.releaseSource.length + chain.releaseTarget.length + chain.destroyBookmarks.length > 0;
    if (work) entries.push(chain);
  }
  return entries.length === 0 ? null : { kind: "chain", entries };
}

/** where a dataset's chain will rest: the last send's snapshot, or the newest common one */
function chainEntry(
  dataset: Dataset,
  target: Dataset | undefined,
  send: SendAction | undefined,
): {
  base: string;
  targetName: string;
  target: Dataset | undefined;
  targetBase: Dataset["snapshots"][number] | null;
} | null {
  if (send !== undefined) {
    return { base: send.to, targetName: send.targetDataset, target, targetBase: null };
  }
  if (target === undefined || target.resumeToken !== null) return null;
  const common = compareSnapshots(dataset, target).newestCommon;
  if (common === undefined) return null;
  return {
    base: common.source.name,
    targetName: target.name,
    target,
    targetBase: common.target,
  };
}

/**
 * The backup plan with its chain action last: for every dataset that takes part and has no
 * conflict or error (left-out datasets, `ignore` and the root without `include_root`, are
 * never touched).
 */
export function withChain<A extends Action>(
  plan: Plan<A>,
  source: Inventory,
  target: Inventory,
  config: Config,
  isOwn: (name: string) => boolean,
): Plan<A | ChainAction> {
  const blocked = new Set([
    ...plan.conflicts.map((conflict) => conflict.subname),
    ...plan.errors.map((problem) => problem.subname),
    ...source.datasets
      .filter((dataset) => exclusionReason(dataset.subname, config) !== null)
      .map((dataset) => dataset.subname),
  ]);
  const sends = plan.actions.filter((action): action is A & SendAction => action.kind === "send");
  const chain = planChain(source, target, sends, blocked, holdTags(config), isOwn);
  return chain === null ? plan : { ...plan, actions: [...plan.actions, chain] };
}
