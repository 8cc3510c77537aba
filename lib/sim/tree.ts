// Finding things in the state and walking it in `zfs list` order: each dataset, then its
// snapshots in createtxg order, then its bookmarks by name, then its children sorted by name.
import type { Node } from "./props.ts";
import type { SimDataset, SimState } from "./state.ts";

export type NodeType = "filesystem" | "volume" | "snapshot" | "bookmark";

export function childrenOf(state: SimState, name: string): SimDataset[] {
  const prefix = `${name}/`;
  return Object.values(state.datasets)
    .filter((ds) => ds.name.startsWith(prefix) && !ds.name.slice(prefix.length).includes("/"))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function descendantsOf(state: SimState, name: string): SimDataset[] {
  const prefix = `${name}/`;
  return Object.values(state.datasets).filter((ds) => ds.name.startsWith(prefix));
}

export function rootDatasets(state: SimState): SimDataset[] {
  return Object.values(state.datasets)
    .filter((ds) => !ds.name.includes("/"))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

export function datasetNode(ds: SimDataset): Node {
  return { kind: ds.type, name: ds.name, ds };
}

/** The node a full name points at (`ds`, `ds@snap`, `ds#book`), or null. */
export function resolve(state: SimState, name: string): Node | null {
  const at = name.indexOf("@");
  const hash = name.indexOf("#");
  if (at >= 0) {
    const ds = state.datasets[name.slice(0, at)];
    const snap = ds?.snapshots.find((s) => s.name === name.slice(at + 1));
    return ds && snap ? { kind: "snapshot", name, ds, snap } : null;
  }
  if (hash >= 0) {
    const ds = state.datasets[name.slice(0, hash)];
    const bm = ds?.bookmarks.find((b) => b.name === name.slice(hash + 1));
    return ds && bm ? { kind: "bookmark", name, ds, bm } : null;
  }
  const ds = state.datasets[name];
  return ds ? datasetNode(ds) : null;
}

/** Nodes below and including `ds`, down to `maxDepth` levels (snapshots count one level). */
export function walk(
  state: SimState,
  ds: SimDataset,
  types: Set<NodeType>,
  maxDepth: number,
  depth = 0,
): Node[] {
  const nodes: Node[] = [];
  if (types.has(ds.type)) nodes.push(datasetNode(ds));
  if (depth + 1 <= maxDepth) {
    if (types.has("snapshot"))
      for (const snap of [...ds.snapshots].sort((a, b) => a.createtxg - b.createtxg))
        nodes.push({ kind: "snapshot", name: `${ds.name}@${snap.name}`, ds, snap });
    if (types.has("bookmark"))
      // by full name, as zfs list's sort compares a bookmark (its `#` is no `@`)
      for (const bm of [...ds.bookmarks].sort((a, b) =>
        a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
      ))
        nodes.push({ kind: "bookmark", name: `${ds.name}#${bm.name}`, ds, bm });
    for (const child of childrenOf(state, ds.name))
      nodes.push(...walk(state, child, types, maxDepth, depth + 1));
  }
  return nodes;
}
