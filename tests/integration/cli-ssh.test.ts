// The full cycle through real ssh: source and target behind two different loopback sshd
// instances (reached by ssh config aliases), so every stream is relayed through this machine.
// Names with spaces and ZFS's other odd characters must arrive intact.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { configYaml, createSimEnv, jsonEvents, must, type SimEnv } from "../helpers/sim-env.ts";
import { type SshdHandle, startSshd } from "../helpers/sshd.ts";

const ODD = "a b:c.d-e";
const day = (n: number) => `202601010${n}`;
/** many CLI runs, each with ssh connections to two servers (a timeout catches a hang only) */
const LONG_MS = 90_000;

let env: SimEnv;
let sourceSshd: SshdHandle;
let targetSshd: SshdHandle;
let config: string;

beforeAll(async () => {
  env = createSimEnv();
  [sourceSshd, targetSshd] = await Promise.all([
    startSshd({ env: { PATH: env.path } }),
    startSshd({ env: { PATH: env.path } }),
  ]);
  const sshConfig = env.writeSshConfig([
    {
      alias: "source-box",
      port: sourceSshd.port,
      identityFile: join(sourceSshd.dir, "client_key"),
    },
    {
      alias: "target-box",
      port: targetSshd.port,
      identityFile: join(targetSshd.dir, "client_key"),
    },
  ]);
  config = env.writeConfig(
    configYaml(
      { zpool: "src", prefix: "data", host: "source-box" },
      { zpool: "dst", prefix: `back up`, host: "target-box" },
      `ssh:\n  config_file: ${JSON.stringify(sshConfig)}\n`,
    ),
  );
}, LONG_MS);

afterAll(async () => {
  await Promise.allSettled([sourceSshd?.stop(), targetSshd?.stop()]);
  env?.remove();
});

describe("remote → remote through two sshd", () => {
  test(
    "snap → backup → cleanup, then a second round: names intact, guids equal, incrementals only",
    async () => {
      env.seed({
        now: 1_767_225_600,
        pools: [
          {
            name: "src",
            size: "1G",
            datasets: [
              { name: "data", snapshots: [{ name: day(1), written: "1M" }] },
              { name: `data/${ODD}`, snapshots: [{ name: day(1), written: "2M" }], written: "2M" },
              { name: "data/plain", snapshots: [{ name: day(1), written: "1M" }] },
            ],
          },
          { name: "dst", size: "1G", datasets: [{ name: "back up" }] },
        ],
      });
      // the target root exists without snapshots: include_root must be off to use it as a container
      const cfg = env.writeConfig(
        `${await Bun.file(config).text()}include_root: no\n`,
        "noroot.yaml",
      );

      const snap = await env.cli(["snap", cfg, "--yes"]);
      expect(snap.stderr).toBe("");
      expect(snap.code).toBe(0);
      const today = must(env.snapshots(`src/data/${ODD}`)[1], "today's snapshot");
      expect(env.snapshots("src/data/plain")).toEqual([day(1)]);

      const backup = await env.cli(["backup", cfg, "--yes"]);
      if (backup.code !== 0) console.log(backup.stdout, backup.stderr);
      expect(backup.code).toBe(0);
      expect(env.snapshots(`dst/back up/${ODD}`)).toEqual([day(1), today]);
      expect(env.snapshots("dst/back up/plain")).toEqual([day(1)]);
      for (const snapName of [day(1), today]) {
        expect(env.guid(`dst/back up/${ODD}@${snapName}`)).toBe(
          env.guid(`src/data/${ODD}@${snapName}`),
        );
      }

      const cleanup = await env.cli(["cleanup", cfg, "--yes"]);
      expect(cleanup.code).toBe(0);
      expect(env.snapshots(`src/data/${ODD}`)).toEqual([today]);
      expect(env.snapshots(`dst/back up/${ODD}`)).toEqual([day(1), today]);

      // round two: one small change, one incremental
      expect(env.zfs("sim-write", "src/data/plain", "2M").code).toBe(0);
      expect((await env.cli(["snap", cfg, "--yes"])).code).toBe(0);
      const second = await env.cli(["backup", cfg, "--yes", "--json"]);
      expect(second.code).toBe(0);
      const plan = must(
        jsonEvents(second.stdout).find((e) => e.event === "plan"),
        "plan",
      ).plan as {
        actions: { subname: string; mode: string; from: string; to: string }[];
      };
      expect(plan.actions.map((a) => [a.subname, a.mode, a.from, a.to]).slice(0, -1)).toEqual([
        ["plain", "incremental", day(1), today],
      ]);
      expect(env.guid(`dst/back up/plain@${today}`)).toBe(env.guid(`src/data/plain@${today}`));

      // both servers were used, and the streams went through the shims on both ends
      expect(sourceSshd.log()).toContain("Accepted publickey");
      expect(targetSshd.log()).toContain("Accepted publickey");
      const calls = env.calls();
      expect(
        calls.some(
          (c) =>
            c.startsWith("zfs send -v -P -L -c -e -I") &&
            c.includes(`src/data/${ODD}@${day(1)} src/data/${ODD}@`),
        ),
      ).toBe(true);
      expect(calls.some((c) => c === `zfs receive -s -u dst/back up/${ODD}`)).toBe(true);
      for (const call of calls) expect(call).not.toMatch(/^zfs (receive|recv) .*-F|^zfs rollback/);
    },
    LONG_MS,
  );

  test(
    "compare through both servers agrees with the state",
    async () => {
      const run = await env.cli(["compare", config, "--json"]);
      expect(run.code).toBe(0);
      const doc = must(jsonEvents(run.stdout)[0], "comparison") as {
        datasets: { subname: string; presence: string; snapshots: { presence: string }[] }[];
      };
      const odd = must(
        doc.datasets.find((d) => d.subname === ODD),
        ODD,
      );
      expect(odd.presence).toBe("both");
      expect(odd.snapshots.map((s) => s.presence)).toEqual(["target", "both"]);
    },
    LONG_MS,
  );
});
