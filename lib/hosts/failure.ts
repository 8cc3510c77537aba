// "Did the connection fail, rather than the command?" decided in one place, for single commands
// and pipeline stages alike.

import { type Host, HostDownError, type RunResult } from "./host.ts";

/** ssh's exit code for its own failures (connection refused, auth, cut connection) */
export const SSH_FAILED = 255;

/** messages ssh itself prints when it, not the remote command, failed */
const SSH_OWN_FAILURE =
  /^ssh: |^kex_exchange_identification|^client_loop: |^mux_client|^Control socket|^Timeout, server .* not responding|Connection (refused|closed|reset|timed out)|closed by remote host|Permission denied|Host key verification failed|Could not resolve hostname|Broken pipe|No route to host|Network is unreachable/m;

/**
 * Did ssh fail rather than the remote command? Exit 255 alone is not enough: `zfs send -t`
 * with a corrupt token also exits 255, with its own message ("cannot resume send: …").
 */
export function isSshFailure(result: Pick<RunResult, "code" | "stderr">): boolean {
  return result.code === SSH_FAILED && SSH_OWN_FAILURE.test(result.stderr);
}

/** the last non-empty line of ssh's stderr: the reason shown in `host is not up: …` */
export function sshReason(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
  return lines.at(-1) ?? "";
}

/**
 * The connection failure behind a result of `host`, or null when the command itself answered.
 * - a local host never has one;
 * - ssh's exit code 255 with one of ssh's own messages: the host is not up (ssh's reason);
 * - 255 without any message: the connection was lost (ssh dies silently when the other end
 *   vanishes; a remote command killed by a signal looks the same, and is rare);
 * - anything else, including 255 with the command's own message, is the command's answer.
 */
export function hostFailure(
  host: Pick<Host, "side" | "name" | "isLocal">,
  result: Pick<RunResult, "code" | "stderr">,
): HostDownError | null {
  if (host.isLocal || result.code !== SSH_FAILED) return null;
  if (SSH_OWN_FAILURE.test(result.stderr)) {
    return new HostDownError(host.side, sshReason(result.stderr));
  }
  if (result.stderr.trim() === "") {
    return new HostDownError(host.side, "", { lost: true, host: host.name });
  }
  return null;
}
