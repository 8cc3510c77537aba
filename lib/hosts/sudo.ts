// `sudo: yes` on a side: every zfs command abgleich runs there runs as `sudo -n zfs …`, and
// nothing else does (`true`, the wire tools, `zpool get` run as the ssh user), so a sudoers rule
// for zfs alone is enough. `-n` never asks for a password: an unattended run would hang on the
// prompt; sudo fails at once instead, and SudoError names the rule that lets zfs run without one.
//
// Two places put argv on a host: Host.run (queries and single actions: the Host from
// withSudo below) and the transfer pipeline (lib/run/wire.ts, through sudoArgvOf). Both use
// sudoArgv; Host.wrap only carries argv to the host and adds nothing.

import type { Host, RunOptions, RunResult } from "./host.ts";

/** the words put before `zfs`: `-n` (non-interactive) fails instead of prompting */
export const SUDO = ["sudo", "-n"] as const;

/** the example rule in messages and the README: `backup` is the side's ssh (or local) user */
export const SUDOERS_EXAMPLE = "backup ALL=(root) NOPASSWD: /usr/sbin/zfs";

/**
 * For `sh -c SCRIPT` (the bookmark loops of lib/zfs/commands.ts): every `zfs` the script runs
 * by name goes through this function, defined first. sudo itself then runs the real zfs, so the
 * rule for zfs alone still matches; names stay positional parameters, never script text.
 */
const ZFS_UNDER_SUDO = `zfs() { ${SUDO.join(" ")} zfs "$@"; }; `;

/** a script that runs zfs by name: `zfs` as a word followed by its arguments */
const RUNS_ZFS = /(^|[\s;&|({])zfs\s/;

/**
 * argv as a `sudo: yes` side runs it: `zfs …` becomes `sudo -n zfs …`, a `sh -c` script that
 * runs zfs gets the function above; anything else is unchanged.
 */
export function sudoArgv(argv: readonly string[]): string[] {
  const [program, flag, script] = argv;
  if (program === "zfs") return [...SUDO, ...argv];
  if (program === "sh" && flag === "-c" && script !== undefined && RUNS_ZFS.test(script))
    return ["sh", "-c", `${ZFS_UNDER_SUDO}${script}`, ...argv.slice(3)];
  return [...argv];
}

/** argv as `host` runs it: under sudo where its side says so, else as it is */
export const sudoArgvOf = (host: Pick<Host, "sudo">, argv: readonly string[]): string[] =>
  host.sudo === true ? sudoArgv(argv) : [...argv];

/** sudo's own answers when it will not run zfs for us (sudo 1.8/1.9, `-n`) */
const REFUSALS: readonly [RegExp, string][] = [
  [/^sudo: a (password|terminal) is required/m, "wants a password for zfs"],
  [
    /is not allowed to execute|is not in the sudoers file|may not run sudo/m,
    "does not let the user run zfs",
  ],
  [/sudo: (command )?not found|sudo: No such file|cannot run sudo/m, "is not installed"],
];

/** what sudo said when it refused (its own words), or null when sudo ran the command */
export function sudoRefusal(result: Pick<RunResult, "code" | "stderr">): string | null {
  if (result.code === 0) return null;
  for (const [pattern, what] of REFUSALS) if (pattern.test(result.stderr)) return what;
  return null;
}

/** sudo refused to run zfs on a side with `sudo: yes`: what it said, and the fix */
export class SudoError extends Error {
  constructor(
    readonly side: Host["side"],
    readonly host: string,
    readonly reason: string,
    stderr: string,
  ) {
    const said = stderr.trim().split("\n").at(-1) ?? "";
    const fix =
      reason === "is not installed"
        ? `install sudo there, or set \`${side}.sudo: no\``
        : `abgleich runs \`sudo -n zfs …\` and never answers a prompt: let the ${side}'s user run zfs as root without a password with a sudoers line (visudo -f /etc/sudoers.d/abgleich) such as \`${SUDOERS_EXAMPLE}\` (your user, and zfs's path as \`command -v zfs\` prints it there), or set \`${side}.sudo: no\` and grant the permissions with \`zfs allow\``;
    super(`sudo on the ${side} (${host}) ${reason}${said ? ` (${said})` : ""}: ${fix}`);
    this.name = "SudoError";
  }
}

/** the error for a result of `host`, when it was sudo that refused */
export function sudoFailure(
  host: Pick<Host, "side" | "name" | "sudo">,
  result: Pick<RunResult, "code" | "stderr">,
): SudoError | null {
  if (host.sudo !== true) return null;
  const reason = sudoRefusal(result);
  return reason === null ? null : new SudoError(host.side, host.name, reason, result.stderr);
}

/**
 * `host` with every zfs command under `sudo -n`. A refusal throws SudoError (exit 1): it is the
 * same for every later command, so the run stops with the fix instead of failing each one.
 */
export function withSudo(host: Host): Host {
  return {
    side: host.side,
    name: host.name,
    isLocal: host.isLocal,
    sudo: true,
    run: async (argv: readonly string[], options?: RunOptions): Promise<RunResult> => {
      const line = sudoArgv(argv);
      const result = await host.run(line, options);
      // only what ran under sudo can have been refused by it
      const underSudo = line[0] !== argv[0] || line[2] !== argv[2];
      const refused = underSudo
        ? sudoFailure({ side: host.side, name: host.name, sudo: true }, result)
        : null;
      if (refused) throw refused;
      return result;
    },
    wrap: (argv) => host.wrap(argv),
    trace: (argv) => host.trace?.(argv),
    ping: (options) => host.ping(options),
    close: () => host.close(),
  };
}
