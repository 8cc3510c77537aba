// The wire on real OpenZFS in two VMs: bytes on the target's NIC with compression on and off,
// a bandwidth limit honoured (at most 10 % above it), and direct mode (the source VM sends to the target VM
// itself, with a key generated here). Tools missing in the guest image skip with the reason.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { BOOT_TIMEOUT_MS, E2eEnv, guidsOf, jsonEvents, shellJoin } from "./helpers.ts";
import { bootVm, createPools, stopAllVms, type Vm } from "./vm.ts";

const SCENARIO_MS = 360_000;
const MiB = 1024 * 1024;

let source: Vm;
let target: Vm;
let env: E2eEnv;
/** tools present in both guests */
let tools = new Set<string>();

beforeAll(async () => {
  [source, target] = await Promise.all([bootVm("wire-src"), bootVm("wire-dst")]);
  await Promise.all([
    createPools(source, [{ name: "srcpool" }]),
    createPools(target, [{ name: "dstpool" }]),
  ]);
  env = new E2eEnv([source, target]);
  const probe =
    'for t in zstd lz4 mbuffer pv; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done';
  const [a, b] = await Promise.all([source.sshOk(probe), target.sshOk(probe)]);
  const there = (out: string) => new Set(out.split("\n").filter(Boolean));
  const onTarget = there(b);
  tools = new Set([...there(a)].filter((t) => onTarget.has(t)));
  console.log(`[e2e] wire tools in both guests: ${[...tools].join(" ") || "none"}`);
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await stopAllVms();
  env?.remove();
}, 30_000);

const missing = (...need: string[]) => need.filter((t) => !tools.has(t));

/** skip (with the reason printed) when the guest image lacks a tool */
function needs(...need: string[]): boolean {
  const gone = missing(...need);
  if (gone.length > 0)
    console.log(`[e2e] skipped: ${gone.join(", ")} missing in the guest image (rebuild it)`);
  return gone.length === 0;
}

/** bytes the target VM's NICs received so far */
async function rxBytes(vm: Vm): Promise<number> {
  const out = await vm.sshOk("cat /sys/class/net/*/statistics/rx_bytes");
  return out
    .split("\n")
    .filter(Boolean)
    .reduce((sum, n) => sum + Number(n), 0);
}

/** a dataset of compressible data (text repeated), `mib` MiB, stored uncompressed */
async function compressibleDataset(name: string, mib: number): Promise<void> {
  await source.sshOk(
    [
      shellJoin(["zfs", "create", "-p", "-o", "compression=off", name]),
      `yes 'abgleich wire test line, compressible' | head -c ${mib * MiB} > ${shellJoin([`/${name}/f`])}`,
      "zpool sync",
    ].join(" && "),
  );
}

async function backup(prefix: string, transfer: string) {
  await target.sshOk(shellJoin(["zfs", "create", "-p", `dstpool/${prefix}`]));
  const config = env.writeConfig(
    prefix,
    { zpool: "srcpool", prefix: `${prefix}/data`, vm: source },
    { zpool: "dstpool", prefix: `${prefix}/backup`, vm: target },
    `transfer:\n${transfer}`,
  );
  expect((await env.cli(["snap", config, "--yes"])).code).toBe(0);
  const before = await rxBytes(target);
  const started = performance.now();
  const run = await env.cli(["backup", config, "--yes", "--json"]);
  const seconds = (performance.now() - started) / 1000;
  const rx = (await rxBytes(target)) - before;
  const events = jsonEvents(run.stdout);
  const note = events.find((e) => e.event === "note")?.text;
  if (run.code !== 0) throw new Error(`backup failed:\n${run.stdout}\n${run.stderr}`);
  // the sends' own time (the run's also holds its queries, the chain action, ssh's start)
  const sendMs = events
    .filter((e) => e.event === "action-done" && e.kind === "send")
    .reduce((sum, e) => sum + Number(e.durationMs), 0);
  return { rx, seconds, sendSeconds: sendMs / 1000, note: String(note ?? "") };
}

describe("the wire on real OpenZFS", () => {
  test(
    "compression: fewer bytes reach the target with zstd than without",
    async () => {
      if (!needs("zstd")) return;
      await compressibleDataset("srcpool/off/data", 48);
      await compressibleDataset("srcpool/on/data", 48);
      const off = await backup("off", "  compression: off\n  buffer: off\n");
      const on = await backup("on", "  compression: zstd\n  buffer: off\n");
      console.log(
        `[e2e] 48 MiB compressible: ${(off.rx / MiB).toFixed(1)} MiB on the target's NIC uncompressed, ${(on.rx / MiB).toFixed(1)} MiB with zstd`,
      );
      expect(on.note).toStartWith("wire: zstd over ssh");
      expect(off.note).toStartWith("wire: uncompressed over ssh");
      expect(off.rx).toBeGreaterThan(40 * MiB);
      expect(on.rx).toBeLessThan(off.rx / 4);
      const [s, d] = await Promise.all([
        guidsOf(source, "srcpool/on/data"),
        guidsOf(target, "dstpool/on/backup"),
      ]);
      expect([...d.values()]).toEqual([...s.values()]);
    },
    SCENARIO_MS,
  );

  test(
    "a bandwidth limit is honoured: the send never more than 10 % above it, and not far below",
    async () => {
      if (!needs("pv") && !needs("mbuffer")) return;
      // incompressible, so the limit is on the stream's own bytes
      await source.sshOk(
        [
          shellJoin(["zfs", "create", "-p", "srcpool/limit/data"]),
          "head -c 16777216 /dev/urandom > /srcpool/limit/data/f",
          "zpool sync",
        ].join(" && "),
      );
      const limit = 2 * MiB;
      const run = await backup("limit", "  compression: off\n  buffer: off\n  bwlimit: 2M\n");
      const rate = run.rx / run.sendSeconds;
      console.log(
        `[e2e] bwlimit 2 MiB/s: ${(run.rx / MiB).toFixed(1)} MiB in ${run.sendSeconds.toFixed(1)} s of sending (${run.seconds.toFixed(1)} s the run) = ${(rate / MiB).toFixed(2)} MiB/s (${run.note})`,
      );
      expect(run.note).toContain("limit 2 MiB/s");
      // the send's time includes starting zfs send and the pipeline on an emulated CPU: the
      // rate can only come out lower than the stream's, never higher
      expect(rate).toBeLessThan(limit * 1.1);
      expect(rate).toBeGreaterThan(limit * 0.6);
    },
    SCENARIO_MS,
  );

  test(
    "direct: the source VM sends to the target VM itself, with its own key",
    async () => {
      // the VMs cannot reach each other (user networking): a reverse tunnel on this machine's
      // connection gives the source a port that leads to the target's sshd
      const key = "/root/.ssh/abgleich_direct";
      await source.sshOk(
        `mkdir -p /root/.ssh && rm -f ${key} ${key}.pub && ssh-keygen -q -t ed25519 -N '' -f ${key}`,
      );
      const pub = (await source.sshOk(`cat ${key}.pub`)).trim();
      await target.sshOk(
        `mkdir -p /root/.ssh && printf '%s\\n' ${shellJoin([pub])} >> /root/.ssh/authorized_keys`,
      );
      const tunnelPort = 2222;
      const tunnel = Bun.spawn(
        [
          ...source.sshArgv(),
          "-N",
          "-o",
          "ExitOnForwardFailure=yes",
          "-R",
          `${tunnelPort}:127.0.0.1:${target.sshConfig.port}`,
        ],
        { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
      );
      try {
        const alias = target.sshConfig.alias;
        // on the source, the target's name from the config leads through the tunnel
        await source.sshOk(
          `printf '%s\\n' ${shellJoin([
            `Host ${alias}`,
            "  HostName 127.0.0.1",
            `  Port ${tunnelPort}`,
            "  User root",
            `  IdentityFile ${key}`,
            "  StrictHostKeyChecking accept-new",
          ])} >> /root/.ssh/config`,
        );
        for (let i = 0; i < 50; i++) {
          const probe = await source.ssh(shellJoin(["ssh", "-o", "BatchMode=yes", alias, "true"]));
          if (probe.code === 0) break;
          await Bun.sleep(200);
        }
        await compressibleDataset("srcpool/direct/data", 8);
        const zstd = tools.has("zstd") ? "  compression: zstd\n" : "";
        const run = await backup("direct", `${zstd}  direct: yes\n`);
        console.log(`[e2e] direct: ${run.note}`);
        expect(run.note).toContain(`direct from ${source.sshConfig.alias} to ${alias}`);
        const [s, d] = await Promise.all([
          guidsOf(source, "srcpool/direct/data"),
          guidsOf(target, "dstpool/direct/backup"),
        ]);
        expect([...d.values()]).toEqual([...s.values()]);
      } finally {
        tunnel.kill();
        await tunnel.exited;
      }
    },
    SCENARIO_MS,
  );
});
