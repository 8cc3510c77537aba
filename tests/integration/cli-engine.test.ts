// The engine's promises through the real CLI on the simulator, with every zfs call logged:
// a failed full send and its incremental do not crash the run and do not stop a sibling, the
// after-hooks and on-error hooks run; typos and missing targets are errors before anything
// runs; two runs of one target never overlap; one SIGINT cancels a hung zfs or a hung hook.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { QUERY_CONCURRENCY } from "../../lib/run/limit.ts";
import { CLI_MAIN, configYaml, createSimEnv, jsonEvents, type SimEnv } from "../helpers/sim-env.ts";
import { readText } from "../helpers/stdout.ts";

const LONG_MS = 60_000;
let env: SimEnv;
let lockDir: string;

beforeAll(() => {
  env = createSimEnv();
  lockDir = join(env.dir, "locks");
});
afterAll(() => env?.remove());

const day = (n: number) => `202601${String(n).padStart(2, "0")}01`;

/** the CLI as a child process we can signal; its own lock directory */
function spawnCli(args: string[], extraEnv: Record<string, string> = {}) {
  return Bun.spawn([process.execPath, CLI_MAIN, ...args], {
    env: { ...process.env, PATH: env.path, TZ: "UTC", ABGLEICH_LOCK_DIR: lockDir, ...extraEnv },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
}

/** one dataset with one snapshot, and an empty target pool */
function seedSmall(): void {
  env.seed({
    now: 1_767_225_600,
    pools: [
      { name: "src", size: "1G", datasets: [{ name: "data", snapshots: [{ name: day(1) }] }] },
      { name: "dst", size: "1G" },
    ],
  });
}

/**
 * src/data (and `children` below it, c1, c2, …), each with a small change since its one
 * snapshot: only `zfs diff` can decide whether to snapshot it
 */
function seedSmallChange(children = 0): void {
  const names = ["data", ...Array.from({ length: children }, (_, i) => `data/c${i + 1}`)];
  env.seed({
    now: 1_767_225_600,
    pools: [
      {
        name: "src",
        size: "1G",
        datasets: names.map((name) => ({ name, snapshots: [{ name: day(1) }], written: "4K" })),
      },
      { name: "dst", size: "1G" },
    ],
  });
}

/** a `zfs` in its own directory, put before the simulator's shims on PATH: `script` runs first */
function wrapZfs(name: string, script: string): string {
  const dir = join(env.dir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "zfs"), `#!/bin/sh\n${script}\nexec ${env.binDir}/zfs "$@"\n`);
  chmodSync(join(dir, "zfs"), 0o755);
  return `${dir}:${env.path}`;
}

/** pids of processes whose command line contains `marker` */
function processesWith(marker: string): number[] {
  const ps = Bun.spawnSync(["ps", "-eo", "pid=,stat=,args="]);
  return ps.stdout
    .toString()
    .split("\n")
    .filter((line) => line.includes(marker) && !/^\s*\d+\s+Z/.test(line))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

describe("a failed transfer", () => {
  test(
    "a new dataset's full send fails: its incremental is not run, the sibling is sent, after and on_error hooks run, exit 1",
    async () => {
      env.seed({
        now: 1_767_225_600,
        pools: [
          {
            name: "src",
            size: "1G",
            datasets: [
              { name: "data", snapshots: [{ name: day(1) }, { name: day(2) }] },
              {
                name: "data/big",
                snapshots: [
                  { name: day(1), written: "2M" },
                  { name: day(2), written: "1M" },
                ],
              },
              {
                name: "data/small",
                snapshots: [
                  { name: day(1), written: "1M" },
                  { name: day(2), written: "1M" },
                ],
              },
            ],
          },
          { name: "dst", size: "1G" },
        ],
      });
      const marks = join(env.dir, "marks");
      const config = env.writeConfig(
        configYaml(
          { zpool: "src", prefix: "data" },
          { zpool: "dst", prefix: "backup" },
          `plugins:
  - name: hooks
    options:
      after: { backup: 'echo "after $ABGLEICH_RESULT" >> ${marks}' }
      on_error: 'echo "on_error $ABGLEICH_STAGE" >> ${marks}'
`,
        ),
        "failed-send.yaml",
      );
      // the receive of big's full stream fails (as a full pool or a vanished disk would)
      const path = wrapZfs(
        "failing",
        `case "$*" in "receive -s -u -o canmount=noauto dst/backup/big") cat >/dev/null; echo "cannot receive new filesystem stream: out of space" >&2; exit 1;; esac`,
      );
      const run = await env.cli(["backup", config, "--yes"], { env: { PATH: path } });
      expect(run.code).toBe(1);
      expect(run.stderr).not.toContain("progress.");
      expect(run.stdout).toContain("backup: failed");
      expect(run.stdout).toContain("not run: an earlier action for big failed");
      // the one failure counted as one, what it held back apart
      expect(`${run.stdout}${run.stderr}`).toMatch(
        /backup: 1 action\(s\) failed: [^\n]*; 1 not run because of it/,
      );
      // the stage summary was printed, and the hooks ran in order
      expect(run.stdout).toContain("abgleich FAILED: backup failed");
      expect(readFileSync(marks, "utf8")).toBe("on_error backup\nafter failed\n");
      // the sibling arrived whole; big's incremental was never tried
      expect(env.snapshots("dst/backup/small")).toEqual([day(1), day(2)]);
      expect(env.snapshots("dst/backup")).toEqual([day(1), day(2)]);
      expect(env.calls().filter((c) => /^zfs send -v -P -L -c -e -I .*big@/.test(c))).toEqual([]);
      // the chain's protection ran for the two that arrived, and named big nowhere
      const holds = env.calls().filter((c) => c.startsWith("zfs hold "));
      expect(holds.join("\n")).toContain(`dst/backup/small@${day(2)}`);
      expect(holds.join("\n")).toContain(`dst/backup@${day(2)}`);
      expect(holds.join("\n")).not.toContain("big");
    },
    LONG_MS,
  );

  test(
    "every transfer fails: the chain's protection is not run, and says why",
    async () => {
      seedSmall();
      const config = env.writeConfig(
        configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" }),
        "all-fail.yaml",
      );
      const path = wrapZfs(
        "failing-root",
        `case "$*" in "receive -s -u -o canmount=noauto dst/backup") cat >/dev/null; echo "cannot receive new filesystem stream: out of space" >&2; exit 1;; esac`,
      );
      const run = await env.cli(["backup", config, "--yes"], { env: { PATH: path } });
      expect(run.code).toBe(1);
      expect(run.stdout).toContain("not run: an earlier action for the root failed");
      // the chain that never ran is not called a failure of its own
      expect(run.stdout).toContain("– not run: protect the incremental chain");
      expect(run.stdout).not.toContain("✗ failed: protect the incremental chain");
      expect(`${run.stdout}${run.stderr}`).toMatch(
        /backup: 1 action\(s\) failed: [^\n]*; 1 not run because of it/,
      );
      expect(env.calls().filter((c) => /^zfs (hold|bookmark|release) /.test(c))).toEqual([]);
    },
    LONG_MS,
  );

  test(
    "a receive that arrives but cannot set canmount (a user without the permission): a warning naming the fix, exit 0",
    async () => {
      seedSmall();
      const config = env.writeConfig(
        configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" }),
        "no-canmount.yaml",
      );
      // as OpenZFS does for a `zfs allow` user without `canmount`: the stream arrives, the
      // property is not set, a line on stderr, exit 0
      const path = wrapZfs(
        "no-canmount",
        `case "$*" in "receive -s -u -o canmount=noauto dst/backup") ${env.binDir}/zfs receive -s -u dst/backup; c=$?; echo "cannot receive canmount property on dst/backup: permission denied" >&2; exit $c;; esac`,
      );
      const run = await env.cli(["backup", config, "--yes"], { env: { PATH: path } });
      expect(run.code).toBe(0);
      expect(env.snapshots("dst/backup").length).toBeGreaterThan(0);
      const text = `${run.stdout}${run.stderr}`;
      expect(text).toContain(
        "dst/backup arrived, but zfs receive said: cannot receive canmount property on dst/backup: permission denied.",
      );
      expect(text).toContain("zfs allow -u USER canmount dst/backup");
      expect(text).toContain("zfs set canmount=noauto dst/backup");
    },
    LONG_MS,
  );
});

describe("run nightly", () => {
  test(
    "a failed run's summary is printed once, not by the command and again by the workflow",
    async () => {
      seedSmall();
      const config = env.writeConfig(
        configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" }),
        "nightly-twice.yaml",
      );
      const first = await env.cli(["run", "nightly", config, "--yes"]);
      expect(first.code).toBe(0);
      expect(`${first.stdout}${first.stderr}`.match(/abgleich ok/g)).toHaveLength(1);
      // the target moves ahead of the source: the next backup finds a conflict and fails
      expect(env.zfs("snapshot", "dst/backup@by-hand").code).toBe(0);
      expect(env.zfs("sim-write", "src/data", "1M").code).toBe(0);
      const failed = await env.cli(["run", "nightly", config, "--yes"]);
      expect(failed.code).toBe(1);
      expect(`${failed.stdout}${failed.stderr}`.match(/abgleich FAILED/g)).toHaveLength(1);
    },
    LONG_MS,
  );
});

describe("preflight", () => {
  test("a typo in the source prefix is an error for snap, backup and cleanup, not 'nothing to do'", async () => {
    seedSmall();
    const config = env.writeConfig(
      configYaml({ zpool: "src", prefix: "dta" }, { zpool: "dst", prefix: "backup" }),
      "typo.yaml",
    );
    for (const command of ["snap", "backup", "cleanup"]) {
      const run = await env.cli([command, config, "--yes"]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain("source root src/dta does not exist on localhost");
      expect(run.stdout).not.toContain("Nothing to do");
    }
    expect(env.calls().every((c) => /^zfs list /.test(c))).toBe(true);
  });

  test("a typo in the target pool fails a dry run already, naming the pool", async () => {
    seedSmall();
    const config = env.writeConfig(
      configYaml({ zpool: "src", prefix: "data" }, { zpool: "dts", prefix: "backup" }),
      "target-typo.yaml",
    );
    const run = await env.cli(["backup", config, "--dry-run"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("target pool dts does not exist on localhost");
    expect(env.calls().some((c) => /^zfs (send|receive|recv) /.test(c) && !/ -n /.test(c))).toBe(
      false,
    );
  });

  test("a missing target parent names the command that creates it", async () => {
    seedSmall();
    const config = env.writeConfig(
      configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "hosts/this" }),
      "parent.yaml",
    );
    const run = await env.cli(["backup", config, "--yes"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("zfs create -p -o mountpoint=none dst/hosts");
  });

  test("an ignore entry that matches no dataset is warned about", async () => {
    seedSmall();
    const config = env.writeConfig(
      configYaml(
        { zpool: "src", prefix: "data" },
        { zpool: "dst", prefix: "backup" },
        "ignore:\n  - hmoe\n",
      ),
      "ignore.yaml",
    );
    const run = await env.cli(["snap", config, "--dry-run"]);
    expect(run.stderr).toContain('ignore entry "hmoe" matches no dataset under src/data');
  });

  test("a refused argument says why: `cleanup CONFIG sideways` exits 2 with the reason", async () => {
    seedSmall();
    const config = env.writeConfig(
      configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" }),
      "args.yaml",
    );
    const run = await env.cli(["cleanup", config, "sideways"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('side must be "source" or "target", not "sideways"');
    expect(env.calls()).toEqual([]);
  });

  test("no command, or help of a command there is none of: the help on stderr, exit 2; asked for, on stdout, exit 0", async () => {
    for (const args of [[], ["-v"], ["help", "frob"]]) {
      const run = await env.cli(args);
      expect({ args, code: run.code, stdout: run.stdout }).toEqual({ args, code: 2, stdout: "" });
      expect(run.stderr).toContain("Usage: abgleich [options] [command]");
    }
    for (const args of [["--help"], ["help"], ["help", "snap"]]) {
      const run = await env.cli(args);
      expect({ args, code: run.code, stderr: run.stderr }).toEqual({ args, code: 0, stderr: "" });
      expect(run.stdout).toContain("Usage: abgleich");
    }
  });
});

describe("a plugin that calls process.exit()", () => {
  test("in a hook of a failing run: the exit code is still a failure, not 0", async () => {
    seedSmall();
    const plugin = env.writeFile(
      "exit-plugin.ts",
      `import { definePlugin } from "abgleich";
export default definePlugin({
  name: "mailer",
  setup(hooks) {
    hooks.error.tap("x", () => process.exit());
  },
});
`,
    );
    const config = env.writeConfig(
      configYaml(
        { zpool: "src", prefix: "dta" },
        { zpool: "dst", prefix: "backup" },
        `plugins:\n  - path: ${plugin}\n`,
      ),
      "exit-plugin.yaml",
    );
    const run = await env.cli(["backup", config, "--yes"]);
    expect(run.code).toBe(1);
  });
});

describe("one run per target", () => {
  /** a backup of 3G that runs a while, seen starting its transfer */
  async function startLongBackup(name: string, command: string[] = ["backup"]) {
    env.seed({
      now: 1_767_225_600,
      pools: [
        {
          name: "src",
          size: "64G",
          datasets: [{ name: "data", snapshots: [{ name: day(1), written: "3G" }] }],
        },
        { name: "dst", size: "64G" },
      ],
    });
    const config = env.writeConfig(
      configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" }),
      name,
    );
    const first = spawnCli([...command, config, "--yes", "--json"]);
    await readText(first.stdout).until('"event":"action-start"');
    return { config, first };
  }

  test(
    "a second backup of the same target refuses while the first runs, naming its pid; --wait waits",
    async () => {
      const { config, first } = await startLongBackup("lock.yaml");
      const second = spawnCli(["backup", config, "--yes"]);
      const [code, stderr] = await Promise.all([second.exited, new Response(second.stderr).text()]);
      expect(code).toBe(1);
      expect(stderr).toContain(`in use by pid ${first.pid}`);
      // a waiting run starts once the first is done, and finds nothing left to send
      const waiting = spawnCli(["backup", config, "--yes", "--wait=2m"]);
      expect(await first.exited).toBe(0);
      const [waitCode, waitOut] = await Promise.all([
        waiting.exited,
        new Response(waiting.stdout).text(),
      ]);
      expect(waitCode).toBe(0);
      expect(waitOut).toContain("backup: nothing-to-do");
      // only one full receive ever ran
      expect(env.calls().filter((c) => /^zfs (receive|recv) /.test(c))).toHaveLength(1);
    },
    LONG_MS,
  );

  test(
    "a cleanup of the source refuses while a backup runs: the backup holds and bookmarks there",
    async () => {
      const { config, first } = await startLongBackup("lock-source.yaml");
      const cleanup = spawnCli(["cleanup", config, "--yes"]);
      const [code, stderr] = await Promise.all([
        cleanup.exited,
        new Response(cleanup.stderr).text(),
      ]);
      expect(code).toBe(1);
      expect(stderr).toContain(`in use by pid ${first.pid} (abgleich backup`);
      expect(await first.exited).toBe(0);
      expect(env.calls().filter((c) => /^zfs (destroy|release) /.test(c))).toEqual([]);
    },
    LONG_MS,
  );
  test(
    "a run that meets the lock of `run nightly` is told that command, not only its stage",
    async () => {
      const { config, first } = await startLongBackup("lock-nightly.yaml", ["run", "nightly"]);
      const cleanup = spawnCli(["cleanup", config, "--yes"]);
      const [code, stderr] = await Promise.all([
        cleanup.exited,
        new Response(cleanup.stderr).text(),
      ]);
      expect(code).toBe(1);
      // the source was locked by the workflow's snap stage, and kept
      expect(stderr).toContain(`in use by pid ${first.pid} (abgleich run nightly: snap (`);
      expect(await first.exited).toBe(0);
    },
    LONG_MS,
  );
});

describe("a zfs diff that fails", () => {
  test(
    "refused or timed out: the dataset is snapshotted as changed, with a warning naming why; exit 0",
    async () => {
      seedSmallChange();
      const refused = wrapZfs(
        "diff-refused",
        `if [ "$1" = diff ]; then echo "cannot diff: permission denied" >&2; exit 1; fi`,
      );
      const config = env.writeConfig(
        configYaml(
          { zpool: "src", prefix: "data" },
          { zpool: "dst", prefix: "backup" },
          "command_timeout: 2\n",
        ),
        "diff-fails.yaml",
      );
      const run = await env.cli(["snap", config, "--yes"], { env: { PATH: refused } });
      expect(run.code).toBe(0);
      expect(run.stderr).toContain(
        `warning: zfs diff src/data@${day(1)} failed, so it is snapshotted as changed:`,
      );
      expect(run.stderr).toContain("permission denied");
      expect(env.snapshots("src/data")).toHaveLength(2);

      // more datasets than diffs run at once: after the first timeout the rest are not asked
      seedSmallChange(7);
      const asked = join(env.dir, "diffs-asked");
      const hung = wrapZfs(
        "diff-hangs",
        `if [ "$1" = diff ]; then echo "$2" >> '${asked}'; exec sleep 4244; fi`,
      );
      const late = await env.cli(["snap", config, "--yes"], { env: { PATH: hung } });
      expect(late.code).toBe(0);
      expect(late.stderr).toContain(
        "failed, so it is snapshotted as changed, as is every dataset not yet asked:",
      );
      for (const name of ["src/data", ...Array.from({ length: 7 }, (_, i) => `src/data/c${i + 1}`)])
        expect({ name, snapshots: env.snapshots(name).length }).toEqual({ name, snapshots: 2 });
      expect(readFileSync(asked, "utf8").trim().split("\n")).toHaveLength(QUERY_CONCURRENCY);
      expect(processesWith("sleep 4244")).toEqual([]);
    },
    LONG_MS,
  );
});

describe("one SIGINT cancels whatever waits", () => {
  test(
    "a hung zfs diff: exit 130 at once, no zfs left running, nothing changed",
    async () => {
      // only `zfs diff` can decide, and that one hangs
      seedSmallChange();
      const path = wrapZfs("hang", `if [ "$1" = diff ]; then exec sleep 4242; fi`);
      const config = env.writeConfig(
        configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" }),
        "hang.yaml",
      );
      const child = spawnCli(["snap", config, "--yes", "--json"], { PATH: path });
      for (let i = 0; i < 200 && processesWith("sleep 4242").length === 0; i++) await Bun.sleep(50);
      expect(processesWith("sleep 4242").length).toBeGreaterThan(0);
      const started = Date.now();
      child.kill("SIGINT");
      const [code, stdout] = await Promise.all([child.exited, new Response(child.stdout).text()]);
      expect(code).toBe(130);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(jsonEvents(stdout).find((e) => e.event === "stage-done")?.status).toBe("cancelled");
      await Bun.sleep(200);
      expect(processesWith("sleep 4242")).toEqual([]);
      expect(env.snapshots("src/data")).toEqual([day(1)]);
    },
    LONG_MS,
  );

  test(
    "a hung before-hook: exit 130 at once, the hook's process group is gone, after-hooks ran",
    async () => {
      seedSmall();
      const marks = join(env.dir, "hook-marks");
      const config = env.writeConfig(
        configYaml(
          { zpool: "src", prefix: "data" },
          { zpool: "dst", prefix: "backup" },
          `plugins:
  - name: hooks
    options:
      before: { backup: "trap '' TERM; sleep 4343 & wait" }
      after: { backup: 'echo "after $ABGLEICH_RESULT" >> ${marks}' }
`,
        ),
        "hook-hang.yaml",
      );
      const child = spawnCli(["backup", config, "--yes"]);
      for (let i = 0; i < 200 && processesWith("sleep 4343").length === 0; i++) await Bun.sleep(50);
      expect(processesWith("sleep 4343").length).toBeGreaterThan(0);
      const started = Date.now();
      child.kill("SIGINT");
      const said = new Response(child.stderr).text();
      expect(await child.exited).toBe(130);
      // the hook's command says it was stopped, as docs/plugins.md has it
      expect(await said).toContain(`was stopped: the run was cancelled`);
      expect(Date.now() - started).toBeLessThan(8000);
      await Bun.sleep(200);
      expect(processesWith("sleep 4343")).toEqual([]);
      expect(existsSync(marks) && readFileSync(marks, "utf8")).toBe("after cancelled\n");
      expect(env.calls().some((c) => /^zfs (send|receive|recv) /.test(c))).toBe(false);
    },
    LONG_MS,
  );
});
