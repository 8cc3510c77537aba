// The generated shell completions, run in the real shells: every command and option that
// `--help` lists is offered, arguments complete to what they take. bash always; fish and zsh
// where installed (.ci/run installs them).

import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliModel } from "../../../scripts/release/cli-model.ts";
import { bash, fish, zsh } from "../../../scripts/release/completions.ts";
import { helpCommands, helpOptions } from "./help.ts";

const dir = mkdtempSync(join(tmpdir(), "abgleich-completions-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const model = cliModel();
const files = { bash: join(dir, "abgleich.bash"), fish: join(dir, "abgleich.fish") };
writeFileSync(files.bash, bash(model));
writeFileSync(files.fish, fish(model));
// a working directory with a config, a file that is none, and a directory
const cwd = join(dir, "cwd");
mkdirSync(join(cwd, "configs"), { recursive: true });
writeFileSync(join(cwd, "backup.yaml"), "");
writeFileSync(join(cwd, "notes.txt"), "");

const has = (tool: string) => Bun.which(tool) !== null;

/** what bash's completion offers for the command line `words` (the last one being completed) */
function bashComplete(...words: string[]): string[] {
  const script = `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _abgleich; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const child = Bun.spawnSync(["bash", "-c", script, "bash", files.bash, "abgleich", ...words], {
    cwd,
    stderr: "pipe",
  });
  expect(child.stderr.toString()).toBe("");
  expect(child.exitCode).toBe(0);
  return child.stdout.toString().split("\n").filter(Boolean);
}

/** what fish offers for `commandline` (its first column) */
function fishComplete(commandline: string): string[] {
  const child = Bun.spawnSync(
    ["fish", "--no-config", "-c", `source $argv[1]; complete -C $argv[2]`, files.fish, commandline],
    { cwd, stderr: "pipe" },
  );
  expect(child.stderr.toString()).toBe("");
  return child.stdout
    .toString()
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split("\t")[0] as string);
}

const commands = helpCommands();
const commandsWithOptions = commands.filter((c) => c !== "help");

describe("bash", () => {
  test("offers every command of --help, and the ones a prefix matches", () => {
    expect(commands.length).toBeGreaterThan(5);
    expect(bashComplete("").sort()).toEqual([...commands].sort());
    expect(bashComplete("ba")).toEqual(["backup"]);
    expect(bashComplete("--json", "co")).toEqual(["compare"]);
  });

  test("offers every option of each command's --help, and the global ones", () => {
    const globals = helpOptions();
    expect(bashComplete("-").sort()).toEqual([...globals].sort());
    for (const command of commandsWithOptions) {
      const offered = bashComplete(command, "-");
      for (const option of [...helpOptions([command]), ...globals]) {
        expect({ command, option, offered: offered.includes(option) }).toEqual({
          command,
          option,
          offered: true,
        });
      }
    }
  });

  test("arguments: configuration files, a side, the bundled workflows, commands for help", () => {
    expect(bashComplete("tree", "").sort()).toEqual(["backup.yaml", "configs"]);
    expect(bashComplete("tree", "backup.yaml", "")).toEqual(["source", "target"]);
    expect(bashComplete("cleanup", "--yes", "backup.yaml", "t")).toEqual(["target"]);
    expect(bashComplete("run", "")).toContain("nightly");
    expect(bashComplete("run", "nightly", "").sort()).toEqual(["backup.yaml", "configs"]);
    expect(bashComplete("help", "sn")).toEqual(["snap"]);
    // a command without arguments offers nothing after it
    expect(bashComplete("demo", "")).toEqual([]);
  });

  test("an option's value is not counted as an argument", () => {
    const valued = model.commands.flatMap((c) =>
      c.options.filter((o) => o.value === "required").map((o) => [c.name, o.long] as const),
    );
    for (const [command, option] of valued) {
      const positional = model.commands.find((c) => c.name === command)?.arguments[0];
      if (!option || positional?.completion.kind !== "config") continue;
      expect(bashComplete(command, option, "x", "").sort()).toEqual(["backup.yaml", "configs"]);
      // a file option completes any file
      const file = model.commands
        .find((c) => c.name === command)
        ?.options.find((o) => o.long === option)?.completion.kind;
      if (file === "file") expect(bashComplete(command, option, "")).toContain("notes.txt");
    }
  });
});

describe.skipIf(!has("fish"))("fish", () => {
  test("offers every command of --help", () => {
    expect(fishComplete("abgleich ").sort()).toEqual([...commands].sort());
    expect(fishComplete("abgleich ba")).toEqual(["backup"]);
  });

  test("offers every long option of each command's --help", () => {
    for (const command of commandsWithOptions) {
      const offered = fishComplete(`abgleich ${command} --`);
      for (const option of [...helpOptions([command]), ...helpOptions()]) {
        if (!option.startsWith("--")) continue;
        expect({ command, option, offered: offered.includes(option) }).toEqual({
          command,
          option,
          offered: true,
        });
      }
    }
  });

  test("arguments: configuration files first, a side, the bundled workflows", () => {
    const configs = fishComplete("abgleich tree ");
    expect(configs).toContain("backup.yaml");
    // other files may follow, after the configuration files
    const other = configs.indexOf("notes.txt");
    expect(other < 0 || other > configs.indexOf("backup.yaml")).toBe(true);
    expect(fishComplete("abgleich tree backup.yaml ")).toEqual(["source", "target"]);
    expect(fishComplete("abgleich run ")).toContain("nightly");
    expect(fishComplete("abgleich run nightly ")).toContain("backup.yaml");
  });
});

/** what zsh's completion system lists for `commandline` (a real interactive zsh on a pty) */
function zshComplete(commandline: string): string {
  const child = Bun.spawnSync(
    ["zsh", "-f", join(import.meta.dir, "zsh-complete.zsh"), join(dir, "zsh"), commandline],
    { cwd, stderr: "pipe" },
  );
  expect(child.exitCode).toBe(0);
  // the terminal's output as text: escape sequences out, one line per row
  // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences
  const text = child.stdout.toString().replace(/\x1b\[[0-9;?]*[a-zA-Z]/g, "");
  // the listing comes after the echoed command line
  return text.slice(text.indexOf(commandline) + commandline.length).replace(/\r/g, "\n");
}

/** `word` as a word of its own in `text` */
const listed = (text: string, word: string) =>
  new RegExp(`(?<![\\w.-])${word.replace(/[.]/g, "\\.")}(?![\\w-])`).test(text);

/** a zsh on a pty takes a few seconds per command line on a loaded machine */
const ZSH_TIMEOUT = 60_000;

describe.skipIf(!has("zsh"))("zsh", () => {
  mkdirSync(join(dir, "zsh"));
  writeFileSync(join(dir, "zsh", "_abgleich"), zsh(model));

  test("is valid zsh, for compinit (#compdef)", () => {
    const check = Bun.spawnSync(["zsh", "-n", join(dir, "zsh", "_abgleich")], { stderr: "pipe" });
    expect(check.stderr.toString()).toBe("");
    expect(check.exitCode).toBe(0);
    expect(zsh(model).startsWith("#compdef abgleich\n")).toBe(true);
  });

  test(
    "lists every command of --help",
    () => {
      const list = zshComplete("abgleich ");
      for (const command of commands) {
        expect({ command, listed: listed(list, command) }).toEqual({ command, listed: true });
      }
    },
    ZSH_TIMEOUT,
  );

  test(
    "lists every long option of a command's --help",
    () => {
      const list = zshComplete("abgleich cleanup --");
      for (const option of [...helpOptions(["cleanup"]), ...helpOptions()]) {
        if (option.startsWith("--"))
          expect({ option, listed: listed(list, option) }).toEqual({ option, listed: true });
      }
    },
    ZSH_TIMEOUT,
  );

  test(
    "arguments: configuration files, then a side",
    () => {
      const configs = zshComplete("abgleich tree ");
      expect(listed(configs, "backup.yaml")).toBe(true);
      expect(listed(configs, "notes.txt")).toBe(false);
      const sides = zshComplete("abgleich tree backup.yaml ");
      expect(listed(sides, "source") && listed(sides, "target")).toBe(true);
    },
    ZSH_TIMEOUT,
  );
});
