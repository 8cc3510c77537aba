import { describe, expect, test } from "bun:test";
import { createProgress, etaSeconds, smoothRate } from "../../lib/cli/progress.ts";
import { createStyle, plainStyle, stripAnsi, visibleWidth } from "../../lib/cli/render/style.ts";

const MiB = 1024 ** 2;

/** a progress reporter on a fake clock, writing into a string */
function harness(options: {
  isTTY: boolean;
  totalBytes?: number | null;
  columns?: number;
  color?: boolean;
  plainInterval?: number;
}) {
  let clock = 0;
  let written = "";
  const progress = createProgress({
    stream: {
      write: (text: string) => {
        written += text;
      },
    },
    isTTY: options.isTTY,
    totalBytes: options.totalBytes ?? null,
    style: options.color ? createStyle(true) : plainStyle,
    now: () => clock,
    columns: options.columns,
    plainInterval: options.plainInterval,
  });
  return {
    progress,
    advance: (ms: number) => {
      clock += ms;
    },
    written: () => written,
    /** what a terminal shows: each \r starts the line again */
    screen: () =>
      written
        .split("\n")
        .map((line) => stripAnsi(line.split("\r").at(-1) ?? ""))
        .filter((line, index, all) => line !== "" || index < all.length - 1),
  };
}

describe("smoothRate and etaSeconds", () => {
  test("the first sample is taken as it is", () => {
    expect(smoothRate(null, 100, 1000, 3000)).toBe(100);
  });

  test("a short sample moves the average a little, a long one a lot", () => {
    const short = smoothRate(100, 200, 100, 3000);
    const long = smoothRate(100, 200, 10_000, 3000);
    expect(short).toBeGreaterThan(100);
    expect(short).toBeLessThan(110);
    expect(long).toBeGreaterThan(190);
    expect(long).toBeLessThanOrEqual(200);
  });

  test("ETA unknown without a rate, never negative", () => {
    expect(etaSeconds(100, null)).toBeNull();
    expect(etaSeconds(100, 0)).toBeNull();
    expect(etaSeconds(100, 10)).toBe(10);
    expect(etaSeconds(-5, 10)).toBe(0);
  });
});

describe("on a terminal", () => {
  test("one line per transfer, redrawn in place, kept when finished", () => {
    const h = harness({ isTTY: true, totalBytes: 200 * MiB });
    h.progress.start("tank/data/home", 100 * MiB);
    expect(h.written()).toBe(
      "\rtank/data/home  0 B / 100.0 MiB 0%  -- B/s  ETA --:--  |  all 0 B / 200.0 MiB 0%  ETA --:--\u001b[K",
    );
    for (let i = 1; i <= 5; i++) {
      h.advance(1000);
      h.progress.update(i * 10 * MiB);
    }
    expect(h.screen()).toEqual([
      "tank/data/home  50.0 MiB / 100.0 MiB 50%  10.0 MiB/s  ETA 00:05  |  all 50.0 MiB / 200.0 MiB 25%  ETA 00:15",
    ]);
    h.advance(5000);
    h.progress.update(100 * MiB);
    h.progress.finish(true);
    h.progress.start("tank/data/new", null);
    expect(h.screen()).toEqual([
      "✓ tank/data/home: done, 100.0 MiB in 00:10 (10.0 MiB/s)",
      "tank/data/new  0 B  -- B/s  ETA --:--  |  all 100.0 MiB / 200.0 MiB 50%  ETA 00:10",
    ]);
    h.advance(6000);
    h.progress.update(30 * MiB);
    expect(h.screen()[1]).toBe(
      "tank/data/new  30.0 MiB  5.0 MiB/s  ETA --:--  |  all 130.0 MiB / 200.0 MiB 65%  ETA 00:09",
    );
    h.advance(1000);
    h.progress.finish(false);
    expect(h.screen()).toEqual([
      "✓ tank/data/home: done, 100.0 MiB in 00:10 (10.0 MiB/s)",
      "✗ tank/data/new: failed after 30.0 MiB (00:07)",
    ]);
    expect(h.written().endsWith("\n")).toBe(true);
  });

  test("a message while a transfer runs goes above the live line", () => {
    const h = harness({ isTTY: true });
    h.progress.start("a", null);
    h.progress.log("hook: pre-send ran");
    expect(h.screen()).toEqual(["hook: pre-send ran", "a  0 B  -- B/s  ETA --:--"]);
  });

  test("redraws at most every 100 ms", () => {
    const h = harness({ isTTY: true });
    h.progress.start("a", 1000);
    for (let i = 1; i <= 50; i++) {
      h.advance(10);
      h.progress.update(i);
    }
    // the start plus one redraw per 100 ms over 500 ms
    expect(h.written().split("\r").length - 1).toBe(1 + 5);
  });

  test("without a run total there is no `all` part", () => {
    const h = harness({ isTTY: true, totalBytes: null });
    h.progress.start("a", null);
    expect(h.written()).not.toContain("all ");
  });

  test("the line is cut to the terminal width so it never wraps", () => {
    const h = harness({ isTTY: true, totalBytes: 200 * MiB, columns: 40, color: true });
    h.progress.start("tank/data/a-very-long-dataset-name/below", 100 * MiB);
    const line = h.written().replace(/^\r/, "");
    expect(visibleWidth(line)).toBe(39);
    expect(line).toContain("\u001b[1m");
  });

  test("with colour: marks and sizes painted", () => {
    const h = harness({ isTTY: true, color: true });
    h.progress.start("a", 10 * MiB);
    h.advance(1000);
    h.progress.update(5 * MiB);
    h.progress.finish(true);
    expect(h.written()).toContain("\u001b[32m✓");
    expect(h.written()).toContain("\u001b[32m5.0 MiB");
  });
});

describe("without a terminal", () => {
  test("a plain line at most every plainInterval (here 5 s), and one at the end", () => {
    const h = harness({ isTTY: false, totalBytes: 100 * MiB, plainInterval: 5000 });
    h.progress.start("tank/data/home", 100 * MiB);
    expect(h.written()).toBe("");
    for (let i = 1; i <= 7; i++) {
      h.advance(1000);
      h.progress.update(i * 10 * MiB);
    }
    h.progress.finish(true);
    expect(h.written()).toBe(
      [
        "tank/data/home: 50.0 MiB / 100.0 MiB (50%), 10.0 MiB/s, ETA 00:05; all 50.0 MiB / 100.0 MiB (50%), ETA 00:05",
        "tank/data/home: done, 70.0 MiB in 00:07 (10.0 MiB/s)",
        "",
      ].join("\n"),
    );
    expect(h.written()).not.toContain("\r");
    expect(h.written()).not.toContain("\u001b");
  });

  test("by default a log gets at most one line a minute per transfer", () => {
    const h = harness({ isTTY: false, totalBytes: 600 * MiB });
    h.progress.start("tank/data", 600 * MiB);
    // an update every 5 s for two and a half minutes
    for (let i = 1; i <= 30; i++) {
      h.advance(5000);
      h.progress.update(i * 20 * MiB);
    }
    const lines = h
      .written()
      .split("\n")
      .filter((line) => line !== "");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toStartWith("tank/data: 240.0 MiB / 600.0 MiB (40%)");
    expect(lines[1]).toStartWith("tank/data: 480.0 MiB / 600.0 MiB (80%)");
  });

  test("a message is just a line", () => {
    const h = harness({ isTTY: false });
    h.progress.start("a", null);
    h.progress.log("note");
    expect(h.written()).toBe("note\n");
  });

  test("a failure is one plain line", () => {
    const h = harness({ isTTY: false });
    h.progress.start("x", null);
    h.advance(2000);
    h.progress.update(MiB);
    h.progress.finish(false);
    expect(h.written()).toBe("x: failed after 1.0 MiB (00:02)\n");
  });
});

describe("rate smoothing", () => {
  test("a short burst moves the shown rate a little, not all the way", () => {
    const h = harness({ isTTY: true });
    h.progress.start("a", 1000 * MiB);
    for (let i = 1; i <= 10; i++) {
      h.advance(1000);
      h.progress.update(i * 10 * MiB); // steady 10 MiB/s
    }
    h.advance(100);
    h.progress.update(110 * MiB); // 10 MiB in 100 ms: 100 MiB/s for an instant
    const rate = Number(
      h
        .screen()
        .at(-1)
        ?.match(/ ([\d.]+) MiB\/s/)?.[1],
    );
    expect(rate).toBeGreaterThan(10);
    expect(rate).toBeLessThan(20);
  });
});

describe("misuse is a clear error", () => {
  test("update or finish before start", () => {
    const h = harness({ isTTY: false });
    expect(() => h.progress.update(1)).toThrow("no transfer started");
    expect(() => h.progress.finish(true)).toThrow("no transfer started");
  });

  test("start while another runs", () => {
    const h = harness({ isTTY: false });
    h.progress.start("a", null);
    expect(() => h.progress.start("b", null)).toThrow('while "a" runs');
  });
});
