// Plugins and workflows loaded from disk by a binary built with `bun build --compile` (the
// flags of scripts/build.ts), not only under `bun run`: user TypeScript files import
// "abgleich" through the virtual module, the bundled plugins and workflow run on the
// simulator (the binary serves `zfs` itself through shims), and errors keep their exit codes.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { seedState, writeShims } from "../../lib/sim/main.ts";
import { COMPILE_FLAGS } from "../../scripts/build.ts";

const root = join(import.meta.dir, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "abgleich-plugins-bin-"));
const binary = join(dir, "abgleich-test");
const stateDir = join(dir, "state");
const binDir = join(dir, "bin");
const hookLog = join(dir, "after-backup.txt");
const recorderLog = join(dir, "recorder.txt");
let webhookBodies: unknown[] = [];
let server: ReturnType<typeof Bun.serve>;

// `run WORKFLOW CONFIG` and `sim …`, as lib/cli/main.ts will offer them
const ENTRY = `
import { simMain } from ${JSON.stringify(join(root, "lib/sim/main.ts"))};
import { runCommand } from ${JSON.stringify(join(root, "lib/cli/commands/run.ts"))};
const [command, ...rest] = process.argv.slice(2);
if (command === "sim") process.exit(await simMain(rest));
process.exitCode = await runCommand(rest[0] ?? "", rest[1] ?? "", { yes: true, color: false });
`;

const RECORDER_PLUGIN = `
import { appendFileSync } from "node:fs";
import { definePlugin, type StageInfo } from "abgleich";
interface Options { file: string }
export default definePlugin<Options>({
  name: "recorder",
  options: { type: "object", required: ["file"], properties: { file: { type: "string" } } },
  setup(hooks, { options }) {
    const note = (line: string): void => appendFileSync(options.file, line + "\\n");
    hooks.beforeStage.tap("recorder", (info: StageInfo) => note("before " + info.stage));
    hooks.done.tap("recorder", (summary) => note("done " + summary.exitCode + " " + summary.datasets.map((d) => d.subname + ":" + d.snapshotsMade.join(",")).join(" ")));
  },
});
`;

const COMPARE_WORKFLOW = `
import { defineWorkflow, type Comparison } from "abgleich";
export default defineWorkflow(async (run) => {
  const comparison: Comparison = await run.compare();
  run.log("rows " + comparison.rows.length + " namer-own " + run.namer().isOwn("20260101-01"));
  return 3;
});
`;

function config(plugins: string): string {
  return `source:\n  zpool: tank\n  prefix: data\ntarget:\n  zpool: backup\n  prefix: data\nkeep_snapshots: 1\nplugins:\n${plugins}`;
}

/** async, so the webhook server in this process can answer while the binary runs */
async function run(...args: string[]) {
  const child = Bun.spawn([binary, "run", ...args], {
    cwd: dir,
    env: { ...process.env, PATH: `${binDir}:${process.env.PATH ?? ""}`, TZ: "UTC", NO_COLOR: "1" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr };
}

beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      webhookBodies.push(await request.json());
      return new Response("ok");
    },
  });
  writeFileSync(join(dir, "entry.ts"), ENTRY);
  const build = Bun.spawnSync(
    [process.execPath, "build", ...COMPILE_FLAGS, join(dir, "entry.ts"), "--outfile", binary],
    { cwd: root },
  );
  if (build.exitCode !== 0) throw new Error(`bun build failed: ${build.stderr.toString()}`);
  writeShims(binDir, stateDir, [binary, "sim"]);
  mkdirSync(join(dir, "plugins"));
  writeFileSync(join(dir, "plugins", "recorder.ts"), RECORDER_PLUGIN);
  writeFileSync(join(dir, "compare.ts"), COMPARE_WORKFLOW);
  writeFileSync(
    join(dir, "broken.ts"),
    'import { definePlugin } from "abgleich";\nexport default definePlugin({\n  name: "broken",\n  setup(hooks) { hooks.done.tap("x", () => { let = 1; }); },\n});\n',
  );
}, 60_000);

afterAll(() => {
  server.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

describe("the compiled binary", () => {
  test("runs the bundled nightly workflow with bundled and user plugins from disk", async () => {
    seedState(stateDir, {
      pools: [
        {
          name: "tank",
          size: "1G",
          datasets: [
            { name: "data", snapshots: [{ name: "20260101-01", written: "1M" }], written: "2M" },
            {
              name: "data/home",
              snapshots: [{ name: "20260101-01", written: "1M" }],
              written: "3M",
            },
          ],
        },
        { name: "backup", size: "1G", datasets: [] },
      ],
    });
    webhookBodies = [];
    const configPath = join(dir, "nightly.yaml");
    writeFileSync(
      configPath,
      config(`  - name: naming
    options: { template: "%Y%m%d-%N", utc: true }
  - name: hooks
    options:
      after: { backup: 'printf "%s %s\\n" "$ABGLEICH_RESULT" "$ABGLEICH_SNAPSHOTS" > ${hookLog}' }
  - path: ./plugins/recorder.ts
    options: { file: ${recorderLog} }
  - name: notify
    options: { webhook: { url: "http://127.0.0.1:${server.port}/hook", preset: slack } }
`),
    );
    const { code, stdout, stderr } = await run("nightly", configPath);
    expect({ code, stderr }).toEqual({ code: 0, stderr: expect.any(String) });

    const today = new Date().toISOString().slice(0, 10).replaceAll("-", "");
    // snap named by the template; backup sent both snapshots; cleanup freed the old one on the source
    const listing = Bun.spawnSync([
      join(binDir, "zfs"),
      "list",
      "-H",
      "-t",
      "snapshot",
      "-o",
      "name",
      "-r",
      "tank",
      "backup",
    ]);
    expect(listing.stdout.toString().trim().split("\n")).toEqual([
      `tank/data@${today}-01`,
      `tank/data/home@${today}-01`,
      "backup/data@20260101-01",
      `backup/data@${today}-01`,
      "backup/data/home@20260101-01",
      `backup/data/home@${today}-01`,
    ]);
    expect(readFileSync(recorderLog, "utf8").trim().split("\n")).toEqual([
      "before snap",
      "before backup",
      "before cleanup",
      `done 0 :${today}-01 home:${today}-01`,
    ]);
    expect(readFileSync(hookLog, "utf8")).toContain(
      `ok backup/data@20260101-01\nbackup/data@${today}-01`,
    );
    expect(webhookBodies).toEqual([
      { text: expect.stringContaining("abgleich ok: snap ok, backup ok, cleanup source ok") },
    ]);
    expect(stdout).toContain("snap");
  }, 90_000);

  test("runs a user workflow file written in TypeScript; its return value is the exit code", async () => {
    const configPath = join(dir, "plain.yaml");
    writeFileSync(configPath, config("  - name: naming\n    options: { template: '%Y%m%d-%N' }\n"));
    const { code, stderr } = await run("./compare.ts", configPath);
    expect(stderr).toContain("rows 2 namer-own true");
    expect(code).toBe(3);
  }, 60_000);

  test("a syntax error in a user plugin is exit 2 naming file, line and column", async () => {
    const configPath = join(dir, "broken.yaml");
    writeFileSync(configPath, config("  - path: ./broken.ts\n"));
    const { code, stderr } = await run("nightly", configPath);
    expect(code).toBe(2);
    expect(stderr).toContain(`${join(dir, "broken.ts")}:4:`);
    expect(stderr).toContain("cannot be loaded");
  }, 60_000);

  test("an unknown plugin name or workflow is exit 2", async () => {
    const configPath = join(dir, "unknown.yaml");
    writeFileSync(configPath, config("  - name: notifyy\n"));
    const unknownPlugin = await run("nightly", configPath);
    expect(unknownPlugin.code).toBe(2);
    expect(unknownPlugin.stderr).toContain('plugins[0].name: unknown plugin "notifyy"');
    const unknownWorkflow = await run("weekly", configPath);
    expect(unknownWorkflow.code).toBe(2);
    expect(unknownWorkflow.stderr).toContain("no bundled workflow of this name (bundled: nightly)");
  }, 60_000);
});
