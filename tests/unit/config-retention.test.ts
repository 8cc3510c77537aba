// The `retention` section: loaded with zeros for rules left out, and refused with a clear
// message (file, line, key path, what is wrong) for negative or fractional counts, unknown keys
// and a keep_backlog that retention.target would silently replace.

import { describe, expect, test } from "bun:test";
import { ConfigError, parseConfig } from "../../lib/config/load.ts";

const MINIMAL = "source:\n  zpool: tank\ntarget:\n  zpool: backup\n";

function errorOf(text: string): ConfigError {
  try {
    parseConfig(text, "test.yaml");
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`expected a ConfigError for:\n${text}`);
}

describe("retention in the configuration", () => {
  test("absent: no rules on either side (cleanup works as before)", () => {
    expect(parseConfig(MINIMAL, "test.yaml").retention).toEqual({ source: null, target: null });
  });

  test("rules left out or empty keep nothing by themselves (0); a side left out has no rules", () => {
    const config = parseConfig(
      `${MINIMAL}retention:\n  target:\n    daily: 7\n    weekly:\n    yearly: 2\n`,
      "test.yaml",
    );
    expect(config.retention).toEqual({
      source: null,
      target: { latest: 0, hourly: 0, daily: 7, weekly: 0, monthly: 0, yearly: 2 },
    });
    const empty = parseConfig(`${MINIMAL}retention:\n  source: {}\n`, "test.yaml");
    expect(empty.retention.source).toEqual({
      latest: 0,
      hourly: 0,
      daily: 0,
      weekly: 0,
      monthly: 0,
      yearly: 0,
    });
  });

  test.each([
    ["daily: -1", "retention.source.daily", "must be at least 0, got -1"],
    ["hourly: 1.5", "retention.source.hourly", "must be a whole number, got 1.5"],
    [
      "monthly: twelve",
      "retention.source.monthly",
      'must be a whole number, got the text "twelve"',
    ],
    ["dayly: 3", "retention.source.dayly", "unknown key (did you mean `daily`?)"],
  ])("refuses %s", (line, keyPath, reason) => {
    const error = errorOf(`${MINIMAL}retention:\n  source:\n    ${line}\n`);
    expect(error.exitCode).toBe(2);
    expect(error.keyPath).toBe(keyPath);
    expect(error.line).toBe(7);
    expect(error.reason).toContain(reason);
  });

  test("refuses a side other than source and target, naming both", () => {
    const error = errorOf(`${MINIMAL}retention:\n  backup:\n    daily: 3\n`);
    expect(error.keyPath).toBe("retention.backup");
    expect(error.reason).toContain("allowed here: source, target");
  });

  test("keep_backlog with retention.target is refused: the rules would replace it unseen", () => {
    const error = errorOf(`${MINIMAL}keep_backlog: 3\nretention:\n  target:\n    daily: 3\n`);
    expect(error.keyPath).toBe("keep_backlog");
    expect(error.reason).toContain("retention.target");
    expect(error.reason).toContain("remove keep_backlog");
    // with source rules only, keep_backlog still decides the target
    const fine = parseConfig(
      `${MINIMAL}keep_backlog: 3\nretention:\n  source:\n    daily: 3\n`,
      "t",
    );
    expect(fine.keepBacklog).toBe(3);
  });
});
