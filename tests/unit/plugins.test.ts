// The plugin loader and the hook API: every hook fires once and in order with its payload;
// bad plugins and bad options are config errors naming the place; a throwing plugin is named;
// a plugin cannot sneak an unsafe destroy into a plan.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../lib/config/errors.ts";
import { loadConfig } from "../../lib/config/load.ts";
import { definePlugin, defineWorkflow, SafetyError } from "../../lib/engine/api.ts";
import { createHooks, type PlanInfo } from "../../lib/engine/hooks.ts";
import { loadPlugins, PluginError, pluginHooks } from "../../lib/engine/plugins.ts";
import { Run } from "../../lib/engine/runner.ts";
import type { StageUi } from "../../lib/engine/ui.ts";
import { runWorkflow } from "../../lib/engine/workflow.ts";
import type { Action } from "../../lib/plan/types.ts";
import type { Side } from "../../lib/zfs/model.ts";
import { memoryHost } from "../helpers/memory-host.ts";
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
    expect(unknown.reason).toStartWith("unknown option; allowed here: ");
    // a typo: the option it could be is named
    const typo = await loadError("  - name: notify\n    options:\n      timout: 5\n");
    expect(typo.keyPath).toBe("plugins[0].options.timout");
    expect(typo.reason).toStartWith("unknown option (did you mean `timeout`?); allowed here: ");
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
      changes: true,
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
      changes: true,
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

// ---- a run on in-memory hosts, with a plugin that records every hook ----

const SOURCE = inventory("source", [
  src("", history("2026112501")),
  src("home", history("2026112501"), { written: 5_000_000 }),
]);
const TARGET = inventory("target", [
  dst("", history("2026112501")),
  dst("home", history("2026112501")),
]);

/** a plugin that records every hook call with the bits of its payload a user relies on */
function recorder(calls: string[]) {
  return definePlugin({
    name: "recorder",
    setup(hooks) {
      hooks.beforeStage.tap("r", (info) => {
        calls.push(`beforeStage ${info.stage} dryRun=${info.dryRun} changes=${info.changes}`);
      });
      hooks.inventory.tap("r", ({ source, target }) => {
        calls.push(`inventory ${source.root} ${target?.root ?? "-"}`);
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
      hooks.afterAction.tap("r", (action, outcome) => {
        calls.push(`afterAction ${action.kind} ok=${outcome.ok}`);
      });
      hooks.error.tap("r", (error, info) => {
        calls.push(`error ${info.stage}: ${error.message.split("\n")[0]}`);
      });
      hooks.afterStage.tap("r", (info, outcome) => {
        calls.push(`afterStage ${info.stage} ${outcome.status}`);
      });
      hooks.done.tap("r", (summary) => {
        const home = summary.datasets.find((d) => d.subname === "home");
        calls.push(
          `done exit=${summary.exitCode} mode=${summary.mode} stages=${summary.stages.map((s) => s.stage).join(",")} made=${home?.snapshotsMade.join(",") ?? ""}`,
        );
      });
    },
  });
}

const quietUi: StageUi = {
  showPlan() {},
  confirm: async () => true,
  actionStarted() {},
  actionProgress() {},
  actionFinished() {},
  note() {},
  warn() {},
  stageFinished() {},
};

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
  const hosts = { source: memoryHost("source", SOURCE), target: memoryHost("target", TARGET) };
  if (fail) hosts.source.failWhen(/^zfs snapshot/, "cannot create snapshots : out of space\n");
  const run = Run.open(
    config(),
    hooks,
    quietUi,
    {
      yes: true,
      dryRun: false,
      json: false,
      interactive: false,
      signal: new AbortController().signal,
      now: () => new Date(2026, 10, 26, 12),
      hostFor: (side) => hosts[side],
    },
    "changing",
  );
  const code = await runWorkflow(
    defineWorkflow(async (flow) => {
      await flow.tree();
      await flow.snap();
    }),
    run,
    () => {},
  );
  return { calls, code: (await run.finish(code)).code };
}

describe("hooks in a run", () => {
  test("every hook fires once per stage, in order, with its payload", async () => {
    const { calls, code } = await recordedRun(false);
    expect(code).toBe(0);
    expect(calls).toEqual([
      "beforeStage inventory dryRun=false changes=false",
      "inventory tank/data backup/host",
      "afterStage inventory ok",
      "beforeStage snap dryRun=false changes=true",
      "inventory tank/data -",
      "namer digits=2",
      "plan snap actions=1 source=tank/data",
      "beforeAction snapshot snap",
      "afterAction snapshot ok=true",
      "afterStage snap ok",
      "done exit=0 mode=changing stages=inventory,snap made=2026112601",
    ]);
  });

  test("a failing action fires error and afterStage failed, and done reports exit 1", async () => {
    const { calls, code } = await recordedRun(true);
    expect(code).toBe(1);
    expect(calls.slice(7)).toEqual([
      "beforeAction snapshot snap",
      "afterAction snapshot ok=false",
      "error snap: snap: 1 action(s) failed: command failed on source (memory): zfs snapshot tank/data/home@2026112601",
      "afterStage snap failed",
      "done exit=1 mode=changing stages=inventory,snap made=",
    ]);
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
  const info = (stage: "backup" | "cleanup"): PlanInfo => ({
    stage,
    side: stage === "cleanup" ? "source" : undefined,
    config: config(),
    dryRun: false,
    changes: true,
    signal: new AbortController().signal,
    source: inventory("source", [src("home", history("a", "b"))]),
    target: inventory("target", [dst("home", history("a", "b"))]),
  });

  async function planThrough(stage: "backup" | "cleanup", extra: Action): Promise<unknown> {
    const hooks = createHooks();
    pluginHooks(hooks, "greedy").plan.tap("x", (plan) => ({
      ...plan,
      actions: [...plan.actions, extra],
    }));
    return hooks.plan
      .promise({ actions: [], conflicts: [], skipped: [], errors: [] }, info(stage))
      .then(
        () => null,
        (error: unknown) => error,
      );
  }

  test("a destroy slipped into a backup plan is stopped, naming the plugin", async () => {
    const error = await planThrough("backup", destroy("source", "tank/data/home", "home", ["a"]));
    expect(error).toBeInstanceOf(SafetyError);
    expect((error as Error).message).toContain('plugin "greedy" broke a safety rule');
    expect((error as Error).message).toContain("a destroy action has no place in backup");
  });

  test("destroying the newest common snapshot in cleanup is stopped (rule 2)", async () => {
    const error = await planThrough("cleanup", destroy("source", "tank/data/home", "home", ["b"]));
    expect(error).toBeInstanceOf(SafetyError);
    expect((error as Error).message).toContain(
      "tank/data/home@b is the newest common snapshot (rule 2)",
    );
  });

  test("a safe change by a plugin passes the check", async () => {
    const error = await planThrough("cleanup", destroy("source", "tank/data/home", "home", ["a"]));
    expect(error).toBeNull();
  });
});
