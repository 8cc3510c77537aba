// What every command shares: output streams, colour, JSON, and turning errors
// into the documented exit codes.

import { ConfigError } from "../config/errors.ts";
import { isCancelError } from "../engine/cancel.ts";
import { EXIT_FAILED, EXIT_USAGE } from "../engine/runner.ts";
import { HostDownError } from "../hosts/host.ts";
import { colorEnabled, createStyle, type Style } from "./render/style.ts";

export { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "../engine/runner.ts";

export interface GlobalFlags {
  json?: boolean;
  color?: boolean;
  yes?: boolean;
  dryRun?: boolean;
}

export interface CommandIo {
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
  style: Style;
  /** the style for stderr, which may be a terminal when stdout is not */
  errStyle: Style;
  json: boolean;
  print(text: string): void;
  warn(text: string): void;
  /** one JSON document or event per line on stdout */
  emit(value: unknown): void;
}

/**
 * The stream with writes that survive a closed reader (`abgleich backup --json | head`): once
 * the pipe is gone, output is dropped and the run goes on to its end instead of crashing
 * halfway through a plan.
 */
export function survivingClosedPipe(stream: NodeJS.WriteStream): NodeJS.WriteStream {
  let closed = false;
  const isClosedPipe = (error: unknown) => (error as NodeJS.ErrnoException)?.code === "EPIPE";
  stream.on("error", (error) => {
    if (isClosedPipe(error)) closed = true;
    else throw error;
  });
  const guarded = Object.create(stream) as NodeJS.WriteStream;
  guarded.write = ((...args: Parameters<NodeJS.WriteStream["write"]>) => {
    if (closed) return false;
    try {
      return stream.write(...args);
    } catch (error) {
      if (!isClosedPipe(error)) throw error;
      closed = true;
      return false;
    }
  }) as NodeJS.WriteStream["write"];
  return guarded;
}

const stdout = survivingClosedPipe(process.stdout);
const stderr = survivingClosedPipe(process.stderr);

export function commandIo(flags: GlobalFlags): CommandIo {
  const out = stdout;
  const err = stderr;
  const json = flags.json === true;
  const colour = (stream: NodeJS.WriteStream) =>
    flags.color !== false && !json && colorEnabled(stream, process.env);
  return {
    out,
    err,
    json,
    style: createStyle(colour(out)),
    errStyle: createStyle(colour(err)),
    print: (text) => {
      out.write(text.endsWith("\n") ? text : `${text}\n`);
    },
    warn: (text) => {
      err.write(text.endsWith("\n") ? text : `${text}\n`);
    },
    emit: (value) => {
      out.write(`${JSON.stringify(value)}\n`);
    },
  };
}

/** the exit code for an error that ended a command, after printing it */
export function reportError(io: CommandIo, error: unknown): number {
  const message = error instanceof Error ? error.message : String(error);
  if (isCancelError(error)) {
    if (io.json) io.emit({ event: "cancelled", reason: (error as { reason?: string }).reason });
    return EXIT_FAILED;
  }
  const code = error instanceof ConfigError ? EXIT_USAGE : EXIT_FAILED;
  if (io.json) {
    io.emit({ event: "error", kind: errorKind(error), message, exitCode: code });
  } else {
    io.warn(`${io.errStyle.paint("red", "error:")} ${message}`);
  }
  return code;
}

function errorKind(error: unknown): string {
  if (error instanceof ConfigError) return "config";
  if (error instanceof HostDownError) return "host-down";
  return error instanceof Error ? error.name : "error";
}
