// The workflow runner: exit codes from outcomes or the workflow's own number, run.with()
// sharing hooks and summary, and clear errors for bad workflow references.

import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../lib/config/errors.ts";
import { defineWorkflow } from "../../lib/engine/api.ts";
import { createRunContext } from "../../lib/engine/context.ts";
import { createHooks, type RunSummary, type StageOutcome } from "../../lib/engine/hooks.ts";
import type { StageResult } from "../../lib/engine/stages/changing.ts";
import {
  defaultStages,
  resolveWorkflow,
  runWorkflow,
  workflowExitCode,
} from "../../lib/engine/workflow.ts";
import { config } from "./plan/fixtures.ts";

const options = {
  yes: true,
  dryRun: false,
  json: false,
  interactive: false,
  signal: new AbortController().signal,
  now: () => new Date(),
};
const result = (status: StageOutcome["status"]): StageResult => ({
  outcome: { status },
  plan: { actions: [], conflicts: [], skipped: [], errors: [] },
  results: [],
});

describe("workflowExitCode", () => {
  test("1 when any stage failed, was declined or cancelled; 0 otherwise; a returned number wins", () => {
    expect(
      workflowExitCode(undefined, [
        { status: "ok" },
        { status: "nothing-to-do" },
        { status: "dry-run" },
      ]),
    ).toBe(0);
    for (const bad of ["failed", "declined", "cancelled"] as const) {
      expect(workflowExitCode(undefined, [{ status: "ok" }, { status: bad }])).toBe(1);
    }
    expect(workflowExitCode(5, [{ status: "failed" }])).toBe(5);
    expect(workflowExitCode("5", [])).toBe(0);
  });
});

describe("runWorkflow", () => {
  test("run.with() targets other sides with the same hooks and one summary; done fires once", async () => {
    const hooks = createHooks();
    const summaries: RunSummary[] = [];
    hooks.done.tap("t", (summary) => {
      summaries.push(summary);
    });
    const ctx = createRunContext(config(), options, undefined, hooks);
    const backedUp: string[] = [];
    const stages = {
      ...defaultStages,
      backup: async (c: typeof ctx) => {
        backedUp.push(`${c.config.target.host}:${c.config.target.zpool}`);
        c.summary.sent("home", 10, ["s1"]);
        expect(c.hooks).toBe(hooks);
        return result(c.config.target.zpool === "offsite" ? "failed" : "ok");
      },
    };
    let failedAfterFirst: boolean | undefined;
    const code = await runWorkflow(
      defineWorkflow(async (run) => {
        await run.backup();
        failedAfterFirst = run.failed;
        await run.with({ target: { zpool: "offsite", host: "localhost" } }).backup();
      }),
      ctx,
      { stages },
    );
    expect(backedUp).toEqual(["localhost:backup", "localhost:offsite"]);
    expect(failedAfterFirst).toBe(false);
    expect(code).toBe(1);
    expect(summaries).toHaveLength(1);
    expect(summaries[0]?.exitCode).toBe(1);
    expect(summaries[0]?.datasets[0]?.bytesSent).toBe(20);
  });

  test("an error the workflow does not catch ends it with exit 1, and done still fires", async () => {
    const hooks = createHooks();
    let doneCode: number | undefined;
    hooks.done.tap("t", (summary) => {
      doneCode = summary.exitCode;
    });
    const reported: unknown[] = [];
    const code = await runWorkflow(
      defineWorkflow(async () => {
        throw new Error("host is not up: target");
      }),
      createRunContext(config(), options, undefined, hooks),
      {
        report: (error) => {
          reported.push(error);
          return 1;
        },
      },
    );
    expect(code).toBe(1);
    expect(doneCode).toBe(1);
    expect((reported[0] as Error).message).toBe("host is not up: target");
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
