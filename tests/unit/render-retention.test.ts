// How a cleanup plan with retention reads: each snapshot to destroy with the rule that decided,
// the kept ones as a count per rule (each one with -v), and every verdict in --json.

import { describe, expect, test } from "bun:test";
import { planJson, renderPlan } from "../../lib/cli/render/plan.ts";
import { plainStyle } from "../../lib/cli/render/style.ts";
import type { DestroyAction, Plan } from "../../lib/plan/types.ts";

const destroy: DestroyAction = {
  kind: "destroy",
  side: "target",
  subname: "home",
  dataset: "backup/home",
  snapshots: ["2026110101", "2026110201"],
  used: 2048,
};

const plan: Plan = {
  actions: [destroy],
  conflicts: [],
  skipped: [],
  errors: [],
  retention: [
    {
      side: "target",
      subname: "home",
      dataset: "backup/home",
      snapshots: [
        { name: "2026110101", kept: false, reasons: ["outside retention"] },
        { name: "2026110201", kept: false, reasons: ["outside retention"] },
        { name: "2026110301", kept: true, reasons: ["daily 2026-11-03", "weekly 2026-W45"] },
        { name: "2026110401", kept: true, reasons: ["newest common"] },
      ],
    },
  ],
};

describe("a cleanup plan with retention", () => {
  test("the table names the rule for each destroyed snapshot and counts the kept ones", () => {
    const text = renderPlan(plan, plainStyle);
    expect(text).toContain("- 2026110101  destroyed: outside retention");
    expect(text).toContain("- 2026110201  destroyed: outside retention");
    expect(text).toContain("kept 2: newest common 1, daily 1, weekly 1");
    expect(text).not.toContain("2026110301");
  });

  test("verbose lists each kept snapshot with all its rules", () => {
    const text = renderPlan(plan, plainStyle, { verbose: true });
    expect(text).toContain("2026110301  kept: daily 2026-11-03, weekly 2026-W45");
    expect(text).toContain("2026110401  kept: newest common");
  });

  test("without retention the destroy lines are the names alone", () => {
    const text = renderPlan({ ...plan, retention: undefined }, plainStyle);
    expect(text).toContain("- 2026110101\n");
    expect(text).not.toContain("destroyed:");
    expect(text).not.toContain("kept");
  });

  test("--json carries every verdict", () => {
    expect(planJson(plan).retention).toEqual(plan.retention);
    expect("retention" in planJson({ ...plan, retention: undefined })).toBe(false);
  });
});
