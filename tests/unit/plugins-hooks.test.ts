// The shell hooks plugin: commands run with the stage in the environment, output is captured,
// a failing before-command aborts the stage, after-commands always run and only warn. A command
// never hangs the run: a timeout or a cancel stops its whole process group (SIGTERM, then
// SIGKILL) and returns at once; long lists go through files, not the environment.

import { afterEach, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config } from "../../lib/config/types.ts";
import type { StageInfo } from "../../lib/engine/hooks.ts";
import { createHooks } from "../../lib/engine/hooks.ts";
import { checkOptions, pluginHooks } from "../../lib/engine/plugins.ts";
import shellHooks, { runShellCommand } from "../../plugins/hooks.ts";
import { config, dst, history, inventory, src } from "./plan/fixtures.ts";

async function setUp(options: Record<string, unknown>, cfg: Config = config()) {
  const hooks = createHooks();
  const logs: string[] = [];
  const warnings: string[] = [];
  const checked = checkOptions(shellHooks, options, cfg, 0);
  await shellHooks.setup(pluginHooks(hooks, "hooks"), {
    name: "hooks",
    config: cfg,
    options: checked,
    log: (t) => logs.push(t),
    warn: (t) => warnings.push(t),
  });
  return { hooks, logs, warnings };
}

const info = (
  stage: StageInfo["stage"],
  side?: "source" | "target",
  signal: AbortSignal = new AbortController().signal,
): StageInfo =>
  // `changes` is on its way into StageInfo; the plugin does not read it
  ({ stage, config: config(), side, dryRun: false, changes: true, signal }) as StageInfo;

// processes the commands under test started: each test writes their pids to a file
const scratch: string[] = [];
const seen: number[] = [];
afterEach(() => {
  // should a test fail, nothing it started outlives it
  for (const dir of scratch) seen.push(...pidsWritten(join(dir, "pids")));
  for (const pid of seen.splice(0)) if (running(pid)) process.kill(pid, "SIGKILL");
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "abgleich-hooks-test-"));
  scratch.push(dir);
  return dir;
}

/** alive and not a zombie (this container's init does not reap orphans) */
function running(pid: number): boolean {
  const stat = spawnSync("ps", ["-o", "stat=", "-p", String(pid)])
    .stdout.toString()
    .trim();
  return stat !== "" && !stat.startsWith("Z");
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const pidsWritten = (file: string): number[] =>
  existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).map(Number) : [];

/** the pids a command wrote to `file`, once there are `count` of them */
async function pidsIn(file: string, count: number): Promise<number[]> {
  for (let waited = 0; waited < 3000; waited += 20) {
    const pids = pidsWritten(file);
    if (pids.length >= count) {
      seen.push(...pids);
      return pids;
    }
    await sleep(20);
  }
  throw new Error(`no ${count} pids in ${file}`);
}

/** true once none of `pids` runs, false if one still does after `ms` */
async function allGone(pids: number[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (pids.some(running)) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

describe("runShellCommand", () => {
  test("runs the user's shell code and keeps data out of the command text", async () => {
    const result = await runShellCommand(
      'printf "%s|" "$ABGLEICH_STAGE" a\\ b; exit 3',
      { ABGLEICH_STAGE: "$(touch /tmp/x) 'q'" },
      {
        shell: "/bin/sh",
        timeoutSeconds: 5,
      },
    );
    expect(result.output).toBe("$(touch /tmp/x) 'q'|a b|");
    expect(result.exitCode).toBe(3);
    expect(result.ok).toBe(false);
  });

  test("a command over its timeout is stopped and says so", async () => {
    const started = Date.now();
    const result = await runShellCommand("sleep 5", {}, { shell: "/bin/sh", timeoutSeconds: 0.3 });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(result.ok).toBe(false);
    expect(result.timedOut).toBe(true);
  });

  test("a command gets no stdin: reading it ends at once", async () => {
    const result = await runShellCommand(
      "read line; echo read $?",
      {},
      { shell: "/bin/sh", timeoutSeconds: 1 },
    );
    expect(result.output).toBe("read 1");
  });

  test("a background child holding stdout: returns at the timeout, the child is stopped", async () => {
    for (const command of [
      'sleep 1000 & echo $! > "$PIDS"; echo started',
      '(sleep 1000 & echo $! > "$PIDS"); echo started',
    ]) {
      const pidFile = join(scratchDir(), "pids");
      const started = Date.now();
      const result = await runShellCommand(
        command,
        { PIDS: pidFile },
        { shell: "/bin/sh", timeoutSeconds: 1, graceSeconds: 0.5 },
      );
      const elapsed = Date.now() - started;
      const pids = await pidsIn(pidFile, 1);
      expect(elapsed).toBeGreaterThanOrEqual(950);
      expect(elapsed).toBeLessThan(1500);
      expect(result).toMatchObject({ ok: false, timedOut: true, leftBehind: true });
      expect(result.output).toBe("started");
      expect(await allGone(pids, 1000)).toBe(true);
    }
  });

  test("a command that ignores SIGTERM is killed after the grace; the timeout returns at once", async () => {
    const pidFile = join(scratchDir(), "pids");
    const started = Date.now();
    const result = await runShellCommand(
      `trap '' TERM; echo $$ > "$PIDS"; sleep 1000 & echo $! >> "$PIDS"; wait`,
      { PIDS: pidFile },
      { shell: "/bin/sh", timeoutSeconds: 0.5, graceSeconds: 0.5 },
    );
    expect(Date.now() - started).toBeLessThan(900);
    expect(result).toMatchObject({ ok: false, timedOut: true, exitCode: null });
    const pids = await pidsIn(pidFile, 2);
    // SIGTERM is ignored: both live on until the grace is over, then SIGKILL ends them
    expect(pids.every(running)).toBe(true);
    expect(await allGone(pids, 1500)).toBe(true);
  });
});

describe("the hooks plugin", () => {
  test("before and after commands see the stage, side, config, plan and result", async () => {
    const { hooks, logs } = await setUp({
      before: { cleanup: 'echo "before $ABGLEICH_STAGE $ABGLEICH_SIDE $ABGLEICH_CONFIG"' },
      after: { all: 'echo "after $ABGLEICH_RESULT [$ABGLEICH_SNAPSHOTS] [$ABGLEICH_PLANNED]"' },
    });
    const stage = info("cleanup", "source");
    await hooks.beforeStage.promise(stage);
    const action = {
      kind: "destroy" as const,
      side: "source" as const,
      subname: "",
      dataset: "tank/data",
      snapshots: ["a", "b"],
      used: 1,
    };
    // the plan is checked against the inventories after every plugin: make it a valid one
    await hooks.plan.promise(
      { actions: [action], conflicts: [], skipped: [], errors: [] },
      {
        ...stage,
        source: inventory("source", [src("", history("a", "b", "c"))]),
        target: inventory("target", [dst("", history("a", "b", "c"))]),
      },
    );
    await hooks.afterAction.promise(action, { ok: true, durationMs: 1 }, stage);
    await hooks.afterStage.promise(stage, { status: "ok" });
    expect(logs).toEqual([
      'before cleanup "echo "before $ABGLEICH_STAGE $ABGLEICH_SIDE $ABGLEICH_CONFIG"":\nbefore cleanup source /etc/abgleich.yaml',
      'after cleanup "echo "after $ABGLEICH_RESULT [$ABGLEICH_SNAPSHOTS] [$ABGLEICH_PLANNED]"":\nafter ok [tank/data@a\ntank/data@b] [tank/data@a\ntank/data@b]',
    ]);
  });

  test("a failing before-command aborts the stage with its exit code and output", async () => {
    const { hooks } = await setUp({
      before: { backup: ["true", "echo mount missing >&2; exit 4", "echo never"] },
    });
    const error = await hooks.beforeStage.promise(info("backup")).catch((e: unknown) => e);
    expect((error as Error).message).toBe(
      'plugin "hooks" failed in hook beforeStage: before-backup command "echo mount missing >&2; exit 4" exited with 4: mount missing; the stage did not start',
    );
  });

  test("after-commands run on failure and cancel too; their own failure only warns", async () => {
    const { hooks, warnings, logs } = await setUp({
      after: { snap: 'echo "$ABGLEICH_RESULT: $ABGLEICH_ERROR"; exit 1' },
      on_error: "echo on-error $ABGLEICH_ERROR",
    });
    await hooks.error.promise(new Error("boom"), info("snap"));
    await hooks.afterStage.promise(info("snap"), { status: "failed", error: new Error("boom") });
    await hooks.afterStage.promise(info("snap"), { status: "cancelled" });
    expect(logs.map((l) => l.split("\n")[1])).toEqual([
      "on-error boom",
      "failed: boom",
      "cancelled:",
    ]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain("exited with 1");
  });

  test("a timed-out before-command fails the stage at the timeout, whatever holds its output", async () => {
    const pidFile = join(scratchDir(), "pids");
    const command = `sleep 1000 & echo $! > '${pidFile}'; echo started`;
    const { hooks } = await setUp({ before: { snap: command }, timeout: 1 });
    const started = Date.now();
    const error = await hooks.beforeStage.promise(info("snap")).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1500);
    expect((error as Error).message).toBe(
      `plugin "hooks" failed in hook beforeStage: before-snap command "${command}" timed out after 1 s (it had exited, but something it started kept its output open): started; the stage did not start`,
    );
    expect(await allGone(await pidsIn(pidFile, 1), 1000)).toBe(true);
  });

  test("a cancel stops a running before-command at once; the next is not started", async () => {
    const dir = scratchDir();
    const pidFile = join(dir, "pids");
    const marker = join(dir, "marker");
    const running = `echo $$ > '${pidFile}'; sleep 1000 & echo $! >> '${pidFile}'; wait`;
    const { hooks } = await setUp({ before: { snap: [running, `touch '${marker}'`] } });
    const cancel = new AbortController();
    const stage = hooks.beforeStage.promise(info("snap", undefined, cancel.signal));
    const pids = await pidsIn(pidFile, 2);
    const aborted = Date.now();
    cancel.abort();
    const error = await stage.catch((e: unknown) => e);
    expect(Date.now() - aborted).toBeLessThan(500);
    expect((error as Error).message).toBe(
      `plugin "hooks" failed in hook beforeStage: before-snap command "${running}" was stopped: the run was cancelled; the stage did not start`,
    );
    expect(await allGone(pids, 1000)).toBe(true);
    expect(existsSync(marker)).toBe(false);
    // a stage that begins after the cancel starts no before-command at all
    const late = await hooks.beforeStage
      .promise(info("snap", undefined, cancel.signal))
      .catch((e: unknown) => e);
    expect((late as Error).message).toContain("not run: the run was cancelled");
    expect(existsSync(marker)).toBe(false);
  });

  test("after a cancel, after- and on-error commands still run; only a running one is stopped", async () => {
    const pidFile = join(scratchDir(), "pids");
    const running = `echo $$ > '${pidFile}'; sleep 1000 & echo $! >> '${pidFile}'; wait`;
    const { hooks, logs, warnings } = await setUp({
      after: { snap: [running, 'echo "cleanup $ABGLEICH_RESULT"'] },
      on_error: 'echo "on-error $ABGLEICH_ERROR"',
    });
    const cancel = new AbortController();
    const stage = info("snap", undefined, cancel.signal);
    const after = hooks.afterStage.promise(stage, { status: "cancelled" });
    const pids = await pidsIn(pidFile, 2);
    const aborted = Date.now();
    cancel.abort();
    await after;
    expect(Date.now() - aborted).toBeLessThan(500);
    await hooks.error.promise(new Error("cancelled"), stage);
    expect(logs).toEqual([
      'after snap "echo "cleanup $ABGLEICH_RESULT"":\ncleanup cancelled',
      'on error in snap "echo "on-error $ABGLEICH_ERROR"":\non-error cancelled',
    ]);
    expect(warnings).toEqual([
      `after-snap command "${running}" was stopped: the run was cancelled`,
    ]);
    expect(await allGone(pids, 1000)).toBe(true);
  });

  test("20,000 planned snapshots: the variable is emptied, the full list is in a private file", async () => {
    const dir = scratchDir();
    const copy = join(dir, "copy");
    const names = Array.from(
      { length: 20_000 },
      (_, i) => `2026010112${String(i).padStart(5, "0")}`,
    );
    const { hooks, logs, warnings } = await setUp({
      after: {
        snap: [
          // biome-ignore lint/suspicious/noTemplateCurlyInString: shell code, not a template
          'echo "planned=${#ABGLEICH_PLANNED} datasets=$ABGLEICH_DATASETS"',
          'stat -c "dir=%a" "$(dirname "$ABGLEICH_PLANNED_FILE")"; echo "datasets file: $(cat "$ABGLEICH_DATASETS_FILE")"',
          `cp "$ABGLEICH_PLANNED_FILE" '${copy}'; echo "$ABGLEICH_PLANNED_FILE"`,
        ],
      },
    });
    const stage = info("snap");
    await hooks.beforeStage.promise(stage);
    const action = {
      kind: "snapshot" as const,
      pool: "tank",
      snapshots: names.map((name) => ({ dataset: "tank/data", subname: "", name, written: 1 })),
    };
    await hooks.plan.promise(
      { actions: [action], conflicts: [], skipped: [], errors: [] },
      {
        ...stage,
        source: inventory("source", [src("", [])]),
        target: inventory("target", []),
      },
    );
    await hooks.afterStage.promise(stage, { status: "ok" });
    expect(warnings).toEqual([]);
    const outputs = logs.map((l) => l.split("\n").slice(1).join("\n"));
    expect(outputs.slice(0, 2)).toEqual([
      "planned=0 datasets=tank/data",
      "dir=700\ndatasets file: tank/data",
    ]);
    expect(readFileSync(copy, "utf8")).toBe(`${names.map((n) => `tank/data@${n}`).join("\n")}\n`);
    // the file and its directory went with the command
    const file = outputs[2] as string;
    expect(file.startsWith(tmpdir())).toBe(true);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(join(file, ".."))).toBe(false);
  });

  test("unknown stages in the options are config errors", () => {
    expect(() => checkOptions(shellHooks, { before: { snapshot: "x" } }, config(), 2)).toThrow(
      "plugins[2].options.before.snapshot: unknown option",
    );
  });
});
