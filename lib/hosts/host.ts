// A Host runs argv on one machine: directly for localhost, through ssh otherwise.
// Arguments are always data: nothing is ever interpolated into a shell string unquoted.

import type { Side } from "../zfs/model.ts";

export interface RunResult {
  /** exit code; 255 from ssh means the connection failed */
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** bytes written to the command's stdin (it sees EOF right away without) */
  stdin?: string;
  /**
   * after this many ms the command (its whole process tree here) is killed and the call
   * rejects with CommandTimeoutError; none: no limit
   */
  timeoutMs?: number;
  /** aborting kills the command the same way and the call rejects with CancelledError */
  signal?: AbortSignal;
  /**
   * For a large stdout (a whole tree's listing, 100 MB and more): instead of collected into
   * RunResult.stdout (left "" then), it goes to a temporary file and, once the command ended,
   * is handed to this function piece by piece, whatever the exit code. A file costs a fraction
   * of a pipe read chunk by chunk, and no text of the whole output is ever held. A piece's
   * buffer is reused after the call; the function must not throw.
   */
  readStdout?: (piece: Uint8Array) => void;
}

export interface PingOptions {
  /** how long the answer may take; SshHost's default follows its connect timeout */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface Host {
  /** which side this host serves, for messages: `host is not up: source` */
  readonly side: Side;
  /** "localhost" or the ssh destination as configured */
  readonly name: string;
  readonly isLocal: boolean;
  /** `sudo: yes` on this side: its zfs commands run as `sudo -n zfs …` (lib/hosts/sudo.ts) */
  readonly sudo?: boolean;
  /**
   * run argv on the host and collect its output; never throws for a non-zero exit, only for a
   * timeout (CommandTimeoutError) or a cancel (CancelledError)
   */
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
  /**
   * argv that, run on this machine, runs `argv` on the host: `argv` itself for localhost,
   * `ssh … -- '<quoted>'` otherwise. Used to build transfer pipelines, which put sudo on their
   * zfs stages themselves: wrap only carries argv to the host.
   */
  wrap(argv: readonly string[]): string[];
  /** -v only: a transfer's stage this machine runs for this side, about to run */
  trace?(argv: readonly string[]): void;
  /** check that the host answers; throws HostDownError with ssh's reason (or on timeout) */
  ping(options?: PingOptions): Promise<void>;
  /** end the shared ssh connection, if any */
  close(): Promise<void>;
}

export interface HostDownOptions {
  /** the connection broke while a command ran, rather than not coming up */
  lost?: boolean;
  /** the host's name, for the lost-connection message */
  host?: string;
  /** what kind of ssh failure it was (lib/hosts/failure.ts), when known */
  problem?: string;
  /** the whole message, with its fix, instead of `host is not up: SIDE (reason)` */
  message?: string;
}

/** the host cannot be reached, refused us (authentication, host key), or the connection broke */
export class HostDownError extends Error {
  readonly lost: boolean;
  /** `authentication`, `host-key-unknown`, `connection-refused`, …; "other" when not known */
  readonly problem: string;

  constructor(
    readonly side: Side,
    readonly reason: string,
    options: HostDownOptions = {},
  ) {
    const detail = reason ? ` (${reason})` : "";
    super(
      options.message ??
        (options.lost
          ? `the ssh connection to the ${side}${options.host ? ` (${options.host})` : ""} was lost${reason ? `: ${reason}` : ""}`
          : `host is not up: ${side}${detail}`),
    );
    this.name = "HostDownError";
    this.lost = options.lost === true;
    this.problem = options.problem ?? (this.lost ? "lost" : "other");
  }
}

/** what a command was and where it ran, for the messages of the errors below */
export interface CommandInfo {
  /** the command as the user reads it: unwrapped (`zfs list …`, not `ssh … -- …`) */
  argv: readonly string[];
  /** null when no side is known (a bare runLocal) */
  side: Side | null;
  /** "localhost" or the ssh destination */
  host: string;
}

/** `source (backup.example)`, or just the host when no side is known */
export const where = (info: Pick<CommandInfo, "side" | "host">): string =>
  info.side === null ? info.host : `${info.side} (${info.host})`;

/** the config key that raises the control-command timeout */
export const TIMEOUT_CONFIG_KEY = "command_timeout";

/** a command shown in a message: long ones (a destroy of thousands of snapshots) cut short */
export function showCommand(command: string, max = 300): string {
  return command.length > max
    ? `${command.slice(0, max)}… (${command.length} characters)`
    : command;
}

const seconds = (ms: number) =>
  `${Number.isInteger(ms / 1000) ? ms / 1000 : (ms / 1000).toFixed(1)} s`;

/** a control command did not end in time and was killed */
export class CommandTimeoutError extends Error {
  readonly side: Side | null;
  readonly host: string;
  readonly argv: readonly string[];
  /** the command line, quoted, maybe shortened */
  readonly command: string;
  /** the config key that raises the limit */
  readonly configKey = TIMEOUT_CONFIG_KEY;

  constructor(
    info: CommandInfo,
    command: string,
    readonly timeoutMs: number,
  ) {
    super(
      `timed out after ${seconds(timeoutMs)} and stopped: ${showCommand(command)} on ${where(info)}; raise ${TIMEOUT_CONFIG_KEY} (seconds) in the config if it needs longer`,
    );
    this.name = "CommandTimeoutError";
    this.side = info.side;
    this.host = info.host;
    this.argv = info.argv;
    this.command = command;
  }
}

/** the caller's AbortSignal fired: the command was killed (or never started) */
export class CancelledError extends Error {
  readonly side: Side | null;
  readonly host: string;
  readonly argv: readonly string[];
  readonly command: string;
  /** the signal's reason when it is a string ("SIGINT", "SIGTERM"), else "cancelled" */
  readonly reason: string;

  constructor(info: CommandInfo, command: string, signal?: AbortSignal) {
    super(`cancelled: ${showCommand(command)} on ${where(info)}`);
    this.name = "CancelledError";
    this.side = info.side;
    this.host = info.host;
    this.argv = info.argv;
    this.command = command;
    this.reason = typeof signal?.reason === "string" ? signal.reason : "cancelled";
  }
}
