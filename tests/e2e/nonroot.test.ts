// Without root on real OpenZFS: an unprivileged user with exactly the `zfs allow` permissions the
// README lists runs snap, backup (full, incremental, with holds and bookmarks), cleanup source
// and cleanup target; `status` reads the result. A permission taken away is a clear failure.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { BOOT_TIMEOUT_MS, canmountOf, E2eEnv, guidsOf, shellJoin, snapshotsOf } from "./helpers.ts";
import { bootVm, createPools, stopAllVms, type Vm } from "./vm.ts";

const SCENARIO_MS = 300_000;
const USER = "abg";
/** what the README's "Without root" section names, per side */
const SOURCE_PERMISSIONS = "snapshot,send,hold,release,bookmark,destroy,mount,diff";
const TARGET_PERMISSIONS = "create,receive,canmount,hold,release,destroy,mount";

let vm: Vm;
let env: E2eEnv;

beforeAll(async () => {
  vm = await bootVm("nonroot");
  console.log(`[e2e] nonroot ready in ${vm.bootSeconds.toFixed(1)} s`);
  await createPools(vm, [{ name: "srcpool" }, { name: "dstpool" }]);
  await vm.sshOk(
    [
      `useradd -m -s /bin/sh ${USER}`,
      `mkdir -p /home/${USER}/.ssh`,
      `cp /root/.ssh/authorized_keys /home/${USER}/.ssh/`,
      `chown -R ${USER}: /home/${USER}/.ssh`,
      `chmod 700 /home/${USER}/.ssh`,
      shellJoin(["zfs", "create", "-p", "srcpool/nr/data/child"]),
      shellJoin(["zfs", "create", "-p", "dstpool/nr"]),
      "head -c 1000000 /dev/urandom > /srcpool/nr/data/f",
      "head -c 1000000 /dev/urandom > /srcpool/nr/data/child/g",
      shellJoin(["zfs", "allow", "-u", USER, SOURCE_PERMISSIONS, "srcpool/nr"]),
      shellJoin(["zfs", "allow", "-u", USER, TARGET_PERMISSIONS, "dstpool/nr"]),
    ].join(" && "),
  );
  env = new E2eEnv([vm]);
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await stopAllVms();
  env?.remove();
}, 30_000);

describe("an unprivileged user with the documented zfs allow permissions", () => {
  test(
    "snap, backup, again, cleanup source and target, status: all as that user",
    async () => {
      const config = env.writeConfig(
        "nr",
        { zpool: "srcpool", prefix: "nr/data", vm, user: USER },
        { zpool: "dstpool", prefix: "nr/backup", vm, user: USER },
        "keep_snapshots: 1\nkeep_backlog: 0\n",
      );
      const whoami = await vm.ssh(`su ${USER} -c 'zfs list -H -o name srcpool/nr/data'`);
      expect(whoami.code).toBe(0);

      for (const round of [1, 2, 3]) {
        const snap = await env.cli(["snap", config, "--yes"]);
        expect(`${round} snap: ${snap.code} ${snap.stderr}`).toBe(`${round} snap: 0 `);
        const backup = await env.cli(["backup", config, "--yes"]);
        expect(`${round} backup: ${backup.code} ${backup.stderr}`).toBe(`${round} backup: 0 `);
        // a change for the next round's snap
        await vm.sshOk(`head -c 200000 /dev/urandom >> /srcpool/nr/data/f && zpool sync`);
      }
      const source = await snapshotsOf(vm, "srcpool/nr/data");
      expect(source.length).toBe(3);
      expect(await snapshotsOf(vm, "dstpool/nr/backup")).toEqual(source);
      expect(await snapshotsOf(vm, "dstpool/nr/backup/child")).toEqual(
        await snapshotsOf(vm, "srcpool/nr/data/child"),
      );
      const [src, dst] = await Promise.all([
        guidsOf(vm, "srcpool/nr/data"),
        guidsOf(vm, "dstpool/nr/backup"),
      ]);
      for (const name of source) expect(dst.get(name)).toBe(src.get(name) ?? "missing");
      // the canmount permission let each first receive keep its backup from mount -a
      expect(await canmountOf(vm, "dstpool/nr/backup")).toEqual(
        new Map([
          ["dstpool/nr/backup", "noauto"],
          ["dstpool/nr/backup/child", "noauto"],
        ]),
      );

      const cleanSource = await env.cli(["cleanup", config, "--yes"]);
      expect(`${cleanSource.code} ${cleanSource.stderr}`).toBe("0 ");
      const cleanTarget = await env.cli([
        "cleanup",
        config,
        "target",
        "--yes",
        "--yes-destroy-target",
      ]);
      expect(`${cleanTarget.code} ${cleanTarget.stderr}`).toBe("0 ");
      // the newest common snapshot stays on both sides, held; the older ones are gone
      const newest = source[source.length - 1] as string;
      expect(await snapshotsOf(vm, "srcpool/nr/data")).toEqual([newest]);
      expect(await snapshotsOf(vm, "dstpool/nr/backup")).toEqual([newest]);

      const status = await env.cli(["status", config]);
      expect(status.stdout.split("\n")[0]).toStartWith("ABGLEICH OK");
      expect(status.code).toBe(0);
    },
    SCENARIO_MS,
  );

  test(
    "without the hold permission on the target, backup fails naming the permission",
    async () => {
      await vm.sshOk(shellJoin(["zfs", "unallow", "-u", USER, "hold", "dstpool/nr"]));
      try {
        await vm.sshOk(`head -c 100000 /dev/urandom >> /srcpool/nr/data/f && zpool sync`);
        const config = env.writeConfig(
          "nr-nohold",
          { zpool: "srcpool", prefix: "nr/data", vm, user: USER },
          { zpool: "dstpool", prefix: "nr/backup", vm, user: USER },
        );
        expect((await env.cli(["snap", config, "--yes"])).code).toBe(0);
        const backup = await env.cli(["backup", config, "--yes"]);
        expect(backup.code).toBe(1);
        expect(`${backup.stdout}\n${backup.stderr}`).toContain("permission denied");
      } finally {
        await vm.sshOk(shellJoin(["zfs", "allow", "-u", USER, "hold", "dstpool/nr"]));
      }
    },
    SCENARIO_MS,
  );

  test(
    "without the canmount permission, a new dataset arrives (exit 0) and the warning names the fix",
    async () => {
      await vm.sshOk(shellJoin(["zfs", "unallow", "-u", USER, "canmount", "dstpool/nr"]));
      try {
        await vm.sshOk(
          `zfs create srcpool/nr/data/late && head -c 100000 /dev/urandom > /srcpool/nr/data/late/f && zpool sync`,
        );
        const config = env.writeConfig(
          "nr-nocanmount",
          { zpool: "srcpool", prefix: "nr/data", vm, user: USER },
          { zpool: "dstpool", prefix: "nr/backup", vm, user: USER },
        );
        expect((await env.cli(["snap", config, "--yes"])).code).toBe(0);
        const backup = await env.cli(["backup", config, "--yes"]);
        expect(backup.code).toBe(0);
        const text = `${backup.stdout}\n${backup.stderr}`;
        // real OpenZFS receives the stream, sets nothing, says so and exits 0
        expect(text).toContain(
          "dstpool/nr/backup/late arrived, but zfs receive said: cannot receive canmount property on dstpool/nr/backup/late: permission denied.",
        );
        expect(text).toContain(`zfs allow -u ${USER} canmount dstpool/nr/backup`);
        expect(await snapshotsOf(vm, "dstpool/nr/backup/late")).toEqual(
          await snapshotsOf(vm, "srcpool/nr/data/late"),
        );
        expect((await canmountOf(vm, "dstpool/nr/backup/late")).get("dstpool/nr/backup/late")).toBe(
          "on",
        );
      } finally {
        await vm.sshOk(shellJoin(["zfs", "allow", "-u", USER, "canmount", "dstpool/nr"]));
      }
    },
    SCENARIO_MS,
  );
});
