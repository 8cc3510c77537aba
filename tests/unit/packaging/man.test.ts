// The generated man page: valid roff (groff without a warning), and the rendered page names
// every command and option that `--help` lists.

import { describe, expect, test } from "bun:test";
import { cliModel } from "../../../scripts/release/cli-model.ts";
import { manPage, roff } from "../../../scripts/release/man.ts";
import { helpCommands, helpOptions } from "./help.ts";

const page = manPage(cliModel(), { version: "9.8.7", date: "2026-01-02" });

function groff(args: string[]) {
  const child = Bun.spawnSync(["groff", "-man", ...args], {
    stdin: Buffer.from(page),
    stderr: "pipe",
  });
  return {
    exitCode: child.exitCode,
    stdout: child.stdout.toString(),
    stderr: child.stderr.toString(),
  };
}

describe("roff", () => {
  test("escapes backslashes, hyphens and a leading control character", () => {
    expect(roff("a\\b")).toBe("a\\eb");
    expect(roff("--yes")).toBe("\\-\\-yes");
    expect(roff(".hidden\n'quoted")).toBe("\\&.hidden\n\\&'quoted");
    expect(roff("run `abgleich demo`")).toBe("run \\fBabgleich demo\\fR");
  });
});

describe.skipIf(Bun.which("groff") === null)("man page", () => {
  test("is roff groff reads without a warning", () => {
    const check = groff(["-ww", "-z", "-Tutf8"]);
    expect(check.stderr).toBe("");
    expect(check.exitCode).toBe(0);
  });

  test("names every command and option of --help, with the version and date", () => {
    // plain text, wide enough that no option name is hyphenated or broken
    const text = groff(["-Tascii", "-P-cbou", "-rLL=200n"]).stdout;
    expect(text).toContain("abgleich 9.8.7");
    expect(text).toContain("2026-01-02");
    const section = (from: string, to: string) =>
      text.slice(text.indexOf(`\n${from}\n`), text.indexOf(`\n${to}\n`));
    /** the option as a word of its own (`-y` is not found inside `--yes`) */
    const names = (entry: string, option: string) =>
      new RegExp(`(?<![\\w-])${option}(?![\\w-])`).test(entry);
    const globals = helpOptions();
    const globalSection = section("OPTIONS", "EXIT STATUS");
    for (const option of globals) {
      expect({ option, listed: names(globalSection, option) }).toEqual({ option, listed: true });
    }
    // COMMANDS: one entry per command, starting with its name at the entry indent
    const entries = new Map<string, string>();
    for (const entry of section("COMMANDS", "OPTIONS").split(/\n(?= {7}\S)/)) {
      const name = /^ {7}(\S+)/.exec(entry)?.[1];
      if (name) entries.set(name, entry);
    }
    const commands = helpCommands();
    expect(commands.length).toBeGreaterThan(5);
    expect([...entries.keys()].sort()).toEqual([...commands].sort());
    for (const command of commands) {
      const entry = entries.get(command) ?? "";
      for (const option of command === "help" ? [] : helpOptions([command])) {
        // an option every command takes (--help) is listed once, under OPTIONS
        const listed = names(entry, option) || globals.includes(option);
        expect({ command, option, listed }).toEqual({ command, option, listed: true });
      }
    }
  });
});
