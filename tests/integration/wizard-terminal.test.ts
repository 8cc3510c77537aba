// The terminal wizard under a real pseudo-terminal 80 columns wide, on the simulator, with
// dataset names long enough that its lines would wrap: the action list is redrawn in place
// (cursor up by exactly the rows it drew, every row within the width), the final screen shows
// each action once, a step can be skipped, Ctrl-C ends a transfer or a question at once (exit
// 130), and TERM=dumb gets no escape codes at all.

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { stripAnsi, visibleWidth } from "../../lib/cli/render/style.ts";
import { emulate, hasScript, type PtyRun, spawnInPty } from "../helpers/pty.ts";
import { CLI_MAIN, configYaml, createSimEnv, type SimEnv } from "../helpers/sim-env.ts";

const COLUMNS = 80;
const ROWS = 24;
const LONG = "a-rather-long-dataset-name-that-makes-every-line-wrap-at-eighty-columns";
const ESC = "\u001b";
const UP = new RegExp(`${ESC}\\[\\d+A`);

let env: SimEnv;
let config: string;

beforeAll(() => {
  env = createSimEnv();
  config = env.writeConfig(
    configYaml(
      { zpool: "src", prefix: "data" },
      { zpool: "dst", prefix: "backup" },
      "keep_snapshots: 1\nkeep_backlog: 0\n",
    ),
  );
});

afterAll(() => env?.remove());

/** two snapshots per dataset, big enough that the transfers take a few redraws */
function seed(size: string) {
  const two = (first: string) => [
    { name: "2026010101", written: first },
    { name: "2026010201", written: "1M" },
  ];
  const changed = { written: "2M", changes: ["M /notes.txt"] };
  env.seed({
    now: 1_767_225_600,
    pools: [
      {
        name: "src",
        size: "64G",
        datasets: [
          // changed since the last snapshot: snap has something to ask about
          { name: "data", snapshots: two(size), ...changed },
          { name: `data/${LONG}`, snapshots: two("512M"), ...changed },
          { name: "data/small", snapshots: two("1M"), ...changed },
        ],
      },
      { name: "dst", size: "64G" },
    ],
  });
}

const running = new Set<PtyRun>();
afterEach(() => {
  for (const run of running) run.kill();
  running.clear();
});

function wizard(term = "xterm-256color", args = ["wizard", config]): PtyRun {
  const run = spawnInPty([process.execPath, CLI_MAIN, ...args], {
    columns: COLUMNS,
    rows: ROWS,
    cwd: env.dir,
    env: {
      PATH: env.path,
      HOME: env.dir,
      TZ: "UTC",
      TERM: term,
      ABGLEICH_LOCK_DIR: join(env.dir, "locks"),
      ABGLEICH_STATE_DIR: join(env.dir, "run-state"),
    },
  });
  running.add(run);
  return run;
}

/** once the question (the output's end) matches `pattern`, type the answer */
async function answer(run: PtyRun, pattern: RegExp, keys: string) {
  await run.waitFor(pattern);
  run.type(keys);
}

/**
 * Every cursor-up must go back over rows it drew: the `n` lines before `ESC[nA` are all within
 * the width (one line, one row). Returns how many redraws were checked.
 */
function checkRedraws(output: string): number {
  const up = new RegExp(`${ESC}\\[(\\d+)A`, "g");
  let checked = 0;
  for (const match of output.matchAll(up)) {
    const n = Number(match[1]);
    const before = output.slice(0, match.index).split("\n");
    // the part after the last "\n" is where the cursor stands: "\r", or the terminal's own
    // echo of Ctrl-C
    expect(stripAnsi(before.at(-1) ?? "").replace(/\r|\^C/g, "")).toBe("");
    const drawn = before.slice(-1 - n, -1);
    expect(drawn).toHaveLength(n);
    for (const line of drawn) {
      // a redraw starts with its own erase: only what follows the last one is on the row
      const row = stripAnsi(line.split(UP).at(-1) ?? "").replace(/\r/g, "");
      expect(visibleWidth(row)).toBeLessThan(COLUMNS);
    }
    checked++;
  }
  return checked;
}

describe.skipIf(!hasScript)("the terminal wizard in a pseudo-terminal (80 columns)", () => {
  test("skip a step, run the others: the list is redrawn in place and shown once", async () => {
    seed("768M");
    const run = wizard();
    await answer(run, /Run snap\? y = yes, n = skip to backup, q = quit \[y\/N\/q\] $/, "n\r");
    await answer(run, /Run backup\?.*\[y\/N\/q\] $/, "y\r");
    await answer(run, /Run cleanup source\?.*\[y\/N\/q\] $/, "y\r");
    await answer(run, /Run cleanup target\? \[y\/N\] $/, "y\r");
    await answer(run, /Type "dst" to continue: $/, "dst\r");
    const code = await run.exited;
    const output = run.output();
    expect(code).toBe(0);

    // the redraws: many, each over exactly the rows it drew
    expect(checkRedraws(output)).toBeGreaterThan(3);
    const screen = emulate(output, COLUMNS, ROWS);
    const text = screen.join("\n");
    expect(text).toContain("snap: skipped");
    expect(text).toContain("– snap (skipped)");
    // each transfer's line is on the final screen once, finished, with its figures
    const rootLines = screen.filter((line) => /^ {2}\S+ \S+ +\(root\) \(full\)/.test(line));
    expect(rootLines).toHaveLength(1);
    expect(rootLines[0]).toMatch(
      /● done +\(root\) \(full\) {2}768\.\d MiB in \d\d:\d\d \([\d.]+ \S+\/s\)/,
    );
    // full and incremental in the backup list, cut to the width with the mode kept
    const longSends = screen.filter(
      (line) => line.includes("a-rather-long-data") && /\((full|incremental)\)/.test(line),
    );
    expect(longSends).toHaveLength(2);
    for (const line of longSends) expect(line).toMatch(/● done .*… \((full|incremental)\) {2}\S/);
    // the step's total under the list, once per step that sent
    expect(
      screen.filter((line) => /^ {2}all [\d.]+ \S+ \/ [\d.]+ \S+ 100%/.test(line)),
    ).toHaveLength(1);
    // nothing left over from a redraw: no running or pending line on the final screen
    expect(text).not.toContain("◐ running");
    expect(text).not.toContain("○ pending");
    // the cursor is shown again
    expect(output.lastIndexOf(`${ESC}[?25h`)).toBeGreaterThan(output.lastIndexOf(`${ESC}[?25l`));

    // what ran: no snapshot made (skipped), the older snapshot gone on both sides
    expect(env.calls().some((call) => call.startsWith("zfs snapshot"))).toBe(false);
    expect(env.snapshots("src/data")).toEqual(["2026010201"]);
    expect(env.snapshots("dst/backup")).toEqual(["2026010201"]);
  }, 90_000);

  test("Ctrl-C during a transfer: the list is finished cleanly below the message, exit 130", async () => {
    seed("8G");
    const run = wizard();
    await answer(run, /Run snap\?.*\[y\/N\/q\] $/, "n\r");
    await answer(run, /Run backup\?.*\[y\/N\/q\] $/, "y\r");
    // bytes are moving on the first transfer
    await run.waitFor(/◐ running .*\(root\) \(full\) {2}[\d.]+ [KMG]iB \/ 8\.0 GiB/);
    run.type("\u0003");
    const code = await run.exited;
    const output = run.output();
    expect(code).toBe(130);
    checkRedraws(output);
    const screen = emulate(output, COLUMNS, ROWS);
    const message = screen.findIndex((line) => line.startsWith("interrupted: cancelling"));
    expect(message).toBeGreaterThanOrEqual(0);
    // below the message: the list, once, with the cut transfer stopped and the rest pending
    const below = screen.slice(message);
    expect(below.filter((line) => line.includes("(root) (full)"))).toHaveLength(1);
    expect(below.find((line) => line.includes("(root) (full)"))).toContain("■ stopped");
    expect(below.filter((line) => line.includes("small (full)"))).toHaveLength(1);
    // above it: no list left behind by a redraw the message interrupted
    expect(screen.slice(0, message).some((line) => line.includes("(root) (full)"))).toBe(false);
    expect(screen.join("\n")).not.toContain("◐ running");
    expect(screen.join("\n")).toContain("backup: cancelled");
    expect(output.lastIndexOf(`${ESC}[?25h`)).toBeGreaterThan(output.lastIndexOf(`${ESC}[?25l`));
    // resumable, and nothing after the cut ran
    expect(env.list().get("dst/backup")?.token).toBeTruthy();
    expect(env.snapshots("dst/backup/small")).toEqual([]);
  }, 90_000);

  test("Ctrl-C at a question cancels at once: exit 130, nothing run", async () => {
    seed("1M");
    const run = wizard();
    await run.waitFor(/Run snap\?.*\[y\/N\/q\] $/);
    run.type("\u0003");
    // without the fix the process waits for Enter: the helper's timeout fails the test
    const code = await run.exited;
    expect(code).toBe(130);
    expect(emulate(run.output(), COLUMNS, ROWS).join("\n")).toContain("snap: cancelled");
    expect(env.calls().some((call) => /^zfs (snapshot|send|receive|destroy)/.test(call))).toBe(
      false,
    );
  }, 60_000);

  test("TERM=dumb: plain lines, not one escape code", async () => {
    seed("64M");
    const run = wizard("dumb");
    await answer(run, /Run snap\?.*\[y\/N\/q\] $/, "n\r");
    await answer(run, /Run backup\?.*\[y\/N\/q\] $/, "y\r");
    await answer(run, /Run cleanup source\?.*\[y\/N\/q\] $/, "q\r");
    const code = await run.exited;
    const output = run.output();
    // quit is declining: exit 1, as for any command the user said no to
    expect(code).toBe(1);
    expect(output).not.toContain(ESC);
    expect(output).toMatch(
      /\r\n {2}done: full send src\/data → dst\/backup@2026010101: [\d.]+ MiB in \d\d:\d\d \(/,
    );
    expect(output).toContain("cleanup source: declined");
  }, 90_000);

  test("TERM=dumb: backup's progress is plain lines too", async () => {
    seed("64M");
    const run = wizard("dumb", ["backup", config, "--yes"]);
    expect(await run.exited).toBe(0);
    expect(run.output()).not.toContain(ESC);
    expect(run.output()).toMatch(/\(root\) \(full\): done, [\d.]+ MiB in /);
  }, 60_000);

  test("--quiet: n at a step's question skips it as without --quiet, and the wizard ends well", async () => {
    seed("1M");
    const before = env.calls().length;
    const run = wizard("xterm-256color", ["wizard", config, "--quiet"]);
    await answer(run, /Run snap\? y = yes, n = skip to backup, q = quit \[y\/N\/q\] $/, "n\r");
    await answer(run, /Run backup\?.*\[y\/N\/q\] $/, "y\r");
    await answer(run, /Run cleanup source\?.*\[y\/N\/q\] $/, "n\r");
    // cleanup target has nothing to do here: no question
    expect(await run.exited).toBe(0);
    const text = stripAnsi(run.output());
    // the one summary line, the skipped steps no failure
    expect(text).toMatch(
      /abgleich ok: .* sent .*\(snap declined, backup ok, cleanup source declined/,
    );
    expect(text).not.toContain("FAILED");
    const calls = env.calls().slice(before);
    expect(calls.some((call) => call.startsWith("zfs snapshot"))).toBe(false);
    expect(calls.some((call) => call.startsWith("zfs receive"))).toBe(true);
    expect(calls.some((call) => /^zfs destroy .*@/.test(call))).toBe(false);
  }, 90_000);
});
