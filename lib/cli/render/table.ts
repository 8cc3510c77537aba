// Column-aligned text tables. Widths count visible columns only, so painted cells line up;
// no table library (the usual ones leak colour into pipes or miscount ANSI codes).

import { type Style, visibleWidth } from "./style.ts";

export interface Column {
  header: string;
  /** numbers read best right-aligned; default left */
  align?: "left" | "right";
}

/** a row of cells, or a line printed as it is across the table (a note under a row) */
export type TableRow = readonly string[] | { readonly span: string };

export interface TableOptions {
  /** paints the header; without it the header is plain */
  style?: Style;
  /** spaces between columns, default 2 */
  gap?: number;
}

function isSpan(row: TableRow): row is { readonly span: string } {
  return !Array.isArray(row);
}

/** the table as lines joined by "\n", no trailing newline; no line ends in spaces */
export function renderTable(
  columns: readonly Column[],
  rows: readonly TableRow[],
  options: TableOptions = {},
): string {
  const gap = " ".repeat(options.gap ?? 2);
  const widths = columns.map((column) => visibleWidth(column.header));
  for (const row of rows) {
    if (isSpan(row)) continue;
    if (row.length > columns.length) {
      throw new Error(`table row has ${row.length} cells but there are ${columns.length} columns`);
    }
    for (let index = 0; index < row.length; index++) {
      const width = visibleWidth(row[index] as string);
      if (width > (widths[index] as number)) widths[index] = width;
    }
  }
  const right = columns.map((column) => column.align === "right");

  // a large table has a million rows: one string per line, no per-cell arrays or closures
  const line = (cells: readonly string[]): string => {
    let text = "";
    for (let index = 0; index < columns.length; index++) {
      const cell = cells[index] ?? "";
      const fill = spaces((widths[index] as number) - visibleWidth(cell));
      if (index > 0) text += gap;
      text += right[index] ? fill + cell : cell + fill;
    }
    return text.trimEnd();
  };

  const header = line(columns.map((column) => column.header));
  const lines = [options.style ? options.style.paint("bold", header) : header];
  for (const row of rows) lines.push(isSpan(row) ? row.span : line(row));
  return lines.join("\n");
}

const SPACES: string[] = [];

/** `n` spaces (none for n ≤ 0), the same string each time */
export function spaces(n: number): string {
  if (n <= 0) return "";
  let fill = SPACES[n];
  if (fill === undefined) {
    fill = " ".repeat(n);
    if (n < 256) SPACES[n] = fill;
  }
  return fill;
}
