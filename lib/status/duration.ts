// Durations for status thresholds (`--warn 26h`, `status.crit: 2d`) and ages in its output.
// A unit is required: a bare `26` could mean seconds or hours, and a threshold off by a factor
// of 3600 would silence monitoring.

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** the shape every threshold must have: one or more `<integer><unit>`, e.g. `26h`, `1d12h` */
export const DURATION_PATTERN = /^(?:[0-9]+[smhdw])+$/;

/** the reason a text is not a duration, or null when it is one */
export function durationProblem(text: string): string | null {
  if (DURATION_PATTERN.test(text.trim())) return null;
  if (/^[0-9]+(?:\.[0-9]+)?$/.test(text.trim()))
    return `"${text}" has no unit: write e.g. ${text.trim()}h or ${text.trim()}m (units s, m, h, d, w)`;
  return `"${text}" is not a duration: write a number with a unit, e.g. 26h, 90m, 2d or 1d12h (units s, m, h, d, w)`;
}

/** `26h` → 93600; `1d12h` → 129600; throws with the reason for anything else */
export function parseDuration(text: string): number {
  const problem = durationProblem(text);
  if (problem !== null) throw new Error(problem);
  let seconds = 0;
  for (const [, amount, unit] of text.trim().matchAll(/([0-9]+)([smhdw])/g))
    seconds += Number(amount) * (UNIT_SECONDS[unit as string] as number);
  return seconds;
}

/** an age for people: `45s`, `12m`, `3h`, `3h 20m`, `2d 4h`, `3w 2d`; `-` when unknown */
export function formatAge(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "-";
  // a clock a little behind a snapshot's creation (another host's clock) reads as now
  const total = Math.max(0, Math.floor(seconds));
  const parts: [number, string][] = [
    [Math.floor(total / 604_800), "w"],
    [Math.floor((total % 604_800) / 86_400), "d"],
    [Math.floor((total % 86_400) / 3600), "h"],
    [Math.floor((total % 3600) / 60), "m"],
    [total % 60, "s"],
  ];
  const first = parts.findIndex(([amount]) => amount > 0);
  if (first < 0) return "0s";
  // the two largest units say enough: `2d 4h`, not `2d 4h 13m 7s`
  return parts
    .slice(first, first + 2)
    .filter(([amount]) => amount > 0)
    .map(([amount, unit]) => `${amount}${unit}`)
    .join(" ");
}

/** a threshold as a user would write it: `26h`, `90m`, `2d`, `1w` (the largest exact unit) */
export function formatThreshold(seconds: number): string {
  for (const unit of ["w", "d", "h", "m"]) {
    const size = UNIT_SECONDS[unit] as number;
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

/**
 * A recorded time (ISO text) in whole seconds since the epoch, and an age in whole seconds
 * since it: one rounding for the text, the perfdata and the textfile, so they never disagree
 * by a second (`now` is whole seconds too)
 */
export const epochSeconds = (iso: string): number => Math.floor(Date.parse(iso) / 1000);
export const secondsSince = (now: number, iso: string): number =>
  Math.max(0, now - epochSeconds(iso));
