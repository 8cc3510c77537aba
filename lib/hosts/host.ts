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
  /** bytes written to the command's stdin */
  stdin?: string;
}

export interface Host {
  /** which side this host serves, for messages: `host is not up: source` */
  readonly side: Side;
  /** "localhost" or the ssh destination as configured */
  readonly name: string;
  readonly isLocal: boolean;
  /** run argv on the host and collect its output; never throws for a non-zero exit */
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
  /**
   * argv that, run on this machine, runs `argv` on the host: `argv` itself for localhost,
   * `ssh … -- '<quoted>'` otherwise. Used to build transfer pipelines.
   */
  wrap(argv: readonly string[]): string[];
  /** check that the host answers; throws HostDownError with ssh's reason */
  ping(): Promise<void>;
  /** end the shared ssh connection, if any */
  close(): Promise<void>;
}

export class HostDownError extends Error {
  constructor(
    readonly side: Side,
    readonly reason: string,
  ) {
    super(`host is not up: ${side}${reason ? ` (${reason})` : ""}`);
    this.name = "HostDownError";
  }
}
