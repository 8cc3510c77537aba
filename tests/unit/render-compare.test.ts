import { describe, expect, test } from "bun:test";
import {
  compareLegend,
  comparisonJson,
  comparisonSummary,
  conflictLines,
  datasetNotes,
  renderComparison,
} from "../../lib/cli/render/compare.ts";
import {
  createStyle,
  plainStyle,
  type Style,
  stripAnsi,
  visibleWidth,
} from "../../lib/cli/render/style.ts";
import { renderTable, type TableRow } from "../../lib/cli/render/table.ts";
import { situationText } from "../../lib/plan/conflicts.ts";
import type { CompareSide, Comparison, Conflict, Presence } from "../../lib/plan/types.ts";

const ESC = "\u001b";

const targetAhead: Conflict = {
  subname: "home",
  kind: "target-ahead",
  message: "the target has snapshots after the newest common one; destroy them there first",
  common: "a",
  sourceOnly: [],
  targetOnly: ["c"],
};

/** an unencrypted dataset without bookmarks: nothing to say about it */
const PLAIN: CompareSide = {
  encryption: "off",
  keystatus: null,
  bookmarks: 0,
  newestBookmark: null,
  partialReceive: false,
};

const comparison: Comparison = {
  sourceRoot: "tank/data",
  targetRoot: "backup/data",
  rows: [
    {
      subname: "",
      presence: "both",
      ignored: false,
      source: PLAIN,
      target: PLAIN,
      snapshots: [
        { name: "a", presence: "both", guidMismatch: false, sourceHolds: 0, targetHolds: 0 },
        { name: "b", presence: "source", guidMismatch: false, sourceHolds: 0, targetHolds: 0 },
      ],
      conflicts: [],
    },
    {
      subname: "home",
      presence: "both",
      ignored: false,
      source: PLAIN,
      target: PLAIN,
      snapshots: [
        { name: "a", presence: "both", guidMismatch: true, sourceHolds: 0, targetHolds: 0 },
        { name: "c", presence: "target", guidMismatch: false, sourceHolds: 0, targetHolds: 0 },
      ],
      conflicts: [targetAhead],
    },
    {
      subname: "cache",
      presence: "source",
      ignored: true,
      source: PLAIN,
      target: null,
      snapshots: [],
      conflicts: [],
    },
    {
      subname: "old",
      presence: "target",
      ignored: false,
      source: null,
      target: PLAIN,
      snapshots: [],
      conflicts: [],
    },
  ],
};

describe("renderComparison", () => {
  test("marks per side, conflicts and mismatches under their dataset, exact text", () => {
    expect(renderComparison(comparison, plainStyle)).toBe(
      [
        "source tank/data  →  target backup/data",
        "NAME             SOURCE  TARGET",
        "(root)           ●       ●",
        "- a              ●       ●",
        "- b              ◐",
        "home             ●       ●",
        "  ! target-ahead: the target has snapshots after the newest common one; destroy them there first",
        "    newest common: a; only on target: c",
        "  ! same name, different guid on the two sides: a",
        "- a              x       x",
        "- c                      ◑",
        "cache (ignored)  ◐",
        "old                      ◑",
        "",
        "4 datasets (1 ignored), 1 conflict",
        "● on both sides   ◐ source only   ◑ target only   x same name, different guid",
      ].join("\n"),
    );
  });

  test("a guid-mismatch conflict is not repeated by the generic mismatch note", () => {
    const mismatch: Conflict = {
      subname: "home",
      kind: "guid-mismatch",
      message: "snapshot a differs between the sides",
      common: null,
      sourceOnly: [],
      targetOnly: [],
    };
    const rows = comparison.rows.map((row) =>
      row.subname === "home" ? { ...row, conflicts: [mismatch] } : row,
    );
    const out = renderComparison({ ...comparison, rows }, plainStyle);
    expect(out).toContain("  ! guid-mismatch: snapshot a differs between the sides");
    expect(out).not.toContain("same name, different guid on the two sides");
  });

  test("each presence has its own colour, and the legend uses the same ones", () => {
    const style = createStyle(true);
    const out = renderComparison(comparison, style);
    expect(stripAnsi(out)).toBe(renderComparison(comparison, plainStyle));
    const lines = out.split("\n");
    const markColor = (line: string | undefined, mark: string) =>
      line?.match(new RegExp(`${ESC}\\[(\\d+)m${mark}`))?.[1];
    const both = markColor(lines[3], "●");
    const sourceOnly = markColor(lines[4], "◐");
    const targetOnly = markColor(lines[10], "◑");
    expect(new Set([both, sourceOnly, targetOnly]).size).toBe(3);
    const legend = compareLegend(style);
    expect(legend).toContain(`\u001b[${both}m●`);
    expect(legend).toContain(`\u001b[${sourceOnly}m◐`);
    expect(legend).toContain(`\u001b[${targetOnly}m◑`);
    expect(out).toContain("  \u001b[31m! target-ahead");
  });

  test("without colour every state differs by shape, and the legend names each shape once", () => {
    const lines = renderComparison(comparison, plainStyle).split("\n");
    const marksOf = (subname: string) =>
      lines
        .find((l) => l.startsWith(subname))
        ?.slice(17)
        .trim();
    expect(marksOf("(root)")).toBe("●       ●");
    expect(marksOf("cache")).toBe("◐");
    expect(marksOf("old")).toBe("◑");
    const legend = compareLegend(plainStyle, true);
    const shapes = legend.split("   ").map((entry) => entry.split(" ")[0]);
    expect(shapes).toEqual(["●", "◐", "◑", "x", "h"]);
  });

  test("an empty comparison says so", () => {
    const out = renderComparison({ sourceRoot: "a", targetRoot: "b", rows: [] }, plainStyle);
    expect(out).toBe("source a  →  target b\n(empty)");
  });
});

describe("conflictLines", () => {
  test("kind and message, then where the snapshots are", () => {
    expect(
      conflictLines({ ...targetAhead, common: null, sourceOnly: ["x", "y"], targetOnly: ["z"] }),
    ).toEqual([`target-ahead: ${targetAhead.message}`, "only on source: x, y; only on target: z"]);
  });

  test("no second line when there is nothing to add", () => {
    expect(conflictLines({ ...targetAhead, common: null, targetOnly: [] })).toHaveLength(1);
  });

  test("no second line when the message says where the snapshots are, whole; one when it shortened a list", () => {
    const where = { common: "s1", sourceOnly: [], targetOnly: ["t1", "t2"] };
    const message = `backup/x: the target has 2 snapshots after s1 (${situationText(where)}). Roll back.`;
    expect(conflictLines({ ...targetAhead, ...where, message })).toEqual([
      `target-ahead: ${message}`,
    ]);
    const many = { ...where, targetOnly: Array.from({ length: 9 }, (_, i) => `t${i}`) };
    const shortened = `backup/x: … (${situationText(many)}). Roll back.`;
    expect(conflictLines({ ...targetAhead, ...many, message: shortened })).toEqual([
      `target-ahead: ${shortened}`,
      `newest common: s1; only on target: ${many.targetOnly.join(", ")}`,
    ]);
  });
});

describe("comparisonJson", () => {
  test("full names per side, null where a dataset is missing, counts", () => {
    const json = comparisonJson(comparison);
    expect(json.datasets.map((d) => [d.subname, d.sourceName, d.targetName])).toEqual([
      ["", "tank/data", "backup/data"],
      ["home", "tank/data/home", "backup/data/home"],
      ["cache", "tank/data/cache", null],
      ["old", null, "backup/data/old"],
    ]);
    expect(json.summary).toEqual({ datasets: 4, conflicts: 1, guidMismatches: 1 });
    expect(json.datasets[1]?.conflicts[0]).toEqual(targetAhead);
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
  });
});

describe("encryption, holds and bookmarks", () => {
  const held = (name: string, sourceHolds: number, targetHolds: number) => ({
    name,
    presence: "both" as const,
    guidMismatch: false,
    sourceHolds,
    targetHolds,
  });
  const encrypted: CompareSide = {
    encryption: "aes-256-gcm",
    keystatus: "available",
    bookmarks: 2,
    newestBookmark: "b2",
    partialReceive: false,
  };
  const rawCopy: CompareSide = {
    encryption: "aes-256-gcm",
    keystatus: "unavailable",
    bookmarks: 0,
    newestBookmark: null,
    partialReceive: false,
  };
  const cmp: Comparison = {
    sourceRoot: "tank",
    targetRoot: "backup",
    rows: [
      {
        subname: "",
        presence: "both",
        ignored: false,
        source: PLAIN,
        target: PLAIN,
        snapshots: [held("s1", 0, 0)],
        conflicts: [],
      },
      {
        subname: "secret",
        presence: "both",
        ignored: false,
        source: encrypted,
        target: rawCopy,
        snapshots: [held("s1", 1, 0), held("s2", 2, 1)],
        conflicts: [],
      },
      {
        subname: "both-locked",
        presence: "both",
        ignored: false,
        source: rawCopy,
        target: rawCopy,
        snapshots: [],
        conflicts: [],
      },
      {
        subname: "new",
        presence: "source",
        ignored: false,
        source: encrypted,
        target: null,
        snapshots: [],
        conflicts: [],
      },
      {
        subname: "cut",
        presence: "both",
        ignored: false,
        source: PLAIN,
        target: { ...PLAIN, partialReceive: true },
        snapshots: [held("s1", 0, 0)],
        conflicts: [],
      },
    ],
  };

  test("notes in words after the marks, h after a held side's mark, its legend entry", () => {
    expect(renderComparison(cmp, plainStyle)).toBe(
      [
        "source tank  →  target backup",
        "NAME         SOURCE  TARGET",
        "(root)       ●       ●",
        "- s1         ●       ●",
        "secret       ●       ●       source encrypted; target encrypted, key not loaded; 2 bookmarks on source",
        "- s1         ●h      ●",
        "- s2         ●h      ●h",
        "both-locked  ●       ●       encrypted, key not loaded",
        "new          ◐               encrypted; 2 bookmarks",
        "cut          ●       ●       on target: a cut transfer waits here: the next backup resumes it",
        "- s1         ●       ●",
        "",
        "5 datasets, 0 conflicts",
        "● on both sides   ◐ source only   ◑ target only   x same name, different guid   h held (zfs hold: cannot be destroyed)",
      ].join("\n"),
    );
  });

  test("on a narrow terminal the notes are cut with …, names and marks stay whole", () => {
    const lines = renderComparison(cmp, createStyle(false, 60)).split("\n");
    const secret = lines.find((line) => line.startsWith("secret")) ?? "";
    expect(secret).toMatch(/^secret {7}● {7}● {7}source encrypted; target encry…$/);
    expect(visibleWidth(secret)).toBe(60);
    expect(lines.find((line) => line.startsWith("both-locked"))).toBe(
      "both-locked  ●       ●       encrypted, key not loaded",
    );
  });

  test("with colour: the same text underneath, notes dim", () => {
    const out = renderComparison(cmp, createStyle(true));
    expect(stripAnsi(out)).toBe(renderComparison(cmp, plainStyle));
    expect(out).toContain("\u001b[2mencrypted, key not loaded\u001b[22m");
  });

  test("--json: each side's encryption, key status, bookmark count and newest bookmark; hold counts", () => {
    const json = JSON.parse(JSON.stringify(comparisonJson(cmp)));
    const secret = json.datasets[1];
    expect(secret.source).toEqual(encrypted);
    expect(secret.target).toEqual(rawCopy);
    expect(secret.snapshots[1]).toEqual(held("s2", 2, 1));
    expect(json.datasets[3].target).toBeNull();
  });
});

describe("renderComparison on a large comparison", () => {
  // the same table made the generic way: one TableRow per line, renderTable pads and trims
  function viaRenderTable(cmp: Comparison, style: Style): string {
    const rows: TableRow[] = [];
    let holds = false;
    for (const row of cmp.rows) {
      const tag = row.ignored ? ` ${style.paint("dim", "(ignored)")}` : "";
      const notes = datasetNotes(row);
      const mark = (presence: Presence, side: Presence, held: boolean, mismatch: boolean) => {
        if (!mismatch && presence !== "both" && presence !== side) return "";
        const shapes = { both: "●", source: "◐", target: "◑" } as const;
        const text = (mismatch ? "x" : shapes[presence]) + (held ? "h" : "");
        const colors = { both: "green", source: "yellow", target: "blue" } as const;
        return style.paint(mismatch ? ["red", "bold"] : colors[presence], text);
      };
      rows.push([
        style.paint("bold", row.subname === "" ? "(root)" : row.subname) + tag,
        mark(row.presence, "source", false, false),
        mark(row.presence, "target", false, false),
        notes === "" ? "" : style.paint("dim", notes),
      ]);
      for (const conflict of row.conflicts) {
        const [first, ...rest] = conflictLines(conflict);
        rows.push({ span: `  ${style.paint("red", `! ${first}`)}` });
        for (const line of rest) rows.push({ span: `    ${style.paint("red", line)}` });
      }
      const mismatches = row.snapshots.filter((s) => s.guidMismatch).map((s) => s.name);
      if (mismatches.length > 0 && !row.conflicts.some((c) => c.kind === "guid-mismatch"))
        rows.push({
          span: `  ${style.paint("red", `! same name, different guid on the two sides: ${mismatches.join(", ")}`)}`,
        });
      for (const s of row.snapshots) {
        holds ||= s.sourceHolds > 0 || s.targetHolds > 0;
        rows.push([
          style.paint("dim", `- ${s.name}`),
          mark(s.presence, "source", s.sourceHolds > 0, s.guidMismatch),
          mark(s.presence, "target", s.targetHolds > 0, s.guidMismatch),
        ]);
      }
    }
    const columns = [
      { header: "NAME" },
      { header: "SOURCE" },
      { header: "TARGET" },
      { header: "" },
    ];
    return [
      `source ${style.paint("bold", cmp.sourceRoot)}  →  target ${style.paint("bold", cmp.targetRoot)}`,
      renderTable(columns, rows, { style }),
      "",
      comparisonSummary(cmp),
      compareLegend(style, holds),
    ].join("\n");
  }

  const presences: Presence[] = ["both", "source", "target"];
  const sides: (CompareSide | null)[] = [
    PLAIN,
    {
      encryption: "aes-256-gcm",
      keystatus: "unavailable",
      bookmarks: 3,
      newestBookmark: "b",
      partialReceive: false,
    },
  ];
  const big: Comparison = {
    sourceRoot: "tank",
    targetRoot: "backup",
    rows: Array.from({ length: 120 }, (_, d) => ({
      subname: d === 0 ? "" : `group ${d % 7}/data:${d}`,
      presence: presences[d % 3] as Presence,
      ignored: d % 11 === 5,
      source: d % 3 === 2 ? null : (sides[d % 2] ?? null),
      target: d % 3 === 1 ? null : (sides[(d >> 1) % 2] ?? null),
      snapshots: Array.from({ length: 60 }, (_, s) => ({
        name: s === 7 && d === 33 ? `a much longer snapshot name ${d}` : `auto-${s}`,
        presence: presences[(d + s) % 3] as Presence,
        guidMismatch: s % 17 === 3,
        sourceHolds: s % 13 === 0 ? 1 : 0,
        targetHolds: s % 19 === 0 ? 2 : 0,
      })),
      conflicts: d % 23 === 4 ? [{ ...targetAhead, subname: `x${d}` }] : [],
    })),
  };

  test("the same text as renderTable makes, across the chunks it is joined in", () => {
    const plain = renderComparison(big, plainStyle);
    expect(plain.split("\n").length).toBeGreaterThan(4096);
    expect(plain).toBe(viaRenderTable(big, plainStyle));
    const colour = createStyle(true);
    expect(renderComparison(big, colour)).toBe(viaRenderTable(big, colour));
  });
});
