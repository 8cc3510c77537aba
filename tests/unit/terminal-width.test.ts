// Display width on a terminal: what the redrawn progress and the wizard's action list rely on
// so that one printed line is one screen row.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  charWidth,
  createStyle,
  stripAnsi,
  truncateVisible,
  visibleWidth,
} from "../../lib/cli/render/style.ts";

const color = createStyle(true);
const CODES = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");

describe("visibleWidth", () => {
  test("wide characters (CJK, Hangul, fullwidth, emoji) take two columns", () => {
    expect(visibleWidth("日本")).toBe(4);
    expect(visibleWidth("한글")).toBe(4);
    expect(visibleWidth("ＡＢ")).toBe(4);
    expect(visibleWidth("🚀x")).toBe(3);
    expect(visibleWidth(color.paint("red", "漢字a"))).toBe(5);
  });

  test("combining marks take none; narrow symbols one", () => {
    // e + combining acute accent
    expect(visibleWidth("e\u0301")).toBe(1);
    expect(visibleWidth("✓✗●○◐→")).toBe(6);
    expect(visibleWidth("ümlaut")).toBe(6);
    expect(charWidth("\ufe0f")).toBe(0);
  });
});

describe("truncateVisible", () => {
  test("never splits a wide character over the limit", () => {
    expect(truncateVisible("日本語", 5)).toBe("日本");
    expect(visibleWidth(truncateVisible("a日本語", 4))).toBe(3);
  });

  test("the cut text fits the width, keeps its start and every escape code", () => {
    const chars = fc.constantFrom("a", "é", "日", "🚀", "→", "\u0301", " ");
    fc.assert(
      fc.property(
        fc.array(chars, { maxLength: 40 }),
        fc.integer({ min: 0, max: 30 }),
        (list, width) => {
          const text = color.paint("green", list.join(""));
          const cut = truncateVisible(text, width);
          expect(visibleWidth(cut)).toBeLessThanOrEqual(width);
          expect(list.join("").startsWith(stripAnsi(cut))).toBe(true);
          expect(cut.match(CODES)).toEqual(text.match(CODES));
        },
      ),
    );
  });
});
