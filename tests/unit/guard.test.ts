// The guard's own refusals that no planner would ever trigger: the last line of defence.

import { describe, expect, test } from "bun:test";
import { planViolations } from "../../lib/engine/guard.ts";
import type { DestroyAction, Plan } from "../../lib/plan/types.ts";
import { dst, history, inventory, src } from "./plan/fixtures.ts";

const A = "2026112501";
const B = "2026112502";
const C = "2026112503";

const destroyOldest = (side: "source" | "target", dataset: string): DestroyAction => ({
  kind: "destroy",
  side,
  subname: "",
  dataset,
  snapshots: [A],
  used: 0,
});

describe("guard", () => {
  test("a target that is the source itself (equal dataset guids) refuses every action", () => {
    const source = inventory("source", [src("", history(A, B, C))]);
    const apart = inventory("target", [dst("", history(A, B, C))]);
    // the same tree read a second time through another host name: its dataset guid is the source's
    const same = inventory("target", [
      dst("", history(A, B, C), { guid: source.datasets[0]?.guid as string }),
    ]);
    const plan = (side: "source" | "target", dataset: string): Plan => ({
      actions: [destroyOldest(side, dataset)],
      conflicts: [],
      skipped: [],
      errors: [],
    });
    // apart, the oldest common snapshot may go
    expect(planViolations("cleanup", plan("source", "tank/data"), source, apart, "source")).toEqual(
      [],
    );
    for (const side of ["source", "target"] as const) {
      const dataset = side === "source" ? "tank/data" : "backup/host";
      expect(planViolations("cleanup", plan(side, dataset), source, same, side)).toEqual([
        "backup/host on the target is tank/data on the source (one dataset, guid ds-tank/data): source and target are one tree",
      ]);
    }
  });
});
