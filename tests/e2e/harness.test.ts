// The VM harness's own logic that needs no VM: stale-VM cleanup, `zfs list` parsing and
// reading the image's OpenZFS version.

import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cleanStaleVms,
  findImage,
  parseZfsList,
  upstreamZfsVersion,
  type VmImage,
  vmZfsSeries,
  vmZfsVersion,
} from "./vm.ts";

describe("cleanStaleVms", () => {
  const made: string[] = [];
  const children: { kill(signal?: number | NodeJS.Signals): void }[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) child.kill("SIGKILL");
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  function runtimeWith(vms: Record<string, { owner?: number; qemuPid?: number }>): string {
    const runtime = mkdtempSync(join(tmpdir(), "abgleich-e2e-runtime-"));
    made.push(runtime);
    for (const [name, files] of Object.entries(vms)) {
      const dir = join(runtime, name);
      mkdirSync(dir);
      if (files.owner !== undefined) writeFileSync(join(dir, "owner.pid"), `${files.owner}\n`);
      if (files.qemuPid !== undefined) writeFileSync(join(dir, "qemu.pid"), `${files.qemuPid}\n`);
    }
    return runtime;
  }

  test("removes folders whose owner is gone and keeps those of live owners", () => {
    const deadOwner = 2 ** 22 + 12345; // above the default pid_max: never a live process
    const liveOwner = Bun.spawn(["sleep", "30"]);
    children.push(liveOwner);
    const runtime = runtimeWith({
      "stale-a": { owner: deadOwner },
      "live-b": { owner: liveOwner.pid },
      "no-owner-c": {},
    });
    const cleaned = cleanStaleVms(runtime).map((dir) => dir.slice(runtime.length + 1));
    expect(cleaned.sort()).toEqual(["no-owner-c", "stale-a"]);
    expect(existsSync(join(runtime, "live-b"))).toBe(true);
    expect(existsSync(join(runtime, "stale-a"))).toBe(false);
  });

  test("never kills a pidfile's process that is not qemu", async () => {
    const notQemu = Bun.spawn(["sleep", "30"]);
    children.push(notQemu);
    const runtime = runtimeWith({ stale: { owner: 2 ** 22 + 1, qemuPid: notQemu.pid } });
    cleanStaleVms(runtime);
    await Bun.sleep(100);
    expect(notQemu.exitCode).toBeNull();
    expect(existsSync(join(runtime, "stale"))).toBe(false);
  });
});

describe("parseZfsList", () => {
  test("keys each tab-separated row by column and keeps GUIDs as exact strings", () => {
    const output = "pool\tfilesystem\t18446744073709551615\npool@s1\tsnapshot\t9007199254740993\n";
    expect(parseZfsList(output, ["name", "type", "guid"])).toEqual([
      { name: "pool", type: "filesystem", guid: "18446744073709551615" },
      { name: "pool@s1", type: "snapshot", guid: "9007199254740993" },
    ]);
  });

  test("a row with the wrong number of fields is an error that shows the row", () => {
    expect(() => parseZfsList("pool\tfilesystem\n", ["name", "type", "guid"])).toThrow(
      "zfs list row has 2 fields, expected 3: pool\tfilesystem",
    );
  });
});

describe("the image's OpenZFS version", () => {
  const made: string[] = [];
  afterEach(() => {
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** an image folder as build-image.sh leaves it, with empty stand-ins for the big files */
  function imageWith(manifest: Record<string, unknown>): VmImage {
    const dir = mkdtempSync(join(tmpdir(), "abgleich-e2e-image-"));
    made.push(dir);
    for (const file of ["base.img", "vmlinuz", "initrd.img", "id_ed25519"]) {
      writeFileSync(join(dir, file), "");
    }
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
    return findImage(dir);
  }

  test("reads the upstream version out of module, package and `zfs version` spellings", () => {
    expect(upstreamZfsVersion("2.1.11-1+deb12u1")).toBe("2.1.11");
    expect(upstreamZfsVersion("2.3.2-2~bpo12+2\n")).toBe("2.3.2");
    expect(upstreamZfsVersion("zfs-kmod-2.3.2-2~bpo12+2")).toBe("2.3.2");
    expect(() => upstreamZfsVersion("unknown")).toThrow('not an OpenZFS version: "unknown"');
  });

  test("takes version and series from the manifest, also from one without a series field", () => {
    const backports = imageWith({ openzfs: "2.3.2-2~bpo12+2", openzfsSeries: "2.3" });
    expect(vmZfsVersion(backports)).toBe("2.3.2");
    expect(vmZfsSeries(backports)).toBe("2.3");
    const older = imageWith({ openzfs: "2.1.11-1+deb12u1" });
    expect(vmZfsVersion(older)).toBe("2.1.11");
    expect(vmZfsSeries(older)).toBe("2.1");
  });

  test("a series the builder does not make is an error naming it", () => {
    const image = imageWith({ openzfs: "2.2.7-1" });
    expect(() => vmZfsSeries(image)).toThrow("runs OpenZFS 2.2, not one of 2.1, 2.3");
  });
});
