// bash, zsh and fish completions for abgleich, generated from the command line's model
// (cli-model.ts): every command, its options and the global ones, a configuration file where a
// command takes one, `source`/`target` for a side, the bundled workflows for `run`.

import type { CliArgument, CliCommand, CliModel, CliOption, Completion } from "./cli-model.ts";

const HEADER = "generated from abgleich's command definitions by scripts/release/completions.ts";

/** the command's own options and the global ones (globals are accepted after the command too) */
function optionsOf(model: CliModel, command: CliCommand): CliOption[] {
  const own = new Set(command.options.map((o) => o.long ?? o.short));
  return [...command.options, ...model.globalOptions.filter((o) => !own.has(o.long ?? o.short))];
}

function optionWords(options: readonly CliOption[]): string[] {
  return options.flatMap((o) => [o.short, o.long].filter((w): w is string => w !== undefined));
}

/** options whose value is the next word, of every command (a shell skips that word) */
function valuedOptions(model: CliModel): CliOption[] {
  const all = [...model.globalOptions, ...model.commands.flatMap((c) => c.options)];
  const seen = new Set<string>();
  return all.filter((o) => {
    const key = o.long ?? o.short ?? o.flags;
    if (o.value !== "required" || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

// --- bash ---

function bashWords(words: readonly string[]): string {
  return words.join(" ");
}

function bashCompletion(completion: Completion): string {
  switch (completion.kind) {
    case "none":
      return ":";
    case "config":
      return '_abgleich_config "$cur"';
    case "file":
      return '_abgleich_files "$cur"';
    case "words": {
      const words = `COMPREPLY+=($(compgen -W "${bashWords(completion.words)}" -- "$cur"))`;
      return completion.files ? `${words}; _abgleich_files "$cur"` : words;
    }
  }
}

function bashArguments(args: readonly CliArgument[]): string {
  const cases = args.map((a, index) => {
    const label = a.variadic ? "*" : String(index);
    return `        ${label}) ${bashCompletion(a.completion)} ;;`;
  });
  return ["      case $n in", ...cases, "      esac"].join("\n");
}

export function bash(model: CliModel): string {
  const name = model.name;
  const valued = valuedOptions(model);
  const commandCases = model.commands.map((c) =>
    [
      `    ${c.name})`,
      `      [[ $cur == -* ]] && { COMPREPLY=($(compgen -W "${bashWords(optionWords(optionsOf(model, c)))}" -- "$cur")); return; }`,
      bashArguments(c.arguments),
      "      ;;",
    ].join("\n"),
  );
  const valueCases = valued.map(
    (o) => `    ${optionWords([o]).join("|")}) ${bashCompletion(o.completion)}; return ;;`,
  );
  return `# bash completion for ${name}: ${HEADER}

_abgleich_files() { # files and directories
  local IFS=$'\\n'
  compopt -o filenames 2>/dev/null
  COMPREPLY+=($(compgen -f -- "$1"))
}

_abgleich_config() { # configuration files (*.yaml, *.yml) and directories to descend into
  local IFS=$'\\n'
  compopt -o filenames 2>/dev/null
  COMPREPLY+=($(compgen -f -X '!*.yaml' -- "$1") $(compgen -f -X '!*.yml' -- "$1") $(compgen -d -- "$1"))
}

_abgleich() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
  local cmd="" word i n=0
  COMPREPLY=()
  # the command is the first word that is not an option; n counts the arguments after it
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=\${COMP_WORDS[i]}
    case $word in
${valued.length > 0 ? `      ${valued.flatMap((o) => optionWords([o])).join("|")}) i=$((i + 1)) ;;\n` : ""}      -*) ;;
      *) if [[ -z $cmd ]]; then cmd=$word; else n=$((n + 1)); fi ;;
    esac
  done
${valueCases.length > 0 ? `  case $prev in\n${valueCases.join("\n")}\n  esac\n` : ""}  case $cmd in
    "")
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "${bashWords(optionWords(model.globalOptions))}" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "${bashWords(model.commands.map((c) => c.name))}" -- "$cur"))
      fi
      ;;
${commandCases.join("\n")}
  esac
}

complete -F _abgleich ${name}
`;
}

// --- zsh ---

/** text inside a single-quoted zsh word */
const zq = (text: string): string => text.replaceAll("'", "'\\''");
/** an _arguments description: brackets escaped */
const zdesc = (text: string): string => zq(text.replace(/([[\]])/g, "\\$1"));

function zshAction(completion: Completion): string {
  switch (completion.kind) {
    case "none":
      return " ";
    case "config":
      return '_files -g "*.(yaml|yml)(-.)"';
    case "file":
      return "_files";
    case "words":
      return completion.files
        ? `{compadd -- ${completion.words.join(" ")}; _files}`
        : `(${completion.words.join(" ")})`;
  }
}

/** one _arguments spec per name; long names take a value after `=` or as the next word */
function zshSpec(name: string, o: CliOption): string {
  const long = name.startsWith("--");
  const marker =
    o.value === "required" ? (long ? "=" : "+") : o.value === "optional" ? (long ? "=-" : "-") : "";
  const value =
    o.value === "none"
      ? ""
      : `:${o.value === "optional" ? ":" : ""}${o.valueName ?? "value"}:${zshAction(o.completion)}`;
  return `'${zq(`${name}${marker}`)}[${zdesc(o.description)}]${zq(value)}'`;
}

function zshOption(o: CliOption): string {
  const names = optionWords([o]);
  if (names.length === 1) return zshSpec(names[0] as string, o);
  // `-y` and `--yes` exclude each other
  return `'(${names.join(" ")})'{${names.map((n) => zshSpec(n, o)).join(",")}}`;
}

function zshArgument(a: CliArgument, index: number): string {
  const position = a.variadic ? "*" : String(index + 1);
  const optional = a.required ? "" : ":";
  return `'${position}:${optional}${zq(a.name)}:${zq(zshAction(a.completion))}'`;
}

export function zsh(model: CliModel): string {
  const describe = model.commands.map(
    (c) => `    '${zq(c.name)}:${zq(c.description.replace(/:/g, "\\:"))}'`,
  );
  const commandCases = model.commands.map((c) => {
    const specs = [...optionsOf(model, c).map(zshOption), ...c.arguments.map(zshArgument)];
    return `      ${c.name})\n        _arguments -s ${specs.join(" \\\n          ")} && ret=0\n        ;;`;
  });
  return `#compdef ${model.name}
# zsh completion for ${model.name}: ${HEADER}

local curcontext=$curcontext state line ret=1
local -a commands
commands=(
${describe.join("\n")}
)

_arguments -C -s \\
  ${model.globalOptions.map(zshOption).join(" \\\n  ")} \\
  '1:command:->command' \\
  '*::argument:->argument' && ret=0

case $state in
  command)
    _describe -t commands '${model.name} command' commands && ret=0
    ;;
  argument)
    curcontext=\${curcontext%:*:*}:${model.name}-$words[1]:
    case $words[1] in
${commandCases.join("\n")}
    esac
    ;;
esac

return ret
`;
}

// --- fish ---

/** a single-quoted fish word */
const fq = (text: string): string => `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;

function fishArguments(completion: Completion): string {
  switch (completion.kind) {
    case "none":
      return "";
    case "config":
      return " -k -a '(__fish_complete_suffix .yml; __fish_complete_suffix .yaml)'";
    case "file":
      return " -F";
    case "words":
      return ` -a ${fq(completion.words.join(" "))}${completion.files ? " -F" : ""}`;
  }
}

function fishOption(o: CliOption, condition: string): string {
  const short = o.short ? ` -s ${o.short.slice(1)}` : "";
  const long = o.long ? ` -l ${o.long.slice(2)}` : "";
  const value = o.value === "required" ? ` -r${fishArguments(o.completion)}` : "";
  const when = condition ? ` -n ${fq(condition)}` : "";
  return `complete -c ${"abgleich"}${when}${short}${long}${value} -d ${fq(o.description)}`;
}

export function fish(model: CliModel): string {
  const name = model.name;
  const valued = valuedOptions(model).flatMap((o) => optionWords([o]));
  const lines: string[] = [
    `# fish completion for ${name}: ${HEADER}`,
    "",
    "function __abgleich_args --description 'the words before the cursor that are not options: the command, then its arguments'",
    "    set -l skip 0",
    "    for word in (commandline -opc)[2..-1]",
    "        if test $skip = 1",
    "            set skip 0",
    "            continue",
    "        end",
    "        switch $word",
    ...(valued.length > 0
      ? [`            case ${valued.join(" ")}`, "                set skip 1"]
      : []),
    "            case '-*'",
    "            case '*'",
    "                echo $word",
    "        end",
    "    end",
    "end",
    "",
    "function __abgleich_command --description 'true when the command is one of the arguments'",
    "    set -l args (__abgleich_args)",
    "    test (count $args) -ge 1; and contains -- $args[1] $argv",
    "end",
    "",
    "function __abgleich_argument --argument-names command index variadic --description 'true when the word being completed is argument INDEX (1 is the first) of COMMAND'",
    "    set -l args (__abgleich_args)",
    "    test (count $args) -ge 1; and test $args[1] = $command; or return 1",
    '    if test -n "$variadic"',
    "        test (count $args) -ge $index",
    "    else",
    "        test (count $args) -eq $index",
    "    end",
    "end",
    "",
    `complete -c ${name} -f`,
    ...model.globalOptions.map((o) => fishOption(o, "")),
    ...model.commands.map(
      (c) =>
        `complete -c ${name} -n 'test (count (__abgleich_args)) -eq 0' -a ${c.name} -d ${fq(c.description)}`,
    ),
  ];
  for (const c of model.commands) {
    const globals = new Set(model.globalOptions.map((o) => o.long ?? o.short));
    for (const o of c.options) {
      if (!globals.has(o.long ?? o.short))
        lines.push(fishOption(o, `__abgleich_command ${c.name}`));
    }
    c.arguments.forEach((a, index) => {
      const values = fishArguments(a.completion);
      if (!values) return;
      const condition = `__abgleich_argument ${c.name} ${index + 1}${a.variadic ? " variadic" : ""}`;
      lines.push(`complete -c ${name} -n ${fq(condition)}${values} -d ${fq(a.name)}`);
    });
  }
  return `${lines.join("\n")}\n`;
}
