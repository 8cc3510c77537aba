// The oracle for the generated man page and completions: the commands and options as `--help`
// prints them (the text a user sees), not the model the generators read.

import type { Command } from "commander";
import { buildProgram } from "../../../lib/cli/main.ts";

/** the lines of a help section (`Options:`, `Commands:`), up to the next blank line */
function section(help: string, title: string): string[] {
  const lines = help.split("\n");
  const start = lines.indexOf(`${title}:`);
  if (start < 0) return [];
  const end = lines.findIndex((line, i) => i > start && line.trim() === "");
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

export function helpText(args: readonly string[] = []): string {
  const program = buildProgram(() => {});
  let command: Command = program;
  for (const name of args) {
    const next = command.commands.find((c) => c.name() === name);
    if (!next) throw new Error(`no command ${name}`);
    command = next;
  }
  return command.helpInformation();
}

/** every command `abgleich --help` lists */
export function helpCommands(): string[] {
  return section(helpText(), "Commands")
    .map((line) => /^ {2}(\S+)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);
}

/** every option name (`-y`, `--yes`) `abgleich [COMMAND] --help` lists */
export function helpOptions(args: readonly string[] = []): string[] {
  const help = helpText(args);
  return [...section(help, "Options"), ...section(help, "Global Options")].flatMap((line) => {
    const match = /^ {2}(-[\w-]+)(?:, (--[\w-]+))?/.exec(line);
    return match ? [match[1], match[2]].filter((n): n is string => n !== undefined) : [];
  });
}
