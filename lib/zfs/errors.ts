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
    /** what to do about it, when that is known */
    hint: string | null = null,
  ) {
    super(
      `${argv.join(" ")} failed on ${where} (exit ${code}): ${stderr.trim() || "no message"}${hint ? `; ${hint}` : ""}`,
    );
    this.name = "ZfsCommandError";
  }
}

/**
 * `zfs` or `zpool` could not be found (exit 127): most often a PATH without /usr/sbin and
 * /sbin, where they live — cron's, or the one ssh gives a non-interactive command on Debian
 */
export function missingProgramHint(
  host: Pick<Host, "name" | "isLocal">,
  code: number,
  stderr: string,
): string | null {
  const program = /\b(zfs|zpool)\b[^\n]*(not found|No such file)|cannot run (zfs|zpool)/.exec(
    stderr,
  );
  if (code !== 127 || program === null) return null;
  const name = program[1] ?? program[3];
  return host.isLocal
    ? `${name} is not on this PATH (${process.env.PATH ?? ""}): cron and other minimal environments lack /usr/sbin and /sbin, where it lives; set PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin where abgleich is started`
    : `${name} is not on the PATH commands over ssh get on ${host.name}: install it there, or give that PATH /usr/sbin and /sbin (e.g. in ${host.name}'s /etc/environment)`;
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
  const missing = missingProgramHint(host, code, stderr);
  if (missing) lines.push(missing);
  return lines.join("\n");
}
