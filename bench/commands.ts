// Commands per run (issue 3): a simulated tree of N datasets where nothing changed since the
// last backup (source and target in sync, 2–3 snapshots each, nothing written), then
// `snap`, `backup` and `cleanup` (each `--yes`) through the real CLI. A counting `zfs`/`zpool`
// shim logs every invocation before handing it to the simulator; calls are attributed to a
// side by the pool they name. The target: a small constant per side, whatever N is.
// usage: bun bench/commands.ts [--show] [N …]   (default: 10 100 1000; --show prints each run)

import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { localDateStamp } from "../lib/plan/naming.ts";
import { buildState, type Scenario, type ScenarioDataset } from "../lib/sim/main.ts";
import { newGuid, saveState } from "../lib/sim/state.ts";

const ROOT = join(import.meta.dir, "..");
const SOURCE_POOL = "tank";
const TARGET_POOL = "backup";
const COMMANDS = ["snap", "backup", "cleanup"] as const;

const CONFIG = `source:
  zpool: ${SOURCE_POOL}
  prefix: data
  host: localhost
target:
  zpool: ${TARGET_POOL}
  prefix: tank-data
  host: localhost
include_root: yes
# every dataset holds at most 3 snapshots, all on the target: cleanup has nothing to free
keep_snapshots: 3
keep_backlog: -1
written_threshold: 1048576
check_diff: yes
suffix: _bench
digits: 2
ignore: []
`;

/** N dataset names under `data`, four levels deep: data, data/gI, data/gI/dJ, data/gI/d0/eK */
export function treeNames(count: number): string[] {
  const names = ["data"];
  for (let group = 0; names.length < count; group++) {
    const groupName = `data/g${group}`;
    names.push(groupName);
    for (let child = 0; child < 9 && names.length < count; child++) {
      const childName = `${groupName}/d${child}`;
      names.push(childName);
      for (let leaf = 0; child === 0 && leaf < 3 && names.length < count; leaf++)
        names.push(`${childName}/e${leaf}`);
    }
  }
  return names;
}

/** the source tree: 2 or 3 snapshots per dataset, nothing written after the newest */
function sourceScenario(count: number, now: Date): Scenario {
  const day = localDateStamp(new Date(now.getTime() - 86_400_000));
  const datasets: ScenarioDataset[] = treeNames(count).map((name, index) => ({
    name,
    snapshots: Array.from({ length: index % 2 ? 3 : 2 }, (_, s) => ({
      name: `${day}0${s + 1}_bench`,
      written: s === 0 ? "8K" : 0,
      creation: Math.floor(now.getTime() / 1000) - 86_400 + s * 60,
    })),
  }));
  return {
    pools: [
      { name: SOURCE_POOL, size: "16G", datasets },
      { name: TARGET_POOL, size: "16G", datasets: [] },
    ],
  };
}

/**
 * Seed the source tree and copy it to the target as a finished backup would have left it:
 * same snapshots (names, guids, creation), nothing written since, unmounted (`receive -u`).
 * Copied rather than seeded twice because the simulator's seeding is quadratic in snapshots.
 */
function seedInSync(stateDir: string, count: number): void {
  const state = buildState(sourceScenario(count, new Date()));
  for (const name of treeNames(count)) {
    const source = state.datasets[`${SOURCE_POOL}/${name}`];
    if (!source) throw new Error(`bench: ${name} missing on the source`);
    const targetName = `${TARGET_POOL}/${name.replace(/^data/, "tank-data")}`;
    state.datasets[targetName] = {
      ...structuredClone(source),
      name: targetName,
      guid: newGuid(), // a received dataset gets its own guid; its snapshots keep theirs
      mountpoint: `/${targetName}`,
      mounted: false,
    };
  }
  saveState(stateDir, state);
}

function shQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** `zfs` and `zpool` that log their argv (one line, words tab-separated) and run the simulator */
function writeCountingShims(binDir: string, stateDir: string, logFile: string): void {
  mkdirSync(binDir, { recursive: true });
  const sim = [process.execPath, join(ROOT, "lib", "sim", "main.ts"), "--state", stateDir];
  for (const tool of ["zfs", "zpool"]) {
    const path = join(binDir, tool);
    const script = [
      "#!/bin/sh",
      // the line is built first and written by ONE printf: source and target are listed at the
      // same time, and word-by-word writes of two shims would interleave in the log
      `tab=$(printf '\\t'); line=${tool}; for word in "$@"; do line="$line$tab$word"; done`,
      `printf '%s\\n' "$line" >>${shQuote(logFile)}`,
      `exec ${[...sim, tool].map(shQuote).join(" ")} "$@"`,
    ];
    writeFileSync(path, `${script.join("\n")}\n`);
    chmodSync(path, 0o755);
  }
}

type Side = "source" | "target" | "neither";

/** the side a logged call belongs to: the pool its dataset/snapshot arguments name */
export function sideOf(words: readonly string[]): Side {
  const names = (pool: string) =>
    words.slice(2).some((w) => w === pool || w.startsWith(`${pool}/`) || w.startsWith(`${pool}@`));
  if (names(SOURCE_POOL)) return "source";
  if (names(TARGET_POOL)) return "target";
  return "neither";
}

interface Measured {
  calls: Record<Side, number>;
  /** `zfs VERB` of every call, for the report */
  verbs: Map<string, number>;
  seconds: number;
  /** what the command printed */
  output: string;
}

function runCommand(
  command: string,
  configPath: string,
  env: Record<string, string>,
  logFile: string,
): Measured {
  writeFileSync(logFile, "");
  const args = [
    process.execPath,
    join(ROOT, "lib", "cli", "main.ts"),
    command,
    configPath,
    "--yes",
  ];
  const started = performance.now();
  const child = Bun.spawnSync(args, { env, cwd: tmpdir() });
  const seconds = (performance.now() - started) / 1000;
  if (child.exitCode !== 0) {
    throw new Error(
      `abgleich ${command} exited ${child.exitCode}:\n${child.stdout}\n${child.stderr}`,
    );
  }
  const calls: Record<Side, number> = { source: 0, target: 0, neither: 0 };
  const verbs = new Map<string, number>();
  for (const line of readFileSync(logFile, "utf8").split("\n")) {
    if (line === "") continue;
    const words = line.split("\t");
    calls[sideOf(words)]++;
    const verb = `${words[0]} ${words[1] ?? ""}`;
    verbs.set(verb, (verbs.get(verb) ?? 0) + 1);
  }
  // nothing changed, so nothing may be changed: a run that snapshots, sends or destroys
  // would measure another scenario than the one this benchmark is about
  const changing = [...verbs.keys()].filter((verb) =>
    /^zfs (snapshot|send|receive|destroy)$/.test(verb),
  );
  if (changing.length > 0)
    throw new Error(
      `abgleich ${command} changed something (${changing.join(", ")}):\n${child.stdout}`,
    );
  return { calls, verbs, seconds, output: child.stdout.toString() };
}

function measure(count: number, dir: string): Record<(typeof COMMANDS)[number], Measured> {
  const caseDir = join(dir, String(count));
  const stateDir = join(caseDir, "state");
  const binDir = join(caseDir, "bin");
  const logFile = join(caseDir, "calls.log");
  const configPath = join(caseDir, "bench.yaml");
  mkdirSync(caseDir, { recursive: true });
  seedInSync(stateDir, count);
  writeCountingShims(binDir, stateDir, logFile);
  writeFileSync(configPath, CONFIG);
  const env = {
    ...(process.env as Record<string, string>),
    PATH: `${binDir}:${process.env.PATH ?? ""}`,
    NO_COLOR: "1",
  };
  const result = {} as Record<(typeof COMMANDS)[number], Measured>;
  for (const command of COMMANDS) result[command] = runCommand(command, configPath, env, logFile);
  return result;
}

function main(): void {
  const show = process.argv.includes("--show");
  const counts = process.argv
    .slice(2)
    .filter((arg) => arg !== "--show")
    .map(Number);
  const sizes = counts.length > 0 ? counts : [10, 100, 1000];
  if (sizes.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error("usage: bun bench/commands.ts [N …] (N ≥ 1)");
  const dir = mkdtempSync(join(tmpdir(), "abgleich-bench-commands-"));
  try {
    const rows: string[][] = [["datasets", ...COMMANDS.map((c) => `${c} src/tgt`)]];
    const details: string[] = [];
    let largest: Record<string, Measured> | undefined;
    for (const count of sizes) {
      const result = measure(count, dir);
      largest = result;
      rows.push([
        String(count),
        ...COMMANDS.map((c) => {
          const { calls } = result[c];
          return `${calls.source}/${calls.target}${calls.neither ? ` (+${calls.neither})` : ""}`;
        }),
      ]);
      for (const c of COMMANDS) {
        if (show) console.log(`--- abgleich ${c} (${count} datasets):\n${result[c].output}`);
        const verbs = [...result[c].verbs].map(([verb, n]) => `${n}× ${verb}`).join(", ");
        details.push(`  ${String(count).padStart(5)} ${c.padEnd(8)} ${verbs || "(none)"}`);
      }
    }
    const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
    console.log(
      "zfs/zpool invocations per side (source/target), nothing changed since the last backup:",
    );
    for (const row of rows)
      console.log(row.map((cell, i) => cell.padStart(widths[i] ?? 0)).join("  "));
    console.log("calls by verb:");
    for (const line of details) console.log(line);
    if (largest) {
      const n = sizes[sizes.length - 1];
      console.log(
        `wall time at ${n} datasets (whole CLI process, simulator included): ` +
          COMMANDS.map((c) => `${c} ${(largest?.[c]?.seconds ?? 0).toFixed(2)} s`).join(", "),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) main();
