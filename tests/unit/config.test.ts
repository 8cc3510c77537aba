import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import Ajv from "ajv";
import { parse } from "yaml";
import { ConfigError, loadConfig, parseConfig } from "../../lib/config/load.ts";
import schema from "../../lib/config/schema.json";
import type { TransferConfig } from "../../lib/config/types.ts";
import { matchesSchema } from "../../lib/config/validate.ts";

const ROOT = resolve(import.meta.dir, "../..");
const FIXTURES = join(ROOT, "tests/fixtures/config");
const EXAMPLES = ["config.yaml", "config-remote.yaml", "config-local.yaml"].map((name) =>
  join(ROOT, "examples", name),
);

const MINIMAL = "source:\n  zpool: tank\ntarget:\n  zpool: backup\n";

/** Parses `text` as `test.yaml` and returns the ConfigError it must throw. */
function errorOf(text: string, file = "test.yaml"): ConfigError {
  try {
    parseConfig(text, file);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`expected a ConfigError for:\n${text}`);
}

describe("the seed's example (examples/config.yaml)", () => {
  const config = loadConfig(join(ROOT, "examples/config.yaml"));

  test("loads with the seed's values, YAML 1.1 booleans and empty values included", () => {
    expect(config.file).toBe(join(ROOT, "examples/config.yaml"));
    expect(config.source).toEqual({
      zpool: "tank_ssd",
      prefix: "",
      host: "localhost",
      user: "",
      port: null,
      sudo: false,
    });
    expect(config.target).toEqual({
      zpool: "tank_hdd",
      prefix: "BACKUP_SOMEMACHINE",
      host: "bigdata",
      user: "zfsadmin",
      port: null,
      sudo: false,
    });
    expect(config.includeRoot).toBe(true);
    expect(config.keepSnapshots).toBe(2);
    expect(config.keepBacklog).toBe(-1);
    expect(config.alwaysChanged).toBe(false);
    expect(config.writtenThreshold).toBe(1048576);
    expect(config.checkDiff).toBe(true);
    expect(config.commandTimeout).toBe(900);
    expect(config.suffix).toBe("_backup");
    expect(config.digits).toBe(2);
    expect(config.ignore).toEqual(["home/user/CACHE", "home/user/CCACHE"]);
    expect(config.ssh).toEqual({
      compression: false,
      cipher: "aes256-gcm@openssh.com",
      configFile: "",
    });
    expect(config.plugins).toEqual([]);
  });

  test("is byte for byte the seed's text", () => {
    const text = readFileSync(join(ROOT, "examples/config.yaml"), "utf8");
    expect(
      text.startsWith("source:\n    zpool: tank_ssd\n    prefix:\n    host: localhost\n"),
    ).toBe(true);
    expect(text.endsWith("ssh:\n    compression: no\n    cipher: aes256-gcm@openssh.com\n")).toBe(
      true,
    );
  });
});

describe("every example file", () => {
  const ajv = new Ajv({ strictRequired: false, allowUnionTypes: true });
  ajv.addKeyword({ keyword: "patternErrorMessage", schemaType: "string" });
  const validate = ajv.compile(schema);

  test.each(EXAMPLES)("%s matches the JSON Schema and loads", (file) => {
    const value: unknown = parse(readFileSync(file, "utf8"), {
      customTags: [
        {
          tag: "tag:yaml.org,2002:bool",
          default: true,
          test: /^(?:yes|no|on|off)$/i,
          resolve: (text: string) => /^(?:yes|on)$/i.test(text),
          identify: (v: unknown) => typeof v === "boolean",
        },
      ],
    });
    expect(validate(value)).toBe(true);
    expect(() => loadConfig(file)).not.toThrow();
  });

  test("config-remote.yaml has two remote hosts with users and ports", () => {
    const config = loadConfig(EXAMPLES[1] ?? "");
    for (const side of [config.source, config.target]) {
      expect(side.host).not.toBe("localhost");
      expect(side.user).not.toBe("");
      expect(side.port).toBeNumber();
    }
  });

  test("config-local.yaml keeps both pools on localhost", () => {
    const config = loadConfig(EXAMPLES[2] ?? "");
    expect(config.source.host).toBe("localhost");
    expect(config.target.host).toBe("localhost");
  });
});

describe("defaults and empty values", () => {
  test("a minimal file gets the documented defaults", () => {
    const config = parseConfig(MINIMAL, "min.yaml");
    expect(config.source).toEqual({
      zpool: "tank",
      prefix: "",
      host: "localhost",
      user: "",
      port: null,
      sudo: false,
    });
    expect(config.includeRoot).toBe(true);
    expect(config.keepSnapshots).toBe(1);
    expect(config.keepBacklog).toBe(-1);
    expect(config.alwaysChanged).toBe(false);
    expect(config.writtenThreshold).toBe(1048576);
    expect(config.checkDiff).toBe(true);
    expect(config.commandTimeout).toBe(900);
    expect(config.suffix).toBe("");
    expect(config.digits).toBe(2);
    expect(config.ignore).toEqual([]);
    expect(config.ssh).toEqual({ compression: false, cipher: "", configFile: "" });
    expect(config.plugins).toEqual([]);
  });

  test("keys left empty mean their default", () => {
    const text = `${MINIMAL}  host:\n  port:\ninclude_root:\nkeep_snapshots:\nkeep_backlog:\ndigits:\nsuffix:\nignore:\nssh:\nplugins:\ncommand_timeout:\n`;
    const config = parseConfig(text, "empty.yaml");
    expect(config.commandTimeout).toBe(900);
    expect(config.target.host).toBe("localhost");
    expect(config.target.port).toBeNull();
    expect(config.includeRoot).toBe(true);
    expect(config.keepSnapshots).toBe(1);
    expect(config.keepBacklog).toBe(-1);
    expect(config.digits).toBe(2);
    expect(config.suffix).toBe("");
    expect(config.ignore).toEqual([]);
    expect(config.ssh).toEqual({ compression: false, cipher: "", configFile: "" });
    expect(config.plugins).toEqual([]);
  });

  test("written_threshold left empty means no threshold; absent means 1048576", () => {
    expect(parseConfig(`${MINIMAL}written_threshold:\n`, "t.yaml").writtenThreshold).toBeNull();
    expect(parseConfig(`${MINIMAL}written_threshold: 0\n`, "t.yaml").writtenThreshold).toBe(0);
    expect(parseConfig(MINIMAL, "t.yaml").writtenThreshold).toBe(1048576);
  });

  test("command_timeout is whole seconds, at least 1", () => {
    expect(parseConfig(`${MINIMAL}command_timeout: 1\n`, "t.yaml").commandTimeout).toBe(1);
    expect(parseConfig(`${MINIMAL}command_timeout: 7200\n`, "t.yaml").commandTimeout).toBe(7200);
    expect(parseConfig(`${MINIMAL}command_timeout: 2147483\n`, "t.yaml").commandTimeout).toBe(
      2147483,
    );
  });

  test("keep_backlog accepts -1, 0 and n", () => {
    for (const n of [-1, 0, 7]) {
      expect(parseConfig(`${MINIMAL}keep_backlog: ${n}\n`, "t.yaml").keepBacklog).toBe(n);
    }
  });

  test("sudo is per side, no unless set (empty means no)", () => {
    const config = parseConfig("source:\n  zpool: t\n  sudo: yes\ntarget:\n  zpool: b\n", "t.yaml");
    expect(config.source.sudo).toBe(true);
    expect(config.target.sudo).toBe(false);
    expect(parseConfig(`${MINIMAL}  sudo:\n`, "t.yaml").target.sudo).toBe(false);
    expect(parseConfig(`${MINIMAL}  sudo: no\n`, "t.yaml").target.sudo).toBe(false);
  });

  test("names with spaces, dots and colons are accepted", () => {
    const text =
      "source:\n  zpool: tank\n  prefix: 'my data/v1.2:x'\ntarget:\n  zpool: backup\nignore:\n  - 'a b/c'\n";
    const config = parseConfig(text, "t.yaml");
    expect(config.source.prefix).toBe("my data/v1.2:x");
    expect(config.ignore).toEqual(["a b/c"]);
  });
});

describe("YAML reading", () => {
  test.each(["yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"])(
    "%p is true",
    (word) => {
      expect(parseConfig(`${MINIMAL}always_changed: ${word}\n`, "t.yaml").alwaysChanged).toBe(true);
    },
  );

  test.each(["no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"])(
    "%p is false",
    (word) => {
      expect(parseConfig(`${MINIMAL}check_diff: ${word}\n`, "t.yaml").checkDiff).toBe(false);
    },
  );

  test("mixed-case words YAML 1.1 does not know stay text, and so do y and n (as in PyYAML)", () => {
    expect(errorOf(`${MINIMAL}check_diff: yEs\n`).reason).toContain('got the text "yEs"');
    expect(errorOf(`${MINIMAL}check_diff: y\n`).reason).toContain('got the text "y"');
    expect(
      parseConfig("source:\n  zpool: tank\n  host: n\ntarget:\n  zpool: b\n", "t.yaml").source.host,
    ).toBe("n");
  });

  test("12:30 is text, not a base-60 number", () => {
    const config = parseConfig(
      "source:\n  zpool: tank\n  user: 12:30\ntarget:\n  zpool: b\n",
      "t.yaml",
    );
    expect(config.source.user).toBe("12:30");
  });

  test("a %YAML 1.1 directive does not bring back base-60 numbers", () => {
    const text = "%YAML 1.1\n---\nsource:\n  zpool: tank\n  user: 12:30\ntarget:\n  zpool: b\n";
    expect(parseConfig(text, "t.yaml").source.user).toBe("12:30");
  });

  test("aliases are expanded", () => {
    const text = "source:\n  zpool: tank\n  user: &u backup\ntarget:\n  zpool: b\n  user: *u\n";
    expect(parseConfig(text, "t.yaml").target.user).toBe("backup");
  });

  test("an alias bomb is refused, not expanded", () => {
    const rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (const [name, prev] of [
      ["b", "a"],
      ["c", "b"],
      ["d", "c"],
      ["e", "d"],
    ]) {
      rows.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(", ")}]`);
    }
    const error = errorOf(`${rows.join("\n")}\n`);
    expect(error.reason).toContain("Excessive alias count");
  });

  test("a list used as a key is refused with its position", () => {
    const error = errorOf(`${MINIMAL}ssh:\n  ? [a, b]\n  : 1\n`);
    expect(error.reason).toContain("a key must be a plain word");
    expect(error.keyPath).toBe("ssh");
    expect([error.line, error.column]).toEqual([6, 5]);
  });

  test("quoted booleans are text and rejected where a boolean is needed", () => {
    const error = errorOf(`${MINIMAL}include_root: "yes"\n`);
    expect(error.keyPath).toBe("include_root");
    expect(error.reason).toContain("must be yes or no");
  });
});

describe("plugins", () => {
  test("entries name a bundled plugin or a file resolved against the config's folder", () => {
    const file = join(FIXTURES, "plugins.yaml");
    const config = loadConfig(file);
    expect(config.plugins).toEqual([
      { name: "notify", path: null, options: { command: "notify-send" } },
      { name: null, path: join(dirname(file), "my-plugin.ts"), options: {} },
      { name: null, path: "/opt/abgleich/other.ts", options: {} },
    ]);
  });

  test.each([
    ["  - options: {}\n", "plugins[0]", "needs `name`", 6],
    ["  - name: a\n    path: b\n", "plugins[0]", "has both `name` and `path`", 6],
    ["  - name: a\n    colour: red\n", "plugins[0].colour", "unknown key", 7],
    ["  - name: a\n    options: [1]\n", "plugins[0].options", "must be a mapping", 7],
    ["  - name: ''\n", "plugins[0].name", "must not be empty", 6],
    ["  - notify\n", "plugins[0]", "must be a mapping", 6],
  ])("rejects %p at %s", (entries, keyPath, reason, line) => {
    const error = errorOf(`${MINIMAL}plugins:\n${entries}`);
    expect(error.keyPath).toBe(keyPath);
    expect(error.reason).toContain(reason);
    expect(error.line).toBe(line);
  });
});

// Each case: the file text, the key path, words the message must contain, and the 1-based line:column.
const BAD_VALUES: [string, string, string, string, [number, number]][] = [
  ["unknown top-level key", `${MINIMAL}colour: red\n`, "colour", "unknown key", [5, 1]],
  [
    "unknown nested key",
    "source:\n  zpool: tank\n  pool: x\ntarget:\n  zpool: b\n",
    "source.pool",
    "unknown key",
    [3, 3],
  ],
  [
    "unknown ssh key",
    `${MINIMAL}ssh:\n  ciphers: x\n`,
    "ssh.ciphers",
    "did you mean `cipher`",
    [6, 3],
  ],
  [
    "typo suggests the key",
    `${MINIMAL}keep_snapshot: 2\n`,
    "keep_snapshot",
    "did you mean `keep_snapshots`",
    [5, 1],
  ],
  [
    "text for an integer",
    `${MINIMAL}keep_snapshots: two\n`,
    "keep_snapshots",
    "must be a whole number",
    [5, 17],
  ],
  [
    "fraction for an integer",
    `${MINIMAL}digits: 2.5\n`,
    "digits",
    "must be a whole number",
    [5, 9],
  ],
  [
    "list for a string",
    "source:\n  zpool: [a]\ntarget:\n  zpool: b\n",
    "source.zpool",
    "must be a text value",
    [2, 10],
  ],
  [
    "number for a name",
    "source:\n  zpool: tank\n  prefix: 2024\ntarget:\n  zpool: b\n",
    "source.prefix",
    "put it in quotes",
    [3, 11],
  ],
  [
    "mapping for the ignore list",
    `${MINIMAL}ignore:\n  a: b\n`,
    "ignore",
    "must be a list",
    [6, 3],
  ],
  [
    "keep_snapshots 0",
    `${MINIMAL}keep_snapshots: 0\n`,
    "keep_snapshots",
    "must be at least 1, got 0",
    [5, 17],
  ],
  ["digits 0", `${MINIMAL}digits: 0\n`, "digits", "between 1 and 6, got 0", [5, 9]],
  [
    "command_timeout 0",
    `${MINIMAL}command_timeout: 0\n`,
    "command_timeout",
    "must be between 1 and 2147483, got 0",
    [5, 18],
  ],
  [
    "command_timeout past what a timer can wait",
    `${MINIMAL}command_timeout: 2147484\n`,
    "command_timeout",
    "2147483",
    [5, 18],
  ],
  [
    "command_timeout in fractions",
    `${MINIMAL}command_timeout: 0.5\n`,
    "command_timeout",
    "must be a whole number",
    [5, 18],
  ],
  [
    "command_timeout with a unit",
    `${MINIMAL}command_timeout: 15m\n`,
    "command_timeout",
    "must be a whole number",
    [5, 18],
  ],
  ["digits 7", `${MINIMAL}digits: 7\n`, "digits", "between 1 and 6, got 7", [5, 9]],
  [
    "port 0",
    "source:\n  zpool: tank\n  port: 0\ntarget:\n  zpool: b\n",
    "source.port",
    "between 1 and 65535, got 0",
    [3, 9],
  ],
  [
    "port 70000",
    `${MINIMAL}  port: 70000\n`,
    "target.port",
    "between 1 and 65535, got 70000",
    [5, 9],
  ],
  [
    "keep_backlog -2",
    `${MINIMAL}keep_backlog: -2\n`,
    "keep_backlog",
    "must be at least -1, got -2",
    [5, 15],
  ],
  [
    "negative written_threshold",
    `${MINIMAL}written_threshold: -5\n`,
    "written_threshold",
    "at least 0, got -5",
    [5, 20],
  ],
  ["suffix with -", `${MINIMAL}suffix: -backup\n`, "suffix", "letters, digits and '_'", [5, 9]],
  ["suffix with a dot", `${MINIMAL}suffix: a.b\n`, "suffix", "letters, digits and '_'", [5, 9]],
  [
    "zpool with /",
    "source:\n  zpool: tank/data\ntarget:\n  zpool: b\n",
    "source.zpool",
    "cannot contain '/'",
    [2, 10],
  ],
  [
    "zpool starting with a digit",
    "source:\n  zpool: 1tank\ntarget:\n  zpool: b\n",
    "source.zpool",
    "must start with a letter",
    [2, 10],
  ],
  [
    "zpool that is a vdev keyword",
    "source:\n  zpool: mirror\ntarget:\n  zpool: b\n",
    "source.zpool",
    "reserved",
    [2, 10],
  ],
  [
    "prefix with a leading /",
    "source:\n  zpool: t\n  prefix: /data\ntarget:\n  zpool: b\n",
    "source.prefix",
    "leading '/'",
    [3, 11],
  ],
  ["prefix with //", `${MINIMAL}  prefix: a//b\n`, "target.prefix", "empty component", [5, 11]],
  [
    "prefix with a bad character",
    `${MINIMAL}  prefix: a$b\n`,
    "target.prefix",
    "invalid character '$'",
    [5, 11],
  ],
  [
    "ignore entry with @",
    `${MINIMAL}ignore:\n  - ok\n  - home@snap\n`,
    "ignore[1]",
    "invalid character '@'",
    [7, 5],
  ],
  [
    "ignore entry that is empty",
    `${MINIMAL}ignore:\n  - ''\n`,
    "ignore[0]",
    "name is empty",
    [6, 5],
  ],
  [
    "host starting with -",
    `${MINIMAL}  host: -oProxyCommand=evil\n`,
    "target.host",
    "not starting with '-'",
    [5, 9],
  ],
  ["host with a space", `${MINIMAL}  host: "a b"\n`, "target.host", "no spaces", [5, 9]],
  [
    "host with a newline",
    `${MINIMAL}  host: "a\\nb"\n`,
    "target.host",
    "control characters",
    [5, 9],
  ],
  ["host that is empty text", `${MINIMAL}  host: ""\n`, "target.host", "invalid value", [5, 9]],
  [
    "user starting with -",
    "source:\n  zpool: t\n  user: -l\ntarget:\n  zpool: b\n",
    "source.user",
    "not starting with '-'",
    [3, 9],
  ],
  ["sudo as a command", `${MINIMAL}  sudo: doas\n`, "target.sudo", "doas", [5, 9]],
  ["user with a tab", `${MINIMAL}  user: "a\\tb"\n`, "target.user", "control characters", [5, 9]],
  [
    "cipher with a space",
    `${MINIMAL}ssh:\n  cipher: "aes -x"\n`,
    "ssh.cipher",
    "ssh cipher name",
    [6, 11],
  ],
  [
    "missing target zpool",
    "source:\n  zpool: tank\ntarget:\n  host: b\n",
    "target.zpool",
    "required key is missing",
    [4, 3],
  ],
  ["source without keys", "source:\ntarget:\n  zpool: b\n", "source", "must be a mapping", [1, 8]],
  [
    "root longer than 255",
    `source:\n  zpool: t\n  prefix: ${"x/".repeat(127)}x\ntarget:\n  zpool: b\n`,
    "source.prefix",
    "longer than 255",
    [3, 11],
  ],
];

describe("bad values name the file, the key path, line and column", () => {
  test.each(BAD_VALUES)("%s", (_, text, keyPath, words, [line, column]) => {
    const error = errorOf(text, "conf/bad.yaml");
    expect(error.file).toBe("conf/bad.yaml");
    expect(error.keyPath).toBe(keyPath);
    expect(error.reason).toContain(words);
    expect([error.line, error.column]).toEqual([line, column]);
    expect(error.exitCode).toBe(2);
    expect(error.message).toBe(`conf/bad.yaml:${line}:${column}: ${keyPath}: ${error.reason}`);
  });

  test("a missing top-level section names the key without a position", () => {
    const error = errorOf("source:\n  zpool: tank\n");
    expect(error.keyPath).toBe("target");
    expect(error.line).toBeNull();
    expect(error.message).toBe("test.yaml: target: required key is missing");
  });

  test("a root of exactly 255 characters is accepted", () => {
    const prefix = "x".repeat(255 - "backup/".length);
    expect(parseConfig(`${MINIMAL}  prefix: ${prefix}\n`, "t.yaml").target.prefix).toBe(prefix);
  });
});

describe("file-level problems", () => {
  test("a YAML syntax error gives line and column", () => {
    const error = errorOf("source:\n  zpool: tank\n  prefix: [a\ntarget: {\n");
    expect(error.reason).toContain("YAML syntax error");
    expect(error.line).toBeNumber();
    expect(error.column).toBeNumber();
    expect(error.message).toStartWith(`test.yaml:${error.line}:${error.column}: `);
  });

  test("a syntax error's key path stops where the bad text begins: no key made from it", () => {
    // one space too many: the parser reads `tank prefix` as a key nested under zpool
    const error = errorOf("source:\n  zpool: tank\n   prefix: data\ntarget:\n  zpool: b\n");
    expect(error.reason).toContain("YAML syntax error");
    expect(error.keyPath).toBe("source.zpool");
    expect([error.line, error.column]).toEqual([2, 10]);
  });

  test("a tab used as indentation is a syntax error at its line", () => {
    const error = errorOf("source:\n\tzpool: tank\ntarget:\n  zpool: b\n");
    expect(error.reason).toContain("YAML syntax error");
    expect(error.line).toBe(2);
  });

  test("a duplicate top-level key is refused with its position", () => {
    const error = errorOf(`${MINIMAL}source:\n  zpool: other\n`);
    expect(error.reason).toContain("duplicate key");
    expect(error.keyPath).toBe("source");
    expect([error.line, error.column]).toEqual([5, 1]);
  });

  test("a duplicate nested key names its path", () => {
    const error = errorOf("source:\n  zpool: a\n  zpool: b\ntarget:\n  zpool: c\n");
    expect(error.reason).toContain("duplicate key");
    expect(error.keyPath).toBe("source.zpool");
    expect([error.line, error.column]).toEqual([3, 3]);
  });

  test.each(["", "\n\n", "# only a comment\n", "---\n"])("an empty file (%p) says so", (text) => {
    const error = errorOf(text);
    expect(error.message).toBe(
      "test.yaml: the file is empty; it needs at least source.zpool and target.zpool",
    );
  });

  test.each([
    ["- a\n- b\n", "a list"],
    ["just text\n", 'a single value ("just text")'],
    ["42\n", 'a single value ("42")'],
  ])("a file that is not a mapping (%p) says what it is", (text, found) => {
    const error = errorOf(text);
    expect(error.reason).toContain(`must be a mapping of keys`);
    expect(error.reason).toContain(found);
    expect(error.line).toBe(1);
  });

  test("a second YAML document is refused", () => {
    expect(errorOf(`${MINIMAL}---\nother: 1\n`).reason).toContain("YAML syntax error");
  });

  test("merge keys (<<) are not special: they are unknown keys", () => {
    const error = errorOf(`base: &b\n  zpool: x\n${MINIMAL}`);
    expect(error.keyPath).toBe("base");
  });

  test("a missing file says so and names it", () => {
    const error = (() => {
      try {
        loadConfig("no/such/abgleich.yaml");
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error("expected an error");
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toBe("no/such/abgleich.yaml: no such file");
    expect(error.exitCode).toBe(2);
  });

  test("a folder instead of a file says so", () => {
    expect(() => loadConfig(FIXTURES)).toThrow(`${FIXTURES}: is a directory`);
  });

  test("source and target on one host may not be the same tree or lie inside each other", () => {
    const same = errorOf("source:\n  zpool: tank\ntarget:\n  zpool: tank\n");
    expect(same.reason).toBe('source and target are the same dataset "tank" on localhost');
    const nested = errorOf("source:\n  zpool: tank\ntarget:\n  zpool: tank\n  prefix: backup\n");
    expect(nested.keyPath).toBe("target.prefix");
    expect(nested.line).toBe(5);
    expect(nested.reason).toContain("lie inside each other");
    // another host, or a sibling tree, is fine
    expect(() =>
      parseConfig("source:\n  zpool: tank\ntarget:\n  zpool: tank\n  host: nas\n", "ok.yaml"),
    ).not.toThrow();
    expect(() =>
      parseConfig(
        "source:\n  zpool: tank\n  prefix: data\ntarget:\n  zpool: tank\n  prefix: backup\n",
        "ok.yaml",
      ),
    ).not.toThrow();
  });

  test("loadConfig reports positions from the file", () => {
    const file = join(FIXTURES, "bad-port.yaml");
    expect(() => loadConfig(file)).toThrow(
      `${file}:4:9: source.port: must be between 1 and 65535, got 70000`,
    );
  });
});

// The loader validates with schema.json; this proves the schema alone (what an editor sees)
// accepts and refuses the same files as the loader, except the cross-key root length check.
describe("the JSON Schema and the loader agree", () => {
  const good = [MINIMAL, `${MINIMAL}ignore:\n  - a b\nssh:\n  cipher: aes128-ctr,aes256-ctr\n`];
  const bad = BAD_VALUES.filter(([name]) => name !== "root longer than 255").map(
    ([, text]) => text,
  );

  test.each(good)("both accept %p", (text) => {
    expect(matchesSchema(parse(text))).toBe(true);
    expect(() => parseConfig(text, "t.yaml")).not.toThrow();
  });

  test.each(bad)("both refuse %p", (text) => {
    expect(matchesSchema(parse(text))).toBe(false);
    expect(() => parseConfig(text, "t.yaml")).toThrow(ConfigError);
  });
});

describe("ssh.config_file", () => {
  test("is resolved against the config file's folder and handed to ssh as -F", () => {
    const config = parseConfig(
      "source: {zpool: a}\ntarget: {zpool: b, host: backup}\nssh:\n  config_file: ssh/config\n",
      "/etc/abgleich/main.yaml",
    );
    expect(config.ssh.configFile).toBe("/etc/abgleich/ssh/config");
  });
  test("a file that is not there is a config error at the key, when the config is loaded", () => {
    const text = "source: {zpool: a}\ntarget: {zpool: b, host: nas}\nssh:\n  config_file: nope\n";
    // parsing alone reads no files
    expect(parseConfig(text, "/etc/abgleich/c.yaml").ssh.configFile).toBe("/etc/abgleich/nope");
    const checked = (exists: boolean) =>
      parseConfig(text, "/etc/abgleich/c.yaml", { fileExists: () => exists });
    expect(checked(true).ssh.configFile).toBe("/etc/abgleich/nope");
    expect(() => checked(false)).toThrow(
      "/etc/abgleich/c.yaml:4:16: ssh.config_file: no such file: /etc/abgleich/nope",
    );
  });
  test("a value starting with '-' is refused", () => {
    expect(() =>
      parseConfig(
        "source: {zpool: a}\ntarget: {zpool: b}\nssh: {config_file: -oProxyCommand=x}\n",
        "c.yaml",
      ),
    ).toThrow(/ssh\.config_file/);
  });
});

describe("transfer", () => {
  const REMOTE = "source:\n  zpool: tank\n  host: src\ntarget:\n  zpool: backup\n  host: nas\n";
  const transfer = (lines: string) =>
    parseConfig(`${REMOTE}transfer:\n${lines}`, "t.yaml").transfer;

  test("absent or empty: the defaults", () => {
    const defaults: TransferConfig = {
      compression: "auto",
      buffer: "auto",
      bwlimit: 0,
      direct: false,
      parallel: 1,
      retries: 3,
      batch: 16,
    };
    expect(parseConfig(REMOTE, "t.yaml").transfer).toEqual(defaults);
    expect(parseConfig(`${REMOTE}transfer:\n`, "t.yaml").transfer).toEqual(defaults);
    expect(transfer("  compression:\n  buffer:\n  bwlimit:\n  direct:\n")).toEqual(defaults);
  });

  test("every key read; sizes and rates count K, M, G, T as powers of 1024", () => {
    expect(
      transfer(
        "  compression: lz4\n  buffer: 1G\n  bwlimit: 10M\n  direct: yes\n  parallel: 4\n  retries: 0\n  batch: 1\n",
      ),
    ).toEqual({
      compression: "lz4",
      buffer: 1024 ** 3,
      bwlimit: 10 * 1024 ** 2,
      direct: true,
      parallel: 4,
      retries: 0,
      batch: 1,
    });
    expect(transfer("  buffer: 64M\n").buffer).toBe(64 * 1024 ** 2);
    expect(transfer("  buffer: 1.5G\n").buffer).toBe(1.5 * 1024 ** 3);
    expect(transfer("  buffer: 2097152\n").buffer).toBe(2097152);
    for (const rate of ["10M", "10MB", "10MiB", "10M/s", "10 MB/s", "10485760"])
      expect(transfer(`  bwlimit: ${rate}\n`).bwlimit).toBe(10 * 1024 ** 2);
    expect(transfer("  bwlimit: 512k\n").bwlimit).toBe(512 * 1024);
  });

  test("off (YAML's false) and 0 mean none", () => {
    expect(transfer("  compression: off\n").compression).toBe("off");
    expect(transfer("  compression: 'off'\n").compression).toBe("off");
    expect(transfer("  buffer: off\n").buffer).toBe(0);
    expect(transfer("  buffer: 0\n").buffer).toBe(0);
    expect(transfer("  bwlimit: off\n").bwlimit).toBe(0);
    expect(transfer("  buffer: auto\n").buffer).toBe("auto");
  });

  test.each([
    [
      "an unknown compressor, with the allowed ones",
      "  compression: gzip\n",
      "transfer.compression",
      'must be one of auto, off, zstd, lz4, got the text "gzip"',
    ],
    ["compression: yes", "  compression: yes\n", "transfer.compression", "must be one of auto"],
    ["a negative buffer", "  buffer: -5\n", "transfer.buffer", "must be at least 0, got -5"],
    ["a negative size", "  buffer: -64M\n", "transfer.buffer", "a size such as 64M"],
    ["an unparsable size", "  buffer: lots\n", "transfer.buffer", 'invalid value "lots"'],
    ["buffer: yes", "  buffer: yes\n", "transfer.buffer", "must be auto, off, or a size"],
    ["a fractional byte count", "  buffer: 1.5\n", "transfer.buffer", "a size such as 64M"],
    ["a buffer mbuffer cannot use", "  buffer: 100k\n", "transfer.buffer", "at least 1M"],
    ["a buffer no host has", "  buffer: 99999999999T\n", "transfer.buffer", "more than 1T"],
    ["a limit that limits nothing", "  bwlimit: 2T\n", "transfer.bwlimit", "more than 1T"],
    ["a negative rate", "  bwlimit: -1\n", "transfer.bwlimit", "must be at least 0, got -1"],
    ["an unparsable rate", "  bwlimit: fast\n", "transfer.bwlimit", "such as 10M"],
    ["bwlimit: auto", "  bwlimit: auto\n", "transfer.bwlimit", "must be off or a rate"],
    ["parallel 0", "  parallel: 0\n", "transfer.parallel", "between 1 and 32, got 0"],
    ["parallel 33", "  parallel: 33\n", "transfer.parallel", "between 1 and 32, got 33"],
    ["retries 21", "  retries: 21\n", "transfer.retries", "between 0 and 20, got 21"],
    ["batch 0", "  batch: 0\n", "transfer.batch", "between 1 and 64, got 0"],
    ["batch 65", "  batch: 65\n", "transfer.batch", "between 1 and 64, got 65"],
    ["an unknown key", "  compresion: zstd\n", "transfer.compresion", "did you mean `compression`"],
  ])("%s is refused, naming the key", (_, lines, keyPath, words) => {
    const error = errorOf(`${REMOTE}transfer:\n${lines}`);
    expect(error.keyPath).toBe(keyPath);
    expect(error.reason).toContain(words);
    expect(error.line).toBe(8);
  });

  test("direct needs both sides remote", () => {
    const local = errorOf(
      "source:\n  zpool: tank\ntarget:\n  zpool: backup\n  host: nas\ntransfer:\n  direct: yes\n",
    );
    expect(local.keyPath).toBe("transfer.direct");
    expect(local.reason).toStartWith("direct needs both sides remote: source.host is localhost");
    expect([local.line, local.column]).toEqual([7, 11]);
    const both = errorOf(`${MINIMAL}transfer:\n  direct: yes\n`);
    expect(both.reason).toContain("source.host and target.host are localhost");
    expect(transfer("  direct: yes\n").direct).toBe(true);
  });
});
