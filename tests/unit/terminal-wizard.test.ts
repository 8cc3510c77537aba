// The terminal wizard's pure parts (fitting a line, the list's window, the figures) and its
// view driven by hand on a fake terminal 40 columns wide: the redraw goes up exactly the rows
// it drew, text printed meanwhile lands above the list, and off a terminal there are no codes.

import { describe, expect, test } from "bun:test";
import type { CommandIo } from "../../lib/cli/io.ts";
import {
  canRedraw,
  createMeter,
  finishedFigures,
  runFigures,
  transferFigures,
} from "../../lib/cli/progress.ts";
import { plainStyle, stripAnsi, visibleWidth } from "../../lib/cli/render/style.ts";
import { formatDuration } from "../../lib/cli/render/units.ts";
import { fitLine, listWindow, wizardUi } from "../../lib/cli/terminal-wizard.ts";
import type { StageInfo } from "../../lib/engine/hooks.ts";
import { silentUi } from "../../lib/engine/ui.ts";
import type { Plan, SendAction } from "../../lib/plan/types.ts";
import { emulate } from "../helpers/pty.ts";

const MiB = 1024 ** 2;
const ESC = "\u001b";

describe("fitLine", () => {
  test("a line that fits is left as it is", () => {
    expect(fitLine("  ● ", "name", "  1 MiB", 40)).toBe("  ● name  1 MiB");
  });

  test("the middle gives way, with an ellipsis, so the figures at the end stay", () => {
    const line = fitLine("  ◐ running  ", "a-very-long-dataset-name-indeed", " (full)  12%", 40);
    expect(visibleWidth(line)).toBe(40);
    expect(line).toBe("  ◐ running  a-very-long-da… (full)  12%");
  });

  test("wide characters count two columns", () => {
    const line = fitLine("", "日本語の名前のデータセット", " (full)", 20);
    expect(visibleWidth(line)).toBeLessThanOrEqual(20);
    expect(line.endsWith("… (full)")).toBe(true);
  });

  test("when even the end does not fit, the whole line is cut to the width", () => {
    const line = fitLine("  ● done  ", "x", "  123456789012345678901234567890", 20);
    expect(visibleWidth(line)).toBe(20);
    expect(line.startsWith("  ● done  x  1234")).toBe(true);
  });
});

describe("listWindow", () => {
  test("everything when it fits", () => {
    expect(listWindow(5, 3, 5)).toEqual({ start: 0, end: 5 });
  });

  test("around the focus, leaving a row each for what is left out", () => {
    expect(listWindow(30, 10, 7)).toEqual({ start: 9, end: 14 });
    expect(listWindow(30, 0, 7)).toEqual({ start: 0, end: 5 });
    expect(listWindow(30, 29, 7)).toEqual({ start: 25, end: 30 });
  });

  test("never more rows than the room, the focus always shown", () => {
    for (let count = 0; count < 40; count++)
      for (let room = 3; room < 12; room++)
        for (let focus = 0; focus < count; focus++) {
          const { start, end } = listWindow(count, focus, room);
          const rows = end - start + (start > 0 ? 1 : 0) + (end < count ? 1 : 0);
          expect(rows).toBeLessThanOrEqual(room);
          expect(focus >= start && focus < end).toBe(true);
        }
  });
});

describe("figures (shared with backup's progress)", () => {
  test("a transfer: bytes of the estimate, percent, rate and ETA", () => {
    let clock = 0;
    const meter = createMeter({ totalBytes: 200 * MiB, now: () => clock });
    meter.start("a", 100 * MiB);
    for (let i = 1; i <= 5; i++) {
      clock += 1000;
      meter.update(i * 10 * MiB);
    }
    const [transfer] = meter.running();
    if (!transfer) throw new Error("no transfer");
    expect(transferFigures(transfer, plainStyle)).toBe(
      "50.0 MiB / 100.0 MiB 50%  10.0 MiB/s  ETA 00:05",
    );
    const run = meter.run();
    if (!run) throw new Error("no run figures");
    expect(runFigures(run)).toBe("all 50.0 MiB / 200.0 MiB 25%  10.0 MiB/s  ETA 00:15");
    expect(finishedFigures(transfer, true, 10_000)).toBe("50.0 MiB in 00:10 (5.0 MiB/s)");
    expect(finishedFigures(transfer, false, 2000)).toBe("50.0 MiB (00:02)");
  });

  test("unknown rate or size: dashes, never a wrong number", () => {
    const meter = createMeter({ totalBytes: null, now: () => 0 });
    const transfer = meter.start("a", null);
    expect(transferFigures(transfer, plainStyle)).toBe("0 B  -- B/s  ETA --:--");
    expect(meter.run()).toBeNull();
  });

  test("ETA past an hour", () => {
    expect(formatDuration(3600 + 62)).toBe("1:01:02");
    expect(formatDuration(59.6)).toBe("01:00");
  });
});

test("only a terminal that is not dumb is redrawn in place", () => {
  expect(canRedraw({ isTTY: true }, { TERM: "xterm-256color" })).toBe(true);
  expect(canRedraw({ isTTY: true }, {})).toBe(true);
  expect(canRedraw({ isTTY: true }, { TERM: "dumb" })).toBe(false);
  expect(canRedraw({ isTTY: false }, { TERM: "xterm" })).toBe(false);
  expect(canRedraw({}, {})).toBe(false);
});

describe("the terminal emulation the pty tests judge by", () => {
  const frame = (lines: string[]) => lines.map((l) => `${l}\r\n`).join("");
  const long = `${"x".repeat(70)} ${"y".repeat(20)}`;

  test("a redraw that counts lines, not rows, leaves a stale copy (the old bug)", () => {
    const output = `${frame(["a", long])}${ESC}[2A${ESC}[J${frame(["b", long])}`;
    expect(emulate(output, 80, 24).filter((line) => line === "a")).toHaveLength(1);
  });

  test("counting rows leaves the screen clean", () => {
    const output = `${frame(["a", long])}${ESC}[3A${ESC}[J${frame(["b", long])}`;
    const screen = emulate(output, 80, 24);
    expect(screen.includes("a")).toBe(false);
    expect(screen.filter((line) => line === "b")).toHaveLength(1);
  });
});

// ── the view on a fake terminal ──────────────────────────────────────────────────────────────

const send = (subname: string, mode: SendAction["mode"] = "full"): SendAction => ({
  kind: "send",
  subname,
  sourceDataset: `src/data/${subname}`,
  targetDataset: `dst/backup/${subname}`,
  mode,
  from: null,
  to: "2026010101",
  snapshots: ["2026010101"],
  token: null,
  raw: false,
  fromBookmark: false,
  keepUnmounted: false,
});

function fakeTerminal(isTTY: boolean, rows = 10) {
  let written = "";
  const out = {
    isTTY,
    columns: 40,
    rows,
    write(text: string) {
      written += text;
      return true;
    },
  };
  const io = {
    out,
    err: out,
    style: plainStyle,
    errStyle: plainStyle,
    json: false,
    print: (text: string) => out.write(text.endsWith("\n") ? text : `${text}\n`),
    warn: (text: string) => out.write(text.endsWith("\n") ? text : `${text}\n`),
    emit: () => {},
  } as unknown as CommandIo;
  return { io, written: () => written };
}

async function drive(isTTY: boolean, rows = 10, extra = 0) {
  const terminal = fakeTerminal(isTTY, rows);
  let clock = 0;
  const ui = wizardUi(terminal.io, silentUi, {
    yes: true,
    steps: ["snap", "backup", "cleanup source"],
    live: isTTY,
    now: () => clock,
  });
  const info = {
    stage: "backup",
    config: { target: { zpool: "dst" } },
    dryRun: false,
    changes: true,
    signal: new AbortController().signal,
  } as unknown as StageInfo;
  const actions = [
    send("a-dataset-name-far-too-long-for-forty-columns"),
    send("b"),
    send("c", "incremental"),
    ...Array.from({ length: extra }, (_, i) => send(`more-${i}`)),
  ];
  const plan: Plan = { actions, conflicts: [], skipped: [], errors: [] };
  const estimates = new Map(actions.map((a) => [a, 10 * MiB]));
  ui.showPlan(info, plan, estimates);
  expect(await ui.confirm(info, plan, false)).toBe(true);
  for (const [index, action] of actions.entries()) {
    ui.actionStarted(action, 10 * MiB);
    for (let i = 1; i <= 5; i++) {
      clock += 500;
      ui.actionProgress(action, i * 2 * MiB);
    }
    if (index === 1) terminal.io.warn("warning: a plugin says hello");
    ui.actionFinished(action, { ok: true, bytes: 10 * MiB, durationMs: 2500 });
  }
  ui.stageFinished(info, { status: "ok" });
  return terminal.written();
}

describe("the action list on a terminal", () => {
  test("redrawn in place: within the width, up exactly the rows drawn, one list left", async () => {
    const output = await drive(true);
    const after = output.slice(output.indexOf("Actions:"));
    const ups = after.match(new RegExp(`${ESC}\\[\\d+A`, "g")) ?? [];
    expect(ups.length).toBeGreaterThan(5);
    // every row of the list fits: one line is one row
    for (const line of after.split("\n"))
      expect(visibleWidth(stripAnsi(line).replace(/\r/g, ""))).toBeLessThan(40);
    // going up too few rows would leave a stale copy, too many would erase what is above
    const screen = emulate(output.replaceAll("\n", "\r\n"), 40, 10);
    expect(screen.filter((line) => line === "Actions:")).toHaveLength(1);
    // one list, finished, below the message that came while it ran
    const warning = screen.indexOf("warning: a plugin says hello");
    expect(warning).toBeGreaterThan(0);
    const list = screen.slice(warning + 1);
    expect(list.filter((line) => line.startsWith("  ● done"))).toHaveLength(3);
    expect(list.every((line) => !line.includes("running") && !line.includes("pending"))).toBe(true);
    expect(list.join("\n")).toContain("all 30.0 MiB / 30.0 MiB 100%");
    expect(screen.slice(0, warning).some((line) => line.includes("●"))).toBe(false);
    expect(output.lastIndexOf(`${ESC}[?25h`)).toBeGreaterThan(output.lastIndexOf(`${ESC}[?25l`));
  });

  test("a list longer than the screen is shown as a window, so the redraw can reach its top", async () => {
    const output = await drive(true, 8, 9);
    // never more rows drawn than the screen has: the cursor cannot go up past its top
    for (const match of output.matchAll(new RegExp(`${ESC}\\[(\\d+)A`, "g")))
      expect(Number(match[1])).toBeLessThan(8);
    const screen = emulate(output.replaceAll("\n", "\r\n"), 40, 8);
    expect(screen.filter((line) => line === "Actions:")).toHaveLength(1);
    expect(screen.some((line) => /^ {2}… \d+ more above$/.test(line))).toBe(true);
    expect(screen.join("\n")).not.toContain("running");
    expect(screen.at(-2)).toContain("all 120.0 MiB / 120.0 MiB 100%");
  });

  test("off a terminal: one plain line per change, no escape code", async () => {
    const output = await drive(false);
    expect(output).not.toContain(ESC);
    expect(output).toContain(
      "  done: full send src/data/b → dst/backup/b@2026010101: 10.0 MiB in 00:03 (4.0 MiB/s)",
    );
    expect(output.match(/ {2}running: /g)).toHaveLength(3);
  });
});
