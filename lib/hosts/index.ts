// Choosing the Host for a side: only the literal `localhost` runs commands directly; every
// other name, 127.0.0.1 included, is an ssh destination (README: Configuration, `*.host`).
// `sudo: yes` puts the side's zfs commands under `sudo -n` (lib/hosts/sudo.ts).

import type { Config, SideConfig } from "../config/types.ts";
import type { Side } from "../zfs/model.ts";
import type { Host } from "./host.ts";
import { LocalHost } from "./local.ts";
import { SshHost, type SshHostOptions } from "./ssh.ts";
import { withSudo } from "./sudo.ts";

export { hostFailure, isSshFailure, SSH_FAILED, sshReason } from "./failure.ts";
export {
  CancelledError,
  type CommandInfo,
  CommandTimeoutError,
  type Host,
  HostDownError,
  type PingOptions,
  type RunOptions,
  type RunResult,
  TIMEOUT_CONFIG_KEY,
} from "./host.ts";
export { LocalHost, runLocal } from "./local.ts";
export { shellJoin, shellQuote } from "./quote.ts";
export { SshHost, type SshHostOptions } from "./ssh.ts";
export { SudoError, sudoArgv, sudoArgvOf, withSudo } from "./sudo.ts";

/** ssh tuning that does not come from the config file (tests, later CLI flags) */
export type HostOptions = Pick<
  SshHostOptions,
  "extraOptions" | "controlPersist" | "connectTimeout"
>;

export function createHost(
  side: Side,
  sideConfig: SideConfig,
  ssh: Config["ssh"],
  options: HostOptions = {},
): Host {
  const host =
    sideConfig.host === "localhost"
      ? new LocalHost(side)
      : new SshHost({ side, sideConfig, ssh, ...options });
  return sideConfig.sudo ? withSudo(host) : host;
}

/** close every host, even when one fails to close; the first error is rethrown */
export async function closeAll(hosts: readonly Host[]): Promise<void> {
  const results = await Promise.allSettled(hosts.map((host) => host.close()));
  const failure = results.find((result) => result.status === "rejected");
  if (failure) throw failure.reason;
}
