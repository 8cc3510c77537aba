import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { shellJoin, shellQuote } from "../../lib/hosts/quote.ts";

const HOSTILE = [
  "a b",
  "x;touch /tmp/pwned",
  "$(id)",
  "`id`",
  "'",
  "''",
  '"',
  "it's",
  "a\nb",
  "*",
  "-rf",
  "--",
  "~",
  "a=b",
  "if",
  "\\",
  "$HOME",
  "!x",
  "tab\there",
  "tank/data@ü-日本-🐟",
  "",
  " ",
  "a'b\"c$d`e\\f",
];

/** run `printf '%s\0' <quoted args>` through a real shell and split its output back */
function roundTrip(shell: string, args: string[]): string[] {
  const script = `printf '%s\\0' ${shellJoin(args)}`;
  const result = Bun.spawnSync([shell, "-c", script]);
  expect(result.exitCode).toBe(0);
  const out = result.stdout.toString();
  return out.split("\0").slice(0, -1);
}

describe("shellQuote", () => {
  test("empty string becomes ''", () => {
    expect(shellQuote("")).toBe("''");
  });

  test("a single quote is closed, escaped and reopened", () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  test("plain words stay bare, anything else is quoted", () => {
    expect(shellQuote("tank/data@snap_1")).toBe("tank/data@snap_1");
    expect(shellQuote("-Hp")).toBe("-Hp");
    expect(shellQuote("a b")).toBe("'a b'");
    expect(shellQuote("*")).toBe("'*'");
    expect(shellQuote("a=b")).toBe("'a=b'");
    expect(shellQuote("if")).toBe("'if'");
  });

  for (const shell of ["sh", "bash"]) {
    test(`hostile strings survive a round trip through ${shell} -c`, () => {
      expect(roundTrip(shell, HOSTILE)).toEqual(HOSTILE);
    });

    test(`random strings survive a round trip through ${shell} -c`, () => {
      // NUL cannot appear in argv, so it is left out of the alphabet.
      const arg = fc.string({ unit: "binary", maxLength: 20 }).map((s) => s.replaceAll("\0", ""));
      fc.assert(
        fc.property(fc.array(arg, { minLength: 1, maxLength: 5 }), (args) => {
          expect(roundTrip(shell, args)).toEqual(args);
        }),
        { numRuns: 60 },
      );
    });
  }

  test("a quoted first word runs as a command name, not an assignment or keyword", () => {
    const result = Bun.spawnSync(["sh", "-c", `${shellJoin(["if"])} 2>/dev/null; echo $?`]);
    expect(result.stdout.toString().trim()).toBe("127");
  });
});
