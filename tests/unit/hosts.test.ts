import { afterEach, describe, expect, spyOn, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import type { SideConfig } from "../../lib/config/types.ts";
import {
  closeAll,
  createHost,
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

describe("isSshFailure", () => {
  test("ssh's own connection errors", () => {
    for (const stderr of [
      "ssh: connect to host 127.0.0.1 port 1: Connection refused\n",
      "root@127.0.0.1: Permission denied (publickey).\n",
      "Host key verification failed.\n",
      "Connection closed by 127.0.0.1 port 22\n",
      "ssh: Could not resolve hostname nowhere: Name or service not known\n",
      "client_loop: send disconnect: Broken pipe\n",
    ]) {
      expect(isSshFailure({ code: 255, stderr })).toBe(true);
    }
  });

  test("zfs's own 255 and other codes are not ssh failures", () => {
    const corruptToken = "cannot resume send: resume token is corrupt (incorrect checksum)\n";
    expect(isSshFailure({ code: 255, stderr: corruptToken })).toBe(false);
    expect(isSshFailure({ code: 1, stderr: "ssh: connect to host x: Connection refused" })).toBe(
      false,
    );
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
