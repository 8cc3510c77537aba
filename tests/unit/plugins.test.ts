// The plugin loader and the hook API: every hook fires once and in order with its payload;
// bad plugins and bad options are config errors naming the place; a throwing plugin is named;
// a plugin cannot sneak an unsafe destroy into a plan.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../lib/config/errors.ts";
import { loadConfig } from "../../lib/config/load.ts";
import type { Config } from "../../lib/config/types.ts";
import { definePlugin, defineWorkflow, SafetyError } from "../../lib/engine/api.ts";
import { createRunContext, type RunContext } from "../../lib/engine/context.ts";
import { createHooks, type Hooks } from "../../lib/engine/hooks.ts";
import { loadPlugins, PluginError, pluginHooks } from "../../lib/engine/plugins.ts";
import { runChangingStage } from "../../lib/engine/stages/changing.ts";
import { inventoryStage } from "../../lib/engine/stages/inventory.ts";
import type { StageUi } from "../../lib/engine/ui.ts";
import { defaultStages, runWorkflow } from "../../lib/engine/workflow.ts";
import type { Host } from "../../lib/hosts/host.ts";
import type { Action, Plan } from "../../lib/plan/types.ts";
import type { Inventory, Side } from "../../lib/zfs/model.ts";
import { config, dst, history, inventory, src } from "./plan/fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "abgleich-plugins-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileCounter = 0;

function writeFile(name: string, text: string): string {
  const file = join(dir, `${fileCounter++}-${name}`);
  writeFileSync(file, text);
  return file;
}

function configFile(plugins: string): string {
  return writeFile(
    "config.yaml",
    `source:\n  zpool: tank\ntarget:\n  zpool: backup\nplugins:\n${plugins}`,
  );
}

const quietIo = { log() {}, warn() {} };

async function loadError(yaml: string): Promise<ConfigError> {
  const file = configFile(yaml);
  const error = await loadPlugins(loadConfig(file), createHooks(), quietIo).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

describe("loading plugins", () => {
  test("an unknown bundled name is a config error at plugins[N].name with its line", async () => {
    const error = await loadError("  - name: notify\n  - name: nope\n");
    expect(error.keyPath).toBe("plugins[1].name");
    expect(error.line).toBe(7);
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain('unknown plugin "nope"');
    expect(error.message).toContain("notify, hooks, naming");
  });

  test("a bad option names its key path below plugins[N].options", async () => {
    const wrongType = await loadError("  - name: notify\n    options:\n      timeout: soon\n");
    expect(wrongType.keyPath).toBe("plugins[0].options.timeout");
    expect(wrongType.line).toBe(8);
    const unknown = await loadError(
      "  - name: notify\n    options:\n      ntfy:\n        url: http://x\n        topic: t\n",
    );
    expect(unknown.keyPath).toBe("plugins[0].options.ntfy.topic");
    expect(unknown.reason).toBe("unknown option");
    const missing = await loadError(
      "  - name: notify\n    options:\n      webhook: { preset: slack }\n",
    );
    expect(missing.keyPath).toBe("plugins[0].options.webhook");
    expect(missing.reason).toContain('"url"');
  });

  test("an options parser's PluginOptionError points at its key", async () => {
    const error = await loadError("  - name: naming\n    options:\n      template: '%Y-%m-%d'\n");
    expect(error.keyPath).toBe("plugins[0].options.template");
    expect(error.reason).toContain("add a counter (%N) or seconds (%S)");
  });

  test("a user plugin file is loaded by path, imports `abgleich` and gets its options", async () => {
    const plugin = writeFile(
      "mine.ts",
      `import { definePlugin } from "abgleich";
interface Options { greeting: string }
export default definePlugin<Options>({
  name: "mine",
  options: { type: "object", properties: { greeting: { type: "string", default: "hi" } } },
  setup(hooks, { options }) {
    hooks.beforeStage.tap("ignored-name", (info) => { (globalThis as any).__mine = options.greeting + " " + info.stage; });
  },
});`,
    );
    const hooks = createHooks();
    const loaded = await loadPlugins(
      loadConfig(configFile(`  - path: ${plugin}\n`)),
      hooks,
      quietIo,
    );
    expect(loaded.map((p) => p.name)).toEqual(["mine"]);
    // every tap carries the plugin's name, whatever the plugin wrote
    expect(hooks.beforeStage.taps.map((t) => t.name)).toEqual(["mine"]);
    await hooks.beforeStage.promise({
      stage: "snap",
      config: config(),
      dryRun: false,
      signal: new AbortController().signal,
    });
    expect((globalThis as Record<string, unknown>).__mine).toBe("hi snap");
  });

  test("a syntax error in a user file names the file, line and column", async () => {
    const plugin = writeFile(
      "broken.ts",
      'import { definePlugin } from "abgleich";\nexport default definePlugin({\n  setup( => 1,\n});\n',
    );
    const error = await loadError(`  - path: ${plugin}\n`);
    expect(error.file).toBe(plugin);
    expect(error.line).toBe(3);
    expect(error.column).toBe(10);
    expect(error.message).toStartWith(`${plugin}:3:10: cannot be loaded:`);
  });

  test("a file without a plugin, and a missing file, are config errors", async () => {
    const notAPlugin = writeFile("empty.ts", "export const x = 1;\n");
    expect((await loadError(`  - path: ${notAPlugin}\n`)).reason).toContain(
      "does not export a plugin",
    );
    expect((await loadError(`  - path: ${join(dir, "absent.ts")}\n`)).reason).toContain(
      "no such file",
    );
  });

  test("a plugin that throws in setup is named, as a config error at its entry", async () => {
    const plugin = writeFile(
      "setup-throws.ts",
      `export default { name: "fragile", setup() { throw new Error("no token"); } };`,
    );
    const error = await loadError(`  - path: ${plugin}\n`);
    expect(error.keyPath).toBe("plugins[0]");
    expect(error.reason).toBe('plugin "fragile" failed in setup: no token');
  });
});

describe("tap wrapping", () => {
  test("an error in a tap names the plugin and the hook, for every tap style", async () => {
    const hooks = createHooks();
    const view = pluginHooks(hooks, "flaky");
    view.beforeStage.tapPromise("x", async () => {
      throw new Error("disk full");
    });
    const info = {
      stage: "backup" as const,
      config: config(),
      dryRun: false,
      signal: new AbortController().signal,
    };
    const error = await hooks.beforeStage.promise(info).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PluginError);
    expect((error as Error).message).toBe('plugin "flaky" failed in hook beforeStage: disk full');

    const sync = createHooks();
    pluginHooks(sync, "s").progress.tap("x", () => {
      throw new Error("bad");
    });
    expect(() =>
      sync.progress.call({ action: {} as Action, bytesDone: 1, bytesTotal: null }),
    ).toThrow('plugin "s" failed in hook progress: bad');

    const callback = createHooks();
    pluginHooks(callback, "cb").afterStage.tapAsync("x", (_info, _outcome, done) =>
      done(new Error("late")),
    );
    const viaCallback = await callback.afterStage
      .promise(info, { status: "ok" })
      .catch((e: unknown) => e);
    expect((viaCallback as Error).message).toBe('plugin "cb" failed in hook afterStage: late');
  });
});

// ---- a scripted run: fake hosts, fixed inventories, a ui that says yes ----

const SOURCE = inventory("source", [src("", history("a", "b")), src("home", history("a", "b"))]);
const TARGET = inventory("target", [dst("", history("a", "b")), dst("home", history("a", "b"))]);

const fakeHost = (side: Side): Host => ({
  side,
  name: "localhost",
  isLocal: true,
  run: async () => ({ code: 0, stdout: "", stderr: "" }),
  wrap: (argv) => [...argv],
  ping: async () => {},
  close: async () => {},
});

const yesUi: StageUi = {
  showPlan() {},
  confirm: async () => true,
  actionStarted() {},
  actionProgress() {},
  actionFinished() {},
  note() {},
  stageFinished() {},
};

function fakeRun(hooks: Hooks, cfg: Config = config()): RunContext {
  const ctx = createRunContext(
    cfg,
    {
      yes: true,
      dryRun: false,
      json: false,
      interactive: false,
      signal: new AbortController().signal,
      now: () => new Date(2026, 10, 26, 12),
    },
    yesUi,
    hooks,
  );
  const trees: Record<Side, Inventory> = { source: SOURCE, target: TARGET };
  return {
    ...ctx,
    hosts: { source: fakeHost("source"), target: fakeHost("target") },
    inventory: async (side) => trees[side],
  };
}

/** a snap-like stage: names one snapshot through the namer, "runs" it with progress */
function snapLike(ctx: RunContext, fail = false) {
  return runChangingStage(ctx, {
    stage: "snap",
    inventories: async () => ({ source: SOURCE, target: TARGET }),
    plan: async (): Promise<Plan> => {
      const next = ctx.namer().next(["a", "b"], ctx.options.now());
      const name = "name" in next ? next.name : "x";
      return {
        actions: [
          {
            kind: "snapshot",
            pool: "tank",
            snapshots: [{ dataset: "tank/data/home", subname: "home", name, written: 5 }],
          },
        ],
        conflicts: [],
        skipped: [],
        errors: [],
      };
    },
    execute: async (action) => {
      if (fail) throw new Error("zfs snapshot: out of space");
      ctx.hooks.progress.call({ action, bytesDone: 5, bytesTotal: 5 });
      ctx.summary.snapshotMade(
        "home",
        (action as { snapshots: { name: string }[] }).snapshots[0]?.name ?? "",
      );
      return { ok: true, durationMs: 1 };
    },
  });
}

/** a plugin that records every hook call with the bits of its payload a user relies on */
function recorder(calls: string[]) {
  return definePlugin({
    name: "recorder",
    setup(hooks) {
      hooks.beforeStage.tap("r", (info) => {
        calls.push(`beforeStage ${info.stage} dryRun=${info.dryRun}`);
      });
      hooks.inventory.tap("r", ({ source, target }) => {
        calls.push(`inventory ${source.root} ${target.root}`);
      });
      hooks.namer.tap("r", (namer, cfg) => {
        calls.push(`namer digits=${cfg.digits}`);
        return namer;
      });
      hooks.plan.tap("r", (plan, info) => {
        calls.push(`plan ${info.stage} actions=${plan.actions.length} source=${info.source.root}`);
        return plan;
      });
      hooks.beforeAction.tap("r", (action, info) => {
        calls.push(`beforeAction ${action.kind} ${info.stage}`);
      });
      hooks.progress.tap("r", (event) => {
        calls.push(`progress ${event.bytesDone}/${event.bytesTotal}`);
      });
      hooks.afterAction.tap("r", (action, outcome) => {
        calls.push(`afterAction ${action.kind} ok=${outcome.ok}`);
      });
      hooks.error.tap("r", (error, info) => {
        calls.push(`error ${info.stage}: ${error.message}`);
      });
      hooks.afterStage.tap("r", (info, outcome) => {
        calls.push(`afterStage ${info.stage} ${outcome.status}`);
      });
      hooks.done.tap("r", (summary) => {
        const home = summary.datasets.find((d) => d.subname === "home");
        calls.push(
          `done exit=${summary.exitCode} stages=${summary.stages.map((s) => s.stage).join(",")} made=${home?.snapshotsMade.join(",") ?? ""}`,
        );
      });
    },
  });
}

async function recordedRun(fail: boolean): Promise<{ calls: string[]; code: number }> {
  const calls: string[] = [];
  const hooks = createHooks();
  await recorder(calls).setup(pluginHooks(hooks, "recorder"), {
    name: "recorder",
    config: config(),
    options: {},
    log() {},
    warn() {},
  });
  const ctx = fakeRun(hooks);
  const workflow = defineWorkflow(async (run) => {
    await run.tree();
    await run.snap();
  });
  const code = await runWorkflow(workflow, ctx, {
    stages: { ...defaultStages, tree: (c) => inventoryStage(c), snap: (c) => snapLike(c, fail) },
    report: () => 1,
  });
  return { calls, code };
}

describe("hooks in a run", () => {
  test("every hook fires once, in order, with its payload", async () => {
    const { calls, code } = await recordedRun(false);
    expect(code).toBe(0);
    expect(calls).toEqual([
      "beforeStage inventory dryRun=false",
      "inventory tank/data backup/host",
      "afterStage inventory ok",
      "beforeStage snap dryRun=false",
      "namer digits=2",
      "plan snap actions=1 source=tank/data",
      "beforeAction snapshot snap",
      "progress 5/5",
      "afterAction snapshot ok=true",
      "afterStage snap ok",
      "done exit=0 stages=snap made=2026112601",
    ]);
  });

  test("a failing action fires error and afterStage failed, and done reports exit 1", async () => {
    const { calls, code } = await recordedRun(true);
    expect(code).toBe(1);
    expect(calls.slice(6)).toEqual([
      "beforeAction snapshot snap",
      "afterAction snapshot ok=false",
      "error snap: zfs snapshot: out of space",
      "afterStage snap failed",
      "done exit=1 stages=snap made=",
    ]);
  });

  test("a throwing beforeAction plugin stops the stage before the action runs", async () => {
    const hooks = createHooks();
    let executed = 0;
    pluginHooks(hooks, "veto").beforeAction.tap("x", () => {
      throw new Error("not now");
    });
    const ctx = fakeRun(hooks);
    const result = await runChangingStage(ctx, {
      stage: "snap",
      inventories: async () => ({ source: SOURCE, target: TARGET }),
      plan: async () => ({
        actions: [
          {
            kind: "snapshot",
            pool: "tank",
            snapshots: [{ dataset: "tank/data", subname: "", name: "s", written: 1 }],
          },
        ],
        conflicts: [],
        skipped: [],
        errors: [],
      }),
      execute: async () => {
        executed++;
        return { ok: true, durationMs: 0 };
      },
    });
    expect(executed).toBe(0);
    expect(result.outcome.status).toBe("failed");
    expect(result.outcome.error?.message).toBe(
      'plugin "veto" failed in hook beforeAction: not now',
    );
  });
});

describe("plan safety against plugins", () => {
  const destroy = (side: Side, dataset: string, subname: string, snapshots: string[]): Action => ({
    kind: "destroy",
    side,
    dataset,
    subname,
    snapshots,
    used: 1,
  });

  async function planThrough(stage: "backup" | "cleanup", extra: Action): Promise<unknown> {
    const hooks = createHooks();
    const ctx = fakeRun(hooks);
    pluginHooks(hooks, "greedy").plan.tap("x", (plan) => ({
      ...plan,
      actions: [...plan.actions, extra],
    }));
    return runChangingStage(ctx, {
      stage,
      side: "source",
      inventories: async () => ({ source: SOURCE, target: TARGET }),
      plan: async () => ({ actions: [], conflicts: [], skipped: [], errors: [] }),
      execute: async () => {
        throw new Error("must not run");
      },
    }).then((result) => result.outcome.error);
  }

  test("a destroy slipped into a backup plan is stopped, naming the plugin", async () => {
    const error = await planThrough("backup", destroy("source", "tank/data/home", "home", ["a"]));
    expect(error).toBeInstanceOf(SafetyError);
    expect((error as Error).message).toContain('plugin "greedy" produced an unsafe plan');
    expect((error as Error).message).toContain("a destroy action has no place in backup");
  });

  test("destroying the newest common snapshot in cleanup is stopped (rule 2)", async () => {
    const error = await planThrough("cleanup", destroy("source", "tank/data/home", "home", ["b"]));
    expect(error).toBeInstanceOf(SafetyError);
    expect((error as Error).message).toContain(
      "tank/data/home@b is the newest common snapshot (rule 2)",
    );
  });

  test("a safe change by a plugin passes the check and reaches the runner", async () => {
    const error = await planThrough("cleanup", destroy("source", "tank/data/home", "home", ["a"]));
    expect(error).not.toBeInstanceOf(SafetyError);
    expect((error as Error).message).toBe("must not run");
  });
});
