// The machine abgleich runs on: argv runs here (through lib/hosts/exec.ts), bounded in time.

import type { Side } from "../zfs/model.ts";
import { execArgv } from "./exec.ts";
import type { CommandInfo, Host, PingOptions, RunOptions, RunResult } from "./host.ts";

export { SPAWN_FAILED } from "./exec.ts";

/**
 * run argv on this machine, collect its output; a command that cannot start gives code 127.
 * `info` names the command in timeout and cancel errors (default: argv itself on localhost).
 */
export function runLocal(
  argv: readonly string[],
  options: RunOptions = {},
  info: CommandInfo = { argv, side: null, host: "localhost" },
): Promise<RunResult> {
  return execArgv(argv, options, info);
}

export class LocalHost implements Host {
  readonly name = "localhost";
  readonly isLocal = true;

  constructor(readonly side: Side) {}

  // a bound field: callers (and tests) pass `host.run` around on its own
  readonly run = (argv: readonly string[], options: RunOptions = {}): Promise<RunResult> =>
    execArgv(argv, options, { argv, side: this.side, host: this.name });

  wrap(argv: readonly string[]): string[] {
    return [...argv];
  }

  /** this machine always answers */
  async ping(_options?: PingOptions): Promise<void> {}

  async close(): Promise<void> {}
}
