// "Did the connection fail, rather than the command?" decided in one place, for single commands
// and pipeline stages alike; and when it did, which kind of failure it was, so the message says
// what to fix (a key, a host key, a port) instead of only "host is not up".

import { type Host, HostDownError, type RunResult } from "./host.ts";

/** ssh's exit code for its own failures (connection refused, auth, cut connection) */
export const SSH_FAILED = 255;

/** messages ssh itself prints when it, not the remote command, failed */
const SSH_OWN_FAILURE =
  /^ssh: |^kex_exchange_identification|^client_loop: |^mux_client|^Control socket|^Timeout, server .* not responding|Connection (refused|closed|reset|timed out)|closed by remote host|Permission denied|Too many authentication failures|Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|Could not resolve hostname|Broken pipe|No route to host|Network is unreachable/m;

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

/** what went wrong with ssh, each with its own fix */
export type SshProblem =
  /** the server refused every key offered (`Permission denied (publickey…)`) */
  | "authentication"
  /** the host's key is not in known_hosts (BatchMode cannot ask) */
  | "host-key-unknown"
  /** the host's key differs from the one in known_hosts */
  | "host-key-changed"
  | "name-unresolved"
  | "connection-refused"
  | "no-route"
  | "timeout"
  | "other";

// checked in this order: a changed host key also prints "Host key verification failed."
const PROBLEMS: readonly [SshProblem, RegExp][] = [
  ["host-key-changed", /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/i],
  ["host-key-unknown", /Host key verification failed|No (ED25519|RSA|ECDSA)? ?host key is known/i],
  ["authentication", /Permission denied \(|Too many authentication failures/i],
  ["name-unresolved", /Could not resolve hostname|Name or service not known/i],
  ["connection-refused", /Connection refused/i],
  ["no-route", /No route to host|Network is unreachable/i],
  ["timeout", /Connection timed out|Operation timed out|^Timeout, server .* not responding/im],
];

/** the kind of ssh failure ssh's stderr tells of */
export function classifySshFailure(stderr: string): SshProblem {
  for (const [problem, pattern] of PROBLEMS) if (pattern.test(stderr)) return problem;
  return "other";
}

export interface FailureContext {
  side: Host["side"];
  /** the ssh destination as configured (an alias, a name or an address) */
  host: string;
  /** ssh's last line, quoted at the end of the message */
  reason: string;
}

/**
 * The message for a failed ssh connection: what happened, where, and what to do about it.
 * Authentication and host keys are not "host is not up": the host answered, and the fix is on
 * this machine or in its authorized_keys, not in the network.
 */
export function sshFailureMessage(
  problem: SshProblem,
  stderr: string,
  context: FailureContext,
): string {
  const { side, host, reason } = context;
  const said = reason === "" ? "" : ` (${reason})`;
  const notUp = (fix: string) => `host is not up: ${side}${said}: ${fix}`;
  switch (problem) {
    case "authentication": {
      // ssh names the user it tried: `root@nas: Permission denied (publickey).`
      const login = /^([^\s@]+@[^\s:]+): Permission denied/m.exec(stderr)?.[1] ?? host;
      return `authentication failed for ${login} (${side}): the server refused this machine's ssh key${said}. Add the public key (e.g. ~/.ssh/id_ed25519.pub) to ~/.ssh/authorized_keys of that user on ${host}, or name the right key with IdentityFile in your ssh config (ssh.config_file); abgleich never asks for a password`;
    }
    case "host-key-unknown":
      return `the host key of ${host} (${side}) is not known here, so ssh refused to connect${said}. Check its fingerprint, then accept it once by hand: ssh ${host} true (or add it to ~/.ssh/known_hosts with ssh-keyscan)`;
    case "host-key-changed":
      return `the host key of ${host} (${side}) has CHANGED since it was accepted: the host was reinstalled, or someone is in the way${said}. Compare the new key's fingerprint with the host's own, then remove the old key (ssh-keygen -R ${host}) and accept the new one by hand`;
    case "name-unresolved":
      return notUp(
        `the name ${host} cannot be resolved; check ${side}.host in the config (or the alias in your ssh config) and DNS`,
      );
    case "connection-refused":
      return notUp(
        `nothing accepts ssh connections there; is sshd running on ${host}, and on this port? (${side}.port in the config)`,
      );
    case "no-route":
      return notUp(`no route to ${host}: the host is off or its network is down`);
    case "timeout":
      return notUp(`${host} did not answer: the host is off, or a firewall drops ssh`);
    default:
      return `host is not up: ${side}${said}`;
  }
}

/**
 * The connection failure behind a result of `host`, or null when the command itself answered.
 * - a local host never has one;
 * - ssh's exit code 255 with one of ssh's own messages: the host is not up, or refused us
 *   (classified, with the fix);
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
    const reason = sshReason(result.stderr);
    const problem = classifySshFailure(result.stderr);
    return new HostDownError(host.side, reason, {
      problem,
      message: sshFailureMessage(problem, result.stderr, {
        side: host.side,
        host: host.name,
        reason,
      }),
    });
  }
  if (result.stderr.trim() === "") {
    return new HostDownError(host.side, "", { lost: true, host: host.name });
  }
  return null;
}
