// The command line as data, read from the commander program itself (what `--help` shows), so the
// man page and the shell completions are generated from it and cannot drift from the real CLI.

import type { Argument, Command, Option } from "commander";
import { buildProgram } from "../../lib/cli/main.ts";
import { BUNDLED_WORKFLOWS } from "../../workflows/index.ts";

/** what a shell offers for a positional argument or an option's value */
export type Completion =
  | { kind: "none" }
  | { kind: "config" } // *.yaml / *.yml files
  | { kind: "file" }
  | { kind: "words"; words: readonly string[]; files?: boolean };

export interface CliOption {
  /** e.g. `-y, --yes`, `--wait [duration]`, as in `--help` */
  readonly flags: string;
  readonly short?: string;
  readonly long?: string;
  readonly description: string;
  /** `required`: the next word is the value; `optional`: only `--opt=value` */
  readonly value: "none" | "required" | "optional";
  readonly valueName?: string;
  readonly completion: Completion;
}

export interface CliArgument {
  readonly name: string;
  readonly required: boolean;
  readonly variadic: boolean;
  readonly description: string;
  readonly completion: Completion;
}

export interface CliCommand {
  readonly name: string;
  readonly description: string;
  readonly arguments: readonly CliArgument[];
  readonly options: readonly CliOption[];
}

export interface CliModel {
  readonly name: string;
  readonly description: string;
  readonly globalOptions: readonly CliOption[];
  readonly commands: readonly CliCommand[];
}

const SIDES = ["source", "target"] as const;

/** completion by the argument's name: the names in lib/cli/main.ts say what they take */
function argumentCompletion(name: string, description: string): Completion {
  if (name === "config") return { kind: "config" };
  if (name === "side") return { kind: "words", words: SIDES };
  if (name === "workflow") {
    return { kind: "words", words: Object.keys(BUNDLED_WORKFLOWS), files: true };
  }
  if (name === "command") return { kind: "none" }; // `help [command]`: filled in by the caller
  return /\bfile\b|\bpath\b/i.test(`${name} ${description}`) ? { kind: "file" } : { kind: "none" };
}

function option(o: Option): CliOption {
  const valueName = /[<[]([^>\]]+)[>\]]/.exec(o.flags)?.[1];
  const value = o.required ? "required" : o.optional ? "optional" : "none";
  const completion: Completion =
    value === "none"
      ? { kind: "none" }
      : o.argChoices
        ? { kind: "words", words: o.argChoices }
        : /file|path|dir/i.test(`${valueName ?? ""} ${o.long ?? ""}`)
          ? { kind: "file" }
          : { kind: "none" };
  return {
    flags: o.flags,
    ...(o.short ? { short: o.short } : {}),
    ...(o.long ? { long: o.long } : {}),
    description: o.description,
    value,
    ...(valueName ? { valueName } : {}),
    completion,
  };
}

function argument(a: Argument): CliArgument {
  return {
    name: a.name(),
    required: a.required,
    variadic: a.variadic,
    description: a.description,
    completion: argumentCompletion(a.name(), a.description),
  };
}

/** the model of a commander program: its visible commands (with `help`) and options */
export function cliModel(program: Command = buildProgram(() => {})): CliModel {
  const help = program.createHelp();
  const visible = help.visibleCommands(program);
  const names = visible.map((c) => c.name());
  const commands = visible.map((command): CliCommand => {
    const args = command.registeredArguments.map(argument);
    return {
      name: command.name(),
      description: help.subcommandDescription(command),
      // `help [command]` completes the other commands' names
      arguments:
        command.name() === "help"
          ? args.map((a) => ({
              ...a,
              completion: { kind: "words", words: names.filter((n) => n !== "help") },
            }))
          : args,
      options: help.visibleOptions(command).map(option),
    };
  });
  return {
    name: program.name(),
    description: program.description(),
    globalOptions: help.visibleOptions(program).map(option),
    commands,
  };
}
