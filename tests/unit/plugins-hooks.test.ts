// The shell hooks plugin: commands run with the stage in the environment, output is captured,
// a failing before-command aborts the stage, after-commands always run and only warn.

import { describe, expect, test } from "bun:test";
import type { Config } from "../../lib/config/types.ts";
import type { StageInfo } from "../../lib/engine/hooks.ts";
import { createHooks } from "../../lib/engine/hooks.ts";
import { checkOptions, pluginHooks } from "../../lib/engine/plugins.ts";
import shellHooks, { runShellCommand } from "../../plugins/hooks.ts";
import { config } from "./plan/fixtures.ts";

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

const info = (stage: StageInfo["stage"], side?: "source" | "target"): StageInfo => ({
  stage,
  config: config(),
  side,
  dryRun: false,
  signal: new AbortController().signal,
});

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
    await hooks.plan.promise(
      { actions: [action], conflicts: [], skipped: [], errors: [] },
      {
        ...stage,
        source: { side: "source", root: "tank/data", datasets: [] },
        target: { side: "target", root: "backup/host", datasets: [] },
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

  test("unknown stages in the options are config errors", () => {
    expect(() => checkOptions(shellHooks, { before: { snapshot: "x" } }, config(), 2)).toThrow(
      "plugins[2].options.before.snapshot: unknown option",
    );
  });
});
