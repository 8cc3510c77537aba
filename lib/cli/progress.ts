// Progress of the transfers of one run. On a terminal: one line per dataset, redrawn in place
// (bytes, percent, rate, ETA, and the whole run's bytes and ETA); finished lines stay.
// Elsewhere (logs, pipes): a plain line at most once a minute and one at the end.
// In JSON mode the caller simply creates none. Time comes from `now`, so tests use a fake clock.
// The numbers (rate, ETA, the run's total) come from one meter, which the terminal wizard's
// action list shares, so both show the same figures in the same words.

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
  /** without a terminal: least milliseconds between two lines of one transfer (default a minute) */
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

/** off a terminal a transfer's line is a log line: one a minute keeps a night's log readable */
export const PLAIN_INTERVAL_MS = 60_000;

/** one transfer as measured so far */
export interface TransferState {
  readonly label: string;
  /** the estimate, null when unknown */
  readonly expected: number | null;
  readonly startedAt: number;
  readonly done: number;
  /** smoothed bytes per second; null until the first measurable interval */
  readonly rate: number | null;
}

interface Transfer extends TransferState {
  done: number;
  rate: number | null;
  sampleAt: number;
  sampleBytes: number;
}

/** the whole run's figures; its rate is the average since the first transfer began */
export interface RunState {
  readonly done: number;
  readonly total: number;
  readonly rate: number | null;
}

/**
 * The numbers behind every progress display (the backup line, the wizard's action list):
 * bytes, smoothed rate and the run's total, per transfer key. It prints nothing.
 */
export interface ProgressMeter {
  now(): number;
  start(label: string, expectedBytes: number | null, key?: unknown): TransferState;
  update(bytesDone: number, key?: unknown): TransferState;
  /** the transfer ends; its bytes count towards the run */
  finish(key?: unknown): TransferState;
  running(): TransferState[];
  /** null while the run's size is unknown or nothing has started */
  run(): RunState | null;
}

export function createMeter(options: {
  totalBytes: number | null;
  now?: () => number;
  /** time constant of the rate's moving average, milliseconds (default 3000) */
  smoothing?: number;
}): ProgressMeter {
  const { totalBytes } = options;
  const now = options.now ?? Date.now;
  const tau = options.smoothing ?? 3000;
  let runStartedAt: number | null = null;
  let completedBytes = 0;
  const running = new Map<unknown, Transfer>();
  const required = (what: string, key: unknown): Transfer => {
    const transfer = running.get(key);
    if (transfer === undefined)
      throw new Error(`progress.${what}() called with no transfer started`);
    return transfer;
  };
  return {
    now,
    start(label, expectedBytes, key = ONLY) {
      const already = running.get(key);
      if (already) throw new Error(`progress.start("${label}") while "${already.label}" runs`);
      const at = now();
      runStartedAt ??= at;
      const transfer: Transfer = {
        label,
        expected: expectedBytes,
        startedAt: at,
        done: 0,
        sampleAt: at,
        sampleBytes: 0,
        rate: null,
      };
      running.set(key, transfer);
      return transfer;
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
      return t;
    },
    finish(key = ONLY) {
      const t = required("finish", key);
      completedBytes += t.done;
      running.delete(key);
      return t;
    },
    running: () => [...running.values()],
    run() {
      if (totalBytes === null || runStartedAt === null) return null;
      let done = completedBytes;
      for (const t of running.values()) done += t.done;
      const elapsed = (now() - runStartedAt) / 1000;
      // the run's average rate: it includes the pauses between transfers, as the ETA must
      return { done, total: totalBytes, rate: elapsed > 0 && done > 0 ? done / elapsed : null };
    },
  };
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

export function percent(done: number, expected: number): string {
  if (expected <= 0) return "100%";
  return `${Math.min(100, Math.floor((done / expected) * 100))}%`;
}

/** `1.2 GiB / 3.0 GiB 40%  120.0 MiB/s  ETA 00:15` (without an estimate: bytes, rate, `--:--`) */
export function transferFigures(t: TransferState, style: Style): string {
  const size =
    t.expected === null
      ? paintBytes(style, t.done)
      : `${paintBytes(style, t.done)} / ${paintBytes(style, t.expected)} ${percent(t.done, t.expected)}`;
  const eta = t.expected === null ? null : etaSeconds(t.expected - t.done, t.rate);
  return `${size}  ${formatRate(t.rate)}  ETA ${formatDuration(eta)}`;
}

/** the run's part: size with percent and ETA */
function runParts(run: RunState) {
  return {
    size: `${formatBytes(run.done)} / ${formatBytes(run.total)}`,
    percent: percent(run.done, run.total),
    eta: formatDuration(etaSeconds(run.total - run.done, run.rate)),
  };
}

/** `all 4.2 GiB / 5.0 GiB 84%  1.0 GiB/s  ETA 00:01` */
export function runFigures(run: RunState): string {
  const parts = runParts(run);
  return `all ${parts.size} ${parts.percent}  ${formatRate(run.rate)}  ETA ${parts.eta}`;
}

/** a finished transfer: `3.0 GiB in 00:03 (1.0 GiB/s)`, or when it failed `1.0 GiB (00:02)` */
export function finishedFigures(t: TransferState, ok: boolean, at: number): string {
  const seconds = (at - t.startedAt) / 1000;
  const took = formatDuration(seconds);
  if (!ok) return `${formatBytes(t.done)} (${took})`;
  const average = seconds > 0 ? t.done / seconds : null;
  return `${formatBytes(t.done)} in ${took} (${formatRate(average)})`;
}

/**
 * Whether output to `stream` may be redrawn in place: a terminal that understands cursor codes.
 * `TERM=dumb` (Emacs' shell, some CI logs) gets plain lines, like a pipe.
 */
export function canRedraw(
  stream: { isTTY?: boolean },
  env: Readonly<Record<string, string | undefined>> = process.env,
): boolean {
  return stream.isTTY === true && env.TERM !== "dumb";
}

export function createProgress(options: ProgressOptions): Progress {
  const { stream, isTTY, style } = options;
  const meter = createMeter(options);
  const plainInterval = options.plainInterval ?? PLAIN_INTERVAL_MS;
  const redrawInterval = options.redrawInterval ?? 100;
  /** when each transfer last printed (or, on a terminal, redrew) */
  const lastOutput = new Map<unknown, number>();
  let lastRedrawAt = 0;

  /** the whole run's bytes, percent and ETA, or null when its size is unknown */
  const runProgress = () => {
    const run = meter.run();
    return run === null ? null : runParts(run);
  };

  const liveLine = (t: TransferState): string => {
    const line = `${style.paint("bold", t.label)}  ${transferFigures(t, style)}`;
    const run = runProgress();
    if (run === null) return line;
    return `${line}${style.paint("dim", "  |  ")}all ${run.size} ${run.percent}  ETA ${run.eta}`;
  };

  /** one line for every running transfer: alone in full, several as name and percent */
  const currentLine = (): string => {
    const all = meter.running();
    if (all.length === 1) return liveLine(all[0] as TransferState);
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
    const run = runProgress();
    if (run === null) return line;
    return `${style.paint("bold", `all ${run.size} ${run.percent}  ETA ${run.eta}`)}${style.paint("dim", "  |  ")}${line}`;
  };

  const plainLine = (t: TransferState): string => {
    const size =
      t.expected === null
        ? formatBytes(t.done)
        : `${formatBytes(t.done)} / ${formatBytes(t.expected)} (${percent(t.done, t.expected)})`;
    const eta = t.expected === null ? null : etaSeconds(t.expected - t.done, t.rate);
    const line = `${t.label}: ${size}, ${formatRate(t.rate)}, ETA ${formatDuration(eta)}`;
    const run = runProgress();
    if (run === null) return line;
    return `${line}; all ${run.size} (${run.percent}), ETA ${run.eta}`;
  };

  const finalLine = (t: TransferState, ok: boolean, at: number): string => {
    const mark = isTTY ? `${style.paint(ok ? "green" : "red", ok ? "✓" : "✗")} ` : "";
    return `${mark}${t.label}: ${ok ? "done," : "failed after"} ${finishedFigures(t, ok, at)}`;
  };

  const redraw = (text: string) => {
    const fitted = options.columns ? truncateVisible(text, options.columns - 1) : text;
    stream.write(`\r${fitted}\u001b[K`);
  };

  return {
    start(label, expectedBytes, key = ONLY) {
      meter.start(label, expectedBytes, key);
      lastOutput.set(key, meter.now());
      if (isTTY) redraw(currentLine());
    },

    update(bytesDone, key = ONLY) {
      const t = meter.update(bytesDone, key);
      const at = meter.now();
      const last = lastOutput.get(key) ?? 0;
      if (isTTY) {
        // one live line for all transfers: redrawn at most every redrawInterval
        if (at - Math.max(last, lastRedrawAt) < redrawInterval) return;
        lastOutput.set(key, at);
        lastRedrawAt = at;
        redraw(currentLine());
        return;
      }
      if (at - last < plainInterval) return;
      lastOutput.set(key, at);
      stream.write(`${plainLine(t)}\n`);
    },

    finish(ok, key = ONLY) {
      const t = meter.finish(key);
      lastOutput.delete(key);
      const line = finalLine(t, ok, meter.now());
      if (!isTTY) {
        stream.write(`${line}\n`);
        return;
      }
      // the finished line stays; the others' live line is drawn again below it
      redraw(line);
      stream.write("\n");
      if (meter.running().length > 0) redraw(currentLine());
    },

    log(line) {
      if (!isTTY || meter.running().length === 0) {
        stream.write(`${line}\n`);
        return;
      }
      // overwrite the live line with the message, then draw the live line again below it
      stream.write(`\r${line}\u001b[K\n`);
      redraw(currentLine());
    },
  };
}
