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

/**
 * Several transfers may run at once (`transfer.parallel`): each is named by a key; without
 * one, the default key stands for the single current transfer.
 */
export interface Progress {
  /** a transfer begins; expectedBytes is the estimate, null when unknown */
  start(label: string, expectedBytes: number | null, key?: unknown): void;
  /** bytes of that transfer so far */
  update(bytesDone: number, key?: unknown): void;
  /** that transfer ended; its line is finished and kept */
  finish(ok: boolean, key?: unknown): void;
  /** another message while a transfer runs: on a terminal it goes above the live line */
  log(line: string): void;
}

const ONLY = Symbol("the single transfer");

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
  const running = new Map<unknown, Transfer>();
  let lastRedrawAt = 0;

  const required = (what: string, key: unknown): Transfer => {
    const transfer = running.get(key);
    if (transfer === undefined)
      throw new Error(`progress.${what}() called with no transfer started`);
    return transfer;
  };
  const runningBytes = () => {
    let sum = 0;
    for (const t of running.values()) sum += t.done;
    return sum;
  };

  /** the whole run's bytes, percent and ETA, or null when its size is unknown */
  const runProgress = (at: number) => {
    if (totalBytes === null || runStartedAt === null) return null;
    const done = completedBytes + runningBytes();
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

  /** one line for every running transfer: alone in full, several as name and percent */
  const currentLine = (at: number): string => {
    const all = [...running.values()];
    if (all.length === 1) return liveLine(all[0] as Transfer, at);
    const each = all
      .map((t) =>
        t.expected === null
          ? `${t.label} ${formatBytes(t.done)}`
          : `${t.label} ${percent(t.done, t.expected)}`,
      )
      .join(", ");
    let rate = 0;
    for (const t of all) rate += t.rate ?? 0;
    const line = `${style.paint("bold", `${all.length} transfers`)}  ${formatRate(rate > 0 ? rate : null)}  ${each}`;
    const run = runProgress(at);
    if (run === null) return line;
    return `${style.paint("bold", `all ${run.size} ${run.percent}  ETA ${run.eta}`)}${style.paint("dim", "  |  ")}${line}`;
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
    start(label, expectedBytes, key = ONLY) {
      const already = running.get(key);
      if (already) throw new Error(`progress.start("${label}") while "${already.label}" runs`);
      const at = now();
      runStartedAt ??= at;
      running.set(key, {
        label,
        expected: expectedBytes,
        startedAt: at,
        done: 0,
        sampleAt: at,
        sampleBytes: 0,
        rate: null,
        lastOutputAt: at,
      });
      if (isTTY) redraw(currentLine(at));
    },

    update(bytesDone, key = ONLY) {
      const t = required("update", key);
      const at = now();
      t.done = bytesDone;
      const elapsed = at - t.sampleAt;
      if (elapsed > 0) {
        const instant = (Math.max(0, bytesDone - t.sampleBytes) / elapsed) * 1000;
        t.rate = smoothRate(t.rate, instant, elapsed, tau);
        t.sampleAt = at;
        t.sampleBytes = bytesDone;
      }
      if (isTTY) {
        // one live line for all transfers: redrawn at most every redrawInterval
        if (at - Math.max(t.lastOutputAt, lastRedrawAt) < redrawInterval) return;
        t.lastOutputAt = at;
        lastRedrawAt = at;
        redraw(currentLine(at));
        return;
      }
      if (at - t.lastOutputAt < plainInterval) return;
      t.lastOutputAt = at;
      stream.write(`${plainLine(t, at)}\n`);
    },

    finish(ok, key = ONLY) {
      const t = required("finish", key);
      const at = now();
      const line = finalLine(t, ok, at);
      completedBytes += t.done;
      running.delete(key);
      if (!isTTY) {
        stream.write(`${line}\n`);
        return;
      }
      // the finished line stays; the others' live line is drawn again below it
      redraw(line);
      stream.write("\n");
      if (running.size > 0) redraw(currentLine(at));
    },

    log(line) {
      if (!isTTY || running.size === 0) {
        stream.write(`${line}\n`);
        return;
      }
      // overwrite the live line with the message, then draw the live line again below it
      stream.write(`\r${line}\u001b[K\n`);
      redraw(currentLine(now()));
    },
  };
}
