// Sizes, ratios, durations and rates as the user reads them. Binary units with one decimal,
// like `zfs list` (which prints 1.9M for 1.9 MiB), but with the unit spelled out.

import type { Style, StyleFormat } from "./style.ts";

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"] as const;
export type ByteUnit = (typeof UNITS)[number];

/** each unit its own colour, so orders of magnitude stand out in a column of sizes */
const UNIT_COLORS: Record<ByteUnit, StyleFormat> = {
  B: "gray",
  KiB: "cyan",
  MiB: "green",
  GiB: "yellow",
  TiB: "red",
  PiB: "red",
  EiB: "red",
};

function splitBytes(bytes: number): { text: string; unit: ByteUnit } {
  if (!Number.isFinite(bytes)) throw new RangeError(`not a byte count: ${bytes}`);
  const sign = bytes < 0 ? "-" : "";
  let value = Math.abs(bytes);
  if (value < 1024) return { text: `${sign}${Math.round(value)} B`, unit: "B" };
  let index = 0;
  while (index < UNITS.length - 1 && value >= 1024) {
    value /= 1024;
    index++;
  }
  // 1023.96 KiB would print as "1024.0 KiB": move up one unit instead
  if (Number(value.toFixed(1)) >= 1024 && index < UNITS.length - 1) {
    value /= 1024;
    index++;
  }
  const unit = UNITS[index] as ByteUnit;
  return { text: `${sign}${value.toFixed(1)} ${unit}`, unit };
}

/** `0 B`, `512 B`, `1.0 KiB`, `1.9 MiB`, `12.4 GiB`, `3.0 TiB` */
export function formatBytes(bytes: number): string {
  return splitBytes(bytes).text;
}

/** formatBytes, coloured by its unit */
export function paintBytes(style: Style, bytes: number): string {
  const { text, unit } = splitBytes(bytes);
  return style.paint(UNIT_COLORS[unit], text);
}

/** compression ratio as `zfs list` shows it: `1.00x` */
export function formatRatio(ratio: number): string {
  return `${ratio.toFixed(2)}x`;
}

/** `mm:ss`, or `h:mm:ss` from an hour on; `--:--` when unknown (null, negative, not finite) */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return "--:--";
  const total = Math.round(seconds);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  const mmss = `${pad2(minutes)}:${pad2(secs)}`;
  return hours > 0 ? `${hours}:${mmss}` : mmss;
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** `45.2 MiB/s`; `-- B/s` when unknown */
export function formatRate(bytesPerSecond: number | null): string {
  if (bytesPerSecond === null || !Number.isFinite(bytesPerSecond) || bytesPerSecond < 0) {
    return "-- B/s";
  }
  return `${formatBytes(bytesPerSecond)}/s`;
}
