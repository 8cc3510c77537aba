import { describe, expect, test } from "bun:test";
import { planJson, renderPlan, summarizePlan } from "../../lib/cli/render/plan.ts";
import { createStyle, plainStyle, stripAnsi } from "../../lib/cli/render/style.ts";
import { planView } from "../../lib/gui/view.ts";
import type {
  AbortResumeAction,
  ChainAction,
  DestroyAction,
  Plan,
  SendAction,
  SnapshotAction,
} from "../../lib/plan/types.ts";
import { newChainEntry } from "../helpers/chain.ts";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

function plan(parts: Partial<Plan>): Plan {
  return { actions: [], conflicts: [], skipped: [], errors: [], ...parts };
}

const snapshots: SnapshotAction = {
  kind: "snapshot",
  pool: "tank",
  snapshots: [
    { dataset: "tank/data", subname: "", name: "2026112601_backup", written: 1992294 },
    { dataset: "tank/data/home", subname: "home", name: "2026112603_backup", written: 12 },
  ],
};

const incremental: SendAction = {
  kind: "send",
  subname: "home",
  sourceDataset: "tank/data/home",
  targetDataset: "backup/data/home",
  mode: "incremental",
  from: "2026112501",
  to: "2026112602",
  snapshots: ["2026112601", "2026112602"],
  token: null,
  raw: false,
  fromBookmark: false,
  keepUnmounted: false,
};
const full: SendAction = {
  kind: "send",
  subname: "new",
  sourceDataset: "tank/data/new",
  targetDataset: "backup/data/new",
  mode: "full",
  from: null,
  to: "2026112601",
  snapshots: ["2026112601"],
  token: null,
  raw: false,
  fromBookmark: false,
  keepUnmounted: true,
};
const resume: SendAction = {
  kind: "send",
  subname: "big",
  sourceDataset: "tank/data/big",
  targetDataset: "backup/data/big",
  mode: "resume",
  from: null,
  to: "2026112602",
  snapshots: ["2026112602"],
  token: "1-abc-def",
  raw: false,
  fromBookmark: false,
  keepUnmounted: false,
};
const abort: AbortResumeAction = {
  kind: "abort-resume",
  subname: "gone",
  targetDataset: "backup/data/gone",
  reason: "the snapshot it resumes no longer exists on the source",
};
const destroySource: DestroyAction = {
  kind: "destroy",
  side: "source",
  subname: "home",
  dataset: "tank/data/home",
  snapshots: ["2026112401", "2026112501"],
  used: 3 * MiB,
};
const destroyTarget: DestroyAction = {
  kind: "destroy",
  side: "target",
  subname: "",
  dataset: "backup/data",
  snapshots: ["2025010101"],
  used: 1024,
};

describe("renderPlan, one section per action kind (colour off, exact text)", () => {
  test("snapshots: dataset, new name, bytes written", () => {
    expect(renderPlan(plan({ actions: [snapshots] }), plainStyle)).toBe(
      [
        "Snapshots to create (2, one atomic zfs snapshot per pool):",
        "DATASET         NEW SNAPSHOT       WRITTEN",
        "tank/data       2026112601_backup  1.9 MiB",
        "tank/data/home  2026112603_backup     12 B",
        "",
        "Plan: 2 snapshots to create.",
      ].join("\n"),
    );
  });

  test("transfers without estimates: no SIZE column", () => {
    expect(renderPlan(plan({ actions: [incremental, full, resume] }), plainStyle)).toBe(
      [
        "Transfers (3):",
        "DATASET         TARGET            MODE         FROM        TO          SNAPSHOTS",
        "tank/data/home  backup/data/home  incremental  2026112501  2026112602          2",
        "tank/data/new   backup/data/new   full         -           2026112601          1",
        "tank/data/big   backup/data/big   resume       -           2026112602          1",
        "  new filesystems arrive with canmount=noauto: zfs mount -a (at boot) leaves them unmounted, so nothing writes to them between backups",
        "",
        "Plan: 3 transfers.",
      ].join("\n"),
    );
  });

  test("no canmount line when no send sets it (a volume's full send, incrementals, resumes)", () => {
    const volume: SendAction = { ...full, keepUnmounted: false };
    const out = renderPlan(plan({ actions: [incremental, volume, resume] }), plainStyle);
    expect(out).not.toContain("canmount");
    expect(planView(plan({ actions: [volume] }), new Map()).actions[0]?.text).not.toContain(
      "canmount",
    );
    expect(planView(plan({ actions: [full] }), new Map()).actions[0]?.text).toEndWith(
      "(1 snapshot), canmount=noauto",
    );
  });

  test("transfers with estimates: SIZE per row, `?` where unknown, total at least", () => {
    const estimates = new Map([
      [incremental, 3 * GiB],
      [full, 5 * MiB],
    ]);
    const out = renderPlan(plan({ actions: [incremental, full, resume] }), plainStyle, {
      estimates,
    });
    const lines = out.split("\n");
    expect(lines[1]).toEndWith("SNAPSHOTS     SIZE");
    expect(lines[2]).toEndWith("2  3.0 GiB");
    expect(lines[3]).toEndWith("1  5.0 MiB");
    expect(lines[4]).toEndWith("1        ?");
    expect(lines.at(-1)).toBe("Plan: 3 transfers (at least 3.0 GiB).");
  });

  test("abort of a partial receive", () => {
    expect(renderPlan(plan({ actions: [abort] }), plainStyle)).toBe(
      [
        "Partial receives to abort (1):",
        "TARGET            REASON",
        "backup/data/gone  the snapshot it resumes no longer exists on the source",
        "",
        "Plan: 1 partial receive to abort.",
      ].join("\n"),
    );
  });

  test("destroys list every snapshot by name", () => {
    expect(renderPlan(plan({ actions: [destroySource, destroyTarget] }), plainStyle)).toBe(
      [
        "Snapshots to destroy (3 in 2 datasets, 3.0 MiB used):",
        "SIDE    DATASET         SNAPSHOTS     USED",
        "source  tank/data/home          2  3.0 MiB",
        "        - 2026112401",
        "        - 2026112501",
        "target  backup/data             1  1.0 KiB",
        "        - 2025010101",
        "",
        "Plan: 3 snapshots to destroy (3.0 MiB used).",
      ].join("\n"),
    );
  });

  test("a destroy that first releases abgleich's own hold (an old chain base) says so, in the terminal and in the wizard", () => {
    const stale: DestroyAction = { ...destroySource, release: ["2026112401"] };
    expect(renderPlan(plan({ actions: [stale] }), plainStyle)).toContain(
      [
        "        - 2026112401  (abgleich's own hold released first)",
        "        - 2026112501",
        "",
      ].join("\n"),
    );
    expect(planView(plan({ actions: [stale] }), new Map()).actions[0]?.text).toBe(
      "destroy on the source: tank/data/home@2026112401 (abgleich's own hold released first), tank/data/home@2026112501",
    );
  });

  test("conflicts, errors and skipped datasets after the actions", () => {
    const out = renderPlan(
      plan({
        actions: [incremental],
        conflicts: [
          {
            subname: "",
            kind: "no-common",
            message: "backup/data shares no snapshot with tank/data; nothing can be sent safely",
            common: null,
            sourceOnly: ["a", "b"],
            targetOnly: ["z"],
          },
        ],
        errors: [{ subname: "home/x", message: "the day's snapshot counter ran out (99)" }],
        skipped: [{ subname: "cache", reason: "ignored" }],
      }),
      plainStyle,
    );
    expect(out.split("\n\n").slice(1)).toEqual([
      [
        "Conflicts (1), skipped:",
        "! (root): no-common: backup/data shares no snapshot with tank/data; nothing can be sent safely",
        "    only on source: a, b; only on target: z",
      ].join("\n"),
      "Errors (1):\n! home/x: the day's snapshot counter ran out (99)",
      "Skipped (1):\n  cache: ignored",
      "Plan: 1 transfer; 1 conflict, 1 error.",
    ]);
  });

  test("skipped datasets can be left out", () => {
    const out = renderPlan(plan({ skipped: [{ subname: "a", reason: "unchanged" }] }), plainStyle, {
      showSkipped: false,
    });
    expect(out).toBe("Nothing to do.");
  });

  test("no actions: nothing to do, problems still listed", () => {
    expect(renderPlan(plan({}), plainStyle)).toBe("Nothing to do.");
    const out = renderPlan(plan({ errors: [{ subname: "a", message: "boom" }] }), plainStyle);
    expect(out).toBe("Errors (1):\n! a: boom\n\nNothing to do; 1 error.");
  });
});

describe("renderPlan with colour", () => {
  const style = createStyle(true);
  const all = plan({
    actions: [snapshots, abort, incremental, destroySource, destroyTarget],
    conflicts: [
      {
        subname: "x",
        kind: "target-ahead",
        message: "m",
        common: "a",
        sourceOnly: [],
        targetOnly: ["b"],
      },
    ],
    skipped: [{ subname: "cache", reason: "ignored" }],
  });

  test("same text underneath the codes", () => {
    expect(stripAnsi(renderPlan(all, style))).toBe(renderPlan(all, plainStyle));
  });

  test("target side and conflicts in red, skipped dim", () => {
    const out = renderPlan(all, style);
    expect(out).toContain("\u001b[31m\u001b[1mtarget");
    expect(out).not.toContain("\u001b[31m\u001b[1msource");
    expect(out).toContain("\u001b[31m! x: target-ahead: m");
    expect(out).toContain("\u001b[2mSkipped (1):");
  });
});

describe("summarizePlan and planJson", () => {
  const all = plan({
    actions: [snapshots, incremental, full, abort, destroySource, destroyTarget],
    skipped: [{ subname: "c", reason: "unchanged" }],
  });

  test("counts every kind", () => {
    expect(summarizePlan(all, new Map([[full, 10]]))).toEqual({
      snapshots: 2,
      transfers: 2,
      estimatedBytes: 10,
      unestimated: 1,
      abortResumes: 1,
      destroyedSnapshots: 3,
      destroyedUsed: 3 * MiB + 1024,
      conflicts: 0,
      errors: 0,
      skipped: 1,
    });
    expect(summarizePlan(all).estimatedBytes).toBeNull();
  });

  test("sends carry estimatedBytes, other actions are unchanged", () => {
    const json = planJson(all, new Map([[full, 10]]));
    expect(json.actions[0]).toEqual(snapshots);
    expect(json.actions[1]).toEqual({ ...incremental, estimatedBytes: null });
    expect(json.actions[2]).toEqual({ ...full, estimatedBytes: 10 });
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
  });
});

describe("a dry run's plan made after earlier steps (Plan.planned)", () => {
  const after = plan({
    actions: [incremental, destroyTarget],
    planned: ["tank/data/home@2026112602", "backup/data@2025010101"],
  });

  test("the text says so and marks each such snapshot (planned); other plans are unmarked", () => {
    const text = renderPlan(after, plainStyle);
    expect(text.split("\n")[0]).toBe(
      "Planned after the earlier steps of this dry run: 2 snapshots marked (planned) do not exist yet.",
    );
    expect(text).toContain("2026112501  2026112602 (planned)");
    expect(text).toContain("- 2025010101 (planned)");
    expect(renderPlan(plan({ actions: [incremental, destroyTarget] }), plainStyle)).not.toContain(
      "planned",
    );
  });

  test("--json carries the names; the browser's view marks them too", () => {
    expect(planJson(after).planned).toEqual(after.planned as string[]);
    expect("planned" in planJson(plan({ actions: [incremental] }))).toBe(false);
    const texts = planView(after, new Map()).actions.map((action) => action.text);
    expect(texts[0]).toContain("to @2026112602 (planned) →");
    expect(texts[1]).toContain("backup/data@2025010101 (planned)");
  });
});

describe("the browser's plan rows on many datasets", () => {
  const entry = (subname: string) =>
    newChainEntry(subname, { source: "tank/data", target: "backup/data" }, "2026112601");

  test("a few datasets by name; more as a count, the action's text naming them all", () => {
    const few: ChainAction = { kind: "chain", entries: ["", "a", "b"].map(entry) };
    const many: ChainAction = { kind: "chain", entries: ["", "a", "b", "c/d"].map(entry) };
    const [fewRow, manyRow] = planView(plan({ actions: [few, many] }), new Map()).actions;
    expect(fewRow?.dataset).toBe("(root), a, b");
    expect(fewRow?.text).toStartWith("protect the incremental chain of 3 dataset(s): hold");
    expect(manyRow?.dataset).toBe("4 datasets");
    expect(manyRow?.text).toStartWith(
      "protect the incremental chain of 4 dataset(s) ((root), a, b, c/d): hold",
    );
  });
});
