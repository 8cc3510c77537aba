// The engine's plans and comparisons as plain data for the page: pure functions, no I/O.

import { encryptionWords, partialReceiveWords, RELEASED_FIRST } from "../cli/render/labels.ts";
import type { Action, ChainAction, Comparison, Plan, SendAction } from "../plan/types.ts";
import type { Inventory, Side } from "../zfs/model.ts";
import type { ActionView, CompareRowView, CompareView, PlanView, StepKey } from "./protocol.ts";

/** how many of a dataset's newest snapshots the page lists (a tree may hold millions) */
export const RECENT_SNAPSHOTS = 30;

export const label = (subname: string) => (subname === "" ? "(root)" : subname);

export function stepKeyOf(stage: string, side?: Side): StepKey | null {
  if (stage === "snap" || stage === "backup") return stage;
  if (stage === "cleanup") return side === "target" ? "cleanup-target" : "cleanup-source";
  return null;
}

/** a dry run's mark on a snapshot only an earlier step's plan would make (Plan.planned) */
const marked = (planned: ReadonlySet<string>, dataset: string, name: string) =>
  planned.has(`${dataset}@${name}`) ? `${name} (planned)` : name;

/** the Dataset cell of an action on many datasets: a few by name, more as a count (the
 * action's text names them all), so one row does not widen the column for every row */
const MANY = 3;
const datasetsCell = (subnames: readonly string[]) =>
  subnames.length <= MANY ? subnames.map(label).join(", ") : `${subnames.length} datasets`;

export function actionView(
  action: Action,
  estimate: number | undefined,
  planned: ReadonlySet<string> = new Set(),
): ActionView {
  switch (action.kind) {
    case "snapshot":
      return {
        kind: action.kind,
        dataset: datasetsCell(action.snapshots.map((s) => s.subname)),
        text: `snapshot (one atomic zfs snapshot on pool ${action.pool}): ${action.snapshots.map((s) => `${s.dataset}@${s.name}`).join(", ")}`,
        bytes: action.snapshots.reduce((sum, s) => sum + s.written, 0),
        measure: null,
      };
    case "send": {
      const from = action.from
        ? ` from ${action.fromBookmark ? "bookmark #" : "@"}${action.from}`
        : "";
      return {
        kind: action.kind,
        dataset: label(action.subname),
        text: `${action.mode}${action.raw ? " raw (encrypted)" : ""} send ${action.sourceDataset}${from} to @${marked(planned, action.sourceDataset, action.to)} → ${action.targetDataset} (${action.snapshots.length} ${action.snapshots.length === 1 ? "snapshot" : "snapshots"})${action.keepUnmounted ? ", canmount=noauto" : ""}`,
        bytes: estimate ?? null,
        measure: "sends",
      };
    }
    case "abort-resume":
      return {
        kind: action.kind,
        dataset: label(action.subname),
        text: `abort the partial receive on ${action.targetDataset}: ${action.reason}`,
        bytes: null,
        measure: null,
      };
    case "destroy":
      return {
        kind: action.kind,
        dataset: label(action.subname),
        text: `destroy on the ${action.side}: ${action.snapshots.map((name) => `${action.dataset}@${marked(planned, action.dataset, name)}${action.release?.includes(name) ? ` ${RELEASED_FIRST}` : ""}`).join(", ")}`,
        bytes: action.used,
        measure: "frees",
      };
    case "chain":
      return {
        kind: action.kind,
        dataset: datasetsCell(action.entries.map((entry) => entry.subname)),
        text: `protect the incremental chain of ${action.entries.length} dataset(s)${action.entries.length > MANY ? ` (${action.entries.map((entry) => label(entry.subname)).join(", ")})` : ""}: hold the newest common snapshot on both sides, bookmark it, release older holds, destroy abgleich's older bookmarks`,
        bytes: null,
        measure: null,
      };
  }
}

/**
 * The row of a chain's protection that runs without some of its planned datasets (the engine
 * leaves out those whose transfers did not arrive): the datasets it still covers, and which not
 */
export function narrowedChainView(planned: ChainAction, running: ChainAction): ActionView {
  const view = actionView(running, undefined);
  const kept = new Set(running.entries.map((entry) => entry.subname));
  const left = planned.entries.filter((entry) => !kept.has(entry.subname));
  if (left.length === 0) return view;
  const names = left.map((entry) => label(entry.subname)).join(", ");
  return { ...view, text: `${view.text}; not for ${names}: their transfers did not arrive` };
}

export function planView(plan: Plan, estimates: ReadonlyMap<SendAction, number>): PlanView {
  const planned = new Set(plan.planned ?? []);
  const actions = plan.actions.map((action) =>
    actionView(action, action.kind === "send" ? estimates.get(action) : undefined, planned),
  );
  return {
    actions,
    skipped: plan.skipped.map((skip) => ({ dataset: label(skip.subname), reason: skip.reason })),
    conflicts: plan.conflicts.map((conflict) => ({
      dataset: label(conflict.subname),
      kind: conflict.kind,
      message: conflict.message,
    })),
    errors: plan.errors.map((error) => ({ dataset: label(error.subname), message: error.message })),
    totalBytes: actions.reduce(
      (sum, action) => sum + (action.measure !== null ? (action.bytes ?? 0) : 0),
      0,
    ),
  };
}

export function compareView(
  comparison: Comparison,
  inventories: Partial<Record<Side, Inventory>>,
): CompareView {
  const index = (side: Side) =>
    new Map((inventories[side]?.datasets ?? []).map((dataset) => [dataset.subname, dataset]));
  const datasets = { source: index("source"), target: index("target") };
  const rows = comparison.rows.map((row): CompareRowView => {
    const sideView = (side: Side) => {
      const dataset = row[side] ? datasets[side].get(row.subname) : undefined;
      if (dataset === undefined) return null;
      return {
        used: dataset.used,
        ratio: dataset.compressratio,
        snapshots: dataset.snapshots.length,
        encrypted: encryptionWords(dataset),
        partialReceive: dataset.resumeToken === null ? null : partialReceiveWords(side),
      };
    };
    let common = 0;
    let sourceOnly = 0;
    let targetOnly = 0;
    let newestCommon: string | null = null;
    for (const snapshot of row.snapshots) {
      if (snapshot.presence === "source") sourceOnly++;
      else if (snapshot.presence === "target") targetOnly++;
      else if (!snapshot.guidMismatch) {
        common++;
        newestCommon = snapshot.name;
      }
    }
    const recent = row.snapshots.slice(-RECENT_SNAPSHOTS).map((snapshot) => ({
      name: snapshot.name,
      presence: snapshot.presence,
      mismatch: snapshot.guidMismatch,
    }));
    return {
      subname: label(row.subname),
      presence: row.presence,
      ignored: row.ignored,
      source: sideView("source"),
      target: sideView("target"),
      common,
      sourceOnly,
      targetOnly,
      newestCommon,
      conflicts: row.conflicts.map((conflict) => ({
        kind: conflict.kind,
        message: conflict.message,
      })),
      recent,
      older: Math.max(0, row.snapshots.length - RECENT_SNAPSHOTS),
    };
  });
  return { sourceRoot: comparison.sourceRoot, targetRoot: comparison.targetRoot, rows };
}
