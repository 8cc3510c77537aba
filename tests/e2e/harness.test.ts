// The VM harness's own logic that needs no VM: stale-VM cleanup and `zfs list` parsing.

import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanStaleVms, parseZfsList } from "./vm.ts";

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
