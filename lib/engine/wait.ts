// The value of `--wait[=DURATION]` (lib/engine/lock.ts waits that long for a busy lock). Its
// own module: the command line checks the flag while parsing, before any command is loaded.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * The value of `--wait[=DURATION]` in ms: `true` (the flag alone) is Infinity; "90" is seconds;
 * "500ms", "30s", "5m", "2h", "1d" and sums like "1h30m" have units; anything else throws.
 */
export function parseWaitDuration(text: string | true): number {
  if (text === true) return Number.POSITIVE_INFINITY;
  const trimmed = text.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(trimmed)) {
    throw new Error(
      `--wait=${text}: not a duration; give seconds (--wait=90), a number with a unit ` +
        "(500ms, 30s, 5m, 2h, 1d, or e.g. 1h30m), or --wait alone to wait until the lock is free",
    );
  }
  let total = 0;
  for (const [, number, unit] of trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) {
    total += Number(number) * (UNIT_MS[unit as string] as number);
  }
  return Math.round(total);
}
