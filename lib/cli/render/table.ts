// Column-aligned text tables. Widths count visible columns only, so painted cells line up;
// no table library (the usual ones leak colour into pipes or miscount ANSI codes).

import { type Style, truncateVisible, visibleWidth } from "./style.ts";

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
  /**
   * the widest a line may be (default: the style's terminal width; none for pipes): wider
   * tables shrink their widest columns, cells cut with "…"
   */
  maxWidth?: number;
}

/** a column is never cut below its header, nor below this */
const MIN_CUT_WIDTH = 6;
const ELLIPSIS = "…";

/**
 * The widths after shrinking the widest columns until the line fits `maxWidth` (each down to
 * its header or MIN_CUT_WIDTH at least); as they are when it fits, or when nothing can give.
 */
export function fitWidths(
  widths: readonly number[],
  minimums: readonly number[],
  gap: number,
  maxWidth: number,
): number[] {
  const fitted = [...widths];
  const total = () => fitted.reduce((sum, w) => sum + w, 0) + gap * (fitted.length - 1);
  let over = total() - maxWidth;
  // one column at a time, always the widest that may still give: wide columns end up even
  while (over > 0) {
    let widest = -1;
    for (let i = 0; i < fitted.length; i++) {
      const width = fitted[i] as number;
      if (width > (minimums[i] as number) && (widest < 0 || width > (fitted[widest] as number)))
        widest = i;
    }
    if (widest < 0) break;
    fitted[widest] = (fitted[widest] as number) - 1;
    over--;
  }
  return fitted;
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
  let widths = columns.map((column) => visibleWidth(column.header));
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
  const maxWidth = options.maxWidth ?? options.style?.columns;
  let cut: boolean[] | null = null;
  if (maxWidth !== undefined) {
    const minimums = columns.map((c) => Math.max(visibleWidth(c.header), MIN_CUT_WIDTH));
    const fitted = fitWidths(widths, minimums, gap.length, maxWidth);
    cut = fitted.map((w, i) => w < (widths[i] as number));
    widths = fitted;
  }
  /** a cell of a shrunk column: as it is when it fits, else cut with an ellipsis */
  const fit = (cell: string, index: number): string =>
    cut?.[index] && visibleWidth(cell) > (widths[index] as number)
      ? truncateVisible(cell, (widths[index] as number) - 1) + ELLIPSIS
      : cell;

  // a large table has a million rows: one string per line, no per-cell arrays or closures
  const line = (cells: readonly string[]): string => {
    let text = "";
    for (let index = 0; index < columns.length; index++) {
      const cell = cut === null ? (cells[index] ?? "") : fit(cells[index] ?? "", index);
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
