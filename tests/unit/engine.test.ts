// The engine's runner with in-memory hosts: what is shown is what runs, whatever plugins do;
// failures end a stage with its hooks and `done` still run; decline, dry run and cancel change
// nothing. Every zfs call is logged by the hosts, and each test asserts no forbidden one ran.

import { describe, expect, test } from "bun:test";
import type { Config } from "../../lib/config/types.ts";
import { definePlugin, defineWorkflow, type Plugin } from "../../lib/engine/api.ts";
import { createHooks, type RunSummary, type StageOutcome } from "../../lib/engine/hooks.ts";
import { pluginHooks } from "../../lib/engine/plugins.ts";
import { Run } from "../../lib/engine/runner.ts";
import { stages } from "../../lib/engine/stages/index.ts";
import type { StageUi } from "../../lib/engine/ui.ts";
import { runWorkflow } from "../../lib/engine/workflow.ts";
import type { Action, DestroyAction } from "../../lib/plan/types.ts";
import type { Side } from "../../lib/zfs/model.ts";
import { type MemoryHost, memoryHost } from "../helpers/memory-host.ts";
import { config, dst, history, inventory, src } from "./plan/fixtures.ts";

// own snapshots (the default scheme): 01..03 are on both sides, 04 only on the source
const S1 = "2026112501";
const S2 = "2026112502";
const S3 = "2026112503";
const UNSENT = "2026112504";

interface Scene {
  run: Run;
  source: MemoryHost;
  target: MemoryHost;
  controller: AbortController;
  events: string[];
  summaries: RunSummary[];
  finish(): Promise<number>;
}

function scene(
  plugins: Plugin<Record<string, unknown>>[] = [],
  options: {
    confirm?: boolean;
    dryRun?: boolean;
    cfg?: Partial<Config>;
    /** hosts for targets other than backup/host (run.with()) */
    otherTarget?: MemoryHost;
    /** the run lock keys, in the order they are taken */
    locks?: string[];
    /** the target's host is the source's machine (one machine under two names) */
    targetIsSource?: boolean;
    /** runs while the question waits for its answer */
    whileAsked?: (hosts: { source: MemoryHost; target: MemoryHost }) => void;
  } = {},
): Scene {
  const cfg = config(options.cfg);
  const held = new Set<string>();
  const source = memoryHost(
    "source",
    inventory("source", [
      src("", history(S1, S2, S3)),
      src("home", history(S1, S2, S3, UNSENT)),
      src("home/user", history(S1, S2, S3)),
      src("srv", history(S1, S2, S3)),
    ]),
  );
  const target = memoryHost(
    "target",
    inventory("target", [
      dst("", history(S1, S2, S3)),
      dst("home", history(S1, S2, S3)),
      dst("home/user", history(S1, S2, S3)),
      dst("srv", history(S1, S2, S3)),
    ]),
  );
  const events: string[] = [];
  const summaries: RunSummary[] = [];
  const hooks = createHooks();
  for (const plugin of plugins) {
    plugin.setup(pluginHooks(hooks, plugin.name), {
      name: plugin.name,
      config: cfg,
      options: {},
      log() {},
      warn() {},
    });
  }
  pluginHooks(hooks, "observer").done.tap("x", (summary) => {
    summaries.push(summary);
  });
  const ui: StageUi = {
    showPlan: (_info, plan) => events.push(`show ${plan.actions.length}`),
    confirm: async () => {
      options.whileAsked?.({ source, target });
      return options.confirm ?? true;
    },
    actionStarted: (action) => events.push(`start ${label(action)}`),
    actionProgress() {},
    actionFinished: (action, outcome) =>
      events.push(`${outcome.ok ? "done" : "failed"} ${label(action)}`),
    note() {},
    warn: (text) => events.push(`warn ${text}`),
    stageFinished: (info, outcome) => events.push(`stage ${info.stage} ${outcome.status}`),
  };
  const controller = new AbortController();
  const run = Run.open(
    cfg,
    hooks,
    ui,
    {
      yes: true,
      dryRun: options.dryRun ?? false,
      json: false,
      interactive: false,
      signal: controller.signal,
      now: () => new Date(2026, 10, 26, 12),
      hostFor: (side: Side, cfg: Config) =>
        side === "source" || options.targetIsSource
          ? source
          : cfg.target.zpool === "backup" || !options.otherTarget
            ? target
            : options.otherTarget,
      afterCancelGraceMs: 300,
      ...(options.locks
        ? {
            // exclusive, as flock is between two takings even in one process
            lock: async (key: string) => {
              if (held.has(key)) throw new Error(`${key} is in use by pid ${process.pid}`);
              held.add(key);
              options.locks?.push(key);
              return () => held.delete(key);
            },
          }
        : {}),
    },
    options.dryRun ? "dry-run" : "changing",
  );
  return {
    run,
    source,
    target,
    controller,
    events,
    summaries,
    finish: async () => (await run.finish(null)).code,
  };
}

function label(action: Action): string {
  return action.kind === "destroy"
    ? `destroy ${action.side} ${action.dataset}@${action.snapshots.join(",")}`
    : action.kind;
}

/** a plugin whose plan hook adds `action` to the plan it was given */
const appending = (name: string, action: Action) =>
  definePlugin({
    name,
    setup(hooks) {
      hooks.plan.tap("x", (plan) => ({ ...plan, actions: [...plan.actions, action] }));
    },
  });

const destroys = (host: MemoryHost) =>
  host.calls.filter((argv) => argv[1] === "destroy").map((argv) => argv.join(" "));

const snapshotsOf = (host: MemoryHost, name: string) =>
  host.datasets.find((d) => d.name === name)?.snapshots.map((s) => s.name);

describe("the engine owns the plan", () => {
  test("a plugin that edits a destroy in beforeAction is refused; nothing unsent or newest-common is destroyed", async () => {
    const editor = definePlugin({
      name: "editor",
      setup(hooks) {
        hooks.beforeAction.tap("x", (action) => {
          if (action.kind === "destroy") (action as DestroyAction).snapshots.push(UNSENT, S3);
        });
      },
    });
    const s = scene([editor]);
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("failed");
    expect(result.outcome.error?.message).toContain('plugin "editor" failed in hook beforeAction');
    expect(destroys(s.source)).toEqual([]);
    expect(snapshotsOf(s.source, "tank/data/home")).toEqual([S1, S2, S3, UNSENT]);
    expect(await s.finish()).toBe(1);
  });

  test("cleanup source checks the pools as they are after the yes: a target copy pruned while the question waited keeps the source's", async () => {
    const s = scene([], {
      whileAsked: ({ target }) => {
        // another tool prunes the target's oldest snapshots of one dataset meanwhile
        const home = target.datasets.find((d) => d.name === "backup/host/home");
        if (home) home.snapshots = home.snapshots.filter((snap) => snap.name === S3);
      },
    });
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("failed");
    expect(result.outcome.error?.message).toContain(
      `the pools changed while the plan waited for its yes, so nothing was destroyed: tank/data/home@${S1} is not on the target (rule 1)`,
    );
    expect(result.outcome.error?.message).toContain("Run cleanup again");
    expect(destroys(s.source)).toEqual([]);
    expect(snapshotsOf(s.source, "tank/data/home")).toEqual([S1, S2, S3, UNSENT]);
    // the next cleanup plans from the pools as they are: home keeps what the target lacks
    expect((await stages.cleanup(s.run, "source")).outcome.status).toBe("ok");
    expect(destroys(s.source)).toHaveLength(3);
    expect(snapshotsOf(s.source, "tank/data/home")).toEqual([S1, S2, S3, UNSENT]);
  });

  test("a plugin's destroy on an ignored dataset is refused: what the config leaves out is never touched", async () => {
    const sneaky = appending("sneaky", {
      kind: "destroy",
      side: "source",
      subname: "srv",
      dataset: "tank/data/srv",
      snapshots: [S1],
      used: 0,
    });
    const s = scene([sneaky], { cfg: { ignore: ["srv"] } });
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("failed");
    expect(result.outcome.error?.message).toContain(
      'plugin "sneaky" broke a safety rule, so the stage stopped before any further change: an action on srv, which is ignored (listed in ignore)',
    );
    expect(destroys(s.source)).toEqual([]);
  });

  test("a target that is the source itself (one machine under two host names) stops every stage before its plan: nothing is destroyed", async () => {
    const cfg = config();
    const s = scene([], {
      targetIsSource: true,
      cfg: { target: { ...cfg.source, host: "127.0.0.1" } },
    });
    for (const side of ["source", "target"] as const) {
      const result = await stages.cleanup(s.run, side);
      expect(result.outcome.status).toBe("failed");
      expect(result.outcome.error?.message).toMatch(
        /^\/etc\/abgleich\.yaml: target: the target is the source itself: tank\/data on the target \(127\.0\.0\.1\) is tank\/data on the source \(localhost\), one dataset \(guid \d+\) in one pool \(guid \d+\) \(and 3 more\); the two host names reach one machine/,
      );
    }
    expect((await stages.backup(s.run)).outcome.status).toBe("failed");
    expect(destroys(s.source)).toEqual([]);
    // only reads ran: the trees, and the pools' guids that told one pool from two
    expect(
      s.source.calls.filter(
        (argv) => argv[1] !== "list" && argv.join(" ") !== "zpool get -H -p guid tank",
      ),
    ).toEqual([]);
    expect(s.events.filter((e) => e.startsWith("show"))).toEqual([]);
    // a config error, as README says: exit 2
    expect(await s.finish()).toBe(2);
  });

  test("a target pool copied block by block (zpool split: the datasets keep their guids, the pool has its own) is a target like any other", async () => {
    const s = scene();
    const sourceGuids = new Map(s.source.datasets.map((d) => [d.subname, d.guid]));
    for (const dataset of s.target.datasets)
      dataset.guid = sourceGuids.get(dataset.subname) as string;
    expect(s.source.poolGuid).not.toBe(s.target.poolGuid);
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("ok");
    expect(destroys(s.source)).toHaveLength(4);
    expect(await s.finish()).toBe(0);
  });

  test("a plugin that appends a destroy to the plan it returned, after the first action, never gets it run", async () => {
    let kept: { actions: Action[] } | undefined;
    const late = definePlugin({
      name: "late",
      setup(hooks) {
        hooks.plan.tap("x", (plan) => {
          kept = plan;
          return plan;
        });
        hooks.afterAction.tap("x", () => {
          kept?.actions.push({
            kind: "destroy",
            side: "source",
            subname: "home",
            dataset: "tank/data/home",
            snapshots: [UNSENT],
            used: 0,
          });
        });
      },
    });
    const s = scene([late]);
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("ok");
    // exactly the shown plan ran: S1,S2 on each of the four datasets, nothing else
    expect(destroys(s.source)).toHaveLength(4);
    expect(destroys(s.source).every((line) => line.endsWith(`@${S1},${S2}`))).toBe(true);
    expect(snapshotsOf(s.source, "tank/data/home")).toEqual([S3, UNSENT]);
  });

  test("a plugin that edits the inventory it was handed cannot make the guard pass", async () => {
    const forger = definePlugin({
      name: "forger",
      setup(hooks) {
        hooks.plan.tap("x", (plan, info) => {
          try {
            info.target.datasets[1]?.snapshots.push({ ...info.source.datasets[1]!.snapshots[3]! });
          } catch {
            // frozen: the plugin goes on as if it had worked
          }
          return {
            ...plan,
            actions: [
              {
                kind: "destroy",
                side: "source",
                subname: "home",
                dataset: "tank/data/home",
                snapshots: [S3, UNSENT],
                used: 0,
              },
            ],
          };
        });
      },
    });
    const s = scene([forger]);
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("failed");
    expect(result.outcome.error?.message).toContain('plugin "forger"');
    expect(result.outcome.error?.message).toContain("(rule 1)");
    expect(result.outcome.error?.message).toContain("(rule 2)");
    expect(destroys(s.source)).toEqual([]);
    expect(destroys(s.target)).toEqual([]);
  });

  test("a target-side destroy planted in cleanup source is refused, and nothing runs on the target", async () => {
    const planter = appending("planter", {
      kind: "destroy",
      side: "target",
      subname: "srv",
      dataset: "backup/host/srv",
      snapshots: [S1],
      used: 0,
    });
    const s = scene([planter]);
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("failed");
    expect(result.outcome.error?.message).toContain("a stage changes only its own side");
    expect(result.outcome.error?.message).toContain('plugin "planter"');
    expect(destroys(s.target)).toEqual([]);
    expect(destroys(s.source)).toEqual([]);
  });

  test("a destroy of a snapshot made by hand, planted by a plugin, is refused", async () => {
    const s = scene([
      definePlugin({
        name: "tidy",
        setup(hooks) {
          hooks.plan.tap("x", (plan) => ({
            ...plan,
            actions: [
              {
                kind: "destroy",
                side: "source",
                subname: "srv",
                dataset: "tank/data/srv",
                snapshots: ["before-upgrade"],
                used: 0,
              },
            ],
          }));
        },
      }),
    ]);
    for (const host of [s.source, s.target]) {
      const srv = host.datasets.find((d) => d.subname === "srv");
      srv?.snapshots.unshift({
        ...(srv.snapshots[0] as (typeof srv.snapshots)[0]),
        name: "before-upgrade",
        guid: "g-by-hand",
      });
    }
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("failed");
    expect(result.outcome.error?.message).toContain(
      "tank/data/srv@before-upgrade is not one of abgleich's own snapshots",
    );
    // refused as the plugin returned it, so the message names the plugin
    expect(result.outcome.error?.message).toContain('plugin "tidy" broke a safety rule');
    expect(destroys(s.source)).toEqual([]);
  });

  test("outcomes handed to plugins are frozen: an afterStage tap cannot turn a failure into success", async () => {
    const s = scene([
      definePlugin({
        name: "optimist",
        setup(hooks) {
          hooks.afterAction.tap("x", (_action, outcome) => {
            try {
              (outcome as { ok: boolean }).ok = true;
            } catch {}
          });
          hooks.afterStage.tap("x", (_info, outcome) => {
            try {
              (outcome as { status: string }).status = "ok";
            } catch {}
          });
        },
      }),
    ]);
    s.source.failWhen(/destroy tank\/data\/home@/, "cannot destroy: dataset is busy\n");
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("failed");
    // the child of the failed dataset stayed blocked
    expect(destroys(s.source).some((line) => line.includes("home/user"))).toBe(false);
    expect(await s.finish()).toBe(1);
  });

  test("the guard cannot be removed: the hooks a plugin gets are tap-only and frozen", () => {
    const hooks = createHooks();
    const view = pluginHooks(hooks, "saboteur") as unknown as Record<
      string,
      Record<string, unknown>
    >;
    expect(() => {
      (view.plan as Record<string, unknown>).intercept = () => {};
    }).toThrow(TypeError);
    expect(view.plan?.intercept).toBeUndefined();
    expect(view.plan?.taps).toBeUndefined();
    expect(view.plan?.promise).toBeUndefined();
    expect(() => {
      (view as Record<string, unknown>).plan = {};
    }).toThrow(TypeError);
    // and the engine's own hooks object cannot be swapped either
    expect(() => {
      (hooks as unknown as Record<string, unknown>).plan = {};
    }).toThrow(TypeError);
  });
});

describe("run locks", () => {
  test("backup locks both roots, in the order of their keys (a reverse config takes them alike)", async () => {
    const locks: string[] = [];
    const s = scene([], { locks });
    await stages.backup(s.run);
    const keys = [
      `localhost:${s.run.config.source.zpool}`,
      `localhost:${s.run.config.target.zpool}`,
    ];
    expect(locks).toHaveLength(2);
    expect(locks).toEqual([...locks].sort((a, b) => a.localeCompare(b)));
    for (const key of keys) expect(locks.some((lock) => lock.startsWith(key))).toBe(true);
    await s.finish();
  });

  test("two stages of one workflow at once (Promise.all) share the source's lock instead of refusing each other", async () => {
    const locks: string[] = [];
    // a second target holding what the first does
    const offsite = memoryHost(
      "target",
      inventory("target", [
        dst("", history(S1, S2, S3), { name: "offsite/host" }),
        dst("home", history(S1, S2, S3), { name: "offsite/host/home" }),
        dst("home/user", history(S1, S2, S3), { name: "offsite/host/home/user" }),
        dst("srv", history(S1, S2, S3), { name: "offsite/host/srv" }),
      ]),
    );
    const s = scene([], { locks, otherTarget: offsite });
    let outcomes: string[] = [];
    await runWorkflow(
      defineWorkflow(async (run) => {
        const other = run.with({ target: { zpool: "offsite" } });
        const results = await Promise.all([run.cleanup("source"), other.cleanup("source")]);
        outcomes = results.map(
          (r) => `${r.outcome.status}${r.outcome.error ? `: ${r.outcome.error.message}` : ""}`,
        );
      }),
      s.run,
      () => {},
    );
    // the source was taken once, for both; neither stage met it as another run's
    expect(locks).toEqual(["localhost:tank/data"]);
    expect(outcomes).toHaveLength(2);
    expect(outcomes.filter((outcome) => outcome.includes("in use by"))).toEqual([]);
    await s.finish();
  });
});

describe("failure paths", () => {
  test("a failed parent blocks its children, not its siblings; error, afterStage and done still run", async () => {
    const seen: string[] = [];
    const watcher = definePlugin({
      name: "watcher",
      setup(hooks) {
        hooks.error.tap("x", (error, info) => {
          seen.push(`error ${info.stage}: ${error.message.split("\n")[0]}`);
        });
        hooks.afterStage.tap("x", (info, outcome) => {
          seen.push(`afterStage ${info.stage} ${outcome.status}`);
        });
      },
    });
    const s = scene([watcher]);
    s.source.failWhen(/destroy tank\/data\/home@/, "cannot destroy snapshots: dataset is busy\n");
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("failed");
    expect(s.events).toContain(`failed destroy source tank/data/home@${S1},${S2}`);
    expect(s.events).toContain(`failed destroy source tank/data/home/user@${S1},${S2}`);
    expect(s.events).toContain(`done destroy source tank/data/srv@${S1},${S2}`);
    // the child was never tried
    expect(destroys(s.source).some((line) => line.includes("home/user"))).toBe(false);
    // the parent failed; its child, held back, is counted apart
    expect(seen[0]).toStartWith("error cleanup: cleanup: 1 action(s) failed");
    expect(seen[0]).toEndWith("; 1 not run because of it");
    expect(seen[1]).toBe("afterStage cleanup failed");
    expect(await s.finish()).toBe(1);
    expect(s.summaries).toHaveLength(1);
    expect(s.summaries[0]?.exitCode).toBe(1);
  });

  test("a throwing beforeStage hook fails the stage before it reads anything; after-hooks and done run", async () => {
    const calls: string[] = [];
    const s = scene([
      definePlugin({
        name: "gate",
        setup(hooks) {
          hooks.beforeStage.tap("x", () => {
            throw new Error("maintenance window");
          });
          hooks.afterStage.tap("x", (_info, outcome) => {
            calls.push(`after ${outcome.status}`);
          });
        },
      }),
    ]);
    const result = await stages.snap(s.run);
    expect(result.outcome.error?.message).toBe(
      'plugin "gate" failed in hook beforeStage: maintenance window',
    );
    expect(s.source.calls).toEqual([]);
    expect(calls).toEqual(["after failed"]);
    expect(await s.finish()).toBe(1);
    expect(s.summaries).toHaveLength(1);
  });

  test("a throwing done tap is a warning: done fires once and the exit code stays 0", async () => {
    let fired = 0;
    const s = scene([
      definePlugin({
        name: "grumpy",
        setup(hooks) {
          hooks.done.tap("x", () => {
            fired++;
            throw new Error("webhook down");
          });
        },
      }),
    ]);
    await stages.cleanup(s.run, "source");
    expect(await s.finish()).toBe(0);
    expect(fired).toBe(1);
    expect(s.events).toContain('warn plugin "grumpy" failed in hook done: webhook down');
  });

  test("a host that is down: before-hooks ran first (they may wake it), after-hooks and done run, exit 1", async () => {
    const calls: string[] = [];
    const s = scene([
      definePlugin({
        name: "waker",
        setup(hooks) {
          hooks.beforeStage.tap("x", (info) => {
            calls.push(`before ${info.stage}`);
          });
          hooks.afterStage.tap("x", (info, outcome) => {
            calls.push(`after ${info.stage} ${outcome.status}`);
          });
        },
      }),
    ]);
    s.target.down = true;
    const result = await stages.backup(s.run);
    expect(result.outcome.error?.message).toStartWith("host is not up: target");
    expect(calls).toEqual(["before backup", "after backup failed"]);
    expect(await s.finish()).toBe(1);
  });

  test("a missing source root is an error naming root and host, not 'nothing to do'", async () => {
    const s = scene([], { cfg: { source: { ...config().source, prefix: "dta" } } });
    const result = await stages.snap(s.run);
    expect(result.outcome.status).toBe("failed");
    expect(result.outcome.error?.message).toContain(
      "source root tank/dta does not exist on memory",
    );
    expect(await s.finish()).toBe(1);
  });

  test("a missing target parent is an error before any transfer, with the command that creates it", async () => {
    const s = scene([], { cfg: { target: { ...config().target, prefix: "hosts/this" } } });
    s.target.datasets = [dst("", [], { name: "backup", subname: "" })];
    const result = await stages.backup(s.run);
    expect(result.outcome.status).toBe("failed");
    expect(result.outcome.error?.message).toContain("target parent backup/hosts does not exist");
    expect(result.outcome.error?.message).toContain(
      "zfs create -p -o mountpoint=none backup/hosts",
    );
    expect(s.target.calls.some((argv) => argv[1] === "receive")).toBe(false);
  });
});

describe("yes, no, dry run, cancel", () => {
  test("a declined plan changes nothing", async () => {
    const s = scene([], { confirm: false });
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("declined");
    expect(destroys(s.source)).toEqual([]);
    expect(await s.finish()).toBe(1);
  });

  test("a dry run shows the plan and changes nothing", async () => {
    const s = scene([], { dryRun: true });
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("dry-run");
    expect(s.events[0]).toBe("show 4");
    expect(destroys(s.source)).toEqual([]);
    expect(await s.finish()).toBe(0);
    expect(s.summaries[0]?.mode).toBe("dry-run");
  });

  test("cancel while a plugin's promise never settles: the stage ends cancelled, after-hooks run, exit 130", async () => {
    const after: StageOutcome["status"][] = [];
    const s = scene([
      definePlugin({
        name: "stuck",
        setup(hooks) {
          hooks.plan.tapPromise("x", () => new Promise(() => {}));
          hooks.afterStage.tap("x", (_info, outcome) => {
            after.push(outcome.status);
          });
        },
      }),
    ]);
    setTimeout(() => s.controller.abort("SIGINT"), 50);
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("cancelled");
    expect(after).toEqual(["cancelled"]);
    expect(destroys(s.source)).toEqual([]);
    expect(await s.finish()).toBe(130);
  });

  test("SIGTERM ends with 143", async () => {
    const s = scene();
    s.controller.abort("SIGTERM");
    expect((await stages.snap(s.run)).outcome.status).toBe("cancelled");
    expect(await s.finish()).toBe(143);
  });
});

describe("the inventory hook", () => {
  test("fires once in every stage that reads the trees", async () => {
    const seen: string[] = [];
    const s = scene([
      definePlugin({
        name: "counter",
        setup(hooks) {
          hooks.inventory.tap("x", ({ stage, source, target }) => {
            seen.push(`${stage.stage} ${source.root} ${target?.root ?? "-"}`);
          });
        },
      }),
    ]);
    await stages.snap(s.run);
    await stages.cleanup(s.run, "source");
    await stages.compare(s.run);
    expect(seen).toEqual([
      "snap tank/data -",
      "cleanup tank/data backup/host",
      "compare tank/data backup/host",
    ]);
  });
});

describe("what a careless plugin or workflow must not break", () => {
  test("a plan plugin that rebuilds the plan without its conflicts cannot turn a conflict into success", async () => {
    const s = scene([
      definePlugin({
        name: "only-actions",
        setup(hooks) {
          hooks.plan.tap("x", (plan) => ({
            actions: [...plan.actions],
            conflicts: [],
            skipped: [],
            errors: [],
          }));
        },
      }),
    ]);
    // the target's newest snapshot of srv has another guid: a conflict, nothing to send
    const srv = s.target.datasets.find((d) => d.subname === "srv");
    if (srv?.snapshots[2]) srv.snapshots[2].guid = "g-other";
    const result = await stages.backup(s.run);
    expect(result.outcome.status).toBe("failed");
    expect([...new Set(result.plan.conflicts.map((c) => c.subname))]).toEqual(["srv"]);
    expect(await s.finish()).toBe(1);
  });

  test("a workflow that reverses the trees run.tree() gave it changes nothing the engine reads", async () => {
    const s = scene();
    const own = await runWorkflow(
      defineWorkflow(async (run) => {
        const trees = await run.tree();
        for (const inventory of [trees.source, trees.target])
          for (const d of inventory?.datasets ?? []) d.snapshots.reverse();
        await run.cleanup("source");
      }),
      s.run,
      () => {},
    );
    expect(own).toBeNull();
    expect(destroys(s.source).every((line) => line.endsWith(`@${S1},${S2}`))).toBe(true);
    expect(snapshotsOf(s.source, "tank/data/home")).toEqual([S3, UNSENT]);
  });

  test("a destroy relabelled with another subname is refused (it would unblock children)", async () => {
    const s = scene([
      definePlugin({
        name: "relabel",
        setup(hooks) {
          hooks.plan.tap("x", (plan) => ({
            ...plan,
            actions: plan.actions.map((a) =>
              a.kind === "destroy" ? { ...a, subname: a.dataset.split("/").pop() ?? "" } : a,
            ),
          }));
        },
      }),
    ]);
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("failed");
    expect(result.outcome.error?.message).toContain("labelled with another dataset's subname");
    expect(destroys(s.source)).toEqual([]);
  });

  test("each stage reads the pools afresh: a before-hook that prunes the target is seen", async () => {
    let prune = false;
    const s = scene([
      definePlugin({
        name: "pruner",
        setup(hooks) {
          hooks.beforeStage.tap("x", () => {
            if (!prune) return;
            // as a before-command pruning the backup by hand would: home keeps only S1
            const home = s.target.datasets.find((d) => d.subname === "home");
            if (home) home.snapshots = home.snapshots.slice(0, 1);
          });
        },
      }),
    ]);
    await stages.compare(s.run);
    prune = true;
    await stages.cleanup(s.run, "source");
    // S1 is now the newest common snapshot of home: nothing of home may go
    expect(destroys(s.source).some((line) => line.startsWith("zfs destroy tank/data/home@"))).toBe(
      false,
    );
    expect(snapshotsOf(s.source, "tank/data/home")).toEqual([S1, S2, S3, UNSENT]);
  });

  test("cleaning the source against one target keeps what another target of the run needs", async () => {
    const offsite = memoryHost(
      "target",
      inventory("target", [
        dst("", history(S1), { name: "offsite/host" }),
        dst("home", history(S1), { name: "offsite/host/home" }),
      ]),
    );
    offsite.datasets = offsite.datasets.map((d) => ({
      ...d,
      name: d.name.replace("backup/", "offsite/"),
    }));
    const s = scene([], { otherTarget: offsite });
    const own = await runWorkflow(
      defineWorkflow(async (run) => {
        run.with({ target: { zpool: "offsite" } });
        await run.cleanup("source");
      }),
      s.run,
      () => {},
    );
    expect(own).toBeNull();
    expect(s.summaries).toHaveLength(0);
    const code = await s.finish();
    expect(code).toBe(1);
    expect(s.summaries[0]?.stages[0]?.outcome.error?.message).toContain(
      "is the newest snapshot it shares with another target of this run (rule 2)",
    );
    expect(destroys(s.source)).toEqual([]);
  });

  test("an after-hook that never settles cannot hold a cancelled run", async () => {
    const s = scene([
      definePlugin({
        name: "webhook",
        setup(hooks) {
          hooks.done.tapPromise("x", () => new Promise(() => {}));
        },
      }),
    ]);
    await stages.snap(s.run);
    setTimeout(() => s.controller.abort("SIGTERM"), 50);
    const started = Date.now();
    // the work was done before the cancel came: the run's code stands, but it ends promptly
    expect(await s.finish()).toBe(0);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(s.events.some((e) => e.includes("a done hook still running"))).toBe(true);
  });

  test("a workflow cannot turn its run into something else through run.options", async () => {
    const s = scene([], { dryRun: true });
    const failure = await runWorkflow(
      defineWorkflow(async (run) => {
        (run.options as { dryRun: boolean }).dryRun = false;
        await run.cleanup("source");
      }),
      s.run,
      () => {},
    ).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TypeError);
    expect(destroys(s.source)).toEqual([]);
  });

  test("an async function given to tap() is awaited: its veto stops the stage", async () => {
    const s = scene([
      definePlugin({
        name: "veto",
        setup(hooks) {
          hooks.beforeAction.tap("x", async () => {
            await Bun.sleep(1);
            throw new Error("not now");
          });
        },
      }),
    ]);
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.error?.message).toBe(
      'plugin "veto" failed in hook beforeAction: not now',
    );
    expect(destroys(s.source)).toEqual([]);
  });

  test("a naming plugin that forgets isOwn stops cleanup instead of switching the rule off", async () => {
    const s = scene([
      definePlugin({
        name: "mynames",
        setup(hooks) {
          hooks.namer.tap("x", (previous) => ({ next: previous.next }) as never);
        },
      }),
    ]);
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("failed");
    expect(result.outcome.error?.message).toContain("must return a Namer with next() and isOwn()");
    expect(destroys(s.source)).toEqual([]);
  });
});

describe("a naming plugin's names", () => {
  const namerGiving = (value: unknown) =>
    scene([
      definePlugin({
        name: "mynames",
        setup(hooks) {
          hooks.namer.tap("x", (previous) => ({ ...previous, next: () => value }) as never);
        },
      }),
    ]).run.namer();

  test("a wrong shape or a name zfs refuses is an error of the plan, not an internal error", () => {
    const now = new Date(2026, 10, 30);
    expect(namerGiving("2026113001").next([], now)).toEqual({
      error: `the naming scheme's next() returned "2026113001", not {name} or {error}: a naming plugin's mistake`,
    });
    expect(namerGiving(undefined).next([], now)).toMatchObject({
      error: expect.stringContaining("returned undefined"),
    });
    for (const bad of ["bad/slash", "x@y", ""])
      expect(namerGiving({ name: bad }).next([], now)).toMatchObject({
        error: expect.stringContaining(`gave the name ${JSON.stringify(bad)}, which zfs refuses`),
      });
    expect(namerGiving({ name: "nightly-1" }).next([], now)).toEqual({ name: "nightly-1" });
    expect(namerGiving({ error: "used up" }).next([], now)).toEqual({ error: "used up" });
  });
});

describe("large trees", () => {
  test("a cleanup of 20,000 snapshots: a few destroy commands within the argument limit, the newest common one kept", async () => {
    const names = Array.from(
      { length: 20_001 },
      (_, i) => `20260101${String(i + 1).padStart(6, "0")}`,
    );
    const s = scene([], { cfg: { digits: 6 } });
    for (const host of [s.source, s.target]) {
      const home = host.datasets.find((d) => d.subname === "home");
      if (home) home.snapshots = history(...names);
      host.datasets = host.datasets.filter((d) => d.subname === "" || d.subname === "home");
    }
    const started = performance.now();
    const result = await stages.cleanup(s.run, "source");
    expect(result.outcome.status).toBe("ok");
    expect(performance.now() - started).toBeLessThan(10_000);
    const homeDestroys = s.source.calls.filter(
      (argv) => argv[1] === "destroy" && argv[2]?.startsWith("tank/data/home@"),
    );
    expect(homeDestroys.length).toBeGreaterThan(1);
    expect(homeDestroys.length).toBeLessThanOrEqual(4);
    // each command is one argument well under the kernel's 128 KiB per-string limit
    for (const argv of homeDestroys) expect((argv[2] as string).length).toBeLessThan(100 * 1024);
    expect(snapshotsOf(s.source, "tank/data/home")).toEqual(names.slice(-1));
  }, 30_000);
});
