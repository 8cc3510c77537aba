// The standalone binary (`bun run build` → dist/abgleich) works on its own: built once here with
// scripts/build.ts's COMPILE_FLAGS into a temp dir, then run from empty directories with nothing but
// /usr/bin:/bin on PATH (no bun, no node_modules, no project files near it).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { seedState, writeShims } from "../../lib/sim/main.ts";
import pkg from "../../package.json" with { type: "json" };
import { COMPILE_FLAGS } from "../../scripts/build.ts";
import { readUntilWizardUrl } from "../helpers/wizard-url.ts";

const root = join(import.meta.dir, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "abgleich-binary-"));
const binary = join(dir, "abgleich");
const MINIMAL_PATH = "/usr/bin:/bin";

/** a fresh empty directory to run from */
function emptyDir(name: string): string {
  const path = join(dir, name);
  mkdirSync(path);
  return path;
}

/**
 * the binary with a minimal environment: no inherited variables but where run state and locks
 * go (the test process's folder, tests/helpers/isolate.ts; never the machine's)
 */
function run(
  args: string[],
  options: { cwd: string; path?: string; env?: Record<string, string> },
) {
  const child = Bun.spawnSync([binary, ...args], {
    cwd: options.cwd,
    env: {
      PATH: options.path ?? MINIMAL_PATH,
      HOME: options.cwd,
      TZ: "UTC",
      NO_COLOR: "1",
      ABGLEICH_STATE_DIR: process.env.ABGLEICH_STATE_DIR as string,
      ABGLEICH_LOCK_DIR: process.env.ABGLEICH_LOCK_DIR as string,
      ...options.env,
    },
    stdin: "ignore",
  });
  return { code: child.exitCode, stdout: child.stdout.toString(), stderr: child.stderr.toString() };
}

beforeAll(() => {
  const build = Bun.spawnSync(
    [
      process.execPath,
      "build",
      ...COMPILE_FLAGS,
      join(root, "lib", "cli", "main.ts"),
      "--outfile",
      binary,
    ],
    { cwd: root },
  );
  if (build.exitCode !== 0) throw new Error(`bun build failed:\n${build.stderr.toString()}`);
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("standalone binary", () => {
  test("--version and --help from an empty directory with PATH=/usr/bin:/bin", () => {
    const cwd = emptyDir("plain");
    const version = run(["--version"], { cwd });
    expect(version).toMatchObject({ code: 0, stderr: "" });
    expect(version.stdout.trim()).toBe(pkg.version);
    const help = run(["--help"], { cwd });
    expect(help.code).toBe(0);
    for (const command of ["tree", "compare", "snap", "backup", "cleanup", "demo"]) {
      expect(help.stdout).toMatch(new RegExp(`^  ${command} `, "m"));
    }
    expect(readdirSync(cwd)).toEqual([]);
  });

  test("ignores a bunfig.toml in the directory it is started from", () => {
    const cwd = emptyDir("with-bunfig");
    // a binary that autoloaded bunfig would run this preload (and print) before anything else
    writeFileSync(join(cwd, "bunfig.toml"), 'preload = ["./preload.ts"]\n');
    writeFileSync(join(cwd, "preload.ts"), 'console.log("PRELOADED");\n');
    const version = run(["--version"], { cwd });
    expect(version).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });

  test("demo runs the whole cycle on its built-in simulator and leaves the directory empty", () => {
    const cwd = emptyDir("demo");
    // the demo's locks are its own: a real (or a test's) run of tank/data neither blocks it
    // nor is blocked by it, so the lock directory of the caller stays untouched
    const callersLocks = join(dir, "callers-locks");
    const demo = run(["demo"], { cwd, env: { ABGLEICH_LOCK_DIR: callersLocks } });
    expect(demo.stderr).toBe("");
    expect(demo.code).toBe(0);
    for (const step of ["snap", "backup", "cleanup", "Second round"])
      expect(demo.stdout).toContain(step);
    expect(demo.stdout).toContain("Demo complete.");
    expect(readdirSync(cwd)).toEqual([]);
    expect(existsSync(callersLocks)).toBe(false);
  }, 90_000);

  test("demo --keep keeps its pools and says a command that reads them, this binary by its path", () => {
    const cwd = emptyDir("demo-keep");
    const demo = run(["demo", "--keep"], { cwd });
    expect(demo.code).toBe(0);
    const kept = /^kept: (\S+)$/m.exec(demo.stdout)?.[1];
    const tryLine = /^ {2}try: (.+)$/m.exec(demo.stdout)?.[1];
    expect(kept).toBeString();
    expect(tryLine).toContain(binary);
    try {
      // as a user pastes it: a shell, and no abgleich on PATH
      const again = Bun.spawnSync(["/bin/sh", "-c", tryLine as string], {
        env: { PATH: MINIMAL_PATH, HOME: cwd, TZ: "UTC", NO_COLOR: "1" },
      });
      expect(again.stderr.toString()).toBe("");
      expect(again.exitCode).toBe(0);
      expect(again.stdout.toString()).toStartWith("SOURCE tank/data on localhost\n");
    } finally {
      rmSync(kept as string, { recursive: true, force: true });
    }
  }, 90_000);

  describe("tree and compare against a simulated config", () => {
    const sim = join(dir, "sim");
    const configPath = join(sim, "config.yaml");
    // the binary serves the simulator itself: `abgleich sim --state DIR zfs …`
    const path = `${join(sim, "bin")}:${MINIMAL_PATH}`;

    beforeAll(() => {
      writeShims(join(sim, "bin"), join(sim, "state"), [binary, "sim"]);
      seedState(join(sim, "state"), {
        now: 1795663146,
        pools: [
          {
            name: "tank",
            size: "1G",
            datasets: [
              { name: "data", snapshots: [{ name: "20260101-01", written: "1M" }] },
              { name: "data/my photos", snapshots: [{ name: "s1", written: "5M" }] },
            ],
          },
          { name: "backup", size: "1G", datasets: [] },
        ],
      });
      writeFileSync(
        configPath,
        "source:\n  zpool: tank\n  prefix: data\ntarget:\n  zpool: backup\n  prefix: data\nkeep_snapshots: 1\n",
      );
    });

    test("tree from an unrelated directory, config by absolute path", () => {
      const cwd = emptyDir("elsewhere");
      const tree = run(["tree", configPath], { cwd, path });
      expect(tree.stderr).toBe("");
      expect(tree.code).toBe(0);
      expect(tree.stdout).toContain("SOURCE tank/data on localhost");
      expect(tree.stdout).toMatch(/^tank\/data\/my photos +5\.1 MiB/m);
      expect(tree.stdout).toMatch(/^- 20260101-01 /m);
      expect(tree.stdout).toMatch(/TARGET backup\/data on localhost\n\(empty\)/);
      expect(readdirSync(cwd)).toEqual([]);
    });

    test("compare from the config's own directory, config by relative path", () => {
      const compare = run(["compare", "config.yaml"], { cwd: sim, path });
      expect(compare.stderr).toBe("");
      expect(compare.code).toBe(0);
      expect(compare.stdout).toContain("source tank/data  →  target backup/data");
      expect(compare.stdout).toMatch(/^my photos +◐/m);
      expect(compare.stdout).toContain("2 datasets, 0 conflicts");
    });

    test("wizard --no-open serves its bundled page from an empty directory (no files beside the binary)", async () => {
      const cwd = emptyDir("wizard");
      const child = Bun.spawn([binary, "wizard", configPath, "--no-open"], {
        cwd,
        env: {
          PATH: path,
          HOME: cwd,
          TZ: "UTC",
          NO_COLOR: "1",
          ABGLEICH_LOCK_DIR: join(sim, "locks"),
          ABGLEICH_STATE_DIR: join(sim, "run-state"),
        },
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
      const out = await readUntilWizardUrl(child.stdout);
      const url = /(http:\/\/127\.0\.0\.1:\d+\/)\?token=(\S+)/.exec(out);
      expect(url).not.toBeNull();
      const headers = { "X-Abgleich-Token": url?.[2] ?? "" };
      const page = await fetch(`${url?.[1]}`, { headers });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("<title>abgleich wizard</title>");
      const script = await fetch(`${url?.[1]}app.js`, { headers });
      expect(script.status).toBe(200);
      expect((await script.text()).length).toBeGreaterThan(1000);
      expect((await fetch(`${url?.[1]}app.css`, { headers })).status).toBe(200);
      child.kill("SIGINT");
      expect(await child.exited).toBe(130);
      expect(readdirSync(cwd)).toEqual([]);
    }, 90_000);

    test("a missing config is a configuration error (exit 2) naming the file, not a stack trace", () => {
      const cwd = emptyDir("missing");
      const result = run(["tree", "nowhere.yaml"], { cwd, path });
      expect(result.code).toBe(2);
      expect(result.stderr.trim()).toBe("error: nowhere.yaml: no such file");
    });
  });
});
