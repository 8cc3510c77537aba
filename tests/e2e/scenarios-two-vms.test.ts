// The compiled abgleich against real OpenZFS 2.1.11 in TWO VMs: source and target on different
// machines, every stream relayed through this one (remote → remote). The last test kills the
// target VM mid-transfer, so it stays last.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readText } from "../helpers/stdout.ts";
import {
  BOOT_TIMEOUT_MS,
  E2eEnv,
  guidsOf,
  jsonEvents,
  listTree,
  mountBackups,
  plannedSnapshots,
  planOf,
  sha256,
  shellJoin,
  shellQuote,
  snapshotsOf,
  transfers,
  writeFile,
} from "./helpers.ts";
import { bootVm, createPools, stopAllVms, type Vm } from "./vm.ts";

const SCENARIO_MS = 360_000;
/** a space, and ZFS's other allowed odd characters */
const ODD = "a b:c.d-e";
const day = (n: number) => `202601010${n}`;

let source: Vm;
let target: Vm;
let env: E2eEnv;

beforeAll(async () => {
  [source, target] = await Promise.all([bootVm("scen-src"), bootVm("scen-dst")]);
  console.log(
    `[e2e] two VMs ready in ${source.bootSeconds.toFixed(1)} s and ${target.bootSeconds.toFixed(1)} s`,
  );
  await Promise.all([
    createPools(source, [{ name: "srcpool" }]),
    createPools(target, [{ name: "dstpool" }]),
  ]);
  env = new E2eEnv([source, target]);
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await stopAllVms();
  env?.remove();
}, 30_000);

async function scenarioConfig(prefix: string, extra = ""): Promise<string> {
  await target.sshOk(shellJoin(["zfs", "create", "-p", `dstpool/${prefix}`]));
  return env.writeConfig(
    prefix,
    { zpool: "srcpool", prefix: `${prefix}/data`, vm: source },
    { zpool: "dstpool", prefix: `${prefix}/backup`, vm: target },
    extra,
  );
}

async function expectSameSnapshots(src: string, dst: string, names: string[]): Promise<void> {
  expect(await snapshotsOf(target, dst)).toEqual(names);
  const [srcGuids, dstGuids] = await Promise.all([guidsOf(source, src), guidsOf(target, dst)]);
  for (const name of names) expect(dstGuids.get(name)).toBe(srcGuids.get(name) ?? "missing");
}

describe("two VMs, relayed through this machine", () => {
  test(
    "nested tree with odd names and a volume: full, then incremental, bytes intact",
    async () => {
      const src = "srcpool/a/data";
      const odd = `${src}/${ODD}`;
      await source.sshOk(
        [
          shellJoin(["zfs", "create", "-p", `${odd}/in ${ODD}`]),
          shellJoin(["zfs", "create", "-V", "4M", `${src}/vol`]),
          `head -c 200000 /dev/urandom > ${shellQuote(`/${odd}/f g`)}`,
          `head -c 200000 /dev/urandom > ${shellQuote(`/${odd}/in ${ODD}/$x;y`)}`,
          "zpool sync",
        ].join(" && "),
      );
      const config = await scenarioConfig("a");
      const snap = await env.cli(["snap", config, "--yes", "--json"]);
      expect(snap.code).toBe(0);
      const s1 = plannedSnapshots(planOf(snap.stdout))[0]?.name ?? "";
      const full = await env.cli(["backup", config, "--yes", "--json"]);
      expect(full.code).toBe(0);
      expect(transfers(planOf(full.stdout)).map(([sub, mode]) => [sub, mode])).toEqual([
        ["", "full"],
        [ODD, "full"],
        [`${ODD}/in ${ODD}`, "full"],
        ["vol", "full"],
      ]);
      const dst = "dstpool/a/backup";
      const tree = await listTree(target, dst);
      expect([...tree.keys()].filter((n) => !n.includes("@"))).toEqual([
        dst,
        `${dst}/${ODD}`,
        `${dst}/${ODD}/in ${ODD}`,
        `${dst}/vol`,
      ]);
      for (const sub of ["", `/${ODD}`, `/${ODD}/in ${ODD}`, "/vol"])
        await expectSameSnapshots(`${src}${sub}`, `${dst}${sub}`, [s1]);

      await writeFile(source, `/${odd}/in ${ODD}/$x;y`, 50_000);
      const second = await env.cli(["snap", config, "--yes", "--json"]);
      const s2 = plannedSnapshots(planOf(second.stdout))[0]?.name ?? "";
      const incremental = await env.cli(["backup", config, "--yes", "--json"]);
      expect(incremental.code).toBe(0);
      expect(transfers(planOf(incremental.stdout))).toEqual([
        [`${ODD}/in ${ODD}`, "incremental", s1, s2],
      ]);
      await expectSameSnapshots(`${odd}/in ${ODD}`, `${dst}/${ODD}/in ${ODD}`, [s1, s2]);

      await mountBackups(target, dst);
      const files = [`${ODD}/f g`, `${ODD}/in ${ODD}/$x;y`];
      expect(
        await sha256(
          target,
          files.map((f) => `/${dst}/${f}`),
        ),
      ).toEqual(
        await sha256(
          source,
          files.map((f) => `/${src}/${f}`),
        ),
      );
    },
    SCENARIO_MS,
  );

  test(
    "the target VM dies mid-transfer: clear error, exit 1, the source untouched",
    async () => {
      const src = "srcpool/z/data";
      await source.sshOk(
        [
          shellJoin(["zfs", "create", "-p", `${src}/child`]),
          `head -c 200000000 /dev/urandom > /${src}/f`,
          `head -c 100000 /dev/urandom > /${src}/child/f`,
          "zpool sync",
          shellJoin(["zfs", "snapshot", "-r", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      // far more than the pipeline can hold, unbuffered and uncompressed: still flowing when
      // the target dies
      const config = await scenarioConfig("z", "transfer:\n  buffer: off\n  compression: off\n");
      const columns = "name,guid,written,referenced,userrefs";
      const listSource = () =>
        source.sshOk(shellJoin(["zfs", "list", "-t", "all", "-Hp", "-o", columns, "-r", src]));
      const before = await listSource();

      const child = env.spawn(["backup", config, "--yes", "--json"]);
      const out = readText(child.stdout);
      await out.until('"event":"progress"');
      // pull the plug: the target's qemu, by the pid in its own folder
      const pid = Number(readFileSync(join(target.dir, "qemu.pid"), "utf8").trim());
      expect(readFileSync(`/proc/${pid}/comm`, "utf8")).toStartWith("qemu");
      process.kill(pid, "SIGKILL");
      const stdout = await out.rest();
      const stderr = await new Response(child.stderr).text();
      expect(await child.exited).toBe(1);
      expect(stderr).not.toContain("panic");
      const done = jsonEvents(stdout).filter((e) => e.event === "action-done");
      // the transfer names the receive that lost its host; the child never started, nor did
      // the chain's protection (nothing of the tree arrived)
      expect(done.map((e) => [e.kind, e.ok])).toEqual([
        ["send", false],
        ["send", false],
        ["chain", false],
      ]);
      // the first receive of a filesystem: canmount=noauto (quoted as the command line shows it)
      expect(String(done[0]?.error)).toContain(
        "zfs receive -s -u -o 'canmount=noauto' dstpool/z/backup",
      );
      expect(String(done[0]?.error)).toContain("exit code: 255");
      expect(String(done[1]?.error)).toContain("not run");
      expect(String(done[2]?.error)).toContain("not run");
      expect(jsonEvents(stdout).find((e) => e.event === "stage-done")?.status).toBe("failed");
      expect(await listSource()).toBe(before);

      // later runs say plainly that the target is gone, before planning anything
      const down = await env.cli(["compare", config]);
      expect(down.code).toBe(1);
      expect(down.stdout + down.stderr).toContain("host is not up: target");
    },
    SCENARIO_MS,
  );
});
