// `abgleich status` as the real CLI against the simulator: exit codes and first lines as
// monitoring plugins have them, on a fresh target, a stale one (snapshot creation times set in
// the past, no sleeping), a conflicted one, one with a cut transfer to resume, a host that is
// down and a config that cannot be read; the state file a backup writes and status reads; and
// the node_exporter textfile, checked by `promtool check metrics` where Prometheus is installed.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Scenario } from "../../lib/sim/main.ts";
import { configYaml, createSimEnv, must, type SimEnv } from "../helpers/sim-env.ts";

const H = 3600;
/** several CLI runs per test, each ~0.3 s on two busy cores */
const LONG_MS = 60_000;

let env: SimEnv;
let config: string;
const now = () => Math.floor(Date.now() / 1000);

/** src/data with a child, snapshots made `hoursAgo` hours ago; an empty target pool */
function scenario(hoursAgo: number[]): Scenario {
  const t = now();
  const snapshots = hoursAgo.map((h, i) => ({
    name: `s${i + 1}`,
    written: "1M",
    creation: t - h * H,
  }));
  return {
    pools: [
      {
        name: "src",
        size: "1G",
        datasets: [
          { name: "data", snapshots },
          { name: "data/home", snapshots },
        ],
      },
      { name: "dst", size: "1G" },
    ],
  };
}

/** 1 MiB written, then a snapshot taken as if `hoursAgo` hours ago (the simulator's clock) */
function snapshotAgo(name: string, hoursAgo: number): void {
  expect(env.zfs("sim-write", name.split("@")[0] ?? "", "1M").code).toBe(0);
  const result = Bun.spawnSync([join(env.binDir, "zfs"), "snapshot", name], {
    env: { PATH: env.path, TZ: "UTC", ABGLEICH_SIM_NOW: String(now() - hoursAgo * H) },
  });
  expect(result.exitCode).toBe(0);
}

/** a fresh simulator state and no recorded runs */
function seed(scenario: Scenario): void {
  env.seed(scenario);
  rmSync(join(env.dir, "run-state"), { recursive: true, force: true });
}

/** what status ran since `from`: only reading commands */
function expectOnlyReads(from: number): void {
  for (const call of env.calls().slice(from))
    expect(call).toMatch(/^(zfs (list|get|holds|version)|zpool (list|get)) /);
}

function stateFiles(): string[] {
  const dir = join(env.dir, "run-state");
  return existsSync(dir) ? readdirSync(dir).map((name) => join(dir, name)) : [];
}

const firstLineOf = (stdout: string) => stdout.split("\n")[0] ?? "";

beforeAll(() => {
  env = createSimEnv();
  config = env.writeConfig(
    configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" }),
  );
});

afterAll(() => env?.remove());

describe("freshness", () => {
  test(
    "a fresh target is OK (0); the backup's state file is what status reads as the last run",
    async () => {
      seed(scenario([100, 3]));
      const before = await env.cli(["status", config]);
      expectOnlyReads(0);
      // nothing sent yet, and the oldest snapshot waits 100 h: CRITICAL, first saying why (no
      // target root yet), with no run recorded
      expect(before.code).toBe(2);
      expect(firstLineOf(before.stdout)).toStartWith(
        "ABGLEICH CRITICAL - target root dst/backup does not exist on localhost: no backup there yet, or check target.zpool and target.prefix; (root): 2 snapshots not on the target, the oldest for 4d 4h;",
      );
      expect(before.stdout).toContain("last run: none recorded");
      expect(stateFiles()).toEqual([]);

      expect((await env.cli(["backup", config, "--yes"])).code).toBe(0);
      const [file] = stateFiles();
      const state = JSON.parse(readFileSync(must(file, "state file"), "utf8"));
      expect(state).toMatchObject({
        version: 1,
        config,
        lastRun: { stages: ["backup"], result: "ok", exitCode: 0 },
      });
      expect(state.lastSuccess).toEqual(state.lastRun);

      const run = await env.cli(["status", config]);
      expect(run.code).toBe(0);
      const first = firstLineOf(run.stdout);
      expect(first).toMatch(
        /^ABGLEICH OK - 2 datasets, newest backup 3h ago, last run ok \d+s ago \| datasets=2 lag_snapshots=0 lag_bytes=0B /,
      );
      expect(run.stdout).toMatch(/^\(root\) +s2 +3h +s2 +3h +0 +ok$/m);
      expect(run.stdout).toMatch(/^home +s2 +3h +s2 +3h +0 +ok$/m);
      expect(run.stdout).toContain("last run: backup ok (exit 0), finished ");
      expect(run.stdout).toContain("thresholds: warn 26h, crit 50h");
      const quiet = await env.cli(["status", config, "--quiet"]);
      expect(quiet.code).toBe(0);
      // --quiet: the first line alone
      const lines = quiet.stdout.trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toStartWith("ABGLEICH OK - 2 datasets, newest backup 3h ago");

      // a dry run and status itself record nothing
      const written = readFileSync(must(file, "state file"), "utf8");
      expect((await env.cli(["snap", config, "--dry-run"])).code).toBe(0);
      expect(readFileSync(must(file, "state file"), "utf8")).toBe(written);
    },
    LONG_MS,
  );

  test(
    "a stale target: WARNING (1) past --warn, CRITICAL (2) past --crit, by the oldest snapshot it lacks",
    async () => {
      seed(scenario([100]));
      expect((await env.cli(["backup", config, "--yes"])).code).toBe(0);
      snapshotAgo("src/data/home@s2", 30);
      snapshotAgo("src/data/home@s3", 20);

      const warning = await env.cli(["status", config, "--warn", "26h", "--crit", "50h"]);
      expect(warning.code).toBe(1);
      expect(firstLineOf(warning.stdout)).toStartWith(
        "ABGLEICH WARNING - home: 2 snapshots not on the target, the oldest for 1d 6h; 2 datasets, newest backup 4d 4h ago",
      );
      expect(firstLineOf(warning.stdout)).toMatch(/ behind=108\d{3}s;93600;180000;0 /);
      expect(warning.stdout).toMatch(/^home +s3 +20h +s1 +4d 4h +2 \(2\.0 MiB\) +behind 1d 6h$/m);
      // the root's newest snapshot is 100 h old, but the target has it: not stale
      expect(warning.stdout).toMatch(/^\(root\) .* ok$/m);

      const critical = await env.cli(["status", config, "--warn", "12h", "--crit", "1d"]);
      expect(critical.code).toBe(2);
      expect(firstLineOf(critical.stdout)).toStartWith("ABGLEICH CRITICAL - home: 2 snapshots");

      // the thresholds from the config, when no option is given
      const tight = env.writeConfig(
        configYaml(
          { zpool: "src", prefix: "data" },
          { zpool: "dst", prefix: "backup" },
          "status:\n  warn: 6h\n  crit: 1d\n",
        ),
        "tight.yaml",
      );
      const fromConfig = await env.cli(["status", tight]);
      // a config without a run of its own: no state file for it either (WARNING), but CRITICAL wins
      expect(fromConfig.code).toBe(2);
      expect(fromConfig.stdout).toContain("thresholds: warn 6h, crit 1d");

      // backed up again: OK
      expect((await env.cli(["backup", config, "--yes"])).code).toBe(0);
      expect((await env.cli(["status", config])).code).toBe(0);
    },
    LONG_MS,
  );

  test(
    "a timer that stopped: no new snapshots, but the last success is long ago (CRITICAL)",
    async () => {
      seed(scenario([5]));
      expect((await env.cli(["backup", config, "--yes"])).code).toBe(0);
      const file = must(stateFiles()[0], "state file");
      const state = JSON.parse(readFileSync(file, "utf8"));
      const longAgo = new Date((now() - 3 * 24 * H) * 1000).toISOString();
      state.lastRun.finishedAt = longAgo;
      state.lastSuccess.finishedAt = longAgo;
      writeFileSync(file, JSON.stringify(state));
      const run = await env.cli(["status", config]);
      expect(run.code).toBe(2);
      expect(firstLineOf(run.stdout)).toStartWith("ABGLEICH CRITICAL - no successful run for 3d;");
    },
    LONG_MS,
  );
});

describe("trouble", () => {
  test(
    "a conflicted target is CRITICAL (2), with the conflict's message",
    async () => {
      const t = now();
      seed({
        pools: [
          {
            name: "src",
            size: "1G",
            datasets: [
              { name: "data", snapshots: [{ name: "s1", written: "1M", creation: t - H }] },
            ],
          },
          // same name, its own guid: not a copy of the source
          {
            name: "dst",
            size: "1G",
            datasets: [
              { name: "backup", snapshots: [{ name: "s1", written: "1M", creation: t - H }] },
            ],
          },
        ],
      });
      const backup = await env.cli(["backup", config, "--yes"]);
      expect(backup.code).toBe(1);
      const run = await env.cli(["status", config]);
      expect(run.code).toBe(2);
      expect(firstLineOf(run.stdout)).toStartWith(
        "ABGLEICH CRITICAL - (root): conflicts (guid-mismatch, no-common), backup skips it;",
      );
      expect(run.stdout).toMatch(/^\(root\) .*conflict: guid-mismatch/m);
      expect(run.stdout).toMatch(
        /^conflict: dst\/backup: snapshot\(s\) s1 exist on both sides with different guids/m,
      );
      const json = JSON.parse((await env.cli(["status", config, "--json"])).stdout);
      expect(json.datasets[0].conflicts.map((c: { kind: string }) => c.kind)).toContain(
        "guid-mismatch",
      );
      expect(json.problems).toContainEqual({
        status: "WARNING",
        message: expect.stringMatching(/^last run \(backup\) failed \d+s ago: backup: /),
      });
    },
    LONG_MS,
  );

  test(
    "a cut transfer: the resume token is shown, and the failed last run makes it a WARNING (1)",
    async () => {
      seed(scenario([2]));
      const noRetries = env.writeConfig(
        configYaml(
          { zpool: "src", prefix: "data" },
          { zpool: "dst", prefix: "backup" },
          "transfer:\n  retries: 0\n",
        ),
        "no-retries.yaml",
      );
      const cut = await env.cli(["backup", noRetries, "--yes"], {
        env: { ABGLEICH_SIM_CUT_AFTER: "300000" },
      });
      expect(cut.code).toBe(1);
      expect(must(env.list().get("dst/backup"), "partial target").token).not.toBeNull();

      const run = await env.cli(["status", noRetries]);
      expect(run.code).toBe(1);
      expect(firstLineOf(run.stdout)).toStartWith("ABGLEICH WARNING - last run (backup) failed");
      expect(firstLineOf(run.stdout)).toContain(" resume_pending=1");
      expect(run.stdout).toMatch(
        /^\(root\) +s1 +2h +- +- +1 \(1\.\d MiB\) +behind 2h, resume pending$/m,
      );
      const json = JSON.parse((await env.cli(["status", noRetries, "--json"])).stdout);
      expect(json.status).toBe("WARNING");
      expect(json.datasets[0]).toMatchObject({ subname: "", resumePending: true, lagSnapshots: 1 });
      expect(json.lastRun).toMatchObject({ stages: ["backup"], result: "failed", exitCode: 1 });
    },
    LONG_MS,
  );

  test(
    "a host that is down is UNKNOWN (3), also as JSON and in the textfile",
    async () => {
      const port = await closedPort();
      const sshConfig = env.writeSshConfig(
        [{ alias: "down-host", port, identityFile: join(env.dir, "no-key") }],
        "ssh_down",
      );
      const down = env.writeConfig(
        configYaml(
          { zpool: "src", prefix: "data" },
          { zpool: "dst", prefix: "backup", host: "down-host" },
          `ssh:\n  config_file: ${JSON.stringify(sshConfig)}\n`,
        ),
        "down.yaml",
      );
      const prom = join(env.dir, "down.prom");
      const run = await env.cli(["status", down, "--prometheus", prom]);
      expect(run.code).toBe(3);
      expect(firstLineOf(run.stdout)).toStartWith("ABGLEICH UNKNOWN - host is not up: target");
      expect(readFileSync(prom, "utf8")).toContain(
        `abgleich_status{config=${JSON.stringify(down)}} 3\n`,
      );
      const json = await env.cli(["status", down, "--json"]);
      expect(json.code).toBe(3);
      const doc = JSON.parse(json.stdout);
      expect(doc).toMatchObject({ status: "UNKNOWN", exitCode: 3 });
      expect(doc.error).toContain("host is not up: target");
    },
    LONG_MS,
  );

  test(
    "a plugin that cannot load is UNKNOWN with its cause on the first line; --json stays one document",
    async () => {
      seed(scenario([1]));
      const plugged = env.writeConfig(
        configYaml(
          { zpool: "src", prefix: "data" },
          { zpool: "dst", prefix: "backup" },
          "plugins:\n  - name: hooks\n    options:\n      before:\n        bakup: echo hi\n",
        ),
        "bad-plugin.yaml",
      );
      const text = await env.cli(["status", plugged]);
      expect(text.code).toBe(3);
      expect(firstLineOf(text.stdout)).toMatch(
        /^ABGLEICH UNKNOWN - .*bakup: unknown option \(did you mean `backup`\?\)/,
      );
      const json = await env.cli(["status", plugged, "--json"]);
      expect(json.code).toBe(3);
      const doc = JSON.parse(json.stdout) as { status: string; error: string };
      expect(doc.status).toBe("UNKNOWN");
      expect(doc.error).toContain("bakup: unknown option");
    },
    LONG_MS,
  );

  test(
    "an unreadable config, a bad threshold or option is UNKNOWN (3), where other commands say 2",
    async () => {
      const missing = join(env.dir, "missing.yaml");
      const gone = await env.cli(["status", missing]);
      expect(gone.code).toBe(3);
      expect(firstLineOf(gone.stdout)).toBe(`ABGLEICH UNKNOWN - ${missing}: no such file`);
      expect((await env.cli(["compare", missing])).code).toBe(2);

      const early = env.writeConfig(
        configYaml({ zpool: "src" }, { zpool: "dst" }, "status:\n  warn: 2d\n  crit: 1d\n"),
        "early.yaml",
      );
      const bad = await env.cli(["status", early]);
      expect(bad.code).toBe(3);
      expect(firstLineOf(bad.stdout)).toMatch(
        new RegExp(
          `^ABGLEICH UNKNOWN - ${escapeRe(early)}:\\d+:9: status\\.crit: crit \\(1d\\) is shorter than warn \\(2d\\)`,
        ),
      );
      expect((await env.cli(["compare", early])).code).toBe(2);

      // an ssh config file that is not there: the config's mistake, before any host is asked
      const noSsh = env.writeConfig(
        configYaml({ zpool: "src" }, { zpool: "dst", host: "nas" }, "ssh:\n  config_file: gone\n"),
        "no-ssh-config.yaml",
      );
      const backup = await env.cli(["backup", noSsh, "--yes"]);
      expect(backup.code).toBe(2);
      expect(backup.stderr).toContain(`ssh.config_file: no such file: ${join(env.dir, "gone")}`);
      expect((await env.cli(["status", noSsh])).code).toBe(3);

      const flags = await env.cli(["status", config, "--warn", "2d", "--crit", "1d"]);
      expect(flags.code).toBe(3);
      expect(firstLineOf(flags.stdout)).toBe(
        "ABGLEICH UNKNOWN - the critical threshold 1d (--crit) is shorter than the warning threshold 2d (--warn): crit must be at least as long as warn",
      );
      const unit = await env.cli(["status", config, "--warn", "26"]);
      expect(unit.code).toBe(3);
      expect(firstLineOf(unit.stdout)).toContain('--warn: "26" has no unit');
      const option = await env.cli(["status", config, "--bogus"]);
      expect(option.code).toBe(3);
      expect(firstLineOf(option.stdout)).toBe("ABGLEICH UNKNOWN - unknown option '--bogus'");
      expect((await env.cli(["status", "--help"])).code).toBe(0);
      // `help status` too: help is never a failure, nor an UNKNOWN (it read process.exitCode)
      const help = await env.cli(["help", "status"]);
      expect(help.code).toBe(0);
      expect(help.stdout).not.toContain("ABGLEICH UNKNOWN");
      // and it names the options every command takes
      expect(help.stdout).toContain("Global Options:");
      expect((await env.cli(["help", "snap"])).code).toBe(0);
    },
    LONG_MS,
  );
});

describe("--prometheus", () => {
  test(
    "a textfile with a series per dataset and side, odd label values escaped, accepted by promtool",
    async () => {
      seed(scenario([100]));
      // a config file name with a double quote and a backslash: both must be escaped in labels
      const odd = env.writeConfig(
        configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" }),
        'odd "name" \\ x.yaml',
      );
      expect((await env.cli(["backup", odd, "--yes"])).code).toBe(0);
      snapshotAgo("src/data/home@s2", 1);
      const file = join(env.dir, "textfile", "abgleich.prom");
      mkdirSync(dirname(file)); // node_exporter's folder: there before abgleich writes into it
      const run = await env.cli(["status", odd, "--prometheus", file]);
      expect(run.code).toBe(0);
      const text = readFileSync(file, "utf8");
      const label = `config="${odd.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
      const t = (subname: string, side: string) =>
        new RegExp(
          `^abgleich_newest_snapshot_timestamp_seconds\\{${escapeRe(label)},side="${side}",dataset="${escapeRe(subname)}"\\} (\\d+)$`,
          "m",
        );
      expect(text).toMatch(t("(root)", "source"));
      expect(text).toMatch(t("(root)", "target"));
      expect(text).toMatch(t("home", "source"));
      const source = Number(must(t("home", "source").exec(text), "home source")[1]);
      const target = Number(must(t("home", "target").exec(text), "home target")[1]);
      expect(source - target).toBeGreaterThan(98 * H);
      expect(text).toContain(`abgleich_snapshot_lag{${label},dataset="home"} 1\n`);
      expect(text).toContain(`abgleich_snapshot_lag{${label},dataset="(root)"} 0\n`);
      expect(text).toMatch(
        new RegExp(`^abgleich_lag_bytes\\{${escapeRe(label)},dataset="home"\\} [1-9]\\d*$`, "m"),
      );
      expect(text).toContain(`abgleich_conflict{${label},dataset="home"} 0\n`);
      expect(text).toContain(`abgleich_resume_pending{${label},dataset="home"} 0\n`);
      expect(text).toContain(`abgleich_last_run_success{${label}} 1\n`);
      expect(text).toMatch(/^# TYPE abgleich_last_run_timestamp_seconds gauge$/m);
      // written atomically: no temp file is left beside it
      expect(readdirSync(join(env.dir, "textfile"))).toEqual(["abgleich.prom"]);

      const promtool = Bun.which("promtool");
      if (promtool === null) {
        console.log(
          "skipped promtool check metrics: promtool is not installed (Debian: apt-get install prometheus)",
        );
        return;
      }
      const check = Bun.spawnSync([promtool, "check", "metrics"], { stdin: Bun.file(file) });
      expect(check.stdout.toString() + check.stderr.toString()).toBe("");
      expect(check.exitCode).toBe(0);
    },
    LONG_MS,
  );

  test(
    "a textfile folder that does not exist (a typo) is UNKNOWN naming it, and is not made",
    async () => {
      seed(scenario([100]));
      const config = env.writeConfig(
        configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" }),
        "no-folder.yaml",
      );
      const file = join(env.dir, "node-exporer", "abgleich.prom");
      const run = await env.cli(["status", config, "--prometheus", file]);
      expect(run.code).toBe(3);
      expect(firstLineOf(run.stdout)).toBe(
        `ABGLEICH UNKNOWN - cannot write the textfile ${file}: the folder ${dirname(file)} does not exist: give --prometheus a file in the folder node_exporter reads (its --collector.textfile.directory; Debian's prometheus-node-exporter makes /var/lib/prometheus/node-exporter)`,
      );
      // a folder made from a mistyped path would be read by no one
      expect(existsSync(dirname(file))).toBe(false);
      // a write that fails in a folder that is there: UNKNOWN with the system's reason
      const blocked = join(env.dir, "blocked.prom");
      mkdirSync(blocked); // a folder where the file should go: the rename onto it fails
      const failed = await env.cli(["status", config, "--prometheus", blocked]);
      expect(failed.code).toBe(3);
      expect(firstLineOf(failed.stdout)).toStartWith(
        `ABGLEICH UNKNOWN - cannot write the textfile ${blocked}: `,
      );
    },
    LONG_MS,
  );
});

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** a port nothing listens on: bound, then released */
async function closedPort(): Promise<number> {
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: { data() {} },
  });
  const { port } = server;
  server.stop(true);
  return port;
}
