// abgleich side by side with syncoid on real OpenZFS: one qemu VM (tests/e2e/vm.ts) holds a
// source pool and a target pool; both tools reach both through ssh from this machine, so every
// stream goes VM → here → VM. One source tree of N filesystems, snapshotted by hand with one
// `zfs snapshot -r` per phase, is backed up by each tool into its own target root. Phases: full,
// incremental (every dataset changed, one new snapshot), no-op. Per run: wall time, ssh
// invocations (a logging `ssh` first on PATH), ssh connections (sshd's "Accepted" lines in the
// guest) and bytes on the VM's network interface. Needs root (image build, apt, qemu).
// Usage and what the figures mean: bench/README.md.

import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { E2eEnv, REPO } from "../tests/e2e/helpers.ts";
import {
  bootVm,
  createPools,
  findImage,
  shellJoin,
  shellQuote,
  stopAllVms,
  type Vm,
  vmZfsVersion,
} from "../tests/e2e/vm.ts";

const { values: opts } = parseArgs({
  options: {
    datasets: { type: "string", default: "100" },
    /** per dataset: incompressible bytes (urandom) and compressible text, in KiB */
    "random-kib": { type: "string", default: "1024" },
    "text-kib": { type: "string", default: "2048" },
    /** appended to every dataset before the incremental snapshot */
    "change-kib": { type: "string", default: "256" },
    zfs: { type: "string", default: "2.1" },
    /**
     * also time abgleich with `transfer.parallel: N` (a third tool, `abgleich-pN`, into its own
     * target root); 1 (the default) adds none
     */
    "abgleich-parallel": { type: "string", default: "1" },
    /** extra syncoid argument, repeatable (e.g. --syncoid-arg=--compress=none) */
    "syncoid-arg": { type: "string", multiple: true, default: [] },
    keep: { type: "boolean", default: false },
    /** only abgleich (to look into its own figures; no ratio then) */
    "no-syncoid": { type: "boolean", default: false },
    /** abgleich runs with --json, each run's events saved as DIR/TOOL-PHASE.jsonl */
    events: { type: "string" },
  },
});

function positiveInt(name: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`--${name} must be a positive integer, not ${JSON.stringify(text)}`);
  }
  return value;
}

const DATASETS = positiveInt("datasets", opts.datasets);
const RANDOM_KIB = positiveInt("random-kib", opts["random-kib"]);
const TEXT_KIB = positiveInt("text-kib", opts["text-kib"]);
const CHANGE_KIB = positiveInt("change-kib", opts["change-kib"]);
const SYNCOID_EXTRA = opts["syncoid-arg"] ?? [];
const PARALLEL = positiveInt("abgleich-parallel", opts["abgleich-parallel"]);
/** one tool run that does not end within this is killed and the benchmark fails */
const RUN_TIMEOUT_MS = 45 * 60_000;

const SOURCE = "srcpool/bench/data";
/** each tool's target root; `abgleich-pN` only with --abgleich-parallel N */
const TARGETS: Record<string, string> = {
  abgleich: "dstpool/abgleich/backup",
  ...(opts["no-syncoid"] ? {} : { syncoid: "dstpool/syncoid/backup" }),
  ...(PARALLEL > 1 ? { [`abgleich-p${PARALLEL}`]: `dstpool/abgleich-p${PARALLEL}/backup` } : {}),
};
type Tool = string;
const TOOLS: Tool[] = Object.keys(TARGETS);

/** the source tree's subnames: the root, then groups of up to ten children (g0/d0 … g0/d8, g1 …) */
function treeSubnames(count: number): string[] {
  const names = [""];
  for (let group = 0; names.length < count; group++) {
    names.push(`g${group}`);
    for (let child = 0; child < 9 && names.length < count; child++)
      names.push(`g${group}/d${child}`);
  }
  return names;
}

/** runs argv to its end; throws with its output when it fails */
function runHost(argv: string[], what: string): void {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) {
    throw new Error(
      `${what} failed (exit ${result.exitCode}): ${result.stderr.toString().trim() || result.stdout.toString().trim()}`,
    );
  }
}

/** syncoid is Debian's sanoid package; it pipes through lzop, mbuffer and pv on this machine */
function ensureSyncoid(): void {
  const missing = ["syncoid", "lzop", "mbuffer", "pv"].filter(
    (tool) => Bun.which(tool, { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" }) === null,
  );
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`missing ${missing.join(", ")}: apt-get install sanoid lzop mbuffer pv`);
  }
  console.log(`installing sanoid lzop mbuffer pv (missing: ${missing.join(", ")})`);
  const apt = ["apt-get", "-o", "DPkg::Lock::Timeout=120"];
  runHost([...apt, "update", "-q"], "apt-get update");
  runHost(
    [...apt, "install", "-y", "-q", "--no-install-recommends", "sanoid", "lzop", "mbuffer", "pv"],
    "apt-get install sanoid",
  );
}

/** the image for --zfs, built or reused (a cache hit takes a moment), unless ABGLEICH_VM_DIR */
function ensureImage(): string {
  if (process.env.ABGLEICH_VM_DIR) return process.env.ABGLEICH_VM_DIR;
  const built = Bun.spawnSync(
    ["bash", join(REPO, "scripts/vm/build-image.sh"), "--zfs", opts.zfs ?? "2.1", "--print-dir"],
    { stdout: "pipe", stderr: "inherit" },
  );
  if (built.exitCode !== 0) throw new Error(`build-image.sh failed (exit ${built.exitCode})`);
  return built.stdout.toString().trim();
}

/** an `ssh` that logs each invocation and adds the VMs' ssh_config when the caller gave none */
function writeSshWrapper(dir: string, sshConfig: string, log: string): string {
  mkdirSync(dir, { recursive: true });
  const wrapper = join(dir, "ssh");
  writeFileSync(
    wrapper,
    [
      "#!/bin/sh",
      `printf '%s\\n' "$*" >> ${shellQuote(log)}`,
      'case " $* " in *" -F "*) exec /usr/bin/ssh "$@" ;; esac',
      `exec /usr/bin/ssh -F ${shellQuote(sshConfig)} "$@"`,
      "",
    ].join("\n"),
  );
  chmodSync(wrapper, 0o755);
  return dir;
}

interface Counters {
  /** rx + tx bytes of the guest's interfaces other than lo */
  bytes: number;
  /** sshd's "Accepted publickey" lines so far: one per new ssh connection */
  accepted: number;
}

/**
 * Read in ONE ssh connection, which itself counts once in `accepted` and a few KiB in `bytes`.
 * Retried: on a loaded machine the guest's sshd can miss ssh's 5 s banner timeout.
 */
async function counters(vm: Vm, attempts = 4): Promise<Counters> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readCounters(vm);
    } catch (error) {
      if (attempt >= attempts) throw error;
      await Bun.sleep(2_000);
    }
  }
}

async function readCounters(vm: Vm): Promise<Counters> {
  const out = await vm.sshOk(
    [
      "b=0",
      'for i in /sys/class/net/*; do [ "$(basename "$i")" = lo ] && continue; b=$((b + $(cat $i/statistics/rx_bytes) + $(cat $i/statistics/tx_bytes))); done',
      'echo "$b $(journalctl -u ssh -o cat --no-pager | grep -c "Accepted publickey")"',
    ].join("; "),
  );
  const [bytes, accepted] = out.trim().split(" ").map(Number);
  if (!Number.isFinite(bytes) || !Number.isFinite(accepted)) {
    throw new Error(`unexpected counters from the guest: ${JSON.stringify(out)}`);
  }
  return { bytes: bytes ?? 0, accepted: accepted ?? 0 };
}

/** relative snapshot name (`g0/d1@bench1`) → guid below root */
async function snapshotGuids(vm: Vm, root: string): Promise<Map<string, string>> {
  const result = await vm.ssh(
    shellJoin(["zfs", "list", "-H", "-p", "-t", "snapshot", "-o", "name,guid", "-r", root]),
  );
  if (result.code !== 0) return new Map();
  return new Map(
    result.stdout
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => {
        const [name = "", guid = ""] = line.split("\t");
        return [name.slice(root.length), guid];
      }),
  );
}

/** both targets hold exactly the source's snapshots, with the same guids */
async function verifyTargets(vm: Vm, phase: string): Promise<number> {
  const source = await snapshotGuids(vm, SOURCE);
  for (const [tool, root] of Object.entries(TARGETS)) {
    const target = await snapshotGuids(vm, root);
    const wrong = [...source].filter(([name, guid]) => target.get(name) !== guid);
    const extra = [...target.keys()].filter((name) => !source.has(name));
    if (wrong.length > 0 || extra.length > 0) {
      throw new Error(
        `after ${phase}, ${tool}'s target ${root} differs from ${SOURCE}: missing or other guid ${wrong
          .slice(0, 5)
          .map(([name]) => name)
          .join(", ")}${wrong.length > 5 ? " …" : ""}; extra ${extra.slice(0, 5).join(", ")}`,
      );
    }
  }
  return source.size;
}

interface Row {
  tool: Tool;
  phase: string;
  seconds: number;
  sshInvocations: number;
  sshConnections: number;
  wireBytes: number;
}

async function main(): Promise<void> {
  if (!opts["no-syncoid"]) ensureSyncoid();
  process.env.ABGLEICH_VM_DIR = ensureImage();
  const image = findImage();
  const version = vmZfsVersion(image);
  const subnames = treeSubnames(DATASETS);
  const perDatasetMiB = (RANDOM_KIB + TEXT_KIB + CHANGE_KIB) / 1024;
  const srcMiB = Math.ceil(DATASETS * perDatasetMiB * 1.5) + 256;

  console.log(
    `OpenZFS ${version} (${image.dir}); ${DATASETS} filesystems x (${RANDOM_KIB} KiB random + ${TEXT_KIB} KiB text), +${CHANGE_KIB} KiB each for the incremental; load ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  const vm = await bootVm("bench", { memoryMiB: 3072 });
  let env: E2eEnv | undefined;
  try {
    console.log(`VM ready in ${vm.bootSeconds.toFixed(1)} s`);
    await createPools(vm, [
      { name: "srcpool", size: `${srcMiB}M` },
      { name: "dstpool", size: `${2 * srcMiB}M` },
    ]);
    const remoteTools = await vm.ssh("command -v lzop mbuffer pv");
    if (remoteTools.stdout.trim().split("\n").length !== 3) {
      throw new Error(
        `the image lacks lzop, mbuffer or pv (syncoid would silently skip them): rebuild it with scripts/vm/build-image.sh`,
      );
    }

    env = new E2eEnv([vm]);
    const log = join(env.dir, "ssh-invocations.log");
    const wrapDir = writeSshWrapper(join(env.dir, "wrap"), env.sshConfig, log);
    const alias = vm.sshConfig.alias;
    const config = env.writeConfig(
      "bench",
      { zpool: "srcpool", prefix: "bench/data", vm },
      { zpool: "dstpool", prefix: "abgleich/backup", vm },
    );
    const parallelConfig = env.writeConfig(
      "bench-parallel",
      { zpool: "srcpool", prefix: "bench/data", vm },
      { zpool: "dstpool", prefix: `abgleich-p${PARALLEL}/backup`, vm },
      `transfer:\n  parallel: ${PARALLEL}\n`,
    );

    // the source tree: every filesystem gets random and text files (text: ~4x with lzop)
    const started = performance.now();
    const mount = (sub: string) => `/${SOURCE}${sub ? `/${sub}` : ""}`;
    const create = subnames.map((sub) =>
      [
        shellJoin(["zfs", "create", "-p", `${SOURCE}${sub ? `/${sub}` : ""}`]),
        `head -c ${RANDOM_KIB}K /dev/urandom > ${shellQuote(`${mount(sub)}/random.bin`)}`,
        `seq -f ${shellQuote(`line %.0f of ${sub || "root"}: the quick brown fox jumps over the lazy dog`)} 1 ${Math.ceil((TEXT_KIB * 1024) / 50)} | head -c ${TEXT_KIB}K > ${shellQuote(`${mount(sub)}/text.txt`)}`,
      ].join("\n"),
    );
    await vm.sshOk(
      `sh -eu -c ${shellQuote(
        [
          ...create,
          ...Object.values(TARGETS).map(
            (root) => `zfs create -p ${root.slice(0, root.lastIndexOf("/"))}`,
          ),
          "zpool sync",
        ].join("\n"),
      )}`,
    );
    console.log(`source tree written in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    const changeAll = subnames.map((sub) =>
      [
        `head -c ${CHANGE_KIB}K /dev/urandom >> ${shellQuote(`${mount(sub)}/random.bin`)}`,
        `seq -f ${shellQuote(`changed line %.0f of ${sub || "root"}`)} 1 2000 >> ${shellQuote(`${mount(sub)}/text.txt`)}`,
      ].join("\n"),
    );

    // what the measuring itself costs (its connection, its bytes): subtracted from every run
    const idleA = await counters(vm);
    const idleB = await counters(vm);
    const base = { bytes: idleB.bytes - idleA.bytes, accepted: idleB.accepted - idleA.accepted };

    if (opts.events !== undefined) mkdirSync(opts.events, { recursive: true });
    const backup = (file: string) => [
      env?.binary ?? "",
      "backup",
      file,
      "--yes",
      ...(opts.events === undefined ? [] : ["--json"]),
    ];
    const runs: Record<Tool, () => string[]> = {
      abgleich: () => backup(config),
      [`abgleich-p${PARALLEL}`]: () => backup(parallelConfig),
      syncoid: () => [
        "syncoid",
        "-r",
        "--no-sync-snap",
        ...SYNCOID_EXTRA,
        `root@${alias}:${SOURCE}`,
        `root@${alias}:${TARGETS.syncoid}`,
      ],
    };

    async function measure(tool: Tool, phase: string): Promise<Row> {
      writeFileSync(log, "");
      const before = await counters(vm);
      const t0 = performance.now();
      const argv = runs[tool]?.();
      if (argv === undefined) throw new Error(`no command for ${tool}`);
      const child = Bun.spawn(argv, {
        cwd: env?.dir,
        env: {
          PATH: `${wrapDir}:/usr/sbin:/usr/bin:/sbin:/bin`,
          HOME: env?.dir ?? "/tmp",
          TZ: "UTC",
          // the benchmark's runs keep their state and locks with it, not in the machine's
          // /var/lib/abgleich and /run/lock/abgleich
          ...(env
            ? {
                ABGLEICH_STATE_DIR: join(env.dir, "state"),
                ABGLEICH_LOCK_DIR: join(env.dir, "locks"),
              }
            : {}),
        },
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
      const [stdout, stderr, code] = await Promise.all([
        new Response(child.stdout).text(),
        new Response(child.stderr).text(),
        child.exited,
      ]);
      clearTimeout(timer);
      const seconds = (performance.now() - t0) / 1000;
      const after = await counters(vm);
      if (code !== 0) {
        throw new Error(
          `${tool} ${phase} exited ${code}:\n${stderr.slice(-3000)}\n${stdout.slice(-2000)}`,
        );
      }
      if (opts.events !== undefined && tool !== "syncoid")
        writeFileSync(join(opts.events, `${tool}-${phase}.jsonl`), stdout);
      const row: Row = {
        tool,
        phase,
        seconds,
        sshInvocations: readFileSync(log, "utf8").split("\n").filter(Boolean).length,
        sshConnections: after.accepted - before.accepted - base.accepted,
        wireBytes: Math.max(0, after.bytes - before.bytes - base.bytes),
      };
      console.log(
        `  ${tool} ${phase}: ${seconds.toFixed(1)} s, ${row.sshInvocations} ssh invocations, ${row.sshConnections} connections, ${(row.wireBytes / 1e6).toFixed(1)} MB`,
      );
      return row;
    }

    const rows: Row[] = [];
    const phases: { name: string; prepare: string | null }[] = [
      { name: "full", prepare: `zfs snapshot -r ${SOURCE}@bench1` },
      {
        name: "incremental",
        prepare: `sh -eu -c ${shellQuote([...changeAll, "zpool sync", `zfs snapshot -r ${SOURCE}@bench2`].join("\n"))}`,
      },
      { name: "no-op", prepare: null },
    ];
    for (const [index, phase] of phases.entries()) {
      if (phase.prepare) await vm.sshOk(phase.prepare);
      // take turns going first: a later one reads a source an earlier one has just warmed
      const order: Tool[] = TOOLS.map((_, i) => TOOLS[(i + index) % TOOLS.length] as Tool);
      console.log(`${phase.name} (in turn: ${order.join(", ")}):`);
      for (const tool of order) rows.push(await measure(tool, phase.name));
      const snapshots = await verifyTargets(vm, phase.name);
      console.log(`  both targets hold the source's ${snapshots} snapshots (same guids)`);
    }
    printTable(rows);
    console.log(
      `measuring overhead subtracted per run: ${base.accepted} connection, ${(base.bytes / 1e3).toFixed(1)} kB; load ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}`,
    );
  } finally {
    if (!opts.keep) {
      await stopAllVms();
      env?.remove();
    } else {
      // the VM is this process's: it stops when the process ends (tests/e2e/vm.ts)
      console.log(`kept: VM ${vm.dir}, files ${env?.dir}; Ctrl-C (SIGINT) stops the VM`);
      await new Promise<never>(() => setInterval(() => {}, 60_000));
    }
  }
}

function printTable(rows: Row[]): void {
  const header = [
    "tool",
    "phase",
    "seconds",
    "abgleich/syncoid",
    "ssh cmds",
    "ssh conns",
    "MB wire",
  ];
  const lines = rows
    .slice()
    .sort((a, b) => a.phase.localeCompare(b.phase) || a.tool.localeCompare(b.tool))
    .map((row) => {
      const other = rows.find((r) => r.phase === row.phase && r.tool === "syncoid");
      const ratio = row.tool !== "syncoid" && other ? (row.seconds / other.seconds).toFixed(2) : "";
      return [
        row.tool,
        row.phase,
        row.seconds.toFixed(1),
        ratio,
        String(row.sshInvocations),
        String(row.sshConnections),
        (row.wireBytes / 1e6).toFixed(1),
      ];
    });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
  const fmt = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  console.log("");
  console.log(fmt(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const line of lines) console.log(fmt(line));
}

await main();
