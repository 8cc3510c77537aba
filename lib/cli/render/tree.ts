// `abgleich tree`: one side's datasets by full name, each followed by its snapshots as dimmer
// `- name` rows, with USED, REFER and the compression ratio; then notes in words: a dataset's
// encryption and bookmarks, a snapshot's holds.

import type { Dataset, Inventory, Side, Snapshot } from "../../zfs/model.ts";
import { encryptionWords, partialReceiveWords, plural } from "./labels.ts";
import { painter, type Style } from "./style.ts";
import { renderTable, type TableRow } from "./table.ts";
import { formatRatio, paintBytes } from "./units.ts";

export interface TreeOptions {
  style: Style;
  /** subnames listed under `ignore` in the config */
  ignored: ReadonlySet<string>;
  /** the config's include_root */
  rootIncluded: boolean;
}

const COLUMNS = [
  { header: "NAME" },
  { header: "USED", align: "right" },
  { header: "REFER", align: "right" },
  { header: "RATIO", align: "right" },
  { header: "" }, // notes: words need no header
] as const;

/** encryption, bookmarks and a cut receive in words, "" when there is nothing to say */
export function treeNotes(
  dataset: Pick<Dataset, "encryption" | "keystatus" | "bookmarks" | "resumeToken">,
  side: Side = "target",
): string {
  const notes: string[] = [];
  if (dataset.resumeToken !== null) notes.push(partialReceiveWords(side));
  const encryption = encryptionWords(dataset);
  if (encryption) notes.push(encryption);
  if (dataset.bookmarks.length > 0) notes.push(plural(dataset.bookmarks.length, "bookmark"));
  return notes.join("; ");
}

/** why a dataset takes no part in snap, backup and cleanup, or null when it does */
export function exclusionOf(
  dataset: Pick<Dataset, "subname">,
  ignored: ReadonlySet<string>,
  rootIncluded: boolean,
): "ignored" | "root not included" | null {
  if (ignored.has(dataset.subname)) return "ignored";
  if (dataset.subname === "" && !rootIncluded) return "root not included";
  return null;
}

/** the tree as a table, lines joined by "\n"; `(empty)` when the side has no datasets */
export function renderTree(inv: Inventory, opts: TreeOptions): string {
  const { style } = opts;
  if (inv.datasets.length === 0) return style.paint("dim", "(empty)");
  const dim = painter(style, "dim");
  const rows: TableRow[] = [];
  for (const dataset of inv.datasets) {
    const exclusion = exclusionOf(dataset, opts.ignored, opts.rootIncluded);
    const name = exclusion
      ? `${style.paint("bold", dataset.name)} ${dim(`(${exclusion})`)}`
      : style.paint("bold", dataset.name);
    rows.push([
      name,
      paintBytes(style, dataset.used),
      paintBytes(style, dataset.referenced),
      formatRatio(dataset.compressratio),
      dim(treeNotes(dataset, inv.side)),
    ]);
    for (const snapshot of dataset.snapshots) {
      rows.push([
        dim(`- ${snapshot.name}`),
        dim(paintBytes(style, snapshot.used)),
        dim(paintBytes(style, snapshot.referenced)),
        dim(formatRatio(snapshot.compressratio)),
        snapshot.userrefs > 0 ? dim(plural(snapshot.userrefs, "hold")) : "",
      ]);
    }
  }
  return renderTable(COLUMNS, rows, { style });
}

/** `tree --json`: sizes in bytes (numbers), guids as strings (they exceed 2^53) */
export interface TreeJson {
  side: Side;
  root: string;
  datasets: TreeDatasetJson[];
}

export interface TreeDatasetJson {
  name: string;
  subname: string;
  type: Dataset["type"];
  guid: string;
  used: number;
  referenced: number;
  written: number;
  compressratio: number;
  mountpoint: string;
  mounted: boolean | null;
  /** token of a partial receive, null when none */
  resumeToken: string | null;
  /** `off`, or the cipher */
  encryption: string;
  /** null when not encrypted; `unavailable` when its key is not loaded */
  keystatus: Dataset["keystatus"];
  /** how many bookmarks (`ds#name`) it has, and the newest one's short name */
  bookmarks: number;
  newestBookmark: string | null;
  /** false when ignored or when it is the root and include_root is off */
  included: boolean;
  /** "ignored" | "root not included" | null */
  excludedBecause: string | null;
  snapshots: TreeSnapshotJson[];
}

export interface TreeSnapshotJson {
  name: string;
  guid: string;
  createtxg: number;
  /** seconds since the epoch */
  creation: number;
  used: number;
  referenced: number;
  written: number;
  compressratio: number;
  /** user holds: a held snapshot cannot be destroyed */
  userrefs: number;
}

export function treeJson(
  inv: Inventory,
  opts: Pick<TreeOptions, "ignored" | "rootIncluded">,
): TreeJson {
  return {
    side: inv.side,
    root: inv.root,
    datasets: inv.datasets.map((dataset) => {
      const exclusion = exclusionOf(dataset, opts.ignored, opts.rootIncluded);
      return {
        name: dataset.name,
        subname: dataset.subname,
        type: dataset.type,
        guid: dataset.guid,
        used: dataset.used,
        referenced: dataset.referenced,
        written: dataset.written,
        compressratio: dataset.compressratio,
        mountpoint: dataset.mountpoint,
        mounted: dataset.mounted,
        resumeToken: dataset.resumeToken,
        encryption: dataset.encryption,
        keystatus: dataset.keystatus,
        bookmarks: dataset.bookmarks.length,
        newestBookmark: dataset.bookmarks[dataset.bookmarks.length - 1]?.name ?? null,
        included: exclusion === null,
        excludedBecause: exclusion,
        snapshots: dataset.snapshots.map(snapshotJson),
      };
    }),
  };
}

function snapshotJson(snapshot: Snapshot): TreeSnapshotJson {
  return {
    name: snapshot.name,
    guid: snapshot.guid,
    createtxg: snapshot.createtxg,
    creation: snapshot.creation,
    used: snapshot.used,
    referenced: snapshot.referenced,
    written: snapshot.written,
    compressratio: snapshot.compressratio,
    userrefs: snapshot.userrefs,
  };
}
