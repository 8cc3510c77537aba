// Transfer overhead (issue 3): one simulated dataset of SIZE (default 2 GiB) sent through
// abgleich's own pipeline (runSend: `zfs send -v -P` with its stderr read and parsed, into
// `zfs receive -s -u`) versus a raw `bash -c 'zfs send SNAP | zfs receive -s -u TARGET'` of
// the same simulator processes. With --wire, the same again with zstd and mbuffer on both
// sides: runSend with a Wire of zstd + 64 MiB mbuffer, and a raw pipe of the same stages.
// Runs alternate (raw, abgleich, raw, …) so drift in the machine hits both alike; every run
// receives into a fresh name that is destroyed afterwards.
// usage: bun bench/transfer.ts [--size 2G] [--rounds 7] [--wire]

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { LocalHost } from "../lib/hosts/local.ts";
import { shellJoin } from "../lib/hosts/quote.ts";
import type { SendAction } from "../lib/plan/types.ts";
import { runSend } from "../lib/run/actions.ts";
import { AUTO_BUFFER, detectTools, PLAIN_WIRE, type Wire, wirePipeline } from "../lib/run/wire.ts";
import { seedState, writeShims } from "../lib/sim/main.ts";
import { zfsReceive, zfsSend } from "../lib/zfs/commands.ts";

const MiB = 1024 * 1024;
const SNAPSHOT = "tank/big@s1";
const SOURCE = new LocalHost("source");
const TARGET = new LocalHost("target");

/**
 * zstd on the sending side, 64 MiB mbuffer before the receive. Built by hand: chooseWire never
 * compresses between two local hosts ("wire: local pipe"), but wirePipeline runs whatever Wire
 * it is given, each tool its own local stage, as it would with ssh between them.
 */
const ZSTD_MBUFFER: Wire = {
  ...PLAIN_WIRE,
  compression: "zstd",
  buffer: AUTO_BUFFER,
  text: "wire: zstd, mbuffer 64 MiB on target",
};

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

/** abgleich's stages for `wire` between two local hosts, as runSend builds them */
function stagesOf(wire: Wire, target: string): string[][] {
  const send = zfsSend({ mode: "full", snapshot: SNAPSHOT, raw: false }, { progress: true });
  return wirePipeline(send, zfsReceive(target), SOURCE, TARGET, wire).commands;
}

async function rawTransfer(wire: Wire, target: string): Promise<void> {
  // the same stages as abgleich's pipeline minus -v -P: the wire's own commands between a plain
  // send and receive (names are plain words here)
  const between = stagesOf(wire, target).slice(1, -1).map(shellJoin);
  const line = [`zfs send ${SNAPSHOT}`, ...between, `zfs receive -s -u ${target}`].join(" | ");
  // detached, as runPipeline's bash: its own session, so with the kernel's autogroup scheduling
  // both pipelines get a group of their own instead of sharing this shell session's CPU share
  const child = Bun.spawn(["bash", "-c", line], {
    env: process.env,
    stderr: "pipe",
    detached: true,
  });
  const [code, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()]);
  if (code !== 0) throw new Error(`raw pipeline failed (${code}): ${stderr}`);
}

async function abgleichTransfer(
  wire: Wire,
  target: string,
  progress: { lines: number },
): Promise<void> {
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
    keepUnmounted: false,
  };
  const outcome = await runSend(SOURCE, TARGET, action, {
    signal: new AbortController().signal,
    onBytes: () => progress.lines++,
    wire,
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

/** the 1-minute load average, as `uptime` prints it first */
const load = () => loadavg()[0] ?? 0;

async function main(): Promise<void> {
  const size = parseBytes(option("--size", "2G"));
  const rounds = Number(option("--rounds", "7"));
  if (!Number.isInteger(rounds) || rounds < 3) throw new Error("--rounds: at least 3");
  const wires: Record<string, Wire> = { plain: PLAIN_WIRE };
  if (process.argv.includes("--wire")) {
    const tools = await detectTools(SOURCE);
    const missing = (["zstd", "mbuffer"] as const).filter((tool) => !tools.has(tool));
    if (missing.length > 0)
      throw new Error(`--wire needs ${missing.join(" and ")}: apt-get install -y zstd mbuffer`);
    wires["zstd+mbuffer"] = ZSTD_MBUFFER;
  }
  const modes = Object.keys(wires);
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

    type Side = "raw" | "abgleich";
    const times = new Map<string, Timing[]>();
    const loads = new Map<string, number[]>();
    const progress = { lines: 0 };
    let n = 0;
    // one unrecorded warm-up of each (file cache, bun's first start), then alternating rounds;
    // the order flips every round (raw, abgleich, abgleich, raw, …) so neither side always
    // runs right after the other's destroy; the wires take turns within each round
    for (let round = 0; round <= rounds; round++) {
      const order: Side[] = round % 2 ? ["abgleich", "raw"] : ["raw", "abgleich"];
      for (const mode of modes) {
        const wire = wires[mode] ?? PLAIN_WIRE;
        for (const side of order) {
          const target = `backup/${side}${n++}`;
          const loadBefore = load();
          const timing = await timed(() =>
            side === "raw" ? rawTransfer(wire, target) : abgleichTransfer(wire, target, progress),
          );
          checkAndDestroy(target, size);
          if (round === 0) continue;
          const key = `${mode} ${side}`;
          times.set(key, [...(times.get(key) ?? []), timing]);
          loads.set(mode, [...(loads.get(mode) ?? []), loadBefore, load()]);
        }
      }
    }

    const rate = (seconds: number) => size / MiB / seconds;
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    const walls = (key: string) => (times.get(key) ?? []).map((t) => t.wall);
    const cpus = (key: string) => (times.get(key) ?? []).map((t) => t.cpu);
    const line = (key: string) =>
      `  ${key.padEnd(22)} ${walls(key)
        .map((s) => rate(s).toFixed(0).padStart(6))
        .join(" ")}   median ${rate(median(walls(key))).toFixed(0)} MiB/s, ` +
      `CPU ${(sum(cpus(key)) / rounds).toFixed(2)} s per run`;
    console.log(
      `transfer of ${(size / MiB).toFixed(0)} MiB, ${rounds} alternating rounds (MiB/s per run)`,
    );
    for (const mode of modes) {
      const modeLoads = loads.get(mode) ?? [];
      console.log(
        `${mode}${
          mode === "plain"
            ? ""
            : ` (${stagesOf(wires[mode] ?? PLAIN_WIRE, "T")
                .map((argv) => argv[0])
                .join(" | ")})`
        }: ` +
          `load average (1 min) ${Math.min(...modeLoads).toFixed(1)}–${Math.max(...modeLoads).toFixed(1)} during these runs`,
      );
      if (mode !== "plain")
        console.log(
          `  raw pipe: ${stagesOf(wires[mode] ?? PLAIN_WIRE, "T")
            .slice(1, -1)
            .map(shellJoin)
            .join(" | ")} between send and receive`,
        );
      console.log(line(`${mode} raw`));
      console.log(line(`${mode} abgleich`));
      const ratio = median(walls(`${mode} raw`)) / median(walls(`${mode} abgleich`));
      const total = sum(walls(`${mode} raw`)) / sum(walls(`${mode} abgleich`));
      console.log(
        `  throughput ratio abgleich/raw: ${ratio.toFixed(3)} (medians), ${total.toFixed(3)} (totals); target >= 0.97: ${ratio >= 0.97 ? "met" : "NOT met"}`,
      );
      // wall time swings with whatever else the machine runs; CPU time of the processes does not
      console.log(
        `  CPU ratio raw/abgleich (all processes of the transfer, this one included): ${(sum(cpus(`${mode} raw`)) / sum(cpus(`${mode} abgleich`))).toFixed(3)}`,
      );
    }
    console.log(
      `progress callbacks during abgleich runs: ${progress.lines} (zfs prints a line per second, plus one at the end of each run)`,
    );
    console.log(`plain pipe for scale (head -c | cat): ${rate(pipeSeconds.wall).toFixed(0)} MiB/s`);
    const rssAfter = peakRssBytes();
    const moved = size * (rounds + 1) * 2 * modes.length;
    console.log(
      `peak RSS of this process: ${(rssBefore / MiB).toFixed(0)} MiB before the transfers, ${(rssAfter / MiB).toFixed(0)} MiB after ` +
        `(${((rssAfter - rssBefore) / MiB).toFixed(1)} MiB more while moving ${(moved / MiB).toFixed(0)} MiB)`,
    );
  } finally {
    process.env.PATH = savedPath;
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
