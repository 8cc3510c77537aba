// The whole `abgleich compare CONFIG` on a large tree: both sides' `zfs list` output is
// generated beforehand into files, and a `zfs` shim on PATH `cat`s the right one, so the CLI
// reads it through its normal port (zx, stdout pipe) and the figures are abgleich's own: start,
// config, read + parse both sides, compare, render, write. Wall time and peak RSS come from
// /usr/bin/time (the CLI process; `cat` is tiny). stdout goes to a file, as `> out.txt` would.
//
// The tree is what backups leave: the target holds the first 90% of each dataset's snapshots
// (same guids), both sides hold their newest common snapshot, the source bookmarks it, every
// 10th dataset is encrypted (its key not loaded on the target, as after a raw receive).
//
// Each case is timed twice: through `bun lib/cli/main.ts`, and as the compiled executable users
// install (built first with the release's flags into a temporary directory).
//
// usage: bun bench/inventory.ts [--rounds N] [--json] [--color] [--phases] [--no-binary] [AxB …]
//   default cases 1000x100 and 10000x100, 5 rounds each (medians), text output without colour;
//   --no-binary  only through bun (no build)
//   --json     also time `compare --json`
//   --color    also time the text output with colour forced on (FORCE_COLOR=1)
//   --phases   also print parse / compare / render times measured inside one process
//   --keep     keep each case's directory (inputs, shim, config) and print its path, to profile

import {
  chmodSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { comparisonPieces } from "../lib/cli/render/compare.ts";
import { plainStyle } from "../lib/cli/render/style.ts";
import { configWithDefaults } from "../lib/config/types.ts";
import { compareTrees } from "../lib/plan/compare.ts";
import { GuidSharing, ListParser } from "../lib/zfs/list.ts";
import type { Side } from "../lib/zfs/model.ts";
import { buildBinary } from "../tests/e2e/helpers.ts";
import { syntheticList } from "./synthetic.ts";

const ROOT = join(import.meta.dir, "..");
const SOURCE_POOL = "tank";
const TARGET_POOL = "backup";

interface Case {
  datasets: number;
  snapshots: number;
}

interface Measurement {
  wallMs: number;
  peakRssMiB: number;
  outputBytes: number;
}

function shQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** the pre-generated inputs, a `zfs` that prints them for `zfs list … -r ROOT`, and a config */
function prepare(dir: string, c: Case): { env: Record<string, string>; configPath: string } {
  const sourceFile = join(dir, "source.txt");
  const targetFile = join(dir, "target.txt");
  const keep = Math.ceil(c.snapshots * 0.9);
  writeFileSync(
    sourceFile,
    syntheticList({
      root: SOURCE_POOL,
      ...c,
      chain: "source",
      chainBase: keep - 1,
      encrypted: "available",
    }),
  );
  writeFileSync(
    targetFile,
    syntheticList({ root: TARGET_POOL, ...c, keep, chain: "target", encrypted: "unavailable" }),
  );
  const binDir = join(dir, "bin");
  mkdirSync(binDir, { recursive: true });
  // the list of each side, and the tags of its held snapshots (`zfs holds -H SNAP…`, one hold
  // each, as a backup chain leaves them); anything else fails loudly: the benchmark must not
  // measure a guess
  const script = [
    "#!/bin/sh",
    'for last in "$@"; do :; done',
    `case "$1 $last" in`,
    `  "list ${SOURCE_POOL}") exec cat ${shQuote(sourceFile)} ;;`,
    `  "list ${TARGET_POOL}") exec cat ${shQuote(targetFile)} ;;`,
    "esac",
    `if [ "$1 $2" = "holds -H" ]; then shift 2; printf '%s\\tabgleich\\tMon Nov 30 07:00 2026\\n' "$@"; exit 0; fi`,
    `echo "bench zfs shim: unexpected call: zfs $*" >&2`,
    "exit 99",
  ];
  writeFileSync(join(binDir, "zfs"), `${script.join("\n")}\n`);
  chmodSync(join(binDir, "zfs"), 0o755);
  const configPath = join(dir, "bench.yaml");
  writeFileSync(
    configPath,
    `source:\n  zpool: ${SOURCE_POOL}\n  host: localhost\ntarget:\n  zpool: ${TARGET_POOL}\n  host: localhost\ninclude_root: yes\nsuffix: _backup\n`,
  );
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PATH: `${binDir}:${process.env.PATH}`,
  };
  delete env.FORCE_COLOR;
  delete env.NO_COLOR;
  return { env, configPath };
}

/** the CLI through bun, as in development */
const VIA_BUN = [process.execPath, join(ROOT, "lib", "cli", "main.ts")];

function runCompare(
  cli: string[],
  dir: string,
  configPath: string,
  env: Record<string, string>,
  extra: string[],
): Measurement {
  const outFile = join(dir, "out.txt");
  const timeFile = join(dir, "time.txt");
  const args = [
    "/usr/bin/time",
    "-f",
    "%M",
    "-o",
    timeFile,
    ...cli,
    "compare",
    configPath,
    ...extra,
  ];
  const started = performance.now();
  const child = Bun.spawnSync(args, { env, cwd: dir, stdout: Bun.file(outFile) });
  const wallMs = performance.now() - started;
  // compare exits 1 when it finds conflicts; there are none in this tree
  if (child.exitCode !== 0) {
    throw new Error(`abgleich compare exited ${child.exitCode}:\n${child.stderr.toString()}`);
  }
  const peakKiB = Number(Bun.spawnSync(["tail", "-n1", timeFile]).stdout.toString().trim());
  return { wallMs, peakRssMiB: peakKiB / 1024, outputBytes: statSync(outFile).size };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function report(label: string, runs: Measurement[]): void {
  const walls = runs.map((r) => r.wallMs);
  const rss = runs.map((r) => r.peakRssMiB);
  console.log(
    `  ${label.padEnd(16)} wall median ${Math.round(median(walls))} ms ` +
      `(min ${Math.round(Math.min(...walls))}, max ${Math.round(Math.max(...walls))}), ` +
      `peak RSS median ${Math.round(median(rss))} MiB (max ${Math.round(Math.max(...rss))}), ` +
      `output ${((runs[0]?.outputBytes ?? 0) / 2 ** 20).toFixed(1)} MiB`,
  );
}

/**
 * What this machine charges for memory a process touches for the first time (page faults),
 * in a fresh process: a large tree's model is hundreds of MB, so on a virtual machine whose
 * faults are slow this, not the code, can set the floor of compare's time.
 */
function firstTouchSecondsPerGiB(): number {
  const code =
    "const a = new Uint8Array(256 << 20); const t = performance.now(); " +
    "for (let i = 0; i < a.length; i += 4096) a[i] = 1; console.log(performance.now() - t);";
  const child = Bun.spawnSync([process.execPath, "-e", code]);
  return (Number(child.stdout.toString().trim()) / 1000) * 4;
}

/** parse / compare / render inside one fresh process, for finding what dominates */
function phases(dir: string): void {
  const child = Bun.spawnSync([
    process.execPath,
    import.meta.path,
    "--in-process",
    join(dir, "source.txt"),
    join(dir, "target.txt"),
  ]);
  if (child.exitCode !== 0) throw new Error(child.stderr.toString());
  console.log(`  phases           ${child.stdout.toString().trim()}`);
}

/** the child of phases(): the steps of `compare` one by one, timed */
function inProcess(sourceFile: string, targetFile: string): void {
  // read and parsed a piece at a time, as the port does with `zfs list`'s output, the two
  // sides sharing their guids as the engine's read of both does
  const sharing = new GuidSharing();
  const read = (file: string, side: Side, root: string) => {
    const parser = new ListParser(side, root, `${side} (bench)`, sharing);
    const fd = openSync(file, "r");
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (let count = readSync(fd, buffer); count > 0; count = readSync(fd, buffer))
      parser.push(buffer.subarray(0, count));
    closeSync(fd);
    return parser.end();
  };
  const config = configWithDefaults(
    { zpool: SOURCE_POOL },
    { zpool: TARGET_POOL },
    { suffix: "_backup" },
  );
  // wall and CPU time per step (CPU time moves less with whatever else runs on the machine)
  const round = (): string => {
    const marks: [number, number][] = [];
    const mark = () => {
      const cpu = process.cpuUsage();
      marks.push([performance.now(), (cpu.user + cpu.system) / 1000]);
    };
    mark();
    const source = read(sourceFile, "source", SOURCE_POOL);
    mark();
    const target = read(targetFile, "target", TARGET_POOL);
    mark();
    const comparison = compareTrees(source, target, config);
    mark();
    let chars = 0;
    for (const piece of comparisonPieces(comparison, plainStyle)) chars += piece.length;
    mark();
    const step = (i: number) => {
      const [wall, cpu] = marks[i] as [number, number];
      const [wall0, cpu0] = marks[i - 1] as [number, number];
      return `${Math.round(wall - wall0)} ms (cpu ${Math.round(cpu - cpu0)})`;
    };
    const [end] = marks[4] as [number, number];
    const [start] = marks[0] as [number, number];
    return `parse ${step(1)} + ${step(2)}, compare ${step(3)}, render ${step(4)}, all ${Math.round(end - start)} ms (${chars} chars)`;
  };
  const peakMiB = () => {
    const status = readFileSync("/proc/self/status", "utf8");
    return Math.round(Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
  };
  console.log(`${round()}, peak RSS ${peakMiB()} MiB`);
  // the same steps again in this process, the first round's garbage collected: the heap's
  // pages are mapped by now, so this is the code's cost where memory's first touch is cheap
  Bun.gc(true);
  console.log(`  again            ${round()}, peak RSS ${peakMiB()} MiB`);
}

function main(): void {
  const argv = process.argv.slice(2);
  if (argv[0] === "--in-process") {
    inProcess(argv[1] as string, argv[2] as string);
    return;
  }
  let rounds = 5;
  const cases: Case[] = [];
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--rounds") rounds = Number(argv[++i]);
    else if (arg.startsWith("--")) flags.add(arg);
    else {
      const [datasets, snapshots] = arg.split("x").map(Number);
      cases.push({ datasets: datasets as number, snapshots: snapshots as number });
    }
  }
  if (cases.length === 0)
    cases.push({ datasets: 1_000, snapshots: 100 }, { datasets: 10_000, snapshots: 100 });
  const clis: [string, string[]][] = [["bun", VIA_BUN]];
  const binaryDir = flags.has("--no-binary")
    ? undefined
    : mkdtempSync(join(tmpdir(), "abgleich-bench-binary-"));
  // built like the e2e tests' (and a release's) binary
  if (binaryDir) clis.push(["binary", [buildBinary(binaryDir)]]);
  const load = Bun.spawnSync(["uptime"]).stdout.toString().trim();
  console.log(`abgleich compare, whole CLI process (${rounds} rounds each; ${load})`);
  console.log(
    `memory first touched: ${firstTouchSecondsPerGiB().toFixed(2)} s per GiB on this machine`,
  );
  for (const c of cases) {
    const dir = mkdtempSync(join(tmpdir(), "abgleich-bench-inventory-"));
    try {
      const { env, configPath } = prepare(dir, c);
      console.log(
        `${c.datasets} datasets x ${c.snapshots} snapshots (${c.datasets * c.snapshots} snapshot rows on the source):`,
      );
      const variants: [string, string[], Record<string, string>][] = [["text", [], env]];
      if (flags.has("--color")) variants.push(["text colour", [], { ...env, FORCE_COLOR: "1" }]);
      if (flags.has("--json")) variants.push(["--json", ["--json"], env]);
      for (const [how, cli] of clis) {
        for (const [label, extra, variantEnv] of variants) {
          // warm-up: file cache, bun's transpile cache
          runCompare(cli, dir, configPath, variantEnv, extra);
          const runs: Measurement[] = [];
          for (let r = 0; r < rounds; r++)
            runs.push(runCompare(cli, dir, configPath, variantEnv, extra));
          report(`${label} (${how})`, runs);
        }
      }
      if (flags.has("--phases")) phases(dir);
    } finally {
      if (flags.has("--keep")) console.log(`  kept ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    }
  }
  if (binaryDir) rmSync(binaryDir, { recursive: true, force: true });
}

if (import.meta.main) main();
