import { afterAll, afterEach, describe, expect, spyOn, test } from "bun:test";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { SideConfig } from "../../lib/config/types.ts";
import {
  CancelledError,
  CommandTimeoutError,
  closeAll,
  createHost,
  HostDownError,
  hostFailure,
  isSshFailure,
  LocalHost,
  SshHost,
  sshReason,
} from "../../lib/hosts/index.ts";

const remote: SideConfig = {
  zpool: "tank",
  prefix: "",
  host: "backup.example",
  user: "",
  port: null,
  sudo: false,
};
const noTuning = { compression: false, cipher: "", configFile: "" };
const opened: SshHost[] = [];

function sshHost(sideConfig: Partial<SideConfig>, ssh = noTuning, extraOptions?: string[]) {
  const host = new SshHost({
    side: "target",
    sideConfig: { ...remote, ...sideConfig },
    ssh,
    extraOptions,
  });
  opened.push(host);
  return host;
}

afterEach(async () => {
  await closeAll(opened.splice(0));
});

describe("createHost", () => {
  test("only the literal localhost is local", () => {
    expect(createHost("source", { ...remote, host: "localhost" }, noTuning)).toBeInstanceOf(
      LocalHost,
    );
    const loopback = createHost("source", { ...remote, host: "127.0.0.1" }, noTuning);
    expect(loopback).toBeInstanceOf(SshHost);
    opened.push(loopback as SshHost);
  });
});

describe("SshHost.wrap", () => {
  test("builds the documented ssh command with the remote command as one quoted argument", () => {
    const host = sshHost(
      { user: "backup", port: 2222 },
      { compression: true, cipher: "aes128-ctr", configFile: "/etc/abgleich/ssh_config" },
    );
    const argv = host.wrap(["zfs", "list", "-o", "name", "tank/a b"]);
    expect(argv).toEqual([
      "ssh",
      "-F",
      "/etc/abgleich/ssh_config",
      "-p",
      "2222",
      "-o",
      "Compression=yes",
      "-c",
      "aes128-ctr",
      "-o",
      "BatchMode=yes",
      "-o",
      "ControlMaster=auto",
      "-o",
      `ControlPath=${host.controlPath}`,
      "-o",
      "ControlPersist=60",
      "-o",
      "ConnectTimeout=20",
      "-o",
      "ServerAliveInterval=15",
      "-o",
      "ServerAliveCountMax=4",
      "-l",
      "backup",
      "backup.example",
      "--",
      "zfs list -o name 'tank/a b'",
    ]);
  });

  test("defaults leave out port, cipher and user, and say Compression=no", () => {
    const argv = sshHost({}).wrap(["true"]);
    expect(argv).not.toContain("-p");
    expect(argv).not.toContain("-c");
    expect(argv).not.toContain("-l");
    expect(argv).not.toContain("-F");
    expect(argv).toContain("Compression=no");
    expect(argv.slice(-3)).toEqual(["backup.example", "--", "true"]);
  });

  test("every ssh carries keepalives: a dead connection is given up after about a minute", () => {
    const argv = sshHost({}).wrap(["zfs", "list"]);
    const options = argv.flatMap((word, i) => (argv[i - 1] === "-o" ? [word] : []));
    expect(options).toContain("ServerAliveInterval=15");
    expect(options).toContain("ServerAliveCountMax=4");
    // before the destination: ssh reads options only there
    expect(argv.indexOf("ServerAliveCountMax=4")).toBeLessThan(argv.indexOf("backup.example"));
  });

  test("extra options come first, so they win over the defaults", () => {
    const argv = sshHost({}, noTuning, ["-F", "/dev/null", "-i", "key"]).wrap(["true"]);
    expect(argv.slice(0, 5)).toEqual(["ssh", "-F", "/dev/null", "-i", "key"]);
  });

  test("the control socket lives in a private, short directory removed on close", async () => {
    const host = sshHost({});
    const socket = host.controlPath;
    expect(socket.length).toBeLessThanOrEqual(100);
    expect(statSync(dirname(socket)).mode & 0o777).toBe(0o700);
    await host.close();
    expect(existsSync(dirname(socket))).toBe(false);
  });

  test("hosts get separate sockets", () => {
    expect(sshHost({}).controlPath).not.toBe(sshHost({}).controlPath);
  });
});

describe("SshHost rejects values ssh would read as options", () => {
  test.each([
    ["host -o…", { host: "-oProxyCommand=touch /tmp/x" }, /ssh host must not start with "-"/],
    ["user -o…", { user: "-oProxyCommand=x" }, /ssh user must not start with "-"/],
    ["empty host", { host: "" }, /ssh host for target is empty/],
    ["host with a space", { host: "a b" }, /ssh host must not contain whitespace/],
    ["port 0", { port: 0 }, /ssh port must be an integer from 1 to 65535, got 0/],
  ])("%s", (_label, sideConfig, message) => {
    expect(() => sshHost(sideConfig)).toThrow(message);
  });

  test("a cipher with a leading dash", () => {
    expect(() => sshHost({}, { compression: false, cipher: "-oX=y", configFile: "" })).toThrow(
      /ssh cipher must not start with "-"/,
    );
  });
});

describe("SshHost.ping", () => {
  test("asks the host once per run; a failed answer is asked again", async () => {
    const host = sshHost({});
    const run = spyOn(host, "run")
      .mockResolvedValueOnce({
        code: 255,
        stdout: "",
        stderr: "ssh: connect to host x: Connection refused\n",
      })
      .mockResolvedValue({ code: 0, stdout: "", stderr: "" });
    await expect(host.ping()).rejects.toThrow(
      "host is not up: target (ssh: connect to host x: Connection refused)",
    );
    await host.ping();
    await host.ping();
    expect(run).toHaveBeenCalledTimes(2);
  });
});

describe("hostFailure: did the connection fail, or the command?", () => {
  const remoteHost = { side: "target" as const, name: "backup.example", isLocal: false };
  const localHost = { side: "source" as const, name: "localhost", isLocal: true };

  test("ssh's own messages with exit 255: a connection failure, with ssh's reason", () => {
    for (const stderr of [
      "ssh: connect to host 127.0.0.1 port 1: Connection refused\n",
      "root@127.0.0.1: Permission denied (publickey).\n",
      "Host key verification failed.\n",
      "Connection closed by 127.0.0.1 port 22\n",
      "ssh: Could not resolve hostname nowhere: Name or service not known\n",
      "client_loop: send disconnect: Broken pipe\n",
      "Timeout, server 10.0.0.7 not responding.\n",
      "Connection to 10.0.0.7 closed by remote host.\n",
      "mux_client_request_session: read from master failed: Broken pipe\n",
    ]) {
      const failure = hostFailure(remoteHost, { code: 255, stderr });
      expect(failure).toBeInstanceOf(HostDownError);
      expect(failure?.side).toBe("target");
      expect(failure?.lost).toBe(false);
      expect(failure?.reason).toBe(sshReason(stderr));
      // the message names the kind of failure (tests/unit/ssh-failure.test.ts) and ssh's words
      expect(failure?.message).toContain(sshReason(stderr).replace(/^ssh: /, ""));
      expect(isSshFailure({ code: 255, stderr })).toBe(true);
    }
  });

  test("255 without a word: the connection was lost", () => {
    const failure = hostFailure(remoteHost, { code: 255, stderr: " \n" });
    expect(failure?.lost).toBe(true);
    expect(failure?.message).toBe("the ssh connection to the target (backup.example) was lost");
  });

  test("zfs's own 255, other exit codes and local hosts are the command's answer", () => {
    const corruptToken = "cannot resume send: resume token is corrupt (incorrect checksum)\n";
    expect(hostFailure(remoteHost, { code: 255, stderr: corruptToken })).toBeNull();
    expect(isSshFailure({ code: 255, stderr: corruptToken })).toBe(false);
    const refused = "ssh: connect to host x: Connection refused";
    expect(hostFailure(remoteHost, { code: 1, stderr: refused })).toBeNull();
    expect(hostFailure(remoteHost, { code: 0, stderr: "" })).toBeNull();
    expect(hostFailure(localHost, { code: 255, stderr: refused })).toBeNull();
    expect(hostFailure(localHost, { code: 255, stderr: "" })).toBeNull();
  });

  test("sshReason is the last non-empty line, trimmed", () => {
    expect(
      sshReason("Warning: something\nssh: connect to host a port 1: Connection refused\r\n\n"),
    ).toBe("ssh: connect to host a port 1: Connection refused");
    expect(sshReason("")).toBe("");
  });
});

describe("LocalHost", () => {
  const local = new LocalHost("source");

  test("runs argv without a shell and never throws on failure", async () => {
    expect(await local.run(["printf", "%s", "$(id);*"])).toEqual({
      code: 0,
      stdout: "$(id);*",
      stderr: "",
    });
    const failed = await local.run(["sh", "-c", "echo oops >&2; exit 3"]);
    expect(failed).toEqual({ code: 3, stdout: "", stderr: "oops\n" });
  });

  test("passes stdin", async () => {
    expect((await local.run(["cat"], { stdin: "a\nb" })).stdout).toBe("a\nb");
  });

  test("a command that does not exist gives 127 and a message naming it", async () => {
    const result = await local.run(["abgleich-no-such-command"]);
    expect(result.code).toBe(127);
    expect(result.stderr).toContain("abgleich-no-such-command");
  });

  test("wrap leaves argv alone", () => {
    expect(local.wrap(["zfs", "send", "a b"])).toEqual(["zfs", "send", "a b"]);
  });
});

// ---- timeouts and cancellation: the command and everything it started is killed

const scratch = mkdtempSync(join(tmpdir(), "abg-hostunit-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * An executable that records its pid and its child's in `pids` and then hangs: a `zfs` (or
 * `ssh`) that never answers. `ignoreTerm` makes both shrug off SIGTERM.
 */
function hungCommand(name: string, options: { ignoreTerm?: boolean } = {}) {
  const dir = mkdtempSync(join(scratch, "bin-"));
  const pids = join(dir, "pids");
  const trap = options.ignoreTerm ? "trap '' TERM\n" : "";
  writeFileSync(
    join(dir, name),
    `#!/bin/sh\n${trap}echo $$ >>'${pids}'\nsleep 30 &\necho $! >>'${pids}'\nwait\n`,
  );
  chmodSync(join(dir, name), 0o755);
  return {
    dir,
    path: join(dir, name),
    /** the pids once both are written */
    async pids(): Promise<number[]> {
      for (let i = 0; i < 500; i++) {
        const text = existsSync(pids) ? readFileSync(pids, "utf8") : "";
        const found = text.split("\n").filter((line) => line !== "");
        if (found.length >= 2) return found.map(Number);
        await Bun.sleep(10);
      }
      throw new Error(`${name} did not start`);
    },
  };
}

/** alive and not a zombie (a dead child its parent has not reaped yet) */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** the pids still running after a short settling time (init reaps orphans asynchronously) */
async function leftRunning(pids: number[]): Promise<number[]> {
  for (let i = 0; i < 50 && pids.some(running); i++) await Bun.sleep(10);
  return pids.filter(running);
}

describe("LocalHost: timeout and cancel", () => {
  const local = new LocalHost("source");

  test("a hung command times out with CommandTimeoutError and leaves no process", async () => {
    const zfs = hungCommand("zfs");
    const started = Date.now();
    const error = await local
      .run([zfs.path, "list", "-H", "tank/a b"], { timeoutMs: 300 })
      .catch((caught: unknown) => caught);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error).toBeInstanceOf(CommandTimeoutError);
    const timeout = error as CommandTimeoutError;
    expect(timeout.side).toBe("source");
    expect(timeout.host).toBe("localhost");
    expect(timeout.timeoutMs).toBe(300);
    expect(timeout.configKey).toBe("command_timeout");
    expect(timeout.command).toBe(`${zfs.path} list -H 'tank/a b'`);
    expect(timeout.message).toBe(
      `timed out after 0.3 s and stopped: ${zfs.path} list -H 'tank/a b' on source (localhost); raise command_timeout (seconds) in the config if it needs longer`,
    );
    expect(await leftRunning(await zfs.pids())).toEqual([]);
  });

  test("an AbortSignal cancels a hung command within a second and leaves no process", async () => {
    const zfs = hungCommand("zfs");
    const controller = new AbortController();
    const pending = local.run([zfs.path, "diff", "-H", "tank@s1"], {
      signal: controller.signal,
      timeoutMs: 60_000,
    });
    const pids = await zfs.pids();
    const started = Date.now();
    controller.abort("SIGINT");
    const error = await pending.catch((caught: unknown) => caught);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(error).toBeInstanceOf(CancelledError);
    expect((error as CancelledError).reason).toBe("SIGINT");
    expect((error as CancelledError).message).toBe(
      `cancelled: ${zfs.path} diff -H tank@s1 on source (localhost)`,
    );
    expect(await leftRunning(pids)).toEqual([]);
  });

  test("a command that ignores SIGTERM is killed after the grace period", async () => {
    const zfs = hungCommand("zfs", { ignoreTerm: true });
    const started = Date.now();
    const error = await local
      .run([zfs.path, "list"], { timeoutMs: 200 })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CommandTimeoutError);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await leftRunning(await zfs.pids())).toEqual([]);
  });

  test("an aborted signal starts nothing", async () => {
    const zfs = hungCommand("zfs");
    const controller = new AbortController();
    controller.abort();
    const error = await local
      .run([zfs.path, "list"], { signal: controller.signal })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CancelledError);
    expect(existsSync(join(zfs.dir, "pids"))).toBe(false);
  });

  test("a command that ends in time is not touched by its timeout", async () => {
    expect(await local.run(["sh", "-c", "echo ok"], { timeoutMs: 5000 })).toEqual({
      code: 0,
      stdout: "ok\n",
      stderr: "",
    });
  });

  test("a bad timeout is a programming error", async () => {
    await expect(local.run(["true"], { timeoutMs: 0 })).rejects.toThrow(/timeoutMs/);
  });
});

describe("SshHost: timeout and cancel of the local ssh", () => {
  /** PATH with a fake `ssh` first, for the length of `body` */
  async function withFakeSsh(
    ssh: ReturnType<typeof hungCommand>,
    body: () => Promise<void>,
  ): Promise<void> {
    const saved = process.env.PATH;
    process.env.PATH = `${ssh.dir}:${saved}`;
    try {
      await body();
    } finally {
      process.env.PATH = saved;
    }
  }

  test("a hung ssh times out naming the remote command, and is gone", async () => {
    const ssh = hungCommand("ssh");
    await withFakeSsh(ssh, async () => {
      const host = sshHost({});
      const error = await host
        .run(["zfs", "list", "-H"], { timeoutMs: 300 })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CommandTimeoutError);
      expect((error as CommandTimeoutError).message).toStartWith(
        "timed out after 0.3 s and stopped: zfs list -H on target (backup.example);",
      );
      expect(await leftRunning(await ssh.pids())).toEqual([]);
    });
  });

  test("a command waiting for the first one's connection keeps its own timeout and signal", async () => {
    const ssh = hungCommand("ssh");
    await withFakeSsh(ssh, async () => {
      const host = sshHost({});
      const controller = new AbortController();
      const first = host.run(["zfs", "list"], { signal: controller.signal });
      await ssh.pids();
      // no master socket ever appears: the second waits for the first, but not forever
      const second = await host
        .run(["zfs", "get", "all"], { timeoutMs: 200 })
        .catch((caught: unknown) => caught);
      expect(second).toBeInstanceOf(CommandTimeoutError);
      const waiting = new AbortController();
      const third = host.run(["true"], { signal: waiting.signal });
      waiting.abort();
      expect(await third.catch((caught: unknown) => caught)).toBeInstanceOf(CancelledError);
      controller.abort();
      expect(await first.catch((caught: unknown) => caught)).toBeInstanceOf(CancelledError);
      expect(await leftRunning(await ssh.pids())).toEqual([]);
    });
  });

  test("ping is bounded: no answer in time is a host that is not up", async () => {
    const host = sshHost({});
    const run = spyOn(host, "run").mockImplementation(async (argv, options) => {
      throw new CommandTimeoutError(
        { argv, side: "target", host: host.name },
        argv.join(" "),
        options?.timeoutMs ?? 0,
      );
    });
    const error = await host.ping().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(HostDownError);
    expect((error as HostDownError).message).toBe("host is not up: target (no answer within 60 s)");
    // ssh's ConnectTimeout (20 s) plus time for auth and `true`
    expect(run.mock.calls[0]?.[1]?.timeoutMs).toBe(60_000);
  });
});
