// fast-check generators of source histories and targets derived from them by simulated past
// backups, plus random divergences: cleaned-up sources and targets, extra target snapshots,
// guid swaps, target writes, type flips, cut receives with valid or stale resume tokens.

import fc from "fast-check";
import type { Config } from "../../../lib/config/types.ts";
import type { TokenInfo } from "../../../lib/plan/backup.ts";
import { compareSubnames } from "../../../lib/plan/compare.ts";
import { parentSubname } from "../../../lib/plan/pairs.ts";
import type { Dataset, Inventory, Snapshot } from "../../../lib/zfs/model.ts";
import { config, dst, snap, src } from "./fixtures.ts";

export const SUBNAMES = ["", "a", "a/b", "a/b/c", "d", "d/e f"] as const;

/** an own name of the default namer (digits 2, no suffix), or a foreign one */
function snapshotName(index: number, foreign: boolean): string {
  return foreign ? `manual-${index}` : `202601${String(10 + Math.floor(index / 5))}0${index % 5}`;
}

const datasetSpec = fc.record({
  count: fc.integer({ min: 0, max: 7 }),
  foreignMask: fc.integer({ min: 0, max: 127 }),
  heldMask: fc.integer({ min: 0, max: 127 }),
  volume: fc.oneof(
    { weight: 4, arbitrary: fc.constant(false) },
    { weight: 1, arbitrary: fc.constant(true) },
  ),
  targetKind: fc.constantFrom("missing", "copy", "copy", "copy", "partial-full"),
  backedUp: fc.nat(),
  targetDrop: fc.nat(),
  sourceDrop: fc.nat(),
  /** cleaned past what the target holds: no common snapshot left */
  sourceOverCleaned: fc.oneof(
    { weight: 9, arbitrary: fc.constant(false) },
    { weight: 1, arbitrary: fc.constant(true) },
  ),
  extraTarget: fc.constantFrom(0, 0, 0, 0, 0, 0, 0, 0, 1, 2),
  extraClashesWithSource: fc.boolean(),
  guidSwap: fc.oneof(
    { weight: 9, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.nat() },
  ),
  targetWritten: fc.constantFrom(0, 0, 0, 0, 0, 0, 0, 4096),
  typeFlip: fc.oneof(
    { weight: 15, arbitrary: fc.constant(false) },
    { weight: 1, arbitrary: fc.constant(true) },
  ),
  token: fc.constantFrom("none", "none", "none", "next", "gone", "invalid", "unchecked"),
});
type DatasetSpec = typeof datasetSpec extends fc.Arbitrary<infer T> ? T : never;

export interface Scenario {
  source: Inventory;
  target: Inventory;
  tokens: Map<string, TokenInfo>;
  config: Config;
}

function buildPair(
  subname: string,
  spec: DatasetSpec,
): { source: Dataset; target: Dataset | undefined; token: TokenInfo | undefined } {
  const history: Snapshot[] = Array.from({ length: spec.count }, (_, i) =>
    snap(snapshotName(i, ((spec.foreignMask >> i) & 1) === 1 && i % 3 === 0), {
      guid: `${subname}#${i}`,
      createtxg: 100 + i,
      creation: 1_700_000_000 + i * 60,
      userrefs: ((spec.heldMask >> i) & 1) === 1 && i % 2 === 1 ? 1 : 0,
      used: 10 + i,
    }),
  );
  const type = spec.volume ? "volume" : "filesystem";
  const mounted = spec.volume ? null : true;
  const backedUp = spec.count === 0 ? 0 : 1 + (spec.backedUp % spec.count);
  // received snapshots keep name, guid and creation, and get the target's own createtxg
  let targetSnaps = history
    .slice(0, backedUp)
    .map((s, i) => ({ ...s, createtxg: 500 + i, userrefs: 0 }));
  targetSnaps = targetSnaps.slice(
    Math.min(spec.targetDrop % 3, Math.max(0, targetSnaps.length - 1)),
  );
  const extras = Array.from({ length: spec.extraTarget }, (_, i) =>
    snap(
      spec.extraClashesWithSource && backedUp + i < spec.count
        ? snapshotName(backedUp + i, false)
        : `t-${i}`,
      {
        guid: `${subname}#target-${i}`,
        createtxg: 600 + i,
        creation: 1_800_000_000 + i,
      },
    ),
  );
  targetSnaps = [...targetSnaps, ...extras];
  if (spec.guidSwap !== null && targetSnaps.length > 0) {
    const index = spec.guidSwap % targetSnaps.length;
    targetSnaps = targetSnaps.map((s, i) =>
      i === index ? { ...s, guid: `${s.guid}-swapped` } : s,
    );
  }
  const dropLimit = spec.sourceOverCleaned ? spec.count - 1 : backedUp - 1;
  const sourceSnaps = history.slice(Math.min(spec.sourceDrop % 4, Math.max(0, dropLimit)));
  const source = src(subname, sourceSnaps, { type, mounted, written: 0 });

  let target: Dataset | undefined;
  let token: TokenInfo | undefined;
  const targetType = spec.typeFlip ? (spec.volume ? "filesystem" : "volume") : type;
  const next = history[backedUp];
  if (spec.targetKind === "copy" && spec.count > 0) {
    target = dst(subname, targetSnaps, {
      type: targetType,
      mounted: targetType === "volume" ? null : false,
      written: spec.targetWritten,
    });
    if (spec.token !== "none" && spec.extraTarget === 0 && next !== undefined) {
      target = { ...target, resumeToken: `token-${subname}`, written: 0 };
      token = tokenInfo(spec.token, source, next);
    }
  } else if (spec.targetKind === "partial-full" && spec.count > 0) {
    const first = history[0];
    target = dst(subname, [], { type, resumeToken: `token-${subname}` });
    if (first !== undefined)
      token = tokenInfo(spec.token === "none" ? "next" : spec.token, source, first);
  }
  return { source, target, token };
}

function tokenInfo(kind: string, source: Dataset, to: Snapshot): TokenInfo | undefined {
  const gone = !source.snapshots.some((s) => s.name === to.name);
  switch (kind) {
    case "next":
    case "gone":
      // "gone" names a snapshot that no longer exists; "next" may be gone too when cleaned
      return {
        ok: true,
        toname: `${source.name}@${kind === "gone" || gone ? `${to.name}-gone` : to.name}`,
      };
    case "invalid":
      return { ok: false, reason: "resume token is corrupt (incorrect checksum)" };
    default:
      return undefined;
  }
}

/** a subset of SUBNAMES closed under parents, always with the root */
const subnameSet = fc.subarray([...SUBNAMES]).map((picked) => {
  const closed = new Set<string>([""]);
  for (const subname of picked) {
    for (let s: string | null = subname; s !== null; s = parentSubname(s)) closed.add(s);
  }
  return [...closed].sort(compareSubnames);
});

export const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    subnames: subnameSet,
    specs: fc.array(datasetSpec, { minLength: SUBNAMES.length, maxLength: SUBNAMES.length }),
    targetOnly: fc.boolean(),
    includeRoot: fc.boolean(),
    ignore: fc.subarray([...SUBNAMES], { maxLength: 2 }),
    keepSnapshots: fc.integer({ min: 1, max: 3 }),
    keepBacklog: fc.integer({ min: -1, max: 2 }),
  })
  .map(({ subnames, specs, targetOnly, includeRoot, ignore, keepSnapshots, keepBacklog }) => {
    const sources: Dataset[] = [];
    const targets = new Map<string, Dataset>();
    const tokens = new Map<string, TokenInfo>();
    subnames.forEach((subname, i) => {
      const spec = specs[i];
      if (spec === undefined) return;
      const built = buildPair(subname, spec);
      sources.push(built.source);
      if (built.target) targets.set(subname, built.target);
      if (built.token) tokens.set(subname, built.token);
    });
    if (targetOnly) targets.set("zz", dst("zz", [snap("old")]));
    // a target dataset implies its parents exist there: add them as empty datasets
    for (const subname of [...targets.keys()]) {
      for (let p = parentSubname(subname); p !== null; p = parentSubname(p)) {
        const parent = targets.get(p);
        if (parent === undefined) targets.set(p, dst(p, []));
        // a cut full receive has no children: make such a parent a plain empty dataset
        else if (parent.snapshots.length === 0 && parent.resumeToken !== null) {
          targets.set(p, { ...parent, resumeToken: null });
          tokens.delete(p);
        }
      }
    }
    const targetList = [...targets.values()].sort((a, b) => compareSubnames(a.subname, b.subname));
    return {
      source: { side: "source" as const, root: "tank/data", datasets: sources },
      target: { side: "target" as const, root: "backup/host", datasets: targetList },
      tokens,
      config: config({ includeRoot, ignore, keepSnapshots, keepBacklog }),
    };
  });
