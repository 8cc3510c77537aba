// `sudo: yes` through the real CLI on the simulator: a fake `sudo` first on PATH records its
// argv, refuses to run without `-n` (the real one would prompt and hang), then runs the rest.
// Every zfs call of snap, backup and cleanup must have gone through it, and nothing else: on
// localhost, and on hosts behind a loopback sshd (the remote watchdog, the wire's groups).

import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SUDOERS_EXAMPLE } from "../../lib/hosts/sudo.ts";
import type { Scenario } from "../../lib/sim/main.ts";
import { createSimEnv, type SimEnv } from "../helpers/sim-env.ts";
import { type SshdHandle, startSshd } from "../helpers/sshd.ts";

/** several CLI runs in one test (each ~0.3 s on two idle cores, several times that under load) */
const LONG_MS = 90_000;
const day = (n: number) => `202601010${n}`;

const scenario: Scenario = {
  now: 1_767_225_600,
  pools: [
    {
      name: "src",
      size: "1G",
      datasets: [
        {
          name: "data",
          snapshots: [
            { name: day(1), written: "1M" },
            { name: day(2), written: "1M" },
          ],
          written: "1M",
        },
        { name: "data/a b", snapshots: [{ name: day(1), written: "1M" }], written: "2M" },
      ],
    },
    { name: "dst", size: "1G" },
  ],
};

let env: SimEnv;
let sudoLog: string;

/** a `sudo` shim in its own directory; `body` runs after it logged its argv */
function sudoShim(name: string, body: string): string {
  const bin = join(env.dir, name);
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, "sudo"), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${sudoLog}'\n${body}\n`);
  chmodSync(join(bin, "sudo"), 0o755);
  return `${bin}:${env.path}`;
}

const config = (sourceSudo: boolean, targetSudo: boolean, over = { source: "", target: "" }) =>
  env.writeConfig(
    [
      "source:",
      "  zpool: src",
      "  prefix: data",
      `  sudo: ${sourceSudo ? "yes" : "no"}`,
      over.source,
      "target:",
      "  zpool: dst",
      "  prefix: backup",
      `  sudo: ${targetSudo ? "yes" : "no"}`,
      over.target,
    ]
      .filter((line) => line !== "")
      .join("\n")
      .concat("\n"),
    `sudo-${sourceSudo}-${targetSudo}${over.source === "" ? "" : "-ssh"}.yaml`,
  );

/** the shim that lets `-n` through, as sudo with a NOPASSWD rule for zfs would */
const ALLOWING = '[ "$1" = -n ] || exit 9\nshift\nexec "$@"';

/** snap, backup, cleanup; then every zfs call must have been one `sudo -n zfs …` call */
async function cycleThroughSudo(file: string, path: string): Promise<void> {
  for (const command of ["snap", "backup", "cleanup"]) {
    const run = await env.cli([command, file, "--yes"], { env: { PATH: path } });
    expect({ command, code: run.code, stderr: run.stderr }).toEqual({
      command,
      code: 0,
      stderr: expect.not.stringContaining("error") as unknown as string,
    });
  }
  // it all happened: a snapshot, the backup, the old source snapshot gone
  expect(env.snapshots("dst/backup")).toContain(day(2));
  expect(env.snapshots("dst/backup/a b").length).toBeGreaterThan(0);
  expect(env.snapshots("src/data")).not.toContain(day(1));

  const zfsCalls = env.calls().filter((call) => call.startsWith("zfs "));
  const viaSudo = sudoCalls();
  // sudo ran zfs alone, always with -n first
  for (const call of viaSudo) expect(call).toMatch(/^-n zfs /);
  // each zfs call is one sudo call: the same commands, as many times
  expect(viaSudo.map((call) => call.slice("-n ".length)).sort()).toEqual(zfsCalls.sort());
  // the kinds that matter were among them: both ends of a transfer, a destroy, the chain's
  // hold and the bookmark program (zfs inside a `sh -c` script, its program on stdin)
  for (const kind of [
    "zfs list",
    "zfs snapshot",
    "zfs send",
    "zfs receive",
    "zfs destroy",
    "zfs hold",
    "zfs program",
  ])
    expect(zfsCalls.some((call) => call.startsWith(kind))).toBe(true);
}

const sudoCalls = () =>
  readFileSync(sudoLog, "utf8")
    .split("\n")
    .filter((line) => line !== "");

beforeAll(() => {
  env = createSimEnv();
  sudoLog = join(env.dir, "sudo.log");
});

afterAll(() => env?.remove());

beforeEach(() => {
  env.seed(scenario);
  writeFileSync(sudoLog, "");
});

describe("sudo: yes on both sides", () => {
  test(
    "snap, backup and cleanup run every zfs command through `sudo -n`, and nothing else",
    async () => {
      // refuses without -n, as a prompt would hang an unattended run
      await cycleThroughSudo(config(true, true), sudoShim("sudo-bin", ALLOWING));
    },
    LONG_MS,
  );

  test(
    "only the side that asks for it: the target's zfs under sudo, the source's not",
    async () => {
      const path = sudoShim("sudo-bin", ALLOWING);
      const file = config(false, true);
      // -v: the tracing host in between must not lose the side's sudo for the transfer
      const run = await env.cli(["backup", file, "--yes", "-v"], { env: { PATH: path } });
      expect(run.code).toBe(0);
      expect(run.stderr).toContain("target (localhost) runs: sudo -n zfs list");
      const viaSudo = sudoCalls();
      expect(viaSudo.some((call) => call.startsWith("-n zfs receive"))).toBe(true);
      expect(viaSudo.some((call) => call.includes("zfs send"))).toBe(false);
      expect(viaSudo.some((call) => / src(\/|$| )/.test(call))).toBe(false);
    },
    LONG_MS,
  );
});

describe("sudo that wants a password", () => {
  test("stops before anything is planned, with sudo's words and the sudoers line", async () => {
    // the real sudo -n's message and exit code when the rule needs a password
    const path = sudoShim("asking-bin", "echo 'sudo: a password is required' >&2\nexit 1");
    const run = await env.cli(["snap", config(true, false), "--yes"], { env: { PATH: path } });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      "sudo on the source (localhost) wants a password for zfs (sudo: a password is required)",
    );
    expect(run.stderr).toContain(SUDOERS_EXAMPLE);
    expect(run.stderr).toContain("source.sudo: no");
    // sudo was asked, zfs never ran, nothing changed
    expect(sudoCalls().length).toBeGreaterThan(0);
    expect(env.calls().filter((call) => call.startsWith("zfs "))).toEqual([]);
    expect(env.snapshots("src/data")).toEqual([day(1), day(2)]);
  });
});

describe("sudo: yes on hosts reached by ssh", () => {
  let sshd: SshdHandle;
  let hosts = { source: "", target: "" };

  beforeAll(async () => {
    // the remote PATH finds the sudo shim first, then the simulator's zfs
    sshd = await startSshd({ env: { PATH: sudoShim("remote-sudo-bin", ALLOWING) } });
    const identityFile = join(sshd.dir, "client_key");
    const sshConfig = env.writeSshConfig([
      { alias: "source-box", port: sshd.port, identityFile },
      { alias: "target-box", port: sshd.port, identityFile },
    ]);
    const ssh = `  host: source-box\nssh:\n  config_file: ${JSON.stringify(sshConfig)}`;
    hosts = { source: ssh, target: "  host: target-box" };
  }, LONG_MS);

  afterAll(async () => {
    await sshd?.stop();
  });

  test(
    "under ssh's remote watchdog and the wire's sh groups, still only `sudo -n zfs`",
    async () => {
      // both sides are remote: the shim on the remote PATH saw every call (zstd and mbuffer,
      // where installed, put each side's stages in one `sh -c` group)
      await cycleThroughSudo(config(true, true, hosts), env.path);
    },
    2 * LONG_MS,
  );
});
