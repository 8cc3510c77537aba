// Transfer overhead (issue 3): one simulated dataset of SIZE (default 2 GiB) sent through
// abgleich's own pipeline (runSend: `zfs send -v -P` with its stderr read and parsed, into
// `zfs receive -s -u`) versus a raw `bash -c 'zfs send SNAP | zfs receive -s -u TARGET'` of
// the same simulator processes. Runs alternate (raw, abgleich, raw, …) so drift in the machine
// hits both alike; every run receives into a fresh name that is destroyed afterwards.
// usage: bun bench/transfer.ts [--size 2G] [--rounds 7]

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { LocalHost } from "../lib/hosts/local.ts";
import type { SendAction } from "../lib/plan/types.ts";
import { runSend } from "../lib/run/actions.ts";
import { seedState, writeShims } from "../lib/sim/main.ts";

const MiB = 1024 * 1024;
const SNAPSHOT = "tank/big@s1";

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

function parseBytes(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([KMG]?)$/i.exec(text);
  if (!match) throw new Error(`--size: expected a size like 2G or 512M, got '${text}'`);
  const unit = { "": 1, K: 1024, M: MiB, G: 1024 * MiB }[(match[2] as string).toUpperCase()] ?? 1;
  return Math.round(Number(match[1]) * unit);
}

/** peak resident set of this process so far (VmHWM), in bytes */
export function peakRssBytes(): number {
  const status = readFileSync("/proc/self/status", "utf8");
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** run argv to its end; throws with its stderr when it fails */
function mustRun(argv: string[]): string {
  const child = Bun.spawnSync(argv, { env: process.env });
  if (child.exitCode !== 0)
    throw new Error(`${argv.join(" ")} failed (${child.exitCode}): ${child.stderr}`);
  return child.stdout.toString();
}

/** CPU seconds of this process plus its reaped children (bash and the pipeline stages under it) */
export function cpuSeconds(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  // fields after the command name: state is field 3, utime 14, stime 15, cutime 16, cstime 17
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  return ticks / 100; // USER_HZ is 100 on Linux
}

interface Timing {
  wall: number;
  cpu: number;
}

async function timed(run: () => Promise<void>): Promise<Timing> {
  const cpuBefore = cpuSeconds();
  const started = performance.now();
  await run();
  return { wall: (performance.now() - started) / 1000, cpu: cpuSeconds() - cpuBefore };
}

async function rawTransfer(target: string): Promise<void> {
  // the same stages as abgleich's pipeline minus -v -P; names are plain words here
  const child = Bun.spawn(["bash", "-c", `zfs send ${SNAPSHOT} | zfs receive -s -u ${target}`], {
    env: process.env,
    stderr: "pipe",
  });
  const [code, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()]);
  if (code !== 0) throw new Error(`raw pipeline failed (${code}): ${stderr}`);
}

async function abgleichTransfer(target: string, progress: { lines: number }): Promise<void> {
  const action: SendAction = {
    kind: "send",
    subname: "",
    sourceDataset: "tank/big",
    targetDataset: target,
    mode: "full",
    from: null,
    to: "s1",
    snapshots: ["s1"],
    token: null,
    raw: false,
    fromBookmark: false,
  };
  const outcome = await runSend(new LocalHost("source"), new LocalHost("target"), action, {
    signal: new AbortController().signal,
    onBytes: () => progress.lines++,
  });
  if (!outcome.ok) throw new Error(`abgleich transfer failed: ${outcome.error}`);
}

/** the received dataset must hold the whole snapshot, or the timing means nothing */
function checkAndDestroy(target: string, size: number): void {
  const referenced = Number(
    mustRun(["zfs", "list", "-H", "-p", "-o", "referenced", `${target}@s1`]).trim(),
  );
  if (referenced < size)
    throw new Error(`${target}@s1 holds ${referenced} bytes, expected at least ${size}`);
  mustRun(["zfs", "destroy", "-r", target]);
}

async function main(): Promise<void> {
  const size = parseBytes(option("--size", "2G"));
  const rounds = Number(option("--rounds", "7"));
  if (!Number.isInteger(rounds) || rounds < 3) throw new Error("--rounds: at least 3");
  const dir = mkdtempSync(join(tmpdir(), "abgleich-bench-transfer-"));
  const savedPath = process.env.PATH;
  try {
    const stateDir = join(dir, "state");
    writeShims(join(dir, "bin"), stateDir);
    // room for the source plus one received copy at a time, with slack
    const poolSize = 2 * size + 1024 * MiB;
    seedState(stateDir, {
      pools: [
        {
          name: "tank",
          size: poolSize,
          datasets: [{ name: "big", snapshots: [{ name: "s1", written: size }] }],
        },
        { name: "backup", size: poolSize, datasets: [] },
      ],
    });
    process.env.PATH = `${join(dir, "bin")}:${savedPath ?? ""}`;
    const rssBefore = peakRssBytes();

    // the kernel's own pipe speed through two plain processes, for scale
    const pipeSeconds = await timed(async () => {
      mustRun(["bash", "-c", `head -c ${size} /dev/zero | cat >/dev/null`]);
    });

    const times = { raw: [] as Timing[], abgleich: [] as Timing[] };
    const progress = { lines: 0 };
    let n = 0;
    // one unrecorded warm-up of each (file cache, bun's first start), then alternating rounds;
    // the order flips every round (raw, abgleich, abgleich, raw, …) so neither side always
    // runs right after the other's destroy
    for (let round = 0; round <= rounds; round++) {
      const order = round % 2 ? (["abgleich", "raw"] as const) : (["raw", "abgleich"] as const);
      for (const side of order) {
        const target = `backup/${side}${n++}`;
        const timing = await timed(() =>
          side === "raw" ? rawTransfer(target) : abgleichTransfer(target, progress),
        );
        checkAndDestroy(target, size);
        if (round > 0) times[side].push(timing);
      }
    }

    const rate = (seconds: number) => size / MiB / seconds;
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    const walls = (side: keyof typeof times) => times[side].map((t) => t.wall);
    const cpus = (side: keyof typeof times) => times[side].map((t) => t.cpu);
    const line = (name: keyof typeof times) =>
      `${name.padEnd(9)} ${walls(name)
        .map((s) => rate(s).toFixed(0).padStart(6))
        .join(" ")}   median ${rate(median(walls(name))).toFixed(0)} MiB/s, ` +
      `CPU ${(sum(cpus(name)) / rounds).toFixed(2)} s per run`;
    console.log(
      `transfer of ${(size / MiB).toFixed(0)} MiB, ${rounds} alternating rounds (MiB/s per run), load average ${loadavg()[0]?.toFixed(1)}:`,
    );
    console.log(line("raw"));
    console.log(line("abgleich"));
    const ratio = median(walls("raw")) / median(walls("abgleich"));
    const total = sum(walls("raw")) / sum(walls("abgleich"));
    console.log(
      `throughput ratio abgleich/raw: ${ratio.toFixed(3)} (medians), ${total.toFixed(3)} (totals); target >= 0.97: ${ratio >= 0.97 ? "met" : "NOT met"}`,
    );
    // wall time swings with whatever else the machine runs; CPU time of the processes does not
    console.log(
      `CPU ratio raw/abgleich (all processes of the transfer, this one included): ${(sum(cpus("raw")) / sum(cpus("abgleich"))).toFixed(3)}`,
    );
    console.log(
      `progress callbacks during abgleich runs: ${progress.lines} (zfs prints a line per second, plus one at the end of each run)`,
    );
    console.log(`plain pipe for scale (head -c | cat): ${rate(pipeSeconds.wall).toFixed(0)} MiB/s`);
    const rssAfter = peakRssBytes();
    console.log(
      `peak RSS of this process: ${(rssBefore / MiB).toFixed(0)} MiB before the transfers, ${(rssAfter / MiB).toFixed(0)} MiB after ` +
        `(${((rssAfter - rssBefore) / MiB).toFixed(1)} MiB more while moving ${((size * rounds * 2 + 2 * size) / MiB).toFixed(0)} MiB)`,
    );
  } finally {
    process.env.PATH = savedPath;
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
