// The man page abgleich(1) in roff, generated from the command line's model (cli-model.ts): the
// synopsis, every command with its arguments and options, and the global options come from the
// commander program, so the page says what `--help` says. The prose around them is written here.

import type { CliCommand, CliModel, CliOption } from "./cli-model.ts";

/** text for roff: backslashes and leading control characters escaped, hyphens as \- */
export function roff(text: string): string {
  const escaped = text
    .replaceAll("\\", "\\e")
    .replaceAll("-", "\\-")
    .replace(/`([^`]+)`/g, "\\fB$1\\fR");
  return escaped.replace(/^([.'])/gm, "\\&$1");
}

function usage(command: CliCommand): string {
  const args = command.arguments.map((a) => {
    const name = `\\fI${roff(a.name)}\\fR${a.variadic ? "..." : ""}`;
    return a.required ? name : `[${name}]`;
  });
  const options = command.options.length > 1 ? ["[\\fIoptions\\fR]"] : [];
  return [`\\fB${roff(command.name)}\\fR`, ...args, ...options].join(" ");
}

function optionTerm(o: CliOption): string {
  const names = [o.short, o.long].filter((n): n is string => n !== undefined);
  const value = o.valueName
    ? o.value === "optional"
      ? `[=\\fI${roff(o.valueName)}\\fR]`
      : ` \\fI${roff(o.valueName)}\\fR`
    : "";
  return `${names.map((n) => `\\fB${roff(n)}\\fR`).join(", ")}${value}`;
}

function optionList(options: readonly CliOption[]): string[] {
  return options.flatMap((o) => [".TP", optionTerm(o), roff(o.description)]);
}

/** what a few commands need beyond their one-line description */
const COMMAND_NOTES: Readonly<Record<string, string>> = {
  cleanup:
    "`cleanup target` asks a second question (type the target pool's name); without a terminal it needs `--yes --yes-destroy-target`.",
  run: "The bundled workflow `nightly` runs snap, backup and cleanup source, stopping at the first stage that fails.",
};

export interface ManPageOptions {
  readonly version: string;
  /** the page's date, YYYY-MM-DD (the release's, so a rebuild gives the same page) */
  readonly date: string;
}

export function manPage(model: CliModel, { version, date }: ManPageOptions): string {
  const commands = model.commands;
  const changing = commands.filter((c) => c.options.some((o) => o.long === "--yes"));
  const lines = [
    `.\\" ${roff("abgleich(1), generated from the command definitions by scripts/release/man.ts")}`,
    `.TH ABGLEICH 1 "${date}" "abgleich ${roff(version)}" "User Commands"`,
    ".nh",
    ".SH NAME",
    `abgleich \\- ${roff(model.description)}`,
    ".SH SYNOPSIS",
    ".B abgleich",
    ".I command",
    ".I config",
    "[\\fIoptions\\fR]",
    ".br",
    ".B abgleich",
    "[\\fB\\-h\\fR | \\fB\\-V\\fR]",
    ".SH DESCRIPTION",
    roff(
      "abgleich keeps a tree of ZFS datasets backed up into a second pool, on one machine or across machines over ssh, and is installed on one machine only: the others need only ssh and zfs. It snapshots the datasets that changed, shows source and target side by side with conflicts called out, sends what the target lacks (full or incremental, resuming cut transfers), and frees source snapshots once the target holds them.",
    ),
    ".PP",
    roff(
      `Every command takes the configuration file (YAML) first. The changing commands (${changing.map((c) => `\`${c.name}\``).join(", ")}) print every action as a table and ask before they change anything; \`--yes\` answers yes, \`--dry-run\` prints the plan and stops. Without a terminal and without \`--yes\` they refuse instead of waiting for an answer.`,
    ),
    ".PP",
    roff(
      "abgleich never receives with -F, never destroys a dataset, never rolls back, and never destroys a snapshot the other side does not hold.",
    ),
    ".SH COMMANDS",
  ];
  for (const command of commands) {
    lines.push(".TP", usage(command), roff(command.description));
    const note = COMMAND_NOTES[command.name];
    if (note) lines.push(".IP", roff(note));
    const own = command.options.filter((o) => o.long !== "--help");
    if (own.length > 0) lines.push(".RS", ...optionList(own), ".RE");
  }
  lines.push(
    ".SH OPTIONS",
    roff("Accepted by every command, before or after its name."),
    ...optionList(model.globalOptions),
    ".SH EXIT STATUS",
    ".TP",
    ".B 0",
    roff(
      "success, including nothing to do, a dry run that found nothing wrong, `--help` and `--version`",
    ),
    ".TP",
    ".B 1",
    roff(
      "an action or a check failed, a conflict was found (also by a dry run), a host was down, the user declined (or there was no terminal to ask and no `--yes`), or another run holds the run lock",
    ),
    ".TP",
    ".B 2",
    roff(
      "usage or configuration error: no command given, an unknown command or option, a refused argument, a problem in the configuration file; nothing ran",
    ),
    ".TP",
    '.BR 130 " / " 143',
    roff("cancelled by SIGINT / SIGTERM, after the after-hooks ran"),
    ...(commands.some((c) => c.name === "status")
      ? [
          ".PP",
          roff(
            "`status` exits 0 OK, 1 WARNING, 2 CRITICAL or 3 UNKNOWN, as monitoring plugins do.",
          ),
        ]
      : []),
    ".SH ENVIRONMENT",
    ".TP",
    ".B NO_COLOR",
    roff("set (to anything): no colours, like `--no-color` (also `TERM=dumb`, or any pipe)"),
    ".TP",
    ".B ABGLEICH_LOCK_DIR",
    roff(
      "the directory for the run locks; otherwise /run/lock/abgleich for root, $XDG_RUNTIME_DIR/abgleich, or $TMPDIR/abgleich-UID",
    ),
    ".TP",
    ".B ABGLEICH_STATE_DIR",
    roff(
      "the directory for the state files that runs write and `status` reads; otherwise /var/lib/abgleich for root, $XDG_STATE_HOME/abgleich (~/.local/state/abgleich when unset)",
    ),
    ".SH FILES",
    ".TP",
    ".I /etc/abgleich/NAME.yaml",
    roff(
      "the configuration that the systemd units abgleich@NAME.service and abgleich-status@NAME.service use",
    ),
    ".TP",
    ".I /usr/lib/systemd/system/abgleich@.timer",
    roff(
      "runs the nightly workflow once a night: `systemctl enable --now abgleich@NAME.timer`; its output is in `journalctl -u abgleich@NAME`",
    ),
    ".TP",
    ".I /usr/lib/systemd/system/abgleich-status@.timer",
    roff(
      "writes the status for Prometheus every 15 minutes, as abgleich-NAME.prom in node_exporter's textfile folder (Debian's, in /var/lib/prometheus): `systemctl enable --now abgleich-status@NAME.timer`",
    ),
    ".TP",
    ".I /var/lib/abgleich/",
    roff(
      "the state files: each config's last run and last successful run, which `status` reads (as root; see ABGLEICH_STATE_DIR)",
    ),
    ".TP",
    ".I /run/lock/abgleich/",
    roff("the run locks (as root; see ABGLEICH_LOCK_DIR)"),
    ".TP",
    ".I /usr/share/doc/abgleich/examples/",
    roff("example configurations"),
    ".SH EXAMPLES",
    ".nf",
    ".B abgleich demo",
    ".B abgleich compare /etc/abgleich/tank.yaml",
    ".B abgleich backup /etc/abgleich/tank.yaml \\-\\-dry\\-run",
    ".B abgleich run nightly /etc/abgleich/tank.yaml \\-\\-yes",
    ".fi",
    ".SH SEE ALSO",
    ".BR zfs (8),",
    ".BR zfs\\-send (8),",
    ".BR zfs\\-allow (8),",
    ".BR ssh (1),",
    ".BR systemd.timer (5)",
    "",
  );
  return lines.join("\n");
}
