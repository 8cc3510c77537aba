// Tables fit the terminal: the widest columns give way, cut cells end in "…"; piped output
// (no width known) is never cut.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { createStyle, plainStyle, stripAnsi, visibleWidth } from "../../lib/cli/render/style.ts";
import { fitWidths, renderTable } from "../../lib/cli/render/table.ts";

const columns = [
  { header: "DATASET" },
  { header: "TARGET" },
  { header: "SIZE", align: "right" as const },
];
const rows = [
  ["tank/data/home/very/deep/dataset/name", "backup/hosts/nas/tank/data/home/very/deep", "1.0 MiB"],
  ["tank/data", "backup/hosts/nas/tank/data", "12.5 GiB"],
];

describe("renderTable fits a width", () => {
  test("without a width (a pipe) nothing is cut", () => {
    const text = renderTable(columns, rows, { style: plainStyle });
    expect(text).toContain("tank/data/home/very/deep/dataset/name");
    expect(text.split("\n")[1]?.length).toBeGreaterThan(80);
  });

  test("at 60 columns every line fits, the long names end in …, the sizes stay whole", () => {
    const text = renderTable(columns, rows, { style: plainStyle, maxWidth: 60 });
    const lines = text.split("\n");
    for (const line of lines) expect(visibleWidth(line)).toBeLessThanOrEqual(60);
    expect(lines[0]).toMatch(/^DATASET +TARGET +SIZE$/);
    expect(lines[1]).toMatch(/^tank\/data\/home\/very\S*… +backup\/hosts\S*… +1\.0 MiB$/);
    expect(lines[2]).toMatch(/^tank\/data +backup\/hosts\/nas\/\S*… +12\.5 GiB$/);
  });

  test("the width comes from the style of a terminal; colours survive the cut", () => {
    const style = createStyle(true, 50);
    const painted = rows.map(([a, b, c]) => [
      style.paint("green", a as string),
      b as string,
      c as string,
    ]);
    const text = renderTable(columns, painted, { style });
    for (const line of text.split("\n")) expect(visibleWidth(line)).toBeLessThanOrEqual(50);
    expect(stripAnsi(text)).toContain("…");
    // the cut green cell still closes its colour
    expect(text.split("\n")[1]).toContain("\u001b[39m…");
  });

  test("fitWidths: the sum fits whenever the minimums allow, no column below its minimum", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 1, max: 10 })), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.integer({ min: 10, max: 200 }),
        (cols, maxWidth) => {
          const widths = cols.map(([w, m]) => Math.max(w, m));
          const minimums = cols.map(([, m]) => m);
          const fitted = fitWidths(widths, minimums, 2, maxWidth);
          const total = (ws: number[]) => ws.reduce((s, w) => s + w, 0) + 2 * (ws.length - 1);
          fitted.forEach((w, i) => {
            expect(w).toBeGreaterThanOrEqual(minimums[i] as number);
            expect(w).toBeLessThanOrEqual(widths[i] as number);
          });
          if (total(minimums) <= maxWidth) expect(total(fitted)).toBeLessThanOrEqual(maxWidth);
          if (total(widths) <= maxWidth) expect(fitted).toEqual(widths);
        },
      ),
    );
  });
});
