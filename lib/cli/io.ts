// What every command shares: output streams, colour, JSON, how much to say (--quiet, -v),
// timestamps on log lines, secrets kept out of every line, and turning errors into the
// documented exit codes.

import { fstatSync } from "node:fs";
import { ConfigError } from "../config/errors.ts";
import { isCancelError } from "../engine/cancel.ts";
import { EXIT_FAILED, EXIT_USAGE } from "../engine/exit.ts";
import { redact } from "../engine/redact.ts";
import { localIsoTime } from "../engine/time.ts";
import { HostDownError } from "../hosts/host.ts";
import { outputLost } from "./lost.ts";
import { colorEnabled, createStyle, type Style } from "./render/style.ts";

export { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "../engine/exit.ts";

export interface GlobalFlags {
  json?: boolean;
  color?: boolean;
  yes?: boolean;
  dryRun?: boolean;
  /** errors and one summary line only; nothing at all when there was nothing to do */
  quiet?: boolean;
  /** more detail: every command run on a host */
  verbose?: boolean;
}

/** what a command writes: one document (tree, compare, JSON) or a log of what it does */
export type OutputKind = "document" | "log";

export interface CommandIo {
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
  style: Style;
  /** the style for stderr, which may be a terminal when stdout is not */
  errStyle: Style;
  json: boolean;
  /** `--quiet`: say nothing but errors, warnings and one summary line */
  quiet: boolean;
  /** `-v`: say more (each command run) */
  verbose: boolean;
  /** one id for everything this run emits (`--json` events carry it) */
  runId: string;
  print(text: string): void;
  warn(text: string): void;
  /** an informational line for the log (a plugin's, a workflow's): stderr, an event in a log's
   * JSON mode, nothing with --quiet */
  log(text: string): void;
  /** detail for -v only: stderr, or an event in a log's JSON mode */
  debug(text: string, fields?: Record<string, unknown>): void;
  /** one JSON document or event per line on stdout */
  emit(value: unknown): void;
  /** one NDJSON event: its name, the run id and the time, then `fields` (docs/events.schema.json) */
  event(name: string, fields?: Record<string, unknown>): void;
}

/**
 * The stream as a log: every line begins with a timestamp, and nothing secret gets through
 * (lib/engine/redact.ts). A line written in several pieces gets one stamp, at its start.
 */
export function logStream(
  stream: NodeJS.WriteStream,
  options: { timestamps: boolean; now?: () => Date },
): NodeJS.WriteStream {
  const now = options.now ?? (() => new Date());
  let atLineStart = true;
  const wrapped = Object.create(stream) as NodeJS.WriteStream;
  wrapped.write = ((chunk: unknown, ...rest: unknown[]) => {
    let text = typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString();
    text = redact(text);
    if (options.timestamps && text !== "") {
      const stamp = `${localIsoTime(now())} `;
      // a stamp before every line that begins in this piece, none after its last newline
      text = text.replace(/^(?=[^\n])/gm, (_match, offset: number) =>
        offset === 0 && !atLineStart ? "" : stamp,
      );
      atLineStart = text.endsWith("\n");
    }
    return (stream.write as (...args: unknown[]) => boolean).call(stream, text, ...rest);
  }) as NodeJS.WriteStream["write"];
  return wrapped;
}

/**
 * Log lines are stamped where no terminal shows them, unless they go to the journal, which
 * stamps them itself (systemd sets JOURNAL_STREAM to the device and inode of that stream).
 */
export function wantsTimestamps(
  stream: { isTTY?: boolean; fd?: number },
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  if (stream.isTTY === true) return false;
  const journal = env.JOURNAL_STREAM;
  if (journal && typeof stream.fd === "number") {
    try {
      const { dev, ino } = fstatSync(stream.fd);
      if (journal === `${dev}:${ino}`) return false;
    } catch {
      // not a file descriptor we can look at: stamp it
    }
  }
  return true;
}

/**
 * The stream with writes that survive a closed reader (`abgleich backup --json | head`): once
 * the pipe is gone, output is dropped and the run goes on to its end instead of crashing
 * halfway through a plan. Any other write error (a log on a full disk) drops the output too,
 * the run going on, and is kept for lostOutput.
 */
export function survivingClosedPipe(
  stream: NodeJS.WriteStream,
  name = "stdout",
): NodeJS.WriteStream {
  let closed = false;
  const failed = (error: unknown) => {
    closed = true;
    outputLost(name, error as NodeJS.ErrnoException);
  };
  stream.on("error", failed);
  const guarded = Object.create(stream) as NodeJS.WriteStream;
  guarded.write = ((...args: Parameters<NodeJS.WriteStream["write"]>) => {
    if (closed) return false;
    try {
      return stream.write(...args);
    } catch (error) {
      failed(error);
      return false;
    }
  }) as NodeJS.WriteStream["write"];
  return guarded;
}

const stdout = survivingClosedPipe(process.stdout);
const stderr = survivingClosedPipe(process.stderr, "stderr");

/**
 * The output of one command. A `log` (the changing commands) is stamped with the time where
 * no terminal shows it; a `document` (tree, compare, the demo) is not. Every line of either is
 * redacted.
 */
export function commandIo(flags: GlobalFlags, kind: OutputKind = "document"): CommandIo {
  const json = flags.json === true;
  // JSON lines carry their own time; a document is read as a whole
  const stamp = (stream: NodeJS.WriteStream) =>
    kind === "log" && !json && wantsTimestamps(stream, process.env);
  const out = logStream(stdout, { timestamps: stamp(process.stdout) });
  const err = logStream(stderr, { timestamps: stamp(process.stderr) });
  const quiet = flags.quiet === true;
  const verbose = flags.verbose === true && !quiet;
  const runId = crypto.randomUUID();
  const colour = (stream: NodeJS.WriteStream) =>
    flags.color !== false && !json && colorEnabled(stream, process.env);
  const line = (text: string) => (text.endsWith("\n") ? text : `${text}\n`);
  const emit = (value: unknown) => {
    out.write(`${JSON.stringify(value)}\n`);
  };
  const event = (name: string, fields: Record<string, unknown> = {}) =>
    emit({ event: name, runId, time: localIsoTime(new Date(), true), ...fields });
  return {
    out,
    err,
    json,
    quiet,
    verbose,
    runId,
    // tables fit a terminal; piped output is never cut
    style: createStyle(colour(out), out.isTTY ? out.columns : undefined),
    errStyle: createStyle(colour(err)),
    print: (text) => {
      out.write(line(text));
    },
    warn: (text) => {
      err.write(line(text));
    },
    // a log's lines are events with --json; a document's stdout is the one document, so its
    // lines go to stderr whatever the format
    log: (text) => {
      if (json && kind === "log") event("log", { text });
      else if (!quiet) err.write(line(text));
    },
    debug: (text, fields = {}) => {
      if (!verbose) return;
      if (json && kind === "log") event("debug", { text, ...fields });
      else err.write(line(text));
    },
    emit,
    event,
  };
}

/** the `error` event of an error that ends the command, with its exit code */
export function errorEvent(io: CommandIo, error: unknown, code: number): void {
  const message = error instanceof Error ? error.message : String(error);
  const problem = error instanceof HostDownError ? { problem: error.problem } : {};
  io.event("error", { kind: errorKind(error), message, exitCode: code, ...problem });
}

/** the exit code for an error that ended a command, after printing it */
export function reportError(io: CommandIo, error: unknown): number {
  const message = error instanceof Error ? error.message : String(error);
  if (isCancelError(error)) {
    if (io.json)
      io.event("cancelled", { reason: (error as { reason?: string }).reason ?? "cancelled" });
    return EXIT_FAILED;
  }
  const code = error instanceof ConfigError ? EXIT_USAGE : EXIT_FAILED;
  if (io.json) errorEvent(io, error, code);
  else {
    io.warn(`${io.errStyle.paint("red", "error:")} ${message}`);
  }
  return code;
}

function errorKind(error: unknown): string {
  if (error instanceof ConfigError) return "config";
  if (error instanceof HostDownError) return "host-down";
  return error instanceof Error ? error.name : "error";
}
