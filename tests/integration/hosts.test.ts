import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import {
  CancelledError,
  CommandTimeoutError,
  type Host,
  HostDownError,
  hostFailure,
  LocalHost,
  SshHost,
} from "../../lib/hosts/index.ts";
import { runPipeline } from "../../lib/run/pipeline.ts";
import { pidFrom } from "../helpers/pid-file.ts";
import { freePort, type SshdHandle, startSshd } from "../helpers/sshd.ts";

const scratch = mkdtempSync(join(tmpdir(), "abg-hosttest-"));
const shimDir = join(scratch, "shims");
const marker = join(scratch, `pwned-${crypto.randomUUID()}`);
const noTuning = { compression: false, cipher: "", configFile: "" };
/** a timed-out test makes bun kill its child processes; with 2 busy cores, leave room */
const SSH_TEST_TIMEOUT_MS = 60_000;

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
      expect(down.message).toStartWith(`host is not up: target (${down.reason}): `);
      expect(down.problem).toBe("connection-refused");

      const result = await host.run(["zfs", "list"]);
      expect(result.code).toBe(255);
      expect(hostFailure(host, result)?.message).toBe(down.message);
    },
    SSH_TEST_TIMEOUT_MS,
  );

  /** a new ed25519 key pair in the scratch dir; the private key's path */
  const newKey = (name: string): string => {
    const file = join(scratch, name);
    const made = Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", file]);
    if (made.exitCode !== 0) throw new Error(`ssh-keygen failed: ${made.stderr.toString()}`);
    return file;
  };
  /** the harness's options with `change` applied: ssh keeps the first value of an -o */
  const hostWith = (options: string[], swapKey?: string): SshHost => {
    const base = sshd.extraOptions.map((option) =>
      swapKey !== undefined && option.endsWith("client_key") ? swapKey : option,
    );
    const host = new SshHost({
      side: "target",
      sideConfig: { host: "127.0.0.1", user: "", port: sshd.port },
      ssh: noTuning,
      extraOptions: [...options, ...base],
    });
    hosts.push(host);
    return host;
  };
  const pingError = (host: SshHost) =>
    host.ping().then(
      () => null,
      (caught: unknown) => caught as HostDownError,
    );

  test(
    "a key the server does not know: `authentication failed`, not `host is not up`",
    async () => {
      const error = await pingError(hostWith([], newKey("stranger")));
      expect(error).toBeInstanceOf(HostDownError);
      expect(error?.problem).toBe("authentication");
      expect(error?.message).toMatch(/^authentication failed for \S+@127\.0\.0\.1 \(target\)/);
      expect(error?.message).toContain("authorized_keys");
    },
    SSH_TEST_TIMEOUT_MS,
  );

  test(
    "an unknown and a changed host key say so, with the fix",
    async () => {
      const empty = join(scratch, "known_hosts_empty");
      writeFileSync(empty, "");
      const strict = ["-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${empty}`];
      const unknown = await pingError(hostWith(strict));
      expect(unknown?.problem).toBe("host-key-unknown");
      expect(unknown?.message).toStartWith("the host key of 127.0.0.1 (target) is not known here");

      // another key recorded for this host and port: what a reinstalled host (or an attacker) shows
      const other = readFileSync(`${newKey("impostor")}.pub`, "utf8")
        .split(" ")
        .slice(0, 2);
      const recorded = join(scratch, "known_hosts_other");
      writeFileSync(recorded, `[127.0.0.1]:${sshd.port} ${other.join(" ")}\n`);
      const changed = await pingError(
        hostWith(["-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${recorded}`]),
      );
      expect(changed?.problem).toBe("host-key-changed");
      expect(changed?.message).toContain("has CHANGED");
      expect(changed?.message).toContain("ssh-keygen -R 127.0.0.1");
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
      expect(hostFailure(host, result)).toBeNull();
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
      const remotePid = await pidFrom(pidFile);
      await Bun.sleep(100);
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

// ---- a remote command that never answers: the local ssh is killed, the master stays

/**
 * pids of running local `ssh` processes whose command line mentions `text`: clients by their
 * argv, the master by the title it gives itself (`ssh: SOCKET [mux]`)
 */
function sshProcesses(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    const program = argv[0] ?? "";
    const isSsh = basename(program) === "ssh" || program.startsWith("ssh: ");
    if (isSsh && argv.some((arg) => arg.includes(text)) && running(Number(entry))) {
      pids.push(Number(entry));
    }
  }
  return pids;
}

/** alive and not a zombie */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.charAt(stat.lastIndexOf(")") + 2);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

async function clientsOf(marker: string): Promise<number[]> {
  for (let i = 0; i < 500; i++) {
    const pids = sshProcesses(marker);
    if (pids.length > 0) return pids;
    await Bun.sleep(10);
  }
  throw new Error(`no ssh client for ${marker} appeared`);
}

async function leftRunning(pids: number[]): Promise<number[]> {
  for (let i = 0; i < 50 && pids.some(running); i++) await Bun.sleep(10);
  return pids.filter(running);
}

/**
 * A remote command that hangs, findable by its marker in ssh's command line. It writes its pid
 * first, so a test can wait until it really runs: by then the mux client has handed its
 * stdout and stderr to the master, which keeps them open while the remote command lives.
 */
function hung(marker: string) {
  const pidFile = join(scratch, marker);
  return {
    argv: ["sh", "-c", 'echo $$ >"$1"; exec sleep 20', "sh", pidFile],
    async started(): Promise<void> {
      await pidFrom(pidFile, 5000);
      await Bun.sleep(50);
    },
    /** is the "remote" command (it runs on this machine too) still running, five seconds on? */
    async alive(): Promise<boolean> {
      const pid = Number(readFileSync(pidFile, "utf8").trim());
      for (let i = 0; i < 250 && running(pid); i++) await Bun.sleep(20);
      return running(pid);
    },
    /** the "remote" command runs on this machine too: do not leave it to the next test */
    cleanUp(): void {
      const pid = Number(readFileSync(pidFile, "utf8").trim());
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // ended (the JS sshd hangs up a closed channel's command)
      }
    },
  };
}

describe("SshHost: a hung remote command", () => {
  test(
    "cancelled within a second: the local ssh client is gone, the connection stays",
    async () => {
      const host = sshHostFor(sshd.port);
      await host.ping();
      const before = acceptedLogins();
      const marker = `abg-cancel-${crypto.randomUUID()}`;
      const remote = hung(marker);
      const controller = new AbortController();
      const pending = host.run(remote.argv, { signal: controller.signal });
      const clients = await clientsOf(marker);
      await remote.started();
      const started = Date.now();
      controller.abort("SIGINT");
      const error = await pending.catch((caught: unknown) => caught);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(error).toBeInstanceOf(CancelledError);
      expect((error as Error).message).toStartWith("cancelled: sh -c ");
      expect((error as Error).message).toEndWith(`${marker} on source (127.0.0.1)`);
      expect(await leftRunning(clients)).toEqual([]);
      // the remote command is stopped too (OpenSSH signals nothing when a channel without a
      // terminal closes: the remote watchdog does it)
      expect(await remote.alive()).toBe(false);
      remote.cleanUp();
      // the shared master was not in the killed group: the next command reuses it
      expect((await host.run(["echo", "still here"])).stdout).toBe("still here\n");
      expect(acceptedLogins() - before).toBe(0);
    },
    SSH_TEST_TIMEOUT_MS,
  );

  test(
    "timed out: CommandTimeoutError naming the remote command, and the local ssh is gone",
    async () => {
      const host = sshHostFor(sshd.port, "target");
      await host.ping();
      const marker = `abg-timeout-${crypto.randomUUID()}`;
      const remote = hung(marker);
      const started = Date.now();
      const pending = host.run(remote.argv, { timeoutMs: 1500 });
      const clients = await clientsOf(marker);
      await remote.started();
      const error = await pending.catch((caught: unknown) => caught);
      expect(Date.now() - started).toBeLessThan(2500);
      expect(error).toBeInstanceOf(CommandTimeoutError);
      const timeout = error as CommandTimeoutError;
      expect(timeout.argv).toEqual(remote.argv);
      expect(timeout.message).toStartWith("timed out after 1.5 s and stopped: sh -c ");
      expect(timeout.message).toEndWith(
        `${marker} on target (127.0.0.1); raise command_timeout (seconds) in the config if it needs longer`,
      );
      expect(await leftRunning(clients)).toEqual([]);
      remote.cleanUp();
    },
    SSH_TEST_TIMEOUT_MS,
  );

  test(
    "the first command, which opened the master, cancelled: nothing of ours is left after close",
    async () => {
      const host = sshHostFor(sshd.port);
      const marker = `abg-first-${crypto.randomUUID()}`;
      const remote = hung(marker);
      const controller = new AbortController();
      const pending = host.run(remote.argv, { signal: controller.signal });
      const clients = await clientsOf(marker);
      await remote.started();
      controller.abort();
      expect(await pending.catch((caught: unknown) => caught)).toBeInstanceOf(CancelledError);
      expect(await leftRunning(clients)).toEqual([]);
      const socket = host.controlPath;
      expect((await host.run(["echo", "again"])).stdout).toBe("again\n");
      expect(sshProcesses(socket).length).toBeGreaterThan(0);
      await host.close();
      // the master (`ssh: SOCKET [mux]`) lived on for the second command; close ends it
      expect(await leftRunning(sshProcesses(socket))).toEqual([]);
      remote.cleanUp();
    },
    SSH_TEST_TIMEOUT_MS,
  );

  test(
    "a process that exits without close() (a second Ctrl-C) still ends its master and removes the socket",
    async () => {
      const script = join(scratch, "exit-without-close.ts");
      writeFileSync(
        script,
        `import { SshHost } from ${JSON.stringify(join(import.meta.dir, "../../lib/hosts/ssh.ts"))};
const host = new SshHost({
  side: "source",
  sideConfig: { host: "127.0.0.1", user: "", port: ${sshd.port} },
  ssh: { compression: false, cipher: "", configFile: "" },
  extraOptions: ${JSON.stringify(sshd.extraOptions)},
});
const result = await host.run(["true"]);
console.log(host.controlPath, result.code);
process.exit(130);
`,
      );
      const child = Bun.spawnSync([process.execPath, script]);
      expect(child.exitCode).toBe(130);
      const [socket, code] = child.stdout.toString().trim().split(" ");
      expect(code).toBe("0");
      expect(existsSync(dirname(socket as string))).toBe(false);
      expect(await leftRunning(sshProcesses(socket as string))).toEqual([]);
    },
    SSH_TEST_TIMEOUT_MS,
  );
});
