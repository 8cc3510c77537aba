// `abgleich compare`: source and target side by side, one row per subname and per snapshot,
// a mark in the column of each side that has it. Problems are spelled out under their dataset.

import type {
  CompareDatasetRow,
  CompareSnapshotRow,
  Comparison,
  Conflict,
  Presence,
} from "../../plan/types.ts";
import { joinSubname } from "../../zfs/model.ts";
import { plural, subnameLabel } from "./labels.ts";
import type { Style, StyleFormat } from "./style.ts";
import { renderTable, type TableRow } from "./table.ts";

export const MARK = "●";
/** same name on both sides but a different guid: not the same snapshot */
export const MISMATCH_MARK = "x";

const PRESENCE_COLORS: Record<Presence, StyleFormat> = {
  both: "green",
  source: "yellow",
  target: "blue",
};

const COLUMNS = [{ header: "NAME" }, { header: "SOURCE" }, { header: "TARGET" }] as const;

function marks(
  style: Style,
  presence: Presence,
  guidMismatch: boolean,
): [source: string, target: string] {
  if (guidMismatch) {
    const mark = style.paint(["red", "bold"], MISMATCH_MARK);
    return [mark, mark];
  }
  const mark = style.paint(PRESENCE_COLORS[presence], MARK);
  return [presence === "target" ? "" : mark, presence === "source" ? "" : mark];
}

/** `kind: message`, then which snapshots are where, so the reader knows what to do */
export function conflictLines(conflict: Conflict): string[] {
  const lines = [`${conflict.kind}: ${conflict.message}`];
  const facts: string[] = [];
  if (conflict.common !== null) facts.push(`newest common: ${conflict.common}`);
  if (conflict.sourceOnly.length > 0)
    facts.push(`only on source: ${conflict.sourceOnly.join(", ")}`);
  if (conflict.targetOnly.length > 0)
    facts.push(`only on target: ${conflict.targetOnly.join(", ")}`);
  if (facts.length > 0) lines.push(facts.join("; "));
  return lines;
}

function datasetRows(row: CompareDatasetRow, style: Style): TableRow[] {
  const tag = row.ignored ? ` ${style.paint("dim", "(ignored)")}` : "";
  const rows: TableRow[] = [
    [style.paint("bold", subnameLabel(row.subname)) + tag, ...marks(style, row.presence, false)],
  ];
  for (const conflict of row.conflicts) {
    const [first, ...rest] = conflictLines(conflict);
    rows.push({ span: `  ${style.paint("red", `! ${first}`)}` });
    for (const line of rest) rows.push({ span: `    ${style.paint("red", line)}` });
  }
  const mismatches = row.snapshots.filter((snapshot) => snapshot.guidMismatch);
  if (mismatches.length > 0 && !row.conflicts.some((c) => c.kind === "guid-mismatch")) {
    const names = mismatches.map((snapshot) => snapshot.name).join(", ");
    rows.push({
      span: `  ${style.paint("red", `! same name, different guid on the two sides: ${names}`)}`,
    });
  }
  for (const snapshot of row.snapshots) rows.push(snapshotRow(snapshot, style));
  return rows;
}

function snapshotRow(snapshot: CompareSnapshotRow, style: Style): TableRow {
  return [
    style.paint("dim", `- ${snapshot.name}`),
    ...marks(style, snapshot.presence, snapshot.guidMismatch),
  ];
}

/** the legend line, in the same colours as the marks */
export function compareLegend(style: Style): string {
  const entry = (presence: Presence, words: string) =>
    `${style.paint(PRESENCE_COLORS[presence], MARK)} ${words}`;
  return [
    entry("both", "on both sides"),
    entry("source", "source only"),
    entry("target", "target only"),
    `${style.paint(["red", "bold"], MISMATCH_MARK)} same name, different guid`,
  ].join("   ");
}

/** header naming both roots, the table, then the legend; lines joined by "\n" */
export function renderComparison(cmp: Comparison, style: Style): string {
  const title = `source ${style.paint("bold", cmp.sourceRoot)}  →  target ${style.paint("bold", cmp.targetRoot)}`;
  if (cmp.rows.length === 0) return `${title}\n${style.paint("dim", "(empty)")}`;
  const rows = cmp.rows.flatMap((row) => datasetRows(row, style));
  return [
    title,
    renderTable(COLUMNS, rows, { style }),
    "",
    comparisonSummary(cmp),
    compareLegend(style),
  ].join("\n");
}

/** `compare --json` */
export interface ComparisonJson {
  sourceRoot: string;
  targetRoot: string;
  datasets: {
    subname: string;
    /** full names; null on a side where the dataset does not exist */
    sourceName: string | null;
    targetName: string | null;
    presence: Presence;
    ignored: boolean;
    snapshots: CompareSnapshotRow[];
    conflicts: Conflict[];
  }[];
  summary: { datasets: number; conflicts: number; guidMismatches: number };
}

export function comparisonJson(cmp: Comparison): ComparisonJson {
  const datasets = cmp.rows.map((row) => ({
    subname: row.subname,
    sourceName: row.presence === "target" ? null : joinSubname(cmp.sourceRoot, row.subname),
    targetName: row.presence === "source" ? null : joinSubname(cmp.targetRoot, row.subname),
    presence: row.presence,
    ignored: row.ignored,
    snapshots: row.snapshots.map((snapshot) => ({ ...snapshot })),
    conflicts: row.conflicts.map((conflict) => ({
      ...conflict,
      sourceOnly: [...conflict.sourceOnly],
      targetOnly: [...conflict.targetOnly],
    })),
  }));
  return {
    sourceRoot: cmp.sourceRoot,
    targetRoot: cmp.targetRoot,
    datasets,
    summary: {
      datasets: datasets.length,
      conflicts: datasets.reduce((sum, row) => sum + row.conflicts.length, 0),
      guidMismatches: datasets.reduce(
        (sum, row) => sum + row.snapshots.filter((snapshot) => snapshot.guidMismatch).length,
        0,
      ),
    },
  };
}

/** a one-line count for the end of the human output, e.g. "3 datasets, 1 conflict" */
export function comparisonSummary(cmp: Comparison): string {
  const conflicts = cmp.rows.reduce((sum, row) => sum + row.conflicts.length, 0);
  return `${plural(cmp.rows.length, "dataset")}, ${plural(conflicts, "conflict")}`;
}
