// The systemd units in packaging/systemd: `systemd-analyze verify` accepts them without a single
// warning (and rejects a broken one, so the check means something), and each ExecStart is a
// command line abgleich itself accepts.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { buildProgram } from "../../../lib/cli/main.ts";
import { BUNDLED_WORKFLOWS } from "../../../workflows/index.ts";

const UNITS = join(import.meta.dir, "..", "..", "..", "packaging", "systemd");
const BINARY = "/usr/bin/abgleich";
const units = readdirSync(UNITS).sort();
const dir = mkdtempSync(join(tmpdir(), "abgleich-units-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * `systemd-analyze verify` on the units written into a fresh directory, with ExecStart's
 * /usr/bin/abgleich pointed at an executable that exists here (verify checks it). Problems are
 * its exit code and everything it prints: it warns about an unknown key and exits 0.
 */
function verify(contents: ReadonlyMap<string, string>): string[] {
  const target = mkdtempSync(join(dir, "verify-"));
  for (const [name, text] of contents) {
    writeFileSync(join(target, name), text.replaceAll(BINARY, process.execPath));
  }
  const child = Bun.spawnSync(
    ["systemd-analyze", "verify", "--man=no", ...[...contents.keys()].map((n) => join(target, n))],
    { stderr: "pipe", env: { ...process.env, SYSTEMD_LOG_COLOR: "0" } },
  );
  const output = `${child.stdout}${child.stderr}`.split("\n").filter((l) => l.trim() !== "");
  return child.exitCode === 0 ? output : [`exit ${child.exitCode}`, ...output];
}

const original = new Map(units.map((u) => [u, readFileSync(join(UNITS, u), "utf8")]));

describe("units", () => {
  test("a nightly service and timer, a status service and timer", () => {
    expect(units).toEqual([
      "abgleich-status@.service",
      "abgleich-status@.timer",
      "abgleich@.service",
      "abgleich@.timer",
    ]);
  });

  test.skipIf(Bun.which("systemd-analyze") === null)(
    "systemd-analyze verify: no problem in ours, problems in broken copies",
    () => {
      expect(verify(original)).toEqual([]);
      const broken = (name: string, from: RegExp, to: string) => {
        const text = original.get(name) ?? "";
        expect(text).toMatch(from);
        return verify(new Map([...original, [name, text.replace(from, to)]]));
      };
      // a misspelt key, a bad value, a missing binary: each is reported
      expect(broken("abgleich@.service", /^Type=oneshot$/m, "Tpye=oneshot").length).toBeGreaterThan(
        0,
      );
      expect(
        broken("abgleich@.timer", /^Persistent=true$/m, "Persistent=maybe").length,
      ).toBeGreaterThan(0);
      const missing = original.get("abgleich-status@.service") ?? "";
      const withoutBinary = new Map(original);
      withoutBinary.set(
        "abgleich-status@.service",
        missing.replace(BINARY, "/nonexistent/abgleich"),
      );
      // (written directly: verify() would point the path at an existing binary)
      const target = mkdtempSync(join(dir, "missing-"));
      for (const [name, text] of withoutBinary) writeFileSync(join(target, name), text);
      const child = Bun.spawnSync(
        ["systemd-analyze", "verify", "--man=no", join(target, "abgleich-status@.service")],
        { stderr: "pipe" },
      );
      expect(child.exitCode).not.toBe(0);
    },
  );
});

/** ExecStart's arguments (after the binary), with %i as an instance name */
function execStart(unit: string): string[] {
  const line = /^ExecStart=(.*)$/m.exec(original.get(unit) ?? "")?.[1] ?? "";
  const [binary, ...args] = line.replaceAll("%i", "tank").split(/\s+/);
  expect(binary).toBe(BINARY);
  return args;
}

/**
 * What abgleich's own parser makes of `args`: the subcommand, its operands, and any option or
 * argument it would refuse (commander's parse, without running the command).
 */
function parse(args: string[]): { command: string; operands: string[]; refused: string[] } {
  const program = buildProgram(() => {});
  const first = program.parseOptions(args);
  const name = first.operands[0] ?? "";
  const command = program.commands.find((c) => c.name() === name) as Command | undefined;
  if (!command) return { command: name, operands: [], refused: [`no command ${name}`] };
  const rest = command.parseOptions([...first.operands.slice(1), ...first.unknown]);
  // options the subcommand does not know may be the program's (global) ones
  const refused = program.parseOptions(rest.unknown).unknown;
  const required = command.registeredArguments.filter((a) => a.required).length;
  const allowed = command.registeredArguments.length;
  if (rest.operands.length < required || rest.operands.length > allowed) {
    refused.push(`${rest.operands.length} arguments`);
  }
  return { command: name, operands: rest.operands, refused };
}

describe("ExecStart", () => {
  test("the nightly service runs the bundled nightly workflow with --yes and --quiet", () => {
    const args = execStart("abgleich@.service");
    expect(args).toContain("--yes");
    expect(args).toContain("--quiet");
    const parsed = parse(args);
    expect(parsed).toEqual({
      command: "run",
      operands: ["nightly", "/etc/abgleich/tank.yaml"],
      refused: [],
    });
    expect(Object.keys(BUNDLED_WORKFLOWS)).toContain("nightly");
  });

  test("the status service writes the Prometheus textfile", () => {
    const args = execStart("abgleich-status@.service");
    expect(parse(args)).toEqual({
      command: "status",
      operands: ["/etc/abgleich/tank.yaml"],
      refused: [],
    });
    expect(args.slice(args.indexOf("--prometheus"))[1]).toBe(
      "/var/lib/prometheus/node-exporter/abgleich-tank.prom",
    );
  });

  test("the parse refuses what abgleich refuses", () => {
    expect(parse(["run", "nightly", "/etc/x.yaml", "--yes", "--quietly"]).refused).toEqual([
      "--quietly",
    ]);
    expect(parse(["backup"]).refused).toEqual(["0 arguments"]);
    expect(parse(["frobnicate", "/etc/x.yaml"]).refused).toEqual(["no command frobnicate"]);
  });
});
