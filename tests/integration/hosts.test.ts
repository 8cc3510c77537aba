import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  type Host,
  HostDownError,
  isSshFailure,
  LocalHost,
  SshHost,
} from "../../lib/hosts/index.ts";
import { runPipeline } from "../../lib/run/pipeline.ts";
import { freePort, type SshdHandle, startSshd } from "../helpers/sshd.ts";

const scratch = mkdtempSync(join(tmpdir(), "abg-hosttest-"));
const shimDir = join(scratch, "shims");
const marker = join(scratch, `pwned-${crypto.randomUUID()}`);
const noTuning = { compression: false, cipher: "", configFile: "" };
/** a timed-out test makes bun kill its child processes; with 2 busy cores, leave room */
const SSH_TEST_TIMEOUT_MS = 20_000;

let sshd: SshdHandle;
const hosts: SshHost[] = [];

function sshHostFor(port: number, side: "source" | "target" = "source"): SshHost {
  const host = new SshHost({
    side,
    sideConfig: { host: "127.0.0.1", user: "", port },
    ssh: noTuning,
    extraOptions: sshd.extraOptions,
  });
  hosts.push(host);
  return host;
}

beforeAll(async () => {
  // A `zfs` shim first on the remote PATH, as the ZFS simulator will use it.
  Bun.spawnSync(["mkdir", "-p", shimDir]);
  writeFileSync(join(shimDir, "zfs"), '#!/bin/sh\necho "shim zfs $*"\n');
  chmodSync(join(shimDir, "zfs"), 0o755);
  sshd = await startSshd({ env: { PATH: `${shimDir}:/usr/sbin:/usr/bin:/sbin:/bin` } });
}, SSH_TEST_TIMEOUT_MS);

afterAll(async () => {
  // Close the hosts first (their masters hold sshd sessions), then sshd, even after failures.
  await Promise.allSettled(hosts.map((host) => host.close()));
  await sshd?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const HOSTILE = [
  "a b",
  `x;touch ${marker}`,
  `$(touch ${marker})`,
  `\`touch ${marker}\``,
  "$(id)",
  "'",
  `it's "quoted"`,
  "*",
  "a\nb",
  "-n",
  "~root",
  "$HOME",
  "ünïcödé 🐟",
  "",
];

function acceptedLogins(): number {
  return (sshd.log().match(/Accepted publickey/g) ?? []).length;
}

describe.each([
  ["LocalHost", () => new LocalHost("source") as Host],
  ["SshHost", () => sshHostFor(sshd.port) as Host],
])("%s", (_name, makeHost) => {
  test(
    "hostile arguments arrive exactly as given, and nothing runs",
    async () => {
      const host = makeHost();
      for (const arg of HOSTILE) {
        const result = await host.run(["printf", "%s\n", arg]);
        expect({ arg, ...result }).toEqual({ arg, code: 0, stdout: `${arg}\n`, stderr: "" });
      }
      expect(existsSync(marker)).toBe(false);
    },
    SSH_TEST_TIMEOUT_MS,
  );

  test(
    "exit codes and stderr of the command come back, stdin goes in",
    async () => {
      const host = makeHost();
      const result = await host.run(["sh", "-c", "cat; echo problem >&2; exit 7"], {
        stdin: "in\n",
      });
      expect(result).toEqual({ code: 7, stdout: "in\n", stderr: "problem\n" });
    },
    SSH_TEST_TIMEOUT_MS,
  );
});

describe("SshHost against a real sshd", () => {
  test(
    "many commands, even started together, share one TCP connection",
    async () => {
      const before = acceptedLogins();
      const host = sshHostFor(sshd.port);
      const results = await Promise.all(Array.from({ length: 4 }, () => host.run(["true"])));
      for (let i = 0; i < 6; i++) results.push(await host.run(["echo", String(i)]));
      expect(results.map((result) => result.code)).toEqual(Array(10).fill(0));
      await Bun.sleep(100);
      expect(acceptedLogins() - before).toBe(1);

      const check = Bun.spawnSync([
        "ssh",
        "-o",
        `ControlPath=${host.controlPath}`,
        "-O",
        "check",
        "127.0.0.1",
      ]);
      expect(check.exitCode).toBe(0);
    },
    SSH_TEST_TIMEOUT_MS,
  );

  test(
    "later commands wait for the master, not for a slow first command",
    async () => {
      const before = acceptedLogins();
      const host = sshHostFor(sshd.port);
      const started = Date.now();
      const slow = host.run(["sleep", "2"]);
      const quick = await host.run(["echo", "quick"]);
      expect(quick.stdout).toBe("quick\n");
      expect(Date.now() - started).toBeLessThan(1500);
      expect((await slow).code).toBe(0);
      expect(acceptedLogins() - before).toBe(1);
    },
    SSH_TEST_TIMEOUT_MS,
  );

  test(
    "close ends the master and removes the socket directory, quickly",
    async () => {
      const host = sshHostFor(sshd.port);
      await host.ping();
      const socketDir = dirname(host.controlPath);
      expect(existsSync(host.controlPath)).toBe(true);
      const started = Date.now();
      await host.close();
      expect(Date.now() - started).toBeLessThan(2000);
      expect(existsSync(socketDir)).toBe(false);
      // Closing twice, or a host that never connected, is harmless.
      await host.close();
      await sshHostFor(sshd.port).close();
    },
    SSH_TEST_TIMEOUT_MS,
  );

  test(
    "the remote PATH starts with the test's shim dir (sshd SetEnv)",
    async () => {
      const result = await sshHostFor(sshd.port).run(["zfs", "list", "-H"]);
      expect(result).toEqual({ code: 0, stdout: "shim zfs list -H\n", stderr: "" });
    },
    SSH_TEST_TIMEOUT_MS,
  );

  test(
    "a host with nothing listening is down, with ssh's reason",
    async () => {
      const port = freePort();
      const host = sshHostFor(port, "target");
      const error = await host.ping().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(HostDownError);
      const down = error as HostDownError;
      expect(down.side).toBe("target");
      expect(down.reason).toBe(`ssh: connect to host 127.0.0.1 port ${port}: Connection refused`);
      expect(down.message).toBe(`host is not up: target (${down.reason})`);

      const result = await host.run(["zfs", "list"]);
      expect(result.code).toBe(255);
      expect(isSshFailure(result)).toBe(true);
    },
    SSH_TEST_TIMEOUT_MS,
  );

  test(
    "a remote command's own 255 is not taken for an ssh failure",
    async () => {
      const host = sshHostFor(sshd.port);
      const result = await host.run([
        "sh",
        "-c",
        "echo 'cannot resume send: resume token is corrupt (incorrect checksum)' >&2; exit 255",
      ]);
      expect(result.code).toBe(255);
      expect(isSshFailure(result)).toBe(false);
    },
    SSH_TEST_TIMEOUT_MS,
  );

  test(
    "a transfer pipeline through ssh: remote send | local receive",
    async () => {
      const host = sshHostFor(sshd.port);
      const size = 16 * 1024 * 1024;
      const result = await runPipeline([
        host.wrap(["head", "-c", String(size), "/dev/zero"]),
        ["wc", "-c"],
      ]);
      expect(result).toMatchObject({ ok: true, codes: [0, 0], stdout: `${size}\n` });

      // A hostile argument behind ssh inside a pipeline stays data too.
      const text = `x;touch ${marker} $(touch ${marker})`;
      const echoed = await runPipeline([host.wrap(["printf", "%s", text]), ["cat"]]);
      expect(echoed.stdout).toBe(text);
      expect(existsSync(marker)).toBe(false);
    },
    SSH_TEST_TIMEOUT_MS,
  );

  test(
    "aborting a pipeline through ssh ends the remote command; the host keeps working",
    async () => {
      const host = sshHostFor(sshd.port);
      await host.ping();
      const pidFile = join(scratch, "remote-pid");
      const controller = new AbortController();
      const sender = [
        "sh",
        "-c",
        'echo $$ >"$1"; exec head -c 100000000000 /dev/zero',
        "sh",
        pidFile,
      ];
      const running = runPipeline([host.wrap(sender), ["wc", "-c"]], { signal: controller.signal });
      while (!existsSync(pidFile)) await Bun.sleep(10);
      await Bun.sleep(100);
      const remotePid = Number(await Bun.file(pidFile).text());
      expect(existsSync(`/proc/${remotePid}`)).toBe(true);
      controller.abort();
      expect((await running).cancelled).toBe(true);
      const deadline = Date.now() + 3000;
      while (existsSync(`/proc/${remotePid}`) && Date.now() < deadline) await Bun.sleep(20);
      expect(existsSync(`/proc/${remotePid}`)).toBe(false);
      expect((await host.run(["echo", "still here"])).stdout).toBe("still here\n");
    },
    SSH_TEST_TIMEOUT_MS,
  );
});
