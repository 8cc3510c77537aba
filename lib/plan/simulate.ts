// A dry run's view of the pools after a stage's plan, as if it had run: the next stage of the
// same dry run plans against it, so a preview chains (backup sends what snap would make,
// cleanup sees what backup would send). Pure; only ever used when nothing runs.
//
// What the plan would make gets a placeholder guid (`planned:…`): a real guid is a number, so
// a planned snapshot can never match a real one, and the runner refuses to act on a view that
// holds one (engine/guard.ts).

import type { Bookmark, Dataset, Inventory, Side, Snapshot } from "../zfs/model.ts";
import type { Action, Plan } from "./types.ts";

const PLANNED = "planned:";

/** the placeholder guid of a snapshot or dataset a dry run's plan would create */
export const plannedGuid = (fullName: string): string => `${PLANNED}${fullName}`;

export const isPlannedGuid = (guid: string): boolean => guid.startsWith(PLANNED);

/** the tree holds something only a dry run's plan would have made */
export function hasPlanned(inventory: Inventory): boolean {
  return inventory.datasets.some(
    (dataset) =>
      isPlannedGuid(dataset.guid) ||
      dataset.snapshots.some((snapshot) => isPlannedGuid(snapshot.guid)) ||
      dataset.bookmarks.some((bookmark) => isPlannedGuid(bookmark.guid)),
  );
}

export interface Sides {
  source: Inventory;
  target: Inventory;
}

export interface ApplyOptions {
  /** creation time of what the plan makes */
  now: Date;
  /** abgleich's hold tags (plan/chain.ts holdTags), for a backup's chain action */
  holdTags: { source: string; target: string };
}

/** the next txg of a dataset: after everything it holds, so order by createtxg stays right */
const nextTxg = (dataset: Dataset): number =>
  Math.max(
    dataset.createtxg,
    ...dataset.snapshots.map((s) => s.createtxg),
    ...dataset.bookmarks.map((b) => b.createtxg),
  ) + 1;

/** a mutable copy of one side, datasets by full name */
function editable(inventory: Inventory) {
  const copy: Inventory = structuredClone(inventory);
  return { inventory: copy, byName: new Map(copy.datasets.map((d) => [d.name, d])) };
}

type Editable = ReturnType<typeof editable>;

function snap(source: Editable, action: Extract<Action, { kind: "snapshot" }>, now: number) {
  for (const planned of action.snapshots) {
    const dataset = source.byName.get(planned.dataset);
    if (dataset === undefined) continue;
    dataset.snapshots.push({
      name: planned.name,
      guid: plannedGuid(`${planned.dataset}@${planned.name}`),
      createtxg: nextTxg(dataset),
      creation: now,
      used: 0,
      referenced: dataset.referenced,
      // what the snapshot holds since the one before: the dataset's written, which drops to 0
      written: planned.written,
      compressratio: dataset.compressratio,
      userrefs: 0,
    });
    dataset.written = 0;
  }
}

function send(
  source: Editable,
  target: Editable,
  action: Extract<Action, { kind: "send" }>,
  now: number,
) {
  const from = source.byName.get(action.sourceDataset);
  if (from === undefined) return;
  let into = target.byName.get(action.targetDataset);
  if (into === undefined) {
    const parentName = action.targetDataset.slice(0, action.targetDataset.lastIndexOf("/"));
    const parent = target.byName.get(parentName);
    into = {
      name: action.targetDataset,
      subname: action.subname,
      type: from.type,
      guid: plannedGuid(action.targetDataset),
      createtxg: 0,
      creation: now,
      used: 0,
      referenced: 0,
      written: 0,
      compressratio: from.compressratio,
      mountpoint: "-",
      mounted: from.type === "volume" ? null : false,
      resumeToken: null,
      // raw: the ciphertext arrives without its key; otherwise it lands as its parent is
      encryption: action.raw ? from.encryption : (parent?.encryption ?? "off"),
      keystatus: action.raw ? "unavailable" : (parent?.keystatus ?? null),
      bookmarks: [],
      snapshots: [],
    };
    target.inventory.datasets.push(into);
    target.byName.set(into.name, into);
  }
  for (const name of action.snapshots) {
    const sent = from.snapshots.find((s) => s.name === name);
    if (sent === undefined || into.snapshots.some((s) => s.name === name)) continue;
    const arrived: Snapshot = {
      ...sent,
      createtxg: nextTxg(into),
      used: 0,
      userrefs: 0,
    };
    delete arrived.holds;
    into.snapshots.push(arrived);
    into.referenced = sent.referenced;
  }
  into.resumeToken = null;
  into.written = 0;
}

function destroy(side: Editable, action: Extract<Action, { kind: "destroy" }>) {
  const dataset = side.byName.get(action.dataset);
  if (dataset === undefined) return;
  const gone = new Set(action.snapshots);
  dataset.snapshots = dataset.snapshots.filter((s) => !gone.has(s.name));
}

function hold(dataset: Dataset | undefined, name: string, tag: string, on: boolean) {
  const snapshot = dataset?.snapshots.find((s) => s.name === name);
  if (snapshot === undefined) return;
  const holds = snapshot.holds ?? [];
  if (on === holds.includes(tag)) return;
  snapshot.holds = on ? [...holds, tag] : holds.filter((h) => h !== tag);
  snapshot.userrefs = Math.max(0, snapshot.userrefs + (on ? 1 : -1));
}

function chain(
  source: Editable,
  target: Editable,
  action: Extract<Action, { kind: "chain" }>,
  tags: ApplyOptions["holdTags"],
) {
  for (const entry of action.entries) {
    const from = source.byName.get(entry.sourceDataset);
    const into = target.byName.get(entry.targetDataset);
    if (entry.holdSource) hold(from, entry.base, tags.source, true);
    if (entry.holdTarget) hold(into, entry.base, tags.target, true);
    for (const name of entry.releaseSource) hold(from, name, tags.source, false);
    for (const name of entry.releaseTarget) hold(into, name, tags.target, false);
    if (from === undefined) continue;
    const base = from.snapshots.find((s) => s.name === entry.base);
    if (entry.bookmark && base && !from.bookmarks.some((b) => b.name === entry.base)) {
      const bookmark: Bookmark = {
        name: base.name,
        guid: base.guid,
        createtxg: base.createtxg,
        creation: base.creation,
      };
      from.bookmarks.push(bookmark);
    }
    const dropped = new Set(entry.destroyBookmarks);
    from.bookmarks = from.bookmarks.filter((b) => !dropped.has(b.name));
  }
}

/**
 * Both sides as they would be after `plan` ran in full: snapshots taken, sends received
 * (missing datasets created), partial receives aborted, snapshots destroyed, chains held.
 * The inputs are not changed.
 */
export function applyPlanned(sides: Sides, plan: Plan, options: ApplyOptions): Sides {
  const source = editable(sides.source);
  const target = editable(sides.target);
  const of: Record<Side, Editable> = { source, target };
  const now = Math.floor(options.now.getTime() / 1000);
  for (const action of plan.actions) {
    switch (action.kind) {
      case "snapshot":
        snap(source, action, now);
        break;
      case "send":
        send(source, target, action, now);
        break;
      case "abort-resume": {
        const dataset = target.byName.get(action.targetDataset);
        if (dataset) dataset.resumeToken = null;
        break;
      }
      case "destroy":
        destroy(of[action.side], action);
        break;
      case "chain":
        chain(source, target, action, options.holdTags);
        break;
    }
  }
  return { source: source.inventory, target: target.inventory };
}

/**
 * The full names of the snapshots a plan names that exist only in the dry run's view (an
 * earlier step's plan would make them): for the preview's "(planned)" marks.
 */
export function plannedNames(plan: Plan, sides: Sides): string[] {
  const planned = new Set<string>();
  for (const inventory of [sides.source, sides.target]) {
    for (const dataset of inventory.datasets) {
      for (const snapshot of dataset.snapshots) {
        if (isPlannedGuid(snapshot.guid)) planned.add(`${dataset.name}@${snapshot.name}`);
      }
    }
  }
  const named = new Set<string>();
  const note = (dataset: string, name: string | null) => {
    const full = `${dataset}@${name}`;
    if (name !== null && planned.has(full)) named.add(full);
  };
  for (const action of plan.actions) {
    if (action.kind === "send") {
      note(action.sourceDataset, action.from);
      for (const name of action.snapshots) note(action.sourceDataset, name);
    } else if (action.kind === "destroy") {
      for (const name of action.snapshots) note(action.dataset, name);
    } else if (action.kind === "chain") {
      for (const entry of action.entries) note(entry.sourceDataset, entry.base);
    }
  }
  return [...named];
}
