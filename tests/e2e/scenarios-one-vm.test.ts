// The compiled abgleich against real OpenZFS 2.1.11, source and target pools in ONE VM (every
// stream still goes VM → this machine → VM over ssh: the target names the VM by a second name,
// but for the one scenario where both sides name it alike and the stream stays there). Each scenario has its own prefix in the
// shared pools, so one boot serves them all; each asserts `zfs list` on both sides.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readText } from "../helpers/stdout.ts";
import {
  BOOT_TIMEOUT_MS,
  canmountOf,
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

/** several CLI runs of ~3–7 s each under TCG, plus setup over ssh; 50–75 s idle, 150 s and more
 * on a slow day of this shared machine: the limit catches a hang, not a slow run */
const SCENARIO_MS = 360_000;
const ODD = "a b:c.d-e";
/** dated like abgleich's own snapshots (digits 2, no suffix), so cleanup recognises them */
const day = (n: number) => `202601010${n}`;

let vm: Vm;
let env: E2eEnv;

beforeAll(async () => {
  vm = await bootVm("scen-one");
  console.log(`[e2e] scen-one ready in ${vm.bootSeconds.toFixed(1)} s`);
  await createPools(vm, [
    { name: "srcpool" },
    { name: "dstpool" },
    // the smallest pool zpool allows: ~25 MB usable, filled further by the scenario
    { name: "tinypool", size: "64M", options: ["-O", "compression=off"] },
  ]);
  env = new E2eEnv([vm]);
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await stopAllVms();
  env?.remove();
}, 30_000);

/** srcpool/PREFIX/data → dstpool/PREFIX/backup (dstpool/PREFIX is created here) */
async function scenarioConfig(prefix: string, extra = "", name = prefix): Promise<string> {
  await vm.sshOk(shellJoin(["zfs", "create", "-p", `dstpool/${prefix}`]));
  return env.writeConfig(
    name,
    { zpool: "srcpool", prefix: `${prefix}/data`, vm },
    { zpool: "dstpool", prefix: `${prefix}/backup`, vm },
    extra,
  );
}

/** the target holds exactly these snapshots, with the source's guids */
async function expectSameSnapshots(source: string, target: string, names: string[]) {
  expect(await snapshotsOf(vm, target)).toEqual(names);
  const [src, dst] = await Promise.all([guidsOf(vm, source), guidsOf(vm, target)]);
  for (const name of names) expect(dst.get(name)).toBe(src.get(name) ?? "missing on source");
}

describe("one VM", () => {
  test(
    "first backup of a nested tree with a volume and odd names, then an incremental",
    async () => {
      const src = "srcpool/a/data";
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "-p", `${src}/home/user`]),
          shellJoin(["zfs", "create", `${src}/${ODD}`]),
          shellJoin(["zfs", "create", "-V", "8M", `${src}/vol`]),
          `head -c 262144 /dev/urandom > ${shellQuote(`/${src}/home/user/f`)}`,
          `head -c 131072 /dev/urandom > ${shellQuote(`/${src}/${ODD}/f g`)}`,
          "udevadm settle",
          `head -c 524288 /dev/urandom | dd of=${shellQuote(`/dev/zvol/${src}/vol`)} bs=64k status=none`,
          "zpool sync",
        ].join(" && "),
      );
      const config = await scenarioConfig("a");

      const snap = await env.cli(["snap", config, "--yes", "--json"]);
      expect(snap.code).toBe(0);
      const first = plannedSnapshots(planOf(snap.stdout)).map((s) => s.subname);
      expect(first.sort()).toEqual(["", "home", "home/user", ODD, "vol"].sort());
      const s1 = (await snapshotsOf(vm, `${src}/home/user`))[0] ?? "";
      expect(s1).toMatch(/^\d{10}$/);

      const backup = await env.cli(["backup", config, "--yes"]);
      expect(backup.code).toBe(0);
      expect(backup.stdout).toContain("backup: ok");
      const dst = "dstpool/a/backup";
      const tree = await listTree(vm, dst);
      expect([...tree.keys()].filter((n) => !n.includes("@")).sort()).toEqual(
        [dst, `${dst}/${ODD}`, `${dst}/home`, `${dst}/home/user`, `${dst}/vol`].sort(),
      );
      expect(tree.get(`${dst}/vol`)?.type).toBe("volume");
      for (const sub of ["", "/home", "/home/user", `/${ODD}`, "/vol"])
        await expectSameSnapshots(`${src}${sub}`, `${dst}${sub}`, [s1]);
      // not mounted at boot: each filesystem's first receive set canmount=noauto
      const filesystems = [dst, `${dst}/${ODD}`, `${dst}/home`, `${dst}/home/user`];
      expect(await canmountOf(vm, dst)).toEqual(
        new Map<string, string>([
          ...filesystems.map((name): [string, string] => [name, "noauto"]),
          [`${dst}/vol`, "-"],
        ]),
      );

      // new data in one dataset only: one new snapshot, one incremental
      await writeFile(vm, `/${src}/home/user/f2`, 100_000);
      const second = await env.cli(["snap", config, "--yes", "--json"]);
      expect(second.code).toBe(0);
      const snapped = plannedSnapshots(planOf(second.stdout));
      expect(snapped.map((s) => s.subname)).toEqual(["home/user"]);
      const s2 = snapped[0]?.name ?? "";
      const incremental = await env.cli(["backup", config, "--yes", "--json"]);
      expect(incremental.code).toBe(0);
      expect(transfers(planOf(incremental.stdout))).toEqual([["home/user", "incremental", s1, s2]]);
      await expectSameSnapshots(`${src}/home/user`, `${dst}/home/user`, [s1, s2]);

      const again = await env.cli(["backup", config, "--yes"]);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain("Nothing to do.");

      // the bytes arrived: checksums of the files on both sides (mount -a mounts none of them)
      expect((await mountBackups(vm, dst)).sort()).toEqual(filesystems.sort());
      const files = ["home/user/f", "home/user/f2", `${ODD}/f g`];
      expect(
        await sha256(
          vm,
          files.map((f) => `/${dst}/${f}`),
        ),
      ).toEqual(
        await sha256(
          vm,
          files.map((f) => `/${src}/${f}`),
        ),
      );
    },
    SCENARIO_MS,
  );

  test(
    "snap: unchanged (written 0), small change (zfs diff), large change (threshold), unmounted",
    async () => {
      const src = "srcpool/b/data";
      const kids = ["same", "small", "large", "unmounted"];
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "-p", src]),
          ...kids.map((k) => shellJoin(["zfs", "create", `${src}/${k}`])),
          ...kids.map((k) => `head -c 65536 /dev/urandom > /${src}/${k}/base`),
          "zpool sync",
          shellJoin(["zfs", "snapshot", "-r", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      await writeFile(vm, `/${src}/small/note`, 2_000);
      await writeFile(vm, `/${src}/large/blob`, 2 * 1024 * 1024);
      await writeFile(vm, `/${src}/unmounted/note`, 2_000);
      await vm.sshOk(shellJoin(["zfs", "unmount", `${src}/unmounted`]));
      const config = await scenarioConfig("b");

      const run = await env.cli(["snap", config, "--yes", "--json"]);
      expect(run.code).toBe(0);
      const plan = planOf(run.stdout);
      const snapped = plannedSnapshots(plan);
      expect(snapped.map((s) => s.subname).sort()).toEqual(["large", "small", "unmounted"]);
      expect(snapped.find((s) => s.subname === "large")?.written).toBeGreaterThan(2_000_000);
      expect(plan.skipped.find((s) => s.subname === "same")?.reason).toContain("nothing written");
      const name = snapped[0]?.name ?? "";
      for (const k of kids) {
        const expected = k === "same" ? [day(1)] : [day(1), name];
        expect(await snapshotsOf(vm, `${src}/${k}`)).toEqual(expected);
      }

      // everything was just snapshotted: a second snap finds nothing written
      const again = await env.cli(["snap", config, "--yes"]);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain("Nothing to do.");
    },
    SCENARIO_MS,
  );

  test(
    "cleanup source with keep_snapshots 2 then 1; cleanup target with keep_backlog 1",
    async () => {
      const src = "srcpool/c/data";
      const dst = "dstpool/c/backup";
      const steps = [shellJoin(["zfs", "create", "-p", `${src}/child`])];
      for (const n of [1, 2, 3, 4]) {
        steps.push(`head -c 65536 /dev/urandom > /${src}/child/f${n}`, "zpool sync");
        steps.push(shellJoin(["zfs", "snapshot", "-r", `${src}@${day(n)}`]));
      }
      await vm.sshOk(steps.join(" && "));
      const keep2 = await scenarioConfig("c", "keep_snapshots: 2\nkeep_backlog: 1\n", "c-keep2");
      const keep1 = await scenarioConfig("c", "keep_snapshots: 1\nkeep_backlog: 1\n", "c-keep1");
      expect((await env.cli(["backup", keep2, "--yes"])).code).toBe(0);
      // a source-only snapshot: never destroyed by cleanup source
      await vm.sshOk(shellJoin(["zfs", "snapshot", "-r", `${src}@${day(5)}`]));

      const first = await env.cli(["cleanup", keep2, "--yes"]);
      expect(first.code).toBe(0);
      for (const ds of [src, `${src}/child`])
        expect(await snapshotsOf(vm, ds)).toEqual([day(3), day(4), day(5)]);
      const second = await env.cli(["cleanup", keep1, "source", "--yes"]);
      expect(second.code).toBe(0);
      for (const ds of [src, `${src}/child`])
        expect(await snapshotsOf(vm, ds)).toEqual([day(4), day(5)]);
      const all = [1, 2, 3, 4].map(day);
      for (const ds of [dst, `${dst}/child`]) expect(await snapshotsOf(vm, ds)).toEqual(all);

      // target: --yes alone is refused, the explicit danger flag goes on
      const refused = await env.cli(["cleanup", keep1, "target", "--yes"]);
      expect(refused.code).toBe(1);
      expect(refused.stdout + refused.stderr).toContain("--yes-destroy-target");
      for (const ds of [dst, `${dst}/child`]) expect(await snapshotsOf(vm, ds)).toEqual(all);
      const target = await env.cli(["cleanup", keep1, "target", "--yes", "--yes-destroy-target"]);
      expect(target.code).toBe(0);
      for (const ds of [dst, `${dst}/child`])
        expect(await snapshotsOf(vm, ds)).toEqual([day(3), day(4)]);
      // the newest common snapshot survived on both sides, the same snapshot
      expect((await guidsOf(vm, `${dst}/child`)).get(day(4))).toBe(
        (await guidsOf(vm, `${src}/child`)).get(day(4)) ?? "missing",
      );
    },
    SCENARIO_MS,
  );

  test(
    "conflicts: modified, own newer snapshot, no common, same name other guid — no byte lost",
    async () => {
      const src = "srcpool/d/data";
      const dst = "dstpool/d/backup";
      const kids = ["clean", "modified", "ahead", "nocommon", "mismatch"];
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "-p", src]),
          ...kids.map((k) => shellJoin(["zfs", "create", `${src}/${k}`])),
          ...kids.map((k) => `head -c 65536 /dev/urandom > /${src}/${k}/f`),
          "zpool sync",
          shellJoin(["zfs", "snapshot", "-r", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      const config = await scenarioConfig("d");
      expect((await env.cli(["backup", config, "--yes"])).code).toBe(0);
      await vm.sshOk(
        [
          ...kids.map((k) => `head -c 32768 /dev/urandom >> /${src}/${k}/f`),
          "zpool sync",
          ...kids.map((k) => shellJoin(["zfs", "snapshot", `${src}/${k}@${day(2)}`])),
          // the targets diverge, each in its own way
          shellJoin(["zfs", "mount", `${dst}/modified`]),
          `head -c 16384 /dev/urandom > /${dst}/modified/local`,
          "zpool sync",
          shellJoin(["zfs", "snapshot", `${dst}/ahead@${day(3)}`]),
          // abgleich holds the chain's base: released first, as a user would have to
          shellJoin(["zfs", "release", "abgleich", `${dst}/nocommon@${day(1)}`]),
          shellJoin(["zfs", "destroy", `${dst}/nocommon@${day(1)}`]),
          shellJoin(["zfs", "snapshot", `${dst}/nocommon@other`]),
          shellJoin(["zfs", "snapshot", `${dst}/mismatch@${day(2)}`]),
        ].join(" && "),
      );
      const columns = ["name", "guid", "written", "referenced"];
      const before = await vm.sshOk(
        shellJoin(["zfs", "list", "-t", "all", "-Hp", "-o", columns.join(","), "-r", dst]),
      );
      const [localSum] = await sha256(vm, [`/${dst}/modified/local`]);

      const run = await env.cli(["backup", config, "--yes", "--json"]);
      expect(run.code).toBe(1);
      const plan = planOf(run.stdout);
      const kinds = new Map<string, string[]>();
      for (const c of plan.conflicts)
        kinds.set(c.subname, [...(kinds.get(c.subname) ?? []), c.kind]);
      expect(kinds.get("modified")).toContain("target-modified");
      expect(kinds.get("ahead")).toContain("target-ahead");
      expect(kinds.get("nocommon")).toContain("no-common");
      expect(kinds.get("mismatch")).toContain("guid-mismatch");
      expect(kinds.has("clean")).toBe(false);
      expect(transfers(plan).map(([subname]) => subname)).toEqual(["clean"]);
      await expectSameSnapshots(`${src}/clean`, `${dst}/clean`, [day(1), day(2)]);

      const after = await vm.sshOk(
        shellJoin(["zfs", "list", "-t", "all", "-Hp", "-o", columns.join(","), "-r", dst]),
      );
      const unchanged = (text: string) =>
        text
          .split("\n")
          .filter(
            (line) =>
              line !== "" && !line.startsWith(`${dst}/clean`) && !line.startsWith(`${dst}\t`),
          );
      expect(unchanged(after)).toEqual(unchanged(before));
      expect(await sha256(vm, [`/${dst}/modified/local`])).toEqual([localSum ?? ""]);

      const text = await env.cli(["backup", config, "--yes"]);
      expect(text.code).toBe(1);
      for (const [k, kind] of [
        ["modified", "target-modified"],
        ["ahead", "target-ahead"],
        ["nocommon", "no-common"],
        ["mismatch", "guid-mismatch"],
      ])
        expect(text.stdout + text.stderr).toContain(`${kind}: ${dst}/${k}`);
    },
    SCENARIO_MS,
  );

  test(
    "a target pool too small: out of space, grown with zpool online -e, then resumed",
    async () => {
      const src = "srcpool/e/data";
      // fill the tiny pool inside the VM so only a few MB are left for the transfer
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "tinypool/filler"]),
          "head -c 18000000 /dev/urandom > /tinypool/filler/f",
          shellJoin(["zfs", "create", "-p", "-o", "compression=off", src]),
          `head -c 8000000 /dev/urandom > /${src}/f`,
          "zpool sync",
          shellJoin(["zfs", "snapshot", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      const avail = Number(await vm.sshOk("zfs get -Hp -o value available tinypool"));
      expect(avail).toBeLessThan(8_000_000);
      const config = env.writeConfig(
        "e",
        { zpool: "srcpool", prefix: "e/data", vm },
        { zpool: "tinypool", prefix: "backup", vm },
      );

      const full = await env.cli(["backup", config, "--yes"]);
      expect(full.code).toBe(1);
      expect(full.stdout + full.stderr).toContain("out of space");
      expect(full.stdout + full.stderr).toContain("zfs receive");
      const partial = (await listTree(vm, "tinypool/backup")).get("tinypool/backup");
      expect(partial?.receive_resume_token).toMatch(/^1-/);
      expect(await snapshotsOf(vm, "tinypool/backup")).toEqual([]);

      await vm.sshOk(
        "truncate -s 128M /var/tmp/tinypool.img && zpool online -e tinypool /var/tmp/tinypool.img",
      );
      const resumed = await env.cli(["backup", config, "--yes", "--json"]);
      expect(resumed.code).toBe(0);
      expect(transfers(planOf(resumed.stdout))).toEqual([["", "resume", null, day(1)]]);
      expect(
        (await listTree(vm, "tinypool/backup")).get("tinypool/backup")?.receive_resume_token,
      ).toBe("-");
      expect((await guidsOf(vm, "tinypool/backup")).get(day(1))).toBe(
        (await guidsOf(vm, src)).get(day(1)) ?? "missing",
      );
    },
    SCENARIO_MS,
  );

  test(
    "SIGINT after the first progress event, then the next backup resumes with zfs send -t",
    async () => {
      const src = "srcpool/f/data";
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "-p", src]),
          `head -c 200000000 /dev/urandom > /${src}/f`,
          "zpool sync",
          shellJoin(["zfs", "snapshot", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      // a stream far larger than what the pipeline can hold, unbuffered and uncompressed: the
      // cancel must find it still flowing (a 64 MiB mbuffer held a 12 MB stream whole)
      const config = await scenarioConfig("f", "transfer:\n  buffer: off\n  compression: off\n");
      const child = env.spawn(["backup", config, "--yes", "--json"]);
      const out = readText(child.stdout);
      await out.until('"event":"progress"');
      child.kill("SIGINT");
      const stdout = await out.rest();
      // cancelled by SIGINT: 130, after the after-hooks ran
      expect(await child.exited).toBe(130);
      expect(await new Response(child.stderr).text()).toContain("interrupted");
      expect(jsonEvents(stdout).find((e) => e.event === "stage-done")?.status).toBe("cancelled");
      const dst = "dstpool/f/backup";
      expect((await listTree(vm, dst)).get(dst)?.receive_resume_token).toMatch(/^1-/);

      const resumed = await env.cli(["backup", config, "--yes", "--json"]);
      expect(resumed.code).toBe(0);
      expect(transfers(planOf(resumed.stdout))).toEqual([["", "resume", null, day(1)]]);
      await expectSameSnapshots(src, dst, [day(1)]);
      expect((await listTree(vm, dst)).get(dst)?.receive_resume_token).toBe("-");
      await vm.sshOk(shellJoin(["zfs", "mount", dst]));
      expect(await sha256(vm, [`/${dst}/f`])).toEqual(await sha256(vm, [`/${src}/f`]));
    },
    SCENARIO_MS,
  );

  test(
    "source and target named alike: the stream stays on the VM; SIGINT stops it there, the next backup resumes",
    async () => {
      const src = "srcpool/o/data";
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "-p", `${src}/child`]),
          `head -c 40000000 /dev/urandom > /${src}/f`,
          `head -c 100000 /dev/urandom > /${src}/child/f`,
          "zpool sync",
          shellJoin(["zfs", "snapshot", "-r", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      await vm.sshOk(shellJoin(["zfs", "create", "-p", "dstpool/o"]));
      const config = env.writeConfig(
        "o",
        { zpool: "srcpool", prefix: "o/data", vm },
        { zpool: "dstpool", prefix: "o/backup", vm },
        // slowed down (pv on the VM), so Ctrl-C finds the stream still flowing
        "transfer:\n  buffer: off\n  bwlimit: 8M\n",
        { oneHost: true },
      );
      const child = env.spawn(["backup", config, "--yes", "--json"]);
      const out = readText(child.stdout);
      await out.until('"event":"progress"');
      child.kill("SIGINT");
      const stdout = await out.rest();
      expect(await child.exited).toBe(130);
      const note = jsonEvents(stdout).find((e) => e.event === "note")?.text;
      expect(String(note)).toStartWith(
        `wire: local pipe on ${vm.sshConfig.alias} (source and target are one host), limit 8 MiB/s`,
      );
      // the pipeline on the VM ended with the run: no send or receive left running there
      let left = "";
      for (let i = 0; i < 20; i++) {
        left = (await vm.ssh("pgrep -af 'zfs (send|receive)'")).stdout.trim();
        if (left === "") break;
        await Bun.sleep(500);
      }
      expect(left).toBe("");
      const dst = "dstpool/o/backup";
      expect((await listTree(vm, dst)).get(dst)?.receive_resume_token).toMatch(/^1-/);

      const resumed = await env.cli(["backup", config, "--yes", "--json"]);
      expect(resumed.code).toBe(0);
      expect(transfers(planOf(resumed.stdout))).toEqual([
        ["", "resume", null, day(1)],
        ["child", "full", null, day(1)],
      ]);
      await expectSameSnapshots(src, dst, [day(1)]);
      await expectSameSnapshots(`${src}/child`, `${dst}/child`, [day(1)]);
      // the resumed receive kept the canmount its cut first receive set
      expect(await canmountOf(vm, dst)).toEqual(
        new Map([
          [dst, "noauto"],
          [`${dst}/child`, "noauto"],
        ]),
      );
      await mountBackups(vm, dst);
      expect(await sha256(vm, [`/${dst}/f`, `/${dst}/child/f`])).toEqual(
        await sha256(vm, [`/${src}/f`, `/${src}/child/f`]),
      );
      // the pools are shared with the scenarios after this one: the chain's holds released,
      // everything of this one destroyed
      await vm.sshOk(
        [
          "zfs list -H -t snapshot -o name -r srcpool/o dstpool/o | xargs -r zfs holds -H |",
          'while IFS="$(printf \'\\t\')" read -r s t _; do zfs release "$t" "$s" || exit 1; done',
          "&& zfs destroy -r srcpool/o && zfs destroy -r dstpool/o",
        ].join(" "),
      );
    },
    SCENARIO_MS,
  );

  test(
    "two backups of one config a second apart: the second refuses naming the first, which completes",
    async () => {
      const src = "srcpool/g/data";
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "-p", src]),
          `head -c 16000000 /dev/urandom > /${src}/f`,
          "zpool sync",
          shellJoin(["zfs", "snapshot", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      const config = await scenarioConfig("g");
      const first = env.spawn(["backup", config, "--yes", "--json"]);
      await readText(first.stdout).until('"event":"action-start"');
      await Bun.sleep(1000);
      const second = await env.cli(["backup", config, "--yes"]);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(`in use by pid ${first.pid}`);
      expect(await first.exited).toBe(0);
      const dst = "dstpool/g/backup";
      await expectSameSnapshots(src, dst, [day(1)]);
      expect((await listTree(vm, dst)).get(dst)?.receive_resume_token).toBe("-");
    },
    SCENARIO_MS,
  );
});
