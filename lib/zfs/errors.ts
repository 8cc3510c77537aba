// Errors of zfs queries, and how a failed command reads in an action's outcome.

import { hostFailure } from "../hosts/failure.ts";
import type { Host } from "../hosts/host.ts";
import { shellJoin } from "../hosts/quote.ts";

/** a zfs query failed: the command, where, its exit code and stderr */
export class ZfsCommandError extends Error {
  constructor(
    readonly where: string,
    readonly argv: readonly string[],
    readonly code: number,
    readonly stderr: string,
  ) {
    super(`${argv.join(" ")} failed on ${where} (exit ${code}): ${stderr.trim() || "no message"}`);
    this.name = "ZfsCommandError";
  }
}

/** where a host's output came from, for messages: `source (localhost)` */
export const describeHost = (host: Pick<Host, "side" | "name">): string =>
  `${host.side} (${host.name})`;

/**
 * A failed single command as the user reads it (README: Safety, rule 6): the command, its exit
 * code and its stderr, and, when the connection rather than the command failed, what happened
 * to it.
 * `command` is argv, or text already shown in a shortened form.
 */
export function commandFailure(
  host: Pick<Host, "side" | "name" | "isLocal">,
  command: readonly string[] | string,
  code: number,
  stderr: string,
): string {
  const shown = typeof command === "string" ? command : shellJoin(command);
  const lines = [
    `command failed on ${describeHost(host)}: ${shown}`,
    `exit code: ${code}`,
    `stderr: ${stderr.trim() || "(no message)"}`,
  ];
  const failure = hostFailure(host, { code, stderr });
  if (failure) lines.push(failure.message);
  return lines.join("\n");
}
