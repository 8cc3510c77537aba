// Workflows run through the engine's one runner: exit codes from outcomes or the workflow's own
// number, run.with() sharing hooks and summary, done exactly once, and clear errors for bad
// workflow references.

import { describe, expect, test } from "bun:test";
import { resolveWorkflow } from "../../lib/cli/commands/run.ts";
import { ConfigError } from "../../lib/config/errors.ts";
import { defineWorkflow } from "../../lib/engine/api.ts";
import { createHooks, type RunSummary } from "../../lib/engine/hooks.ts";
import { pluginHooks } from "../../lib/engine/plugins.ts";
import { Run } from "../../lib/engine/runner.ts";
import { stagesText } from "../../lib/engine/summary.ts";
import { silentUi } from "../../lib/engine/ui.ts";
import { returnedExitCode, runWorkflow } from "../../lib/engine/workflow.ts";
import type { Side } from "../../lib/zfs/model.ts";
import { type MemoryHost, memoryHost } from "../helpers/memory-host.ts";
import { config, dst, history, inventory, src } from "./plan/fixtures.ts";

function open(
  hosts: (side: Side, target: string) => MemoryHost,
  warn: (text: string) => void = () => {},
) {
  const hooks = createHooks();
  const summaries: RunSummary[] = [];
  pluginHooks(hooks, "t").done.tap("t", (summary) => {
    summaries.push(summary);
  });
  const run = Run.open(
    config(),
    hooks,
    { ...silentUi, confirm: async () => true, warn },
    {
      yes: true,
      dryRun: false,
      json: false,
      interactive: false,
      signal: new AbortController().signal,
      now: () => new Date(2026, 10, 26, 12),
      hostFor: (side, cfg) => hosts(side, cfg.target.zpool),
    },
    "changing",
  );
  return { run, summaries };
}

describe("returnedExitCode", () => {
  test("an integer 0–255 is the workflow's own exit code; anything else defers to the stages", () => {
    expect(returnedExitCode(5)).toBe(5);
    expect(returnedExitCode(0)).toBe(0);
    expect(returnedExitCode("5")).toBeNull();
    expect(returnedExitCode(256)).toBeNull();
    expect(returnedExitCode(undefined)).toBeNull();
  });
});

describe("runWorkflow", () => {
  test("run.with() targets other sides with the same hooks and one summary; done fires once", async () => {
    const source = inventory("source", [src("", history("2026112501"))]);
    const seen: string[] = [];
    const { run, summaries } = open((side, pool) => {
      seen.push(`${side}:${pool}`);
      if (side === "source") return memoryHost("source", source);
      // the second target lacks its pool: its stage fails, the first target's does not
      return memoryHost(
        "target",
        pool === "backup"
          ? inventory("target", [dst("", history("2026112501"))])
          : inventory("target", []),
      );
    });
    let failedAfterFirst: boolean | undefined;
    const own = await runWorkflow(
      defineWorkflow(async (flow) => {
        await flow.cleanup("source");
        failedAfterFirst = flow.failed;
        await flow.with({ target: { zpool: "offsite" } }).cleanup("source");
      }),
      run,
      () => {},
    );
    const { code } = await run.finish(own);
    expect(seen).toContain("target:offsite");
    expect(failedAfterFirst).toBe(false);
    expect(code).toBe(1);
    expect(summaries).toHaveLength(1);
    expect(summaries[0]?.stages.map((s) => s.outcome.status)).toEqual(["nothing-to-do", "failed"]);
    // the summary says which target each stage ran on
    expect(stagesText(summaries[0]!)).toBe(
      "cleanup source to localhost:backup/host nothing-to-do, cleanup source to localhost:offsite/host failed",
    );
  });

  test("the stages' text names the target of each stage that has one, when there were two", () => {
    const ok = { status: "ok" } as const;
    const [nas, usb] = ["nas:backup/tank", "usb:offsite/tank"];
    const stage = (name: "snap" | "backup", target: string) => ({
      stage: name,
      outcome: ok,
      where: { source: "localhost:tank/data", target },
    });
    const summary = (stages: ReturnType<typeof stage>[]) => ({ stages }) as unknown as RunSummary;
    expect(stagesText(summary([stage("snap", nas), stage("backup", nas)]))).toBe(
      "snap ok, backup ok",
    );
    expect(
      stagesText(summary([stage("snap", nas), stage("backup", nas), stage("backup", usb)])),
    ).toBe(`snap ok, backup to ${nas} ok, backup to ${usb} ok`);
    // a summary a plugin built without the sides
    expect(stagesText({ stages: [{ stage: "snap", outcome: ok }] } as unknown as RunSummary)).toBe(
      "snap ok",
    );
  });

  test("run.with() checks the sides as a config file's: a typo, a bad name, a target inside the source", async () => {
    const { run } = open((side) => memoryHost(side, inventory(side, [])));
    const refusals: unknown[] = [];
    const own = await runWorkflow(
      defineWorkflow(async (flow) => {
        const tries: (() => unknown)[] = [
          // the config's source is tank/data on localhost
          () => flow.with({ target: { zpool: "tank", prefix: "data/inner" } }),
          () => flow.with({ target: { zpool: "-o" } }),
          () => flow.with({ target: { zpol: "offsite" } as never }),
          () => flow.cleanup("both" as never),
        ];
        for (const attempt of tries) {
          try {
            attempt();
            refusals.push("not refused");
          } catch (error) {
            refusals.push(error);
          }
        }
        // a good change still works
        expect(
          flow.with({ target: { zpool: "offsite", host: "nas" } }).config.target,
        ).toMatchObject({
          zpool: "offsite",
          host: "nas",
          prefix: "host",
        });
      }),
      run,
      () => {},
    );
    expect(own).toBeNull();
    const [inside, option, typo, both] = refusals as Error[];
    expect(inside).toBeInstanceOf(ConfigError);
    expect(inside?.message).toContain(
      'run.with() in the workflow (config /etc/abgleich.yaml): target.prefix: source "tank/data" and target "tank/data/inner" on localhost lie inside each other',
    );
    expect(option).toBeInstanceOf(ConfigError);
    expect(option?.message).toContain("target.zpool");
    expect(typo).toBeInstanceOf(ConfigError);
    expect(typo?.message).toContain("zpol");
    expect(both?.message).toBe('run.cleanup(side): side must be "source" or "target", not "both"');
    await run.finish(own);
  });

  /** the exit code a workflow returning `value` ends with, and what it was warned of */
  async function returning(value: unknown): Promise<{ code: number | null; warnings: string[] }> {
    const warnings: string[] = [];
    const { run } = open(
      (side) => memoryHost(side, inventory(side, [])),
      (text) => warnings.push(text),
    );
    const code = await runWorkflow(
      defineWorkflow(async () => value as never),
      run,
      () => {},
    );
    await run.finish(code);
    return { code, warnings };
  }

  test("a return value that is no exit code is said, and the stages decide", async () => {
    for (const [value, shown] of [
      [999, "999"],
      [-1, "-1"],
      ["3", '"3"'],
    ] as const) {
      expect(await returning(value)).toEqual({
        code: null,
        warnings: [
          `the workflow returned ${shown}, which is no exit code (an integer 0 to 255): the stages' outcome decides it`,
        ],
      });
    }
  });

  test("what is no number nor text is no attempt at an exit code: no warning", async () => {
    for (const value of [{ outcome: { status: "ok" } }, true, null])
      expect(await returning(value)).toEqual({ code: null, warnings: [] });
  });

  test("a workflow's own number wins over the stages' outcomes", async () => {
    const { run } = open((side) => memoryHost(side, inventory(side, [])));
    const own = await runWorkflow(
      defineWorkflow(async (flow) => {
        await flow.snap(); // fails: no source root
        return 0;
      }),
      run,
      () => {},
    );
    expect((await run.finish(own)).code).toBe(0);
  });
});

describe("resolveWorkflow", () => {
  test("a bundled name resolves; an unknown name or a missing file is a ConfigError", async () => {
    expect((await resolveWorkflow("nightly")).kind).toBe("abgleich-workflow");
    const unknown = await resolveWorkflow("weekly").catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(ConfigError);
    expect((unknown as Error).message).toContain("bundled: nightly");
    const missing = await resolveWorkflow("./nowhere/flow.ts").catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ConfigError);
    expect((missing as Error).message).toContain("no such file");
  });

  test("defineWorkflow refuses what is not a function", () => {
    expect(() => defineWorkflow("snap" as never)).toThrow(
      "defineWorkflow expects an async function",
    );
  });
});
