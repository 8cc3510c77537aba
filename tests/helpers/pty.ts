// A command under a real pseudo-terminal (util-linux `script`; Bun has no pty API), driven like
// a user at the keyboard, and a small terminal emulation of what it printed: enough of a
// VT100 (auto-wrap, cursor up, erase below/right, scrolling) to see the final screen as a
// user sees it, stale lines and duplicates included.

import { charWidth, stripAnsi } from "../../lib/cli/render/style.ts";

export interface PtyOptions {
  columns: number;
  rows: number;
  env: Record<string, string>;
  cwd: string;
}

export interface PtyRun {
  /** everything the terminal received so far, escape codes and all */
  output(): string;
  /** resolves once the output without colours matches (from `from` on); rejects after `timeoutMs` */
  waitFor(pattern: RegExp, timeoutMs?: number, from?: number): Promise<void>;
  /** keys as typed: "y\r" for y and Enter, "\u0003" for Ctrl-C */
  type(keys: string): void;
  /** the command's exit code; it is killed (and this rejects) after the timeout */
  exited: Promise<number>;
  /** end it now (a failed test must not leave it holding the pool's lock) */
  kill(): void;
}

export const hasScript = Bun.which("script") !== null;

const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

export function spawnInPty(
  argv: readonly string[],
  options: PtyOptions,
  timeoutMs = 60_000,
): PtyRun {
  const command = `stty cols ${options.columns} rows ${options.rows}; exec ${argv.map(quote).join(" ")}`;
  const child = Bun.spawn(["script", "-qfec", command, "/dev/null"], {
    cwd: options.cwd,
    env: { SHELL: "/bin/sh", ...options.env },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  let output = "";
  const waiters = new Set<() => void>();
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of child.stdout) {
      output += decoder.decode(chunk, { stream: true });
      for (const wake of waiters) wake();
    }
    for (const wake of waiters) wake();
  })();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const exited = (async () => {
    const code = await child.exited;
    clearTimeout(timer);
    await reading;
    if (child.signalCode === "SIGKILL") throw new Error(`timed out; output:\n${output}`);
    return code;
  })();
  exited.catch(() => {});
  return {
    output: () => output,
    waitFor(pattern, wait = 30_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(stripAnsi(output.slice(from)))) {
            waiters.delete(check);
            clearTimeout(late);
            resolve();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            waiters.delete(check);
            clearTimeout(late);
            reject(new Error(`exited before ${pattern}; output:\n${output}`));
          }
        };
        const late = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${pattern} within ${wait} ms; output:\n${output}`));
        }, wait);
        waiters.add(check);
        check();
      });
    },
    type(keys) {
      child.stdin.write(keys);
      child.stdin.flush();
    },
    exited,
    kill: () => child.kill("SIGKILL"),
  };
}

/**
 * The screen (with all scrolled-off rows above it) after `output` was written to a terminal
 * `columns` wide and `rows` high. The cursor cannot move above the visible screen, as on a real
 * terminal: a redraw that counted wrong leaves its traces here.
 */
export function emulate(output: string, columns: number, rows: number): string[] {
  const lines: string[][] = [[]];
  let row = 0;
  let col = 0;
  /** after the last column was written, the next character wraps first (as xterm does) */
  let pendingWrap = false;
  const line = () => {
    while (lines.length <= row) lines.push([]);
    return lines[row] as string[];
  };
  const newline = () => {
    row++;
    line();
  };
  const top = () => Math.max(0, lines.length - rows);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escape codes are the point
  const token = /\u001b\[([?0-9;]*)([A-Za-z])|\u001b\][^\u0007]*\u0007|[\s\S]/gu;
  for (const [text, params = "", verb] of output.matchAll(token)) {
    if (verb !== undefined) {
      if (verb === "A") {
        row = Math.max(top(), row - Number(params || "1"));
        pendingWrap = false;
      } else if (verb === "J") {
        lines.length = row + 1;
        line().length = col;
      } else if (verb === "K") line().length = col;
      // colours (m) and showing or hiding the cursor (?25h/l) leave the text as it is
      continue;
    }
    if (text.startsWith("\u001b")) continue;
    if (text === "\r") {
      col = 0;
      pendingWrap = false;
    } else if (text === "\n") {
      newline();
      pendingWrap = false;
    } else if (text === "\u0007" || text === "\b") {
    } else {
      const width = charWidth(text);
      if (pendingWrap || col + width > columns) {
        newline();
        col = 0;
        pendingWrap = false;
      }
      const cells = line();
      while (cells.length < col) cells.push(" ");
      cells[col] = text;
      if (width === 2) cells[col + 1] = "";
      col += width;
      if (col >= columns) {
        col = columns - 1;
        pendingWrap = true;
      }
    }
  }
  return lines.map((cells) => cells.join("").trimEnd());
}
