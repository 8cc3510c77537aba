// Progress of the transfers of one run. On a terminal: one line per dataset, redrawn in place
// (bytes, percent, rate, ETA, and the whole run's bytes and ETA); finished lines stay.
// Elsewhere (logs, pipes): a plain line at most every few seconds and one at the end.
// In JSON mode the caller simply creates none. Time comes from `now`, so tests use a fake clock.

import type { Style } from "./render/style.ts";
import { truncateVisible } from "./render/style.ts";
import { formatBytes, formatDuration, formatRate, paintBytes } from "./render/units.ts";

export interface ProgressOptions {
  stream: { write(text: string): unknown };
  isTTY: boolean;
  /** bytes the whole run is expected to send; null when unknown */
  totalBytes: number | null;
  style: Style;
  /** milliseconds; default Date.now */
  now?: () => number;
  /** without a terminal: least milliseconds between two lines of one transfer (default 5000) */
  plainInterval?: number;
  /** on a terminal: least milliseconds between two redraws (default 100) */
  redrawInterval?: number;
  /** terminal width: the redrawn line is cut to it so it never wraps (a wrapped line cannot be redrawn) */
  columns?: number;
  /** time constant of the rate's moving average, milliseconds (default 3000) */
  smoothing?: number;
}

export interface Progress {
  /** a transfer begins; expectedBytes is the estimate, null when unknown */
  start(label: string, expectedBytes: number | null): void;
  /** bytes of the current transfer so far */
  update(bytesDone: number): void;
  /** the current transfer ended; its line is finished and kept */
  finish(ok: boolean): void;
  /** another message while a transfer runs: on a terminal it goes above the live line */
  log(line: string): void;
}

interface Transfer {
  label: string;
  expected: number | null;
  startedAt: number;
  done: number;
  sampleAt: number;
  sampleBytes: number;
  /** smoothed bytes per second; null until the first measurable interval */
  rate: number | null;
  lastOutputAt: number;
}

/**
 * Exponential moving average weighted by elapsed time, so irregular update intervals do not
 * skew it: a sample that covers a longer time moves the average further.
 */
export function smoothRate(
  previous: number | null,
  instant: number,
  elapsedMs: number,
  tauMs: number,
): number {
  if (previous === null) return instant;
  const alpha = 1 - Math.exp(-elapsedMs / tauMs);
  return previous + alpha * (instant - previous);
}

/** seconds left at `rate`, null when it cannot be known */
export function etaSeconds(remaining: number, rate: number | null): number | null {
  if (rate === null || rate <= 0) return null;
  return Math.max(0, remaining) / rate;
}

function percent(done: number, expected: number): string {
  if (expected <= 0) return "100%";
  return `${Math.min(100, Math.floor((done / expected) * 100))}%`;
}

export function createProgress(options: ProgressOptions): Progress {
  const { stream, isTTY, totalBytes, style } = options;
  const now = options.now ?? Date.now;
  const plainInterval = options.plainInterval ?? 5000;
  const redrawInterval = options.redrawInterval ?? 100;
  const tau = options.smoothing ?? 3000;
  let runStartedAt: number | null = null;
  let completedBytes = 0;
  let current: Transfer | null = null;

  const required = (what: string): Transfer => {
    if (current === null) throw new Error(`progress.${what}() called with no transfer started`);
    return current;
  };

  /** the whole run's bytes, percent and ETA, or null when its size is unknown */
  const runProgress = (at: number) => {
    if (totalBytes === null || runStartedAt === null) return null;
    const done = completedBytes + (current?.done ?? 0);
    const elapsed = (at - runStartedAt) / 1000;
    // the run's average rate: it includes the pauses between transfers, as the ETA must
    const rate = elapsed > 0 && done > 0 ? done / elapsed : null;
    return {
      size: `${formatBytes(done)} / ${formatBytes(totalBytes)}`,
      percent: percent(done, totalBytes),
      eta: formatDuration(etaSeconds(totalBytes - done, rate)),
    };
  };

  const liveLine = (t: Transfer, at: number): string => {
    const size =
      t.expected === null
        ? paintBytes(style, t.done)
        : `${paintBytes(style, t.done)} / ${paintBytes(style, t.expected)} ${percent(t.done, t.expected)}`;
    const eta = t.expected === null ? null : etaSeconds(t.expected - t.done, t.rate);
    const line = `${style.paint("bold", t.label)}  ${size}  ${formatRate(t.rate)}  ETA ${formatDuration(eta)}`;
    const run = runProgress(at);
    if (run === null) return line;
    return `${line}${style.paint("dim", "  |  ")}all ${run.size} ${run.percent}  ETA ${run.eta}`;
  };

  const plainLine = (t: Transfer, at: number): string => {
    const size =
      t.expected === null
        ? formatBytes(t.done)
        : `${formatBytes(t.done)} / ${formatBytes(t.expected)} (${percent(t.done, t.expected)})`;
    const eta = t.expected === null ? null : etaSeconds(t.expected - t.done, t.rate);
    const line = `${t.label}: ${size}, ${formatRate(t.rate)}, ETA ${formatDuration(eta)}`;
    const run = runProgress(at);
    if (run === null) return line;
    return `${line}; all ${run.size} (${run.percent}), ETA ${run.eta}`;
  };

  const finalLine = (t: Transfer, ok: boolean, at: number): string => {
    const seconds = (at - t.startedAt) / 1000;
    const took = formatDuration(seconds);
    if (!ok) {
      const mark = isTTY ? `${style.paint("red", "✗")} ` : "";
      return `${mark}${t.label}: failed after ${formatBytes(t.done)} (${took})`;
    }
    const average = seconds > 0 ? t.done / seconds : null;
    const mark = isTTY ? `${style.paint("green", "✓")} ` : "";
    return `${mark}${t.label}: done, ${formatBytes(t.done)} in ${took} (${formatRate(average)})`;
  };

  const redraw = (text: string) => {
    const fitted = options.columns ? truncateVisible(text, options.columns - 1) : text;
    stream.write(`\r${fitted}\u001b[K`);
  };

  return {
    start(label, expectedBytes) {
      if (current !== null)
        throw new Error(`progress.start("${label}") while "${current.label}" runs`);
      const at = now();
      runStartedAt ??= at;
      current = {
        label,
        expected: expectedBytes,
        startedAt: at,
        done: 0,
        sampleAt: at,
        sampleBytes: 0,
        rate: null,
        lastOutputAt: at,
      };
      if (isTTY) redraw(liveLine(current, at));
    },

    update(bytesDone) {
      const t = required("update");
      const at = now();
      t.done = bytesDone;
      const elapsed = at - t.sampleAt;
      if (elapsed > 0) {
        const instant = (Math.max(0, bytesDone - t.sampleBytes) / elapsed) * 1000;
        t.rate = smoothRate(t.rate, instant, elapsed, tau);
        t.sampleAt = at;
        t.sampleBytes = bytesDone;
      }
      const interval = isTTY ? redrawInterval : plainInterval;
      if (at - t.lastOutputAt < interval) return;
      t.lastOutputAt = at;
      if (isTTY) redraw(liveLine(t, at));
      else stream.write(`${plainLine(t, at)}\n`);
    },

    finish(ok) {
      const t = required("finish");
      const at = now();
      const line = finalLine(t, ok, at);
      completedBytes += t.done;
      current = null;
      if (isTTY) redraw(line);
      stream.write(isTTY ? "\n" : `${line}\n`);
    },

    log(line) {
      if (!isTTY || current === null) {
        stream.write(`${line}\n`);
        return;
      }
      // overwrite the live line with the message, then draw the live line again below it
      stream.write(`\r${line}\u001b[K\n`);
      redraw(liveLine(current, now()));
    },
  };
}
