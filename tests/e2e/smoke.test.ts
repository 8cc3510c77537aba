// Proves the VM harness against real OpenZFS (the image's series, 2.1 or 2.3): boot, pools, snapshots, and a
// send/receive between two VMs relayed through this machine (as abgleich will do it).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BOOT_TIMEOUT_MS } from "./helpers.ts";
import {
  bootVm,
  createPools,
  findImage,
  guestZfsVersion,
  shellJoin,
  stopAllVms,
  type Vm,
  vmZfsSeries,
  vmZfsVersion,
  writeSshConfig,
  zfsList,
} from "./vm.ts";

/** per test: each does a few ssh round trips under TCG; bun's default of 5 s is too short */
const TEST_TIMEOUT_MS = 120_000;

afterAll(stopAllVms);

/** rows keyed by name, for readable assertions */
function byName(rows: Record<string, string>[]): Map<string, Record<string, string>> {
  return new Map(rows.map((row) => [row.name ?? "", row]));
}

/** `sender | receiver`, both ssh commands run from this machine; returns both exit codes */
async function relay(
  from: Vm,
  sendCommand: string,
  to: Vm,
  receiveCommand: string,
): Promise<{ send: number; receive: number; stderr: string }> {
  const sender = Bun.spawn([...from.sshArgv(), "--", sendCommand], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const receiver = Bun.spawn([...to.sshArgv(), "--", receiveCommand], {
    stdin: sender.stdout,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [send, receive, sendErr, receiveErr] = await Promise.all([
    sender.exited,
    receiver.exited,
    new Response(sender.stderr).text(),
    new Response(receiver.stderr).text(),
  ]);
  return { send, receive, stderr: `${sendErr}${receiveErr}`.trim() };
}

describe("one VM", () => {
  let vm: Vm;

  beforeAll(async () => {
    vm = await bootVm("smoke-one");
    console.log(`[e2e] smoke-one ready in ${vm.bootSeconds.toFixed(1)} s`);
    await createPools(vm, [{ name: "srcpool" }]);
  }, BOOT_TIMEOUT_MS);
  // stop as soon as this block is done: the next one boots two more on the same 2 cores
  afterAll(() => vm?.stop());

  test(
    "runs the OpenZFS version the image manifest names, module and userland alike",
    async () => {
      const image = findImage();
      const expected = vmZfsVersion(image);
      expect(await guestZfsVersion(vm)).toBe(expected);
      // `zfs version` prints the userland line first, then the kernel module's
      const lines = (await vm.sshOk("zfs version")).trim().split("\n");
      expect(lines).toHaveLength(2);
      for (const line of lines) expect(line).toStartWith(`zfs-`);
      for (const line of lines) expect(line).toContain(expected);
      expect(expected.startsWith(`${vmZfsSeries(image)}.`)).toBe(true);
      if (image.manifest.openzfsSeries !== undefined) {
        expect(String(image.manifest.openzfsSeries)).toBe(vmZfsSeries(image));
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "has the tools the transfer paths call on a remote end",
    async () => {
      const tools = ["zstd", "lz4", "mbuffer", "pv", "lzop"];
      const found = await vm.sshOk(`for t in ${tools.join(" ")}; do command -v "$t"; done`);
      expect(
        found
          .trim()
          .split("\n")
          .map((path) => path.split("/").pop()),
      ).toEqual(tools);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "lists a dataset and its snapshots with string GUIDs",
    async () => {
      await vm.sshOk(
        [
          "zfs create srcpool/data",
          "head -c 1048576 /dev/urandom > /srcpool/data/blob",
          "zfs snapshot srcpool/data@s1",
          "echo more >> /srcpool/data/blob",
          "zfs snapshot srcpool/data@s2",
        ].join(" && "),
      );
      const rows = await zfsList(vm, "srcpool/data");
      expect(rows.map((row) => [row.name, row.type])).toEqual([
        ["srcpool/data", "filesystem"],
        ["srcpool/data@s1", "snapshot"],
        ["srcpool/data@s2", "snapshot"],
      ]);
      for (const row of rows) expect(row.guid).toMatch(/^[1-9][0-9]*$/);
      const [, s1, s2] = rows;
      expect(BigInt(s2?.createtxg ?? "0")).toBeGreaterThan(BigInt(s1?.createtxg ?? "0"));
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a local send | receive keeps snapshot GUIDs",
    async () => {
      // pipe through a shell in the VM; `zfs send > /dev/null` would fail on this kernel
      await vm.sshOk("zfs send -R srcpool/data@s2 | zfs receive -u srcpool/copy");
      const rows = byName(await zfsList(vm, "srcpool"));
      expect(rows.get("srcpool/copy@s1")?.guid).toBe(rows.get("srcpool/data@s1")?.guid);
      expect(rows.get("srcpool/copy@s2")?.guid).toBe(rows.get("srcpool/data@s2")?.guid);
      expect(rows.get("srcpool/copy")?.guid).not.toBe(rows.get("srcpool/data")?.guid);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "the generated ssh config works with a plain `ssh -F file alias`",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "abgleich-e2e-ssh-"));
      try {
        const file = join(dir, "ssh_config");
        writeSshConfig([vm], file);
        const child = Bun.spawn(["ssh", "-F", file, vm.sshConfig.alias, "--", "hostname"], {
          stdout: "pipe",
          stderr: "pipe",
        });
        expect(await child.exited).toBe(0);
        expect((await new Response(child.stdout).text()).trim()).toBe("abgleich-vm");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "the plain ssh options reach the VM without a config file",
    async () => {
      const { user, host, options } = vm.sshConfig;
      const child = Bun.spawn(
        ["ssh", ...options, "-o", "BatchMode=yes", `${user}@${host}`, "--", "id -u"],
        {
          stdout: "pipe",
          stderr: "pipe",
        },
      );
      expect(await child.exited).toBe(0);
      expect((await new Response(child.stdout).text()).trim()).toBe("0");
    },
    TEST_TIMEOUT_MS,
  );
});

describe("two VMs", () => {
  let source: Vm;
  let target: Vm;

  beforeAll(async () => {
    [source, target] = await Promise.all([bootVm("smoke-src"), bootVm("smoke-dst")]);
    console.log(
      `[e2e] two VMs ready in ${source.bootSeconds.toFixed(1)} s and ${target.bootSeconds.toFixed(1)} s`,
    );
    await Promise.all([
      createPools(source, [{ name: "srcpool" }]),
      createPools(target, [{ name: "dstpool" }]),
    ]);
  }, BOOT_TIMEOUT_MS);
  afterAll(() => Promise.all([source?.stop(), target?.stop()]));

  test(
    "two cold-booted VMs have different pool GUIDs",
    async () => {
      const [src] = await zfsList(source, "srcpool");
      const [dst] = await zfsList(target, "dstpool");
      expect(src?.guid).not.toBe(dst?.guid);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "full then incremental send relayed through this machine keeps snapshot GUIDs",
    async () => {
      await source.sshOk(
        [
          "zfs create srcpool/data",
          "head -c 2097152 /dev/urandom > /srcpool/data/blob",
          "zfs snapshot srcpool/data@s1",
        ].join(" && "),
      );
      const full = await relay(
        source,
        shellJoin(["zfs", "send", "srcpool/data@s1"]),
        target,
        shellJoin(["zfs", "receive", "-u", "dstpool/data"]),
      );
      expect(full).toEqual({ send: 0, receive: 0, stderr: "" });

      await source.sshOk("echo changed >> /srcpool/data/blob && zfs snapshot srcpool/data@s2");
      const incremental = await relay(
        source,
        shellJoin(["zfs", "send", "-i", "@s1", "srcpool/data@s2"]),
        target,
        shellJoin(["zfs", "receive", "-u", "dstpool/data"]),
      );
      expect(incremental).toEqual({ send: 0, receive: 0, stderr: "" });

      const src = byName(await zfsList(source, "srcpool/data"));
      const dst = byName(await zfsList(target, "dstpool/data"));
      expect([...dst.keys()]).toEqual(["dstpool/data", "dstpool/data@s1", "dstpool/data@s2"]);
      for (const snapshot of ["s1", "s2"]) {
        expect(dst.get(`dstpool/data@${snapshot}`)?.guid).toBe(
          src.get(`srcpool/data@${snapshot}`)?.guid,
        );
        // a received snapshot keeps the sender's creation time
        expect(dst.get(`dstpool/data@${snapshot}`)?.creation).toBe(
          src.get(`srcpool/data@${snapshot}`)?.creation,
        );
      }

      // the data arrived intact: compare the file's checksum at s2 on both sides
      await target.sshOk("zfs mount dstpool/data");
      const sum = async (vm: Vm, path: string) =>
        (await vm.sshOk(shellJoin(["sha256sum", path]))).split(" ")[0];
      expect(await sum(target, "/dstpool/data/blob")).toBe(await sum(source, "/srcpool/data/blob"));
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "an incremental send onto a target without the base snapshot fails",
    async () => {
      await source.sshOk(
        "zfs create srcpool/other && zfs snapshot srcpool/other@a && zfs snapshot srcpool/other@b",
      );
      const result = await relay(
        source,
        shellJoin(["zfs", "send", "-i", "@a", "srcpool/other@b"]),
        target,
        shellJoin(["zfs", "receive", "-u", "dstpool/other"]),
      );
      expect(result.receive).not.toBe(0);
      expect(result.stderr).toContain("dstpool/other");
    },
    TEST_TIMEOUT_MS,
  );
});
