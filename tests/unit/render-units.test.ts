import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  colorEnabled,
  createStyle,
  plainStyle,
  stripAnsi,
  truncateVisible,
  visibleWidth,
} from "../../lib/cli/render/style.ts";
import { renderTable } from "../../lib/cli/render/table.ts";
import {
  formatBytes,
  formatDuration,
  formatRate,
  formatRatio,
  paintBytes,
} from "../../lib/cli/render/units.ts";

const ESC = "\u001b";

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const TiB = 1024 ** 4;
const PiB = 1024 ** 5;
const color = createStyle(true);

describe("formatBytes", () => {
  test.each([
    [0, "0 B"],
    [1, "1 B"],
    [512, "512 B"],
    [1023, "1023 B"],
    [1024, "1.0 KiB"],
    [1536, "1.5 KiB"],
    [MiB - 1, "1.0 MiB"],
    [1992294, "1.9 MiB"],
    [MiB, "1.0 MiB"],
    [12.4 * GiB, "12.4 GiB"],
    [GiB - 1, "1.0 GiB"],
    [3 * TiB, "3.0 TiB"],
    [2.5 * PiB, "2.5 PiB"],
    [-2048, "-2.0 KiB"],
  ])("%p → %p", (bytes, expected) => {
    expect(formatBytes(bytes)).toBe(expected);
  });

  test("never prints 1024.0 of a unit", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 53 - 1 }), (n) => {
        expect(formatBytes(n)).not.toMatch(/^1024\.0 /);
        expect(formatBytes(n)).toMatch(/^(\d{1,4} B|\d{1,4}\.\d (KiB|MiB|GiB|TiB|PiB|EiB))$/);
      }),
    );
  });

  test("rejects what is not a number of bytes", () => {
    expect(() => formatBytes(Number.NaN)).toThrow("not a byte count");
  });
});

describe("paintBytes", () => {
  test("plain without colour", () => {
    expect(paintBytes(plainStyle, 3 * MiB)).toBe("3.0 MiB");
  });

  test("each unit its own colour, the same unit always the same", () => {
    const codeOf = (n: number) => paintBytes(color, n).match(new RegExp(`^${ESC}\\[(\\d+)m`))?.[1];
    const codes = [100, 2 * KiB, 2 * MiB, 2 * GiB, 2 * TiB].map(codeOf);
    expect(codes.every((code) => code !== undefined)).toBe(true);
    expect(new Set(codes).size).toBe(5);
    expect(codeOf(700 * MiB)).toBe(codeOf(2 * MiB));
    expect(stripAnsi(paintBytes(color, 2 * GiB))).toBe("2.0 GiB");
  });
});

describe("ratio, duration, rate", () => {
  test("ratio with two decimals", () => {
    expect(formatRatio(1)).toBe("1.00x");
    expect(formatRatio(2.345)).toBe("2.35x");
  });

  test.each([
    [0, "00:00"],
    [59.4, "00:59"],
    [61, "01:01"],
    [3599, "59:59"],
    [3600, "1:00:00"],
    [90061, "25:01:01"],
    [null, "--:--"],
    [Number.POSITIVE_INFINITY, "--:--"],
    [-1, "--:--"],
  ])("duration %p → %p", (seconds, expected) => {
    expect(formatDuration(seconds)).toBe(expected);
  });

  test("rate", () => {
    expect(formatRate(45.2 * MiB)).toBe("45.2 MiB/s");
    expect(formatRate(0)).toBe("0 B/s");
    expect(formatRate(null)).toBe("-- B/s");
  });
});

describe("colorEnabled", () => {
  const tty = { isTTY: true };
  const pipe = { isTTY: false };
  test.each([
    ["a terminal", tty, {}, true],
    ["a pipe", pipe, {}, false],
    ["a stream that does not say", {}, {}, false],
    ["NO_COLOR=1", tty, { NO_COLOR: "1" }, false],
    ["NO_COLOR empty is not set", tty, { NO_COLOR: "" }, true],
    ["TERM=dumb", tty, { TERM: "dumb" }, false],
    ["TERM=xterm", tty, { TERM: "xterm-256color" }, true],
    ["FORCE_COLOR=1 on a pipe", pipe, { FORCE_COLOR: "1" }, true],
    ["FORCE_COLOR wins over NO_COLOR", pipe, { FORCE_COLOR: "1", NO_COLOR: "1" }, true],
    ["FORCE_COLOR=0 on a terminal", tty, { FORCE_COLOR: "0" }, false],
    ["FORCE_COLOR=false", tty, { FORCE_COLOR: "false" }, false],
  ])("%s", (_name, stream, env, expected) => {
    expect(colorEnabled(stream, env)).toBe(expected);
  });
});

describe("style and visible width", () => {
  test("paint adds codes only when enabled", () => {
    expect(plainStyle.paint("red", "x")).toBe("x");
    expect(color.paint("red", "x")).toBe("\u001b[31mx\u001b[39m");
    expect(color.paint(["bold", "red"], "x")).toContain("\u001b[1m");
  });

  test("width ignores ANSI codes, counts code points", () => {
    expect(visibleWidth(color.paint("green", "abc"))).toBe(3);
    expect(visibleWidth("●x")).toBe(2);
    expect(visibleWidth("\u001b]8;;http://x\u0007link\u001b]8;;\u0007")).toBe(4);
  });

  test("truncateVisible cuts text but keeps every escape code", () => {
    const text = `${color.paint("red", "abcdef")}ghi`;
    const cut = truncateVisible(text, 4);
    expect(stripAnsi(cut)).toBe("abcd");
    expect(cut).toBe("\u001b[31mabcd\u001b[39m");
    expect(truncateVisible("short", 10)).toBe("short");
  });
});

describe("renderTable", () => {
  const columns = [{ header: "NAME" }, { header: "SIZE", align: "right" as const }];

  test("aligns columns, right-aligns numbers, no trailing spaces", () => {
    const out = renderTable(columns, [
      ["tank", "1.0 KiB"],
      ["tank/data/home", "12 B"],
    ]);
    expect(out).toBe(
      ["NAME               SIZE", "tank            1.0 KiB", "tank/data/home     12 B"].join("\n"),
    );
  });

  test("painted cells line up exactly like plain ones", () => {
    const rows = [
      [color.paint("bold", "tank"), paintBytes(color, 1024)],
      ["tank/data/home", paintBytes(color, 12)],
    ];
    const painted = renderTable(columns, rows, { style: color });
    const plain = renderTable(
      columns,
      rows.map((row) => row.map(stripAnsi)),
    );
    expect(painted).not.toBe(plain);
    expect(stripAnsi(painted)).toBe(plain);
  });

  test("span rows are printed as they are and do not widen columns", () => {
    const out = renderTable(columns, [["a", "1 B"], { span: "  a long note under the row" }]);
    expect(out).toBe("NAME  SIZE\na      1 B\n  a long note under the row");
  });

  test("an empty last cell leaves no trailing spaces", () => {
    const out = renderTable([{ header: "A" }, { header: "B" }], [["x", ""]]);
    expect(out.split("\n")[1]).toBe("x");
  });

  test("too many cells is a clear error", () => {
    expect(() => renderTable(columns, [["a", "b", "c"]])).toThrow(
      "3 cells but there are 2 columns",
    );
  });
});
