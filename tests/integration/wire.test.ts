// The wire through the whole CLI on the simulator: a backup between two "remote" hosts compresses
// with zstd (one ssh per host, the report per stage), a Ctrl-C mid-stream still leaves a resume
// token behind `zstd -d`, and direct mode runs everything in one ssh to the source. The ssh here
// is a stand-in that runs the remote command line with a local sh (what sshd does), so the
// quoting of every level is exercised; OpenSSH itself is covered by cli-ssh.test.ts.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CLI_MAIN,
  configYaml,
  createSimEnv,
  jsonEvents,
  must,
  type SimEnv,
} from "../helpers/sim-env.ts";
import { readText } from "../helpers/stdout.ts";
import { standInMissingTools } from "../helpers/wire-tools.ts";

const ODD = "a b:c.d-e";

let env: SimEnv;
let fakeBin: string;
let sshLog: string;

beforeAll(() => {
  env = createSimEnv();
  fakeBin = join(env.dir, "fake-ssh");
  sshLog = join(env.dir, "ssh.log");
  mkdirSync(fakeBin);
  // the remote command is the one argument after `--`, parsed again by a shell (as sshd does);
  // `ssh -O exit` (closing a control master) has none
  writeFileSync(
    join(fakeBin, "ssh"),
    `#!/bin/sh\nwhile [ "$#" -gt 0 ]; do\n  if [ "$1" = "--" ]; then shift; printf '%s\\n' "$*" >>'${sshLog}'; exec sh -c "$*"; fi\n  shift\ndone\nexit 0\n`,
  );
  chmodSync(join(fakeBin, "ssh"), 0o755);
  // the hosts' probe finds zstd in fakeBin too; mbuffer (buffer: auto) falls back when missing
  standInMissingTools(fakeBin, ["zstd"], "wire on the simulator");
});

afterAll(() => env?.remove());

/** `src/data` (`written` in its snapshot) and its children, an empty target pool */
function seed(written: string, targetSize = "64G", children = [ODD], childWritten = "1M"): void {
  env.seed({
    now: 1_767_225_600,
    pools: [
      {
        name: "src",
        size: "64G",
        datasets: [
          { name: "data", snapshots: [{ name: "2026010101", written }] },
          ...children.map((child) => ({
            name: `data/${child}`,
            snapshots: [{ name: "2026010101", written: childWritten }],
          })),
        ],
      },
      { name: "dst", size: targetSize },
    ],
  });
  writeFileSync(sshLog, "");
}

const PATH = () => `${fakeBin}:${env.path}`;

function remoteConfig(extra: string, name = "wire.yaml"): string {
  return env.writeConfig(
    configYaml(
      { zpool: "src", prefix: "data", host: "source-host" },
      { zpool: "dst", prefix: "backup", host: "target-host" },
      extra,
    ),
    name,
  );
}

const noteOf = (stdout: string) =>
  jsonEvents(stdout)
    .filter((e) => e.event === "note")
    .map((e) => String(e.text));

describe("the wire on the simulator", () => {
  test("relayed with zstd: the wire is shown, the streams arrive, one ssh per host and transfer", async () => {
    seed("8M");
    const config = remoteConfig("transfer:\n  compression: zstd\n  buffer: off\n");
    const run = await env.cli(["backup", config, "--yes", "--json"], { env: { PATH: PATH() } });
    expect(run.stderr).not.toContain("error");
    expect(run.code).toBe(0);
    expect(noteOf(run.stdout)).toContain("wire: zstd over ssh");
    expect(env.guid("dst/backup@2026010101")).toBe(env.guid("src/data@2026010101"));
    expect(env.guid(`dst/backup/${ODD}@2026010101`)).toBe(env.guid(`src/data/${ODD}@2026010101`));
    expect(env.calls()).toContain(`zfs send -v -P -L -c -e src/data/${ODD}@2026010101`);
    // per transfer: one command line to each host holding both of its stages
    const lines = (await Bun.file(sshLog).text()).split("\n");
    const groups = lines.filter(
      (l) => l.startsWith("sh -c ") && l.includes("zstd") && !l.includes("command -v"),
    );
    expect(groups).toHaveLength(4);
    expect(groups.filter((l) => l.includes("zfs send") && l.includes("zstd -c -3"))).toHaveLength(
      2,
    );
    expect(groups.filter((l) => l.includes("zstd -dc") && l.includes("zfs receive"))).toHaveLength(
      2,
    );
    // the tools were asked once per host, not per dataset
    expect(lines.filter((l) => l.includes("command -v"))).toHaveLength(2);

    // nothing new to send: no host is asked for its tools, no wire is shown
    writeFileSync(sshLog, "");
    const again = await env.cli(["backup", config, "--yes", "--json"], { env: { PATH: PATH() } });
    expect(again.code).toBe(0);
    expect(noteOf(again.stdout).filter((note) => note.startsWith("wire:"))).toEqual([]);
    const asked = (await Bun.file(sshLog).text()).split("\n");
    expect(asked.some((l) => l.includes("zfs list"))).toBe(true);
    expect(asked.filter((l) => l.includes("command -v"))).toEqual([]);
  }, 60_000);

  test("a receive failing behind zstd -d is reported as the receive's, with its message", async () => {
    // the target pool is too small: the receive behind zstd -d and mbuffer runs out of space
    seed("64M", "16M");
    const config = remoteConfig("transfer:\n  compression: zstd\n", "fail.yaml");
    const run = await env.cli(["backup", config, "--yes"], { env: { PATH: PATH() } });
    expect(run.code).toBe(1);
    const text = run.stdout + run.stderr;
    // the wire is said under the stage's heading, not above it
    expect(run.stdout.indexOf("── backup ──")).toBeGreaterThanOrEqual(0);
    expect(run.stdout.indexOf("── backup ──")).toBeLessThan(run.stdout.indexOf("wire: zstd"));
    expect(run.stdout.match(/── backup ──/g)).toHaveLength(1);
    // the last stage, the receive, is blamed: not zstd -d or mbuffer before it
    expect(text).toMatch(
      /command failed \(stage (\d) of \1\): zfs receive -s -u -o 'canmount=noauto' dst\/backup/,
    );
  }, 60_000);

  test("Ctrl-C mid-stream with compression on: the target keeps a resume token", async () => {
    // long enough that the stream is still flowing when the cancel's drain grace (15 s) ends:
    // the stand-in ssh is a plain sh, so cutting it does not end the far send as a closed
    // ssh channel would; the pipeline's process group is stopped then, mid-stream
    seed("60G");
    const config = remoteConfig("transfer:\n  compression: zstd\n", "cancel.yaml");
    const child = Bun.spawn([process.execPath, CLI_MAIN, "backup", config, "--yes", "--json"], {
      env: { ...process.env, PATH: PATH(), TZ: "UTC", ABGLEICH_LOCK_DIR: join(env.dir, "locks") },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = readText(child.stdout);
    await out.until('"event":"progress"');
    await Bun.sleep(300);
    child.kill("SIGINT");
    const stdout = await out.rest();
    expect(await child.exited).toBe(130);
    expect(noteOf(stdout)[0]).toStartWith("wire: zstd over ssh");
    // the receive behind zstd -d saw a cut stream and saved its state
    for (let i = 0; i < 50 && !env.list().get("dst/backup")?.token; i++) await Bun.sleep(100);
    expect(env.list().get("dst/backup")?.token).toBeTruthy();
    expect(env.snapshots("dst/backup")).toEqual([]);
  }, 60_000);

  test("source and target on one host: each transfer is one ssh command there, send | receive", async () => {
    seed("4M");
    const config = env.writeConfig(
      configYaml(
        { zpool: "src", prefix: "data", host: "nas" },
        { zpool: "dst", prefix: "backup", host: "nas" },
        "transfer:\n  direct: yes\n",
      ),
      "one-host.yaml",
    );
    const run = await env.cli(["backup", config, "--yes", "--json"], { env: { PATH: PATH() } });
    expect(run.stderr).not.toContain("error");
    expect(run.code).toBe(0);
    expect(noteOf(run.stdout)).toContain(
      "wire: local pipe on nas (source and target are one host)",
    );
    expect(env.guid(`dst/backup/${ODD}@2026010101`)).toBe(env.guid(`src/data/${ODD}@2026010101`));
    const lines = (await Bun.file(sshLog).text()).split("\n");
    // no tools asked, no reachability check: nothing crosses a wire
    expect(lines.filter((l) => l.includes("command -v") || l.includes("ConnectTimeout"))).toEqual(
      [],
    );
    const transfers = lines.filter((l) => l.includes("zfs send -v"));
    expect(transfers).toHaveLength(2);
    for (const line of transfers) {
      expect(line).toStartWith("sh -c ");
      expect(line).toMatch(/zfs receive -s -u -o '?canmount=noauto'? '?dst\/backup/);
      expect(line).not.toMatch(/zstd|lz4|mbuffer|ssh /);
    }
    // a receive that fails there is still the receive's failure, with what it said
    seed("64M", "16M");
    const full = await env.cli(["backup", config, "--yes"], { env: { PATH: PATH() } });
    expect(full.code).toBe(1);
    expect(full.stdout + full.stderr).toMatch(
      /command failed \(stage 2 of 2\): zfs receive -s -u -o 'canmount=noauto' dst\/backup\n.*exit code: 1\n.*stderr:\n.*out of space/,
    );
  }, 60_000);

  test("direct: one ssh to the source, which runs ssh to the target itself", async () => {
    seed("4M");
    const config = remoteConfig(
      "transfer:\n  compression: zstd\n  direct: yes\n  buffer: off\n",
      "direct.yaml",
    );
    const run = await env.cli(["backup", config, "--yes", "--json"], { env: { PATH: PATH() } });
    expect(run.stderr).not.toContain("error");
    expect(run.code).toBe(0);
    expect(noteOf(run.stdout)[0]).toStartWith(
      "wire: zstd over ssh, direct from source-host to target-host",
    );
    expect(env.guid(`dst/backup/${ODD}@2026010101`)).toBe(env.guid(`src/data/${ODD}@2026010101`));
    const lines = (await Bun.file(sshLog).text()).split("\n");
    // the reachability check ran on the source, then each transfer's inner ssh
    expect(
      lines.some((l) =>
        /ssh -o 'BatchMode=yes' -o 'ConnectTimeout=10' .*target-host -- true/.test(l),
      ),
    ).toBe(true);
    // per transfer: one line to the source holding all, whose inner ssh reaches the target
    const groups = lines.filter((l) => l.startsWith("sh -c ") && l.includes("zfs receive"));
    expect(groups.filter((l) => l.includes("zfs send"))).toHaveLength(2);
    expect(groups.filter((l) => !l.includes("zfs send") && l.includes("zstd -dc"))).toHaveLength(2);
  }, 60_000);
});

describe("batches: several datasets per ssh session", () => {
  const CHILDREN = ["c1", "c2", "c3", "c4", "c5"];
  const seedTree = () => seed("1M", "64G", CHILDREN, "2M");
  const groupsOf = async () =>
    (await Bun.file(sshLog).text())
      .split("\n")
      .filter((l) => l.startsWith("sh -c ") && l.includes("zstd") && !l.includes("command -v"));

  test("the root alone, then its five children through one session per host", async () => {
    seedTree();
    const config = remoteConfig("transfer:\n  compression: zstd\n  buffer: off\n", "b.yaml");
    const run = await env.cli(["backup", config, "--yes", "--json"], { env: { PATH: PATH() } });
    expect(run.stderr).not.toContain("error");
    expect(run.code).toBe(0);
    for (const child of CHILDREN)
      expect(env.guid(`dst/backup/${child}@2026010101`)).toBe(
        env.guid(`src/data/${child}@2026010101`),
      );
    const groups = await groupsOf();
    // 2 for the root, 2 for the batch of children: its sends and its receives each in one line
    expect(groups).toHaveLength(4);
    const batch = groups.filter((l) => l.includes("src/data/c1@"));
    expect(batch).toHaveLength(1);
    for (const child of CHILDREN) expect(batch[0]).toContain(`src/data/${child}@2026010101`);
    // every transfer is its own action to the user: started and ended, each with its bytes
    const events = jsonEvents(run.stdout);
    const done = events.filter((e) => e.event === "action-done" && e.kind === "send");
    expect(done).toHaveLength(6);
    expect(done.every((e) => e.ok === true)).toBe(true);
    const started = events.filter((e) => e.event === "action-start" && e.kind === "send");
    expect(started).toHaveLength(6);
    // one at a time, as its receive takes it: each ends before the next begins
    const order = events
      .filter((e) => (e.event === "action-start" || e.event === "action-done") && e.kind === "send")
      .map((e) => `${e.event === "action-start" ? "+" : "-"}${e.dataset}`);
    expect(order).toEqual(
      ["dst/backup", ...CHILDREN.map((c) => `dst/backup/${c}`)].flatMap((name) => [
        `+${name}`,
        `-${name}`,
      ]),
    );
  }, 60_000);

  test("a receive refused inside a batch: those before it arrived, it failed, those after it are sent again", async () => {
    seedTree();
    // a zfs that refuses to receive into c3 (as a real receive refuses a stream it cannot
    // take), leaving the rest of the batch's stream unread
    const refusing = join(env.dir, "refusing-zfs");
    mkdirSync(refusing, { recursive: true });
    const real = Bun.which("zfs", { PATH: env.path });
    writeFileSync(
      join(refusing, "zfs"),
      `#!/bin/sh\ncase "$*" in *"receive"*"dst/backup/c3") echo "cannot receive new filesystem stream: refused for the test" >&2; exit 1;; esac\nexec '${real}' "$@"\n`,
    );
    chmodSync(join(refusing, "zfs"), 0o755);
    const config = remoteConfig("transfer:\n  compression: zstd\n  buffer: off\n", "r.yaml");
    const run = await env.cli(["backup", config, "--yes", "--json"], {
      env: { PATH: `${refusing}:${PATH()}` },
    });
    expect(run.code).toBe(1);
    for (const child of ["c1", "c2", "c4", "c5"])
      expect(env.guid(`dst/backup/${child}@2026010101`)).toBe(
        env.guid(`src/data/${child}@2026010101`),
      );
    expect(env.list().has("dst/backup/c3")).toBe(false);
    const done = jsonEvents(run.stdout).filter(
      (e) => e.event === "action-done" && e.kind === "send",
    );
    const failed = done.filter((e) => e.ok !== true);
    expect(failed).toHaveLength(1);
    const error = String(failed[0]?.error);
    // reported as that transfer's own receive, with its message
    expect(error).toContain("zfs receive -s -u -o 'canmount=noauto' dst/backup/c3");
    expect(error).toContain("refused for the test");
    expect(done).toHaveLength(6);
    // c4 and c5 went again, in a batch of their own
    const groups = await groupsOf();
    const again = groups.filter((l) => l.includes("/c4") && !l.includes("/c3"));
    expect(again.length).toBe(2);
  }, 60_000);

  test("a receive in a batch that arrives but cannot set canmount (a user without the permission) is warned of", async () => {
    seedTree();
    // as OpenZFS does for a `zfs allow` user without `canmount`: the stream arrives, the
    // property is not set, a line on stderr, exit 0
    const unallowed = join(env.dir, "unallowed-zfs");
    mkdirSync(unallowed, { recursive: true });
    const real = Bun.which("zfs", { PATH: env.path });
    writeFileSync(
      join(unallowed, "zfs"),
      `#!/bin/sh\ncase "$*" in "receive -s -u -o canmount=noauto dst/backup/c2") '${real}' receive -s -u dst/backup/c2; c=$?; echo "cannot receive canmount property on dst/backup/c2: permission denied" >&2; exit $c;; esac\nexec '${real}' "$@"\n`,
    );
    chmodSync(join(unallowed, "zfs"), 0o755);
    const config = remoteConfig("transfer:\n  compression: zstd\n  buffer: off\n", "u.yaml");
    const run = await env.cli(["backup", config, "--yes"], {
      env: { PATH: `${unallowed}:${PATH()}` },
    });
    expect(run.code).toBe(0);
    for (const child of CHILDREN)
      expect(env.guid(`dst/backup/${child}@2026010101`)).toBe(
        env.guid(`src/data/${child}@2026010101`),
      );
    const text = run.stdout + run.stderr;
    expect(text).toContain(
      "dst/backup/c2 arrived, but zfs receive said: cannot receive canmount property on dst/backup/c2: permission denied.",
    );
    expect(text).toContain("zfs set canmount=noauto dst/backup/c2");
    expect(text.match(/arrived, but zfs receive said/g)).toHaveLength(1);
  }, 60_000);
});

test("direct that the source cannot use is refused before any transfer", async () => {
  seed("1M");
  const broken = join(env.dir, "broken-ssh");
  mkdirSync(broken, { recursive: true });
  // this machine's ssh works; the source host's own ssh to the target does not
  writeFileSync(
    join(broken, "ssh"),
    `#!/bin/sh\ncase "$*" in *ConnectTimeout=10*target-host*) echo "Permission denied (publickey)." >&2; exit 255;; esac\nexec ${join(fakeBin, "ssh")} "$@"\n`,
  );
  chmodSync(join(broken, "ssh"), 0o755);
  const config = remoteConfig("transfer:\n  direct: yes\n", "direct-broken.yaml");
  const run = await env.cli(["backup", config, "--yes"], {
    env: { PATH: `${broken}:${PATH()}` },
  });
  expect(run.code).toBe(1);
  expect(run.stdout + run.stderr).toContain(
    "transfer.direct: the source (source-host) cannot reach the target as target-host on its own",
  );
  expect(run.stdout + run.stderr).toContain("Permission denied (publickey).");
  expect(env.calls().filter((c) => c.startsWith("zfs receive"))).toEqual([]);
  expect(must(env.list().get("src/data"), "source").type).toBe("filesystem");
}, 60_000);
