// Pure formatting helpers that reproduce OpenZFS 2.1 output: human sizes (zfs_nicenum),
// dates, and the column layout of `zfs list` / `zfs get` tables.

const UNITS = ["", "K", "M", "G", "T", "P", "E"];

/** zfs_nicenum: 1024-based, at most 5 characters ("12.4M", "96K", "0"). */
export function nicenum(value: number, zeroSuffix = ""): string {
  const n = Math.max(0, Math.floor(value));
  let index = 0;
  let scaled = n;
  while (scaled >= 1024 && index < 6) {
    scaled = Math.floor(scaled / 1024);
    index++;
  }
  const unit = UNITS[index] ?? "";
  if (index === 0) return `${n}${zeroSuffix}`;
  const divisor = 1024 ** index;
  if (n % divisor === 0) return `${n / divisor}${unit}`;
  let text = "";
  for (let digits = 2; digits >= 0; digits--) {
    text = `${(n / divisor).toFixed(digits)}${unit}`;
    if (text.length <= 5) break;
  }
  return text;
}

/** zfs_nicebytes: like nicenum but plain byte counts end in "B" ("0B", "512B"). */
export function nicebytes(value: number): string {
  return nicenum(value, "B");
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function pad(n: number, width: number, fill: string): string {
  return String(n).padStart(width, fill);
}

/** `zfs list` creation column: strftime "%a %b %e %k:%M %Y" in local time. */
export function listDate(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${pad(d.getDate(), 2, " ")} ${pad(d.getHours(), 2, " ")}:${pad(d.getMinutes(), 2, "0")} ${d.getFullYear()}`;
}

/** `zfs holds` timestamp: strftime "%a %b %e %H:%M %Y" (day space-padded, hour zero-padded). */
export function holdDate(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${pad(d.getDate(), 2, " ")} ${pad(d.getHours(), 2, "0")}:${pad(d.getMinutes(), 2, "0")} ${d.getFullYear()}`;
}

/** progress line time: "%02d:%02d:%02d" local time. */
export function clockTime(date: Date): string {
  return `${pad(date.getHours(), 2, "0")}:${pad(date.getMinutes(), 2, "0")}:${pad(date.getSeconds(), 2, "0")}`;
}

export interface Column {
  header: string;
  rightAlign: boolean;
  /** minimum width; fixed-width columns do not grow with their values (as zfs does) */
  width: number;
  fixed: boolean;
}

/**
 * Lays out a table the way zfs list does: two spaces between columns, right-aligned
 * numbers, the last left-aligned column unpadded. Fixed-width columns keep their width
 * even when a value is longer (zfs misaligns long GUIDs exactly like this).
 */
export function formatTable(columns: Column[], rows: string[][], withHeader: boolean): string[] {
  const widths = columns.map((col, i) => {
    let width = Math.max(col.width, col.header.length);
    if (!col.fixed) for (const row of rows) width = Math.max(width, (row[i] ?? "").length);
    return width;
  });
  const render = (cells: string[]): string =>
    cells
      .map((cell, i) => {
        const col = columns[i] as Column;
        const width = widths[i] as number;
        if (col.rightAlign) return cell.padStart(width);
        return i === cells.length - 1 ? cell : cell.padEnd(width);
      })
      .join("  ");
  const lines = rows.map(render);
  return withHeader ? [render(columns.map((c) => c.header)), ...lines] : lines;
}

/** Parses "12345", "96K", "1.5G", "100M" (1024-based, like zfs) into bytes; null when invalid. */
export function parseSize(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)([KMGTPE]?)(?:i?B)?$/i.exec(text.trim());
  if (!match) return null;
  const unit = (match[2] ?? "").toUpperCase();
  const power = unit === "" ? 0 : "KMGTPE".indexOf(unit) + 1;
  return Math.round(Number(match[1]) * 1024 ** power);
}

/**
 * Rows as zfs prints them: tab-separated with -H (`scripted`), else a left-aligned table under
 * `headers`. `zfs holds` prints nothing at all when it has no rows: `headerWhenEmpty` false.
 */
export function printRows(
  out: (text: string) => void,
  headers: readonly string[],
  rows: string[][],
  scripted: boolean,
  headerWhenEmpty = true,
): void {
  if (scripted) {
    for (const row of rows) out(`${row.join("\t")}\n`);
    return;
  }
  if (rows.length === 0 && !headerWhenEmpty) return;
  const columns = headers.map((header) => ({ header, rightAlign: false, width: 0, fixed: false }));
  for (const line of formatTable(columns, rows, true)) out(`${line}\n`);
}
