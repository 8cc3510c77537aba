// "May this action run now?" — the one chokepoint for the safety rules (README, Safety). The
// planners keep the rules by construction; the guard checks them again, against the engine's
// own inventories (never a plugin's copy): on every plugin's plan, on the frozen plan that is
// shown, and on each action immediately before it runs.

import { isPartialFullReceive } from "../plan/conflicts.ts";
import { compareSnapshots } from "../plan/pairs.ts";
import { hasPlanned } from "../plan/simulate.ts";
import type { Action, Plan } from "../plan/types.ts";
import type { Dataset, Inventory, Side } from "../zfs/model.ts";
import { joinSubname } from "../zfs/model.ts";
import type { StageName } from "./hooks.ts";

export class SafetyError extends Error {
  constructor(
    readonly violations: string[],
    readonly by: string,
  ) {
    super(
      `${by} broke a safety rule, so the stage stopped before any further change: ${violations.join("; ")}`,
    );
    this.name = "SafetyError";
  }
}

const ALLOWED: Record<StageName, readonly Action["kind"][]> = {
  inventory: [],
  compare: [],
  snap: ["snapshot"],
  backup: ["send", "abort-resume", "chain"],
  cleanup: ["destroy"],
};

export interface ActionGuard {
  /** every rule `action` breaks, in words; empty when it may run */
  check(action: Action): string[];
  /** `action` ran (or, for a whole-plan check, would run): later actions may build on it */
  accept(action: Action): void;
}

const isStringList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === "string");

/** a plugin may hand back anything: the fields the rules read must have their types */
function malformed(action: Action): string | null {
  const a = action as unknown as Record<string, unknown>;
  if (typeof a !== "object" || a === null) return "an action that is not an object";
  switch (a.kind) {
    case "snapshot":
      return typeof a.pool === "string" &&
        Array.isArray(a.snapshots) &&
        a.snapshots.every(
          (s: unknown) =>
            typeof s === "object" &&
            s !== null &&
            typeof (s as Record<string, unknown>).dataset === "string" &&
            typeof (s as Record<string, unknown>).subname === "string" &&
            typeof (s as Record<string, unknown>).name === "string",
        )
        ? null
        : "a malformed snapshot action";
    case "send":
      return typeof a.subname === "string" &&
        typeof a.sourceDataset === "string" &&
        typeof a.targetDataset === "string" &&
        typeof a.to === "string" &&
        isStringList(a.snapshots) &&
        typeof a.raw === "boolean" &&
        typeof a.fromBookmark === "boolean" &&
        typeof a.keepUnmounted === "boolean" &&
        ["full", "incremental", "resume"].includes(a.mode as string)
        ? null
        : "a malformed send action";
    case "abort-resume":
      return typeof a.targetDataset === "string" && typeof a.subname === "string"
        ? null
        : "a malformed abort-resume action";
    case "destroy":
      return typeof a.dataset === "string" &&
        (a.side === "source" || a.side === "target") &&
        isStringList(a.snapshots) &&
        (a.release === undefined || isStringList(a.release))
        ? null
        : "a malformed destroy action";
    case "chain":
      return Array.isArray(a.entries) &&
        a.entries.every((entry: unknown) => {
          const e = entry as Record<string, unknown>;
          return (
            typeof e === "object" &&
            e !== null &&
            ["subname", "sourceDataset", "targetDataset", "base"].every(
              (key) => typeof e[key] === "string",
            ) &&
            ["holdSource", "holdTarget", "bookmark"].every((key) => typeof e[key] === "boolean") &&
            ["releaseSource", "releaseTarget", "destroyBookmarks"].every((key) =>
              isStringList(e[key]),
            )
          );
        })
        ? null
        : "a malformed chain action";
    default:
      return `an action of unknown kind ${JSON.stringify(a.kind)}`;
  }
}

/** the datasets an action touches, by subname (a well-formed action: `malformed` said so) */
export function subnamesOf(action: Action): string[] {
  if (action.kind === "snapshot") return action.snapshots.map((s) => s.subname);
  if (action.kind === "chain") return action.entries.map((entry) => entry.subname);
  return [action.subname];
}

/**
 * The guard of one stage over the engine's inventories as read at the stage's start. `side` is
 * the side a cleanup stage cleans: a destroy on the other side is refused.
 */
/**
 * Actions run only against the pools as read: a dry run's view, with what its plans would
 * have made (plan/simulate.ts), must never reach a run that changes something.
 */
export function refuseSimulated(inventories: readonly Inventory[]): void {
  const simulated = inventories.filter(hasPlanned);
  if (simulated.length > 0)
    throw new SafetyError(
      simulated.map(
        (inventory) =>
          `the ${inventory.side} tree ${inventory.root} holds snapshots only a dry run planned`,
      ),
      "the engine",
    );
}

export function createGuard(
  stage: StageName,
  side: Side | undefined,
  source: Inventory,
  target: Inventory,
  /** the naming scheme's test: only the tool's own snapshots may be destroyed */
  isOwn?: (name: string) => boolean,
  /** other targets of the same source in this run (`run.with()`): their pairs' newest common
   * snapshots stay too */
  otherTargets: readonly Inventory[] = [],
  /** why a subname takes no part (`ignore`, `include_root: no`); null when it does */
  excluded: (subname: string) => string | null = () => null,
): ActionGuard {
  const allowed = ALLOWED[stage];
  const byName = (inv: Inventory) => new Map(inv.datasets.map((d) => [d.name, d]));
  const sources = byName(source);
  const targets = byName(target);
  const sourcesBySub = new Map(source.datasets.map((d) => [d.subname, d]));
  const targetsBySub = new Map(target.datasets.map((d) => [d.subname, d]));
  const sourcePool = source.root.split("/")[0];
  /** target datasets and snapshots that earlier actions of this stage brought */
  const arrived = new Map<string, Set<string>>();
  /** subnames whose partial receive an earlier abort-resume of this stage removed */
  const aborted = new Set<string>();

  /** per subname, the newest snapshot the source shares with each other target */
  const othersNewest = new Map<string, Set<string>>();
  for (const other of otherTargets) {
    for (const dataset of other.datasets) {
      const mine = sourcesBySub.get(dataset.subname);
      const newest = mine && compareSnapshots(mine, dataset).newestCommon?.source.name;
      if (newest === undefined) continue;
      const names = othersNewest.get(dataset.subname) ?? new Set<string>();
      names.add(newest);
      othersNewest.set(dataset.subname, names);
    }
  }

  const checkDestroy = (action: Extract<Action, { kind: "destroy" }>, out: string[]) => {
    if (side !== undefined && action.side !== side) {
      out.push(
        `a destroy on the ${action.side} side (${action.dataset}) in cleanup ${side}: a stage changes only its own side`,
      );
      return;
    }
    const own =
      action.side === "source" ? sources.get(action.dataset) : targets.get(action.dataset);
    if (!own) {
      out.push(`destroy on ${action.dataset}, which is not a ${action.side} dataset in the tree`);
      return;
    }
    // the subname decides which later actions a failure blocks: it must be the dataset's own
    if (action.subname !== own.subname) {
      out.push(`a destroy on ${action.dataset} labelled with another dataset's subname`);
      return;
    }
    if (action.snapshots.length === 0) out.push(`an empty destroy on ${action.dataset}`);
    const other: Dataset | undefined =
      action.side === "source" ? targetsBySub.get(own.subname) : sourcesBySub.get(own.subname);
    const overlap = other
      ? action.side === "source"
        ? compareSnapshots(own, other)
        : compareSnapshots(other, own)
      : undefined;
    const newestCommon = overlap?.newestCommon?.source.name;
    if (action.side === "target" && newestCommon === undefined) {
      out.push(
        `${action.dataset} shares no snapshot with the source: its snapshots may be the only copy`,
      );
    }
    for (const name of action.release ?? []) {
      if (!action.snapshots.includes(name))
        out.push(`a release on ${action.dataset}@${name}, which this destroy does not destroy`);
    }
    const common = new Set(overlap?.common.map((pair) => pair.source.name));
    const present = new Set(own.snapshots.map((s) => s.name));
    for (const name of action.snapshots) {
      if (!present.has(name)) {
        out.push(`${action.dataset}@${name} does not exist`);
      }
      // cleanup destroys only what abgleich made: snapshots made by hand are never touched
      if (isOwn && !isOwn(name)) {
        out.push(`${action.dataset}@${name} is not one of abgleich's own snapshots`);
      }
      // rule 1: a source snapshot goes only when the target holds it (same name and guid)
      if (action.side === "source" && !common.has(name)) {
        out.push(`${action.dataset}@${name} is not on the target (rule 1)`);
      }
      // rule 2: the newest common snapshot stays on both sides
      if (name === newestCommon) {
        out.push(`${action.dataset}@${name} is the newest common snapshot (rule 2)`);
      }
      if (action.side === "source" && othersNewest.get(own.subname)?.has(name)) {
        out.push(
          `${action.dataset}@${name} is the newest snapshot it shares with another target of this run (rule 2)`,
        );
      }
    }
  };

  const checkSnapshot = (action: Extract<Action, { kind: "snapshot" }>, out: string[]) => {
    if (action.pool !== sourcePool) {
      out.push(`a snapshot in pool ${action.pool}, which is not the source pool ${sourcePool}`);
    }
    for (const { dataset, name, subname } of action.snapshots) {
      const own = sources.get(dataset);
      if (!own) out.push(`a snapshot of ${dataset}, which is not a source dataset in the tree`);
      else if (own.subname !== subname)
        out.push(`a snapshot of ${dataset} labelled with another dataset's subname`);
      else if (own.snapshots.some((s) => s.name === name))
        out.push(`${dataset}@${name} exists already`);
    }
  };

  /** a bookmark base: the source's `#from` marks exactly where the target ends */
  const checkBookmarkBase = (
    action: Extract<Action, { kind: "send" }>,
    from: Dataset,
    into: Dataset | undefined,
    out: string[],
  ) => {
    const bookmark = from.bookmarks.find((b) => b.name === action.from);
    const to = from.snapshots.find((s) => s.name === action.to);
    if (action.mode !== "incremental" || bookmark === undefined) {
      out.push(`a send from bookmark ${from.name}#${action.from}, which does not exist`);
      return;
    }
    if (to === undefined || to.createtxg <= bookmark.createtxg) {
      out.push(`an incremental from #${action.from} to ${action.to}, which is not forward`);
      return;
    }
    const last = into?.snapshots[into.snapshots.length - 1];
    if (arrived.has(action.subname) || last?.guid !== bookmark.guid) {
      out.push(
        `an incremental from bookmark #${action.from}, which is not where ${action.targetDataset} ends`,
      );
    }
  };

  const checkSend = (action: Extract<Action, { kind: "send" }>, out: string[]) => {
    const from = sourcesBySub.get(action.subname);
    if (!from || from.name !== action.sourceDataset) {
      out.push(`a send from ${action.sourceDataset}, which is not the source of ${action.subname}`);
      return;
    }
    if (action.targetDataset !== joinSubname(target.root, action.subname)) {
      out.push(
        `a send into ${action.targetDataset}, which is not where ${from.name} belongs on the target`,
      );
      return;
    }
    const into = targetsBySub.get(action.subname);
    // encrypted data stays encrypted: only a raw stream carries it without the key
    if (from.encryption !== "off" && action.mode !== "resume" && !action.raw) {
      out.push(`${from.name} is encrypted and would be sent as plaintext (not raw)`);
    }
    // canmount=noauto on a filesystem's first receive (full, or the resume of a cut one), and
    // only there: volumes refuse the property, and on a later receive it would undo a `zfs set
    // canmount` made on the backup since; without it the backup is mounted at boot
    const firstReceive =
      action.mode === "full" ||
      (action.mode === "resume" && into !== undefined && isPartialFullReceive(into));
    const keepUnmounted = firstReceive && from.type === "filesystem";
    if (action.keepUnmounted !== keepUnmounted) {
      const send = action.mode === "incremental" ? "an incremental send" : `a ${action.mode} send`;
      out.push(
        action.keepUnmounted
          ? `${send} into ${action.targetDataset} that sets canmount (only a filesystem's first receive does)`
          : `${send} into ${action.targetDataset} without canmount=noauto (a new backup would be mounted at boot)`,
      );
    }
    if (action.mode === "resume") {
      if (!into?.resumeToken || into.resumeToken !== action.token)
        out.push(`a resume of ${action.targetDataset} without its partial receive's token`);
      return;
    }
    const position = (name: string | null) =>
      name === null ? -1 : from.snapshots.findIndex((s) => s.name === name);
    if (position(action.to) < 0) out.push(`${from.name}@${action.to} does not exist`);
    if (action.mode === "full") {
      // a full stream never overwrites: the target dataset must not exist (rule 3, no -F),
      // unless it was only a partial full receive that this stage aborted
      const partialGone = aborted.has(action.subname) && into?.snapshots.length === 0;
      if ((into && !partialGone) || arrived.has(action.subname))
        out.push(`a full send into ${action.targetDataset}, which exists already (rule 3)`);
      return;
    }
    if (action.fromBookmark) {
      checkBookmarkBase(action, from, into, out);
      return;
    }
    if (position(action.from) < 0 || position(action.from) >= position(action.to)) {
      out.push(`an incremental from ${action.from} to ${action.to}, which is not forward`);
      return;
    }
    const base = from.snapshots[position(action.from)];
    const common =
      arrived.get(action.subname)?.has(action.from ?? "") === true ||
      into?.snapshots.some((s) => s.name === action.from && s.guid === base?.guid) === true;
    if (!common) out.push(`an incremental from ${action.from}, which the target does not hold`);
  };

  /** the chain's base must be on both sides (or arrive first); only older, own things go */
  const checkChain = (action: Extract<Action, { kind: "chain" }>, out: string[]) => {
    const seen = new Set<string>();
    for (const entry of action.entries) {
      const from = sourcesBySub.get(entry.subname);
      if (seen.has(entry.subname)) out.push(`two chain entries for ${entry.subname}`);
      seen.add(entry.subname);
      if (!from || from.name !== entry.sourceDataset) {
        out.push(
          `a chain entry for ${entry.sourceDataset}, which is not the source of ${entry.subname}`,
        );
        continue;
      }
      if (entry.targetDataset !== joinSubname(target.root, entry.subname)) {
        out.push(
          `a chain entry for ${entry.targetDataset}, which is not where ${from.name} belongs`,
        );
        continue;
      }
      const base = from.snapshots.find((s) => s.name === entry.base);
      const into = targetsBySub.get(entry.subname);
      const onTarget =
        arrived.get(entry.subname)?.has(entry.base) === true ||
        into?.snapshots.some((s) => s.name === entry.base && s.guid === base?.guid) === true;
      if (base === undefined || !onTarget) {
        out.push(`${from.name}@${entry.base} is not on both sides, so it is no chain's base`);
        continue;
      }
      // releasing the base's own hold would leave the chain unprotected
      if (entry.releaseSource.includes(entry.base) || entry.releaseTarget.includes(entry.base))
        out.push(`a release of the hold on ${entry.base}, the base of ${from.name}'s chain`);
      for (const name of entry.destroyBookmarks) {
        const bookmark = from.bookmarks.find((b) => b.name === name);
        if (bookmark === undefined) out.push(`${from.name}#${name} does not exist`);
        else if (bookmark.createtxg >= base.createtxg)
          out.push(`${from.name}#${name} is not older than the chain's base ${entry.base}`);
        if (isOwn && !isOwn(name)) out.push(`${from.name}#${name} is not one of abgleich's own`);
      }
    }
  };

  return {
    check(action) {
      const out: string[] = [];
      const shape = malformed(action);
      if (shape) return [shape];
      // what the config leaves out is never touched, whoever planned the action
      for (const subname of subnamesOf(action)) {
        const reason = excluded(subname);
        if (reason !== null)
          out.push(
            `an action on ${subname === "" ? "the root dataset" : subname}, which is ${reason}`,
          );
      }
      if (!allowed.includes(action.kind))
        return [`a ${action.kind} action has no place in ${stage}`];
      switch (action.kind) {
        case "destroy":
          checkDestroy(action, out);
          break;
        case "snapshot":
          checkSnapshot(action, out);
          break;
        case "send":
          checkSend(action, out);
          break;
        case "chain":
          checkChain(action, out);
          break;
        case "abort-resume": {
          const partial = targets.get(action.targetDataset);
          if (!partial?.resumeToken)
            out.push(`no partial receive to abort on ${action.targetDataset}`);
          else if (partial.subname !== action.subname)
            out.push(`an abort on ${action.targetDataset} labelled with another dataset's subname`);
          break;
        }
      }
      return out;
    },
    accept(action) {
      if (typeof action !== "object" || action === null) return;
      if (action.kind === "abort-resume") aborted.add(action.subname);
      if (action.kind !== "send") return;
      let names = arrived.get(action.subname);
      if (!names) {
        names = new Set();
        arrived.set(action.subname, names);
      }
      for (const name of action.snapshots) names.add(name);
      names.add(action.to);
    },
  };
}

/** every rule the plan breaks, in words; empty when it is safe */
export function planViolations(
  stage: StageName,
  plan: Plan,
  source: Inventory,
  target: Inventory,
  side?: Side,
  isOwn?: (name: string) => boolean,
  otherTargets: readonly Inventory[] = [],
  excluded?: (subname: string) => string | null,
): string[] {
  if (!plan || !Array.isArray(plan.actions)) return ["the plan hook must return the plan"];
  const guard = createGuard(stage, side, source, target, isOwn, otherTargets, excluded);
  const violations: string[] = [];
  for (const action of plan.actions) {
    violations.push(...guard.check(action));
    guard.accept(action);
  }
  return violations;
}
