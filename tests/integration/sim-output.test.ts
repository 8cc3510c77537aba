// The simulator writes all of its output to a pipe however slowly the reader drains it.
// Bun's stdio pipes are non-blocking: one writeSync takes at most the pipe's free space
// (64 KiB when empty) and a full pipe answers EAGAIN. Both the source run
// (`bun lib/cli/main.ts sim …`) and the compiled binary (`abgleich sim …`) are checked with
// several MiB on stdout (`zfs get all`, `zfs list`, `zfs send`) and ~1 MiB on stderr.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { seedState } from "../../lib/sim/main.ts";
import { COMPILE_FLAGS } from "../../scripts/build.ts";

const root = resolve(import.meta.dir, "..", "..");
const CLI_MAIN = join(root, "lib", "cli", "main.ts");
const dir = mkdtempSync(join(tmpdir(), "abgleich-sim-output-"));
const stateDir = join(dir, "state");
const binary = join(dir, "abgleich");
const reader = join(dir, "slow-reader.ts");

const DATASETS = 80;
const SNAPSHOTS = 100;
const MISSING = 20_000;
/** the last object listed: names sort as text, so d9 comes after d79 */
const LAST = `p/tree/d9@snapshot-${SNAPSHOTS - 1}`;

/** A reader much slower than the writer: it starts late, then reads 16 KiB per millisecond. */
const SLOW_READER = `import * as fs from "node:fs";
const out = fs.openSync(process.argv[2], "w");
const buf = Buffer.allocUnsafe(16384);
Bun.sleepSync(300);
for (;;) {
  let n;
  try {
    n = fs.readSync(0, buf, 0, buf.length, null);
  } catch (error) {
    if (error.code === "EAGAIN") { Bun.sleepSync(1); continue; }
    if (error.code === "EOF") break;
    throw error;
  }
  if (n === 0) break;
  fs.writeSync(out, buf, 0, n);
  Bun.sleepSync(1);
}
fs.closeSync(out);
`;

beforeAll(() => {
  writeFileSync(reader, SLOW_READER);
  const datasets = [];
  for (let i = 0; i < DATASETS; i++)
    datasets.push({
      name: `tree/d${i}`,
      snapshots: Array.from({ length: SNAPSHOTS }, (_, j) => ({
        name: `snapshot-${j}`,
        written: "1K",
      })),
    });
  seedState(
    stateDir,
    {
      now: 1795663146,
      pools: [
        {
          name: "p",
          size: "10G",
          datasets: [...datasets, { name: "big", snapshots: [{ name: "s", written: "6M" }] }],
        },
      ],
    },
    {},
  );
  const build = Bun.spawnSync(
    [process.execPath, "build", ...COMPILE_FLAGS, CLI_MAIN, "--outfile", binary],
    { cwd: root },
  );
  if (build.exitCode !== 0) throw new Error(`bun build failed:\n${build.stderr.toString()}`);
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ENV = { PATH: "/usr/bin:/bin", TZ: "UTC", HOME: dir };

/**
 * Runs `sim … zfs ARGS` with the chosen stream (stdout or stderr) piped into the slow reader;
 * returns the sim's exit code and what the reader got.
 */
function throughSlowReader(
  sim: string[],
  args: string[],
  stream: "stdout" | "stderr",
): { code: number; bytes: Buffer } {
  const out = join(dir, `slow-${stream}.out`);
  rmSync(out, { force: true });
  const pipe =
    stream === "stdout"
      ? `"$@" 2>/dev/null | "$READER_BUN" "$READER" "$OUT"`
      : `"$@" 2>&1 >/dev/null | "$READER_BUN" "$READER" "$OUT"`;
  const run = Bun.spawnSync(
    ["bash", "-c", `${pipe}; exit "\${PIPESTATUS[0]}"`, "sh", ...sim, "zfs", ...args],
    {
      env: { ...ENV, READER_BUN: process.execPath, READER: reader, OUT: out },
      stdin: "ignore",
    },
  );
  return { code: run.exitCode ?? -1, bytes: readFileSync(out) };
}

/** The same command with the stream written to a regular file (never a partial write). */
function toFile(sim: string[], args: string[], stream: "stdout" | "stderr") {
  const out = join(dir, `file-${stream}.out`);
  const redirect = stream === "stdout" ? `"$@" >"$OUT" 2>/dev/null` : `"$@" 2>"$OUT" >/dev/null`;
  const run = Bun.spawnSync(["bash", "-c", redirect, "sh", ...sim, "zfs", ...args], {
    env: { ...ENV, OUT: out },
    stdin: "ignore",
  });
  return { code: run.exitCode ?? -1, bytes: readFileSync(out) };
}

const RUNNERS: Array<[string, () => string[]]> = [
  ["bun lib/cli/main.ts sim", () => [process.execPath, CLI_MAIN, "sim", "--state", stateDir]],
  ["compiled binary", () => [binary, "sim", "--state", stateDir]],
];

describe.each(RUNNERS)("%s: every byte reaches a slow reader", (_name, sim) => {
  test("zfs get all -r: several MiB of stdout", () => {
    const args = ["get", "-Hp", "all", "-r", "p"];
    const expected = toFile(sim(), args, "stdout");
    expect(expected.code).toBe(0);
    expect(expected.bytes.length).toBeGreaterThan(3 * 1024 * 1024);
    const lines = expected.bytes.toString().trimEnd().split("\n");
    expect(lines.at(-1)).toStartWith(`${LAST}\t`);
    const got = throughSlowReader(sim(), args, "stdout");
    expect(got.code).toBe(0);
    expect(got.bytes.length).toBe(expected.bytes.length);
    expect(got.bytes.equals(expected.bytes)).toBe(true);
  }, 60_000);

  test("zfs list -t all: every row", () => {
    const got = throughSlowReader(
      sim(),
      ["list", "-t", "all", "-Hp", "-o", "name", "-r", "p"],
      "stdout",
    );
    expect(got.code).toBe(0);
    const rows = got.bytes.toString().split("\n");
    expect(rows.pop()).toBe("");
    // p, p/big, p/big@s, p/tree, then each dataset with its snapshots
    expect(rows.length).toBe(4 + DATASETS * (1 + SNAPSHOTS));
    expect(rows.at(-1)).toBe(LAST);
  }, 60_000);

  test("zfs send: a 6 MiB stream arrives whole", () => {
    const expected = toFile(sim(), ["send", "p/big@s"], "stdout");
    expect(expected.code).toBe(0);
    expect(expected.bytes.length).toBeGreaterThan(6 * 1024 * 1024);
    const got = throughSlowReader(sim(), ["send", "p/big@s"], "stdout");
    expect(got.code).toBe(0);
    expect(got.bytes.length).toBe(expected.bytes.length);
    expect(got.bytes.equals(expected.bytes)).toBe(true);
  }, 60_000);

  test("stderr: one message per missing dataset, none lost", () => {
    const names = Array.from({ length: MISSING }, (_, i) => `p/missing-dataset-${i}`);
    const got = throughSlowReader(sim(), ["list", "-H", ...names], "stderr");
    expect(got.code).toBe(1);
    const lines = got.bytes.toString().split("\n");
    expect(lines.pop()).toBe("");
    expect(lines.length).toBe(MISSING);
    expect(lines.at(-1)).toBe(
      `cannot open 'p/missing-dataset-${MISSING - 1}': dataset does not exist`,
    );
  }, 60_000);
});

test("the compiled binary exists (built in beforeAll)", () => {
  expect(statSync(binary).size).toBeGreaterThan(0);
});
