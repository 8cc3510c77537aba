import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SideConfig } from "../../lib/config/types.ts";
import {
  createHost,
  type Host,
  LocalHost,
  type RunResult,
  shellJoin,
} from "../../lib/hosts/index.ts";
import {
  SUDOERS_EXAMPLE,
  SudoError,
  sudoArgv,
  sudoFailure,
  withSudo,
} from "../../lib/hosts/sudo.ts";
import { runSend } from "../../lib/run/actions.ts";
import { PLAIN_WIRE, TOOLS_PROBE, type Wire, wirePipeline } from "../../lib/run/wire.ts";
import {
  zfsBookmarkProgram,
  zfsBookmarks,
  zfsDestroyBookmarks,
  zpoolFreeing,
} from "../../lib/zfs/commands.ts";
import type { Side } from "../../lib/zfs/model.ts";
import { ZfsPort } from "../../lib/zfs/port.ts";
import { BOOKMARK_PROGRAM } from "../../lib/zfs/programs.ts";

const dir = mkdtempSync(join(tmpdir(), "abg-sudo-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** a host that records every argv it is given and answers with `answer` */
function recorder(
  side: Side,
  answer: (argv: readonly string[]) => RunResult = () => ({ code: 0, stdout: "", stderr: "" }),
  isLocal = false,
): Host & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    side,
    name: `${side}-host`,
    isLocal,
    calls,
    run: async (argv) => {
      calls.push([...argv]);
      return answer(argv);
    },
    wrap: (argv) => ["ssh", `${side}-host`, "--", shellJoin(argv)],
    ping: async () => {},
    close: async () => {},
  };
}

/** every single action and query of the port, as snap, backup and cleanup use them */
async function everyPortCommand(port: ZfsPort): Promise<void> {
  await port.inventory("tank/data");
  await port.exists("tank/data/a b");
  await port.changedSince("tank/data@s1");
  await port.resumeToken("backup/data");
  await port.resumeTarget("1-abc");
  await port.used("tank/data");
  await port.freeing("tank");
  await port.snapshot(["tank/data@s2", "tank/data/a b@s2"]);
  await port.destroy("tank/data", ["s0", "s1"]);
  await port.hold("abgleich", ["tank/data@s2"]);
  await port.release("abgleich", ["tank/data@s1"]);
  await port.bookmark([{ snapshot: "tank/data@s2", bookmark: "tank/data#s2" }]);
  await port.destroyBookmarks(["tank/data#s1"]);
  await port.abortReceive("backup/data");
}

/** the words that run zfs in `argv`: `zfs` itself, or a `sh -c` script naming it */
const runsZfs = (argv: readonly string[]) =>
  argv[0] === "zfs" || (argv[0] === "sh" && /\bzfs /.test(argv[2] ?? ""));

describe("sudoArgv", () => {
  test("puts `sudo -n` exactly before zfs, names untouched as single words", () => {
    const name = "tank/a b'$(touch x)";
    expect(sudoArgv(["zfs", "list", "-H", name])).toEqual([
      "sudo",
      "-n",
      "zfs",
      "list",
      "-H",
      name,
    ]);
    // quoted for ssh, the name is still one word of data after the prefix
    expect(shellJoin(sudoArgv(["zfs", "destroy", `${name}@s1`]))).toBe(
      `sudo -n zfs destroy 'tank/a b'\\''$(touch x)@s1'`,
    );
  });

  test("leaves every other program alone: zpool, wire tools, probes, true", () => {
    for (const argv of [
      zpoolFreeing("tank"),
      ["zstd", "-c", "-3"],
      ["mbuffer", "-q", "-m", "1024"],
      ["true"],
      [...TOOLS_PROBE],
    ])
      expect(sudoArgv(argv)).toEqual(argv);
  });

  test("the bookmark loops and program run each zfs through sudo -n, the names still positional", () => {
    const name = "tank/a b;$(touch pwned)";
    const bin = join(dir, "bin");
    const log = join(dir, "loop.log");
    Bun.spawnSync(["mkdir", "-p", bin]);
    // sudo refuses without -n, like the real one asked to prompt; both log their argv
    writeFileSync(
      join(bin, "sudo"),
      `#!/bin/sh\n[ "$1" = -n ] || exit 9\nshift\n{ printf '%s|' sudo "$@"; echo; } >>"$LOG"\nexec "$@"\n`,
    );
    writeFileSync(
      join(bin, "zfs"),
      `#!/bin/sh\n{ printf '%s|' zfs "$@"; echo; } >>"$LOG"\n[ "$1" != program ] || cat >"$LOG.program"\n`,
    );
    chmodSync(join(bin, "sudo"), 0o755);
    chmodSync(join(bin, "zfs"), 0o755);
    const run = (argv: string[]) =>
      Bun.spawnSync(argv, { env: { PATH: `${bin}:/usr/bin:/bin`, LOG: log }, cwd: dir }).exitCode;
    expect(run(sudoArgv(zfsBookmarks([{ snapshot: `${name}@s`, bookmark: `${name}#s` }])))).toBe(0);
    expect(run(sudoArgv(zfsDestroyBookmarks([`${name}#s`])))).toBe(0);
    const pair = { snapshot: `${name}@s`, bookmark: `${name}#s` };
    expect(run(sudoArgv(zfsBookmarkProgram("tank", [pair])))).toBe(0);
    expect(readFileSync(log, "utf8").trim().split("\n")).toEqual([
      `sudo|zfs|bookmark|${name}@s|${name}#s|`,
      `zfs|bookmark|${name}@s|${name}#s|`,
      `sudo|zfs|destroy|${name}#s|`,
      `zfs|destroy|${name}#s|`,
      `sudo|zfs|program|tank|-|${name}@s|${name}#s|`,
      `zfs|program|tank|-|${name}@s|${name}#s|`,
    ]);
    // the program itself arrives on zfs's stdin, through sudo, byte for byte
    expect(readFileSync(`${log}.program`, "utf8")).toBe(BOOKMARK_PROGRAM);
    expect(readdirNames(dir)).not.toContain("pwned");
  });
});

const readdirNames = (path: string) =>
  Bun.spawnSync(["ls", "-A", path]).stdout.toString().split("\n");

describe("a side with sudo: yes", () => {
  const side = (sudo: boolean): SideConfig => ({
    zpool: "tank",
    prefix: "",
    host: "localhost",
    user: "",
    port: null,
    sudo,
  });
  const ssh = { compression: false, cipher: "", configFile: "" };

  test("without it, createHost gives the plain host: nothing changes", () => {
    const host = createHost("source", side(false), ssh);
    expect(host).toBeInstanceOf(LocalHost);
    expect(host.sudo).toBeUndefined();
    expect(createHost("source", side(true), ssh).sudo).toBe(true);
  });

  test("every zfs query and action of the port carries `sudo -n` before zfs, nothing else", async () => {
    const inner = recorder("source");
    await everyPortCommand(new ZfsPort(withSudo(inner)));
    const zfsCalls = inner.calls.filter((argv) => argv.includes("zfs") || runsZfs(argv));
    expect(zfsCalls.length).toBeGreaterThan(10);
    for (const argv of inner.calls) {
      if (argv[0] === "sudo") {
        expect(argv.slice(0, 3)).toEqual(["sudo", "-n", "zfs"]);
        expect(argv.slice(3)).not.toContain("sudo");
      } else if (argv[0] === "sh") {
        expect(argv[2]).toStartWith('zfs() { sudo -n zfs "$@"; }; ');
      } else {
        // only `zpool get freeing` runs without sudo
        expect(argv[0]).toBe("zpool");
      }
    }
  });

  test("without sudo the port's commands are exactly as before", async () => {
    const plain = recorder("source");
    await everyPortCommand(new ZfsPort(plain));
    expect(plain.calls.flat()).not.toContain("sudo");
    expect(plain.calls.some((argv) => argv[0] === "zfs")).toBe(true);
  });

  test("a probe that is not zfs is run as it is, even on a sudo side", async () => {
    const inner = recorder("target");
    await withSudo(inner).run(TOOLS_PROBE);
    expect(inner.calls).toEqual([[...TOOLS_PROBE]]);
  });
});

describe("transfer pipelines", () => {
  const host = (side: Side, sudo: boolean, isLocal = false): Host => {
    const base = recorder(side, undefined, isLocal);
    return sudo ? withSudo(base) : base;
  };
  const wire = (over: Partial<Wire>): Wire => ({ ...PLAIN_WIRE, ...over });
  const send = ["zfs", "send", "-L", "tank/a b@s1"];
  const receive = ["zfs", "receive", "-s", "-u", "backup/a b"];
  const wires: [string, Wire][] = [
    ["plain", PLAIN_WIRE],
    ["compressed and buffered", wire({ compression: "zstd", buffer: 1 << 20 })],
    ["limited", wire({ limiter: "pv", bwlimit: 1000 })],
    ["direct", wire({ compression: "zstd", direct: true })],
  ];
  const direct = {
    sideConfig: { host: "nas", user: "", port: null },
    ssh: { compression: false, cipher: "" },
  };
  /** each stage as the text that reaches a shell */
  const texts = (stages: readonly (readonly string[])[]) => stages.map((s) => shellJoin(s));
  const count = (text: string, pattern: RegExp) => (text.match(pattern) ?? []).length;

  test.each(wires)("%s: every zfs stage is `sudo -n zfs`, no tool gets sudo", (_, w) => {
    for (const isLocal of w.direct ? [false] : [false, true]) {
      const p = wirePipeline(
        send,
        receive,
        host("source", true, isLocal),
        host("target", true, isLocal),
        w,
        {
          direct,
        },
      );
      const all = texts(p.stages).join("\n");
      expect(count(all, /zfs (send|receive)/g)).toBe(2);
      expect(count(all, /sudo -n zfs (send|receive)/g)).toBe(2);
      expect(count(all, /sudo/g)).toBe(2);
      // messages show the command as it ran
      expect(p.commands[0]).toEqual(["sudo", "-n", ...send]);
      expect(p.commands.at(-1)).toEqual(["sudo", "-n", ...receive]);
    }
  });

  test.each(wires)("%s: only the side that asks for it", (_, w) => {
    const p = wirePipeline(send, receive, host("source", false), host("target", true), w, {
      direct,
    });
    const all = texts(p.stages).join("\n");
    expect(count(all, /sudo -n zfs receive/g)).toBe(1);
    expect(count(all, /sudo/g)).toBe(1);
    const none = wirePipeline(send, receive, host("source", false), host("target", false), w, {
      direct,
    });
    expect(texts(none.stages).join("\n")).not.toContain("sudo");
    expect(none.commands[0]).toEqual(send);
  });
});

describe("sudo that wants a password", () => {
  const refusing = (stderr: string) => recorder("target", () => ({ code: 1, stdout: "", stderr }));

  test("a query stops with what sudo said and the sudoers line that fixes it", async () => {
    const port = new ZfsPort(withSudo(refusing("sudo: a password is required\n")));
    const error = await port.inventory("backup/data").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SudoError);
    const message = (error as Error).message;
    expect(message).toStartWith(
      "sudo on the target (target-host) wants a password for zfs (sudo: a password is required)",
    );
    expect(message).toContain(SUDOERS_EXAMPLE);
    expect(message).toContain("target.sudo: no");
  });

  test("zfs's own failure under sudo is zfs's, not sudo's", async () => {
    const port = new ZfsPort(withSudo(refusing("cannot open 'x': permission denied\n")));
    const outcome = await port.snapshot(["backup/data@s1"]);
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toContain("permission denied");
  });

  test("a transfer whose receive sudo refused names the fix in its error", async () => {
    const here = (side: Side) => withSudo(new LocalHost(side));
    const bin = join(dir, "refusing-bin");
    Bun.spawnSync(["mkdir", "-p", bin]);
    // the real sudo's words and exit code when -n meets a password prompt
    writeFileSync(
      join(bin, "sudo"),
      "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n",
    );
    chmodSync(join(bin, "sudo"), 0o755);
    const savedPath = process.env.PATH;
    process.env.PATH = `${bin}:/usr/bin:/bin`;
    try {
      const outcome = await runSend(
        here("source"),
        here("target"),
        {
          kind: "send",
          subname: "",
          sourceDataset: "tank/data",
          targetDataset: "backup/data",
          mode: "full",
          from: null,
          to: "s1",
          snapshots: ["s1"],
          token: null,
          raw: false,
          fromBookmark: false,
          keepUnmounted: false,
        },
        { signal: new AbortController().signal, onBytes: () => {} },
      );
      expect(outcome.ok).toBe(false);
      expect(outcome.error).toContain("sudo: a password is required");
      expect(outcome.error).toContain(SUDOERS_EXAMPLE);
    } finally {
      process.env.PATH = savedPath;
    }
  });

  test.each([
    ["sudo: a password is required", "wants a password for zfs"],
    [
      "Sorry, user backup is not allowed to execute '/usr/sbin/zfs send tank@s' as root on nas.",
      "does not let the user run zfs",
    ],
    ["sh: 1: sudo: not found", "is not installed"],
    ["cannot run sudo: No such file or directory", "is not installed"],
  ])("sudo's %p reads as: %s", (stderr, reason) => {
    const error = sudoFailure({ side: "target", name: "nas", sudo: true }, { code: 1, stderr });
    expect(error?.message).toStartWith(`sudo on the target (nas) ${reason} (${stderr})`);
    expect(error?.message).toContain("target.sudo: no");
  });

  test("sudoFailure ignores hosts without sudo and commands that ran", () => {
    const refused = { code: 1, stderr: "sudo: a password is required\n" };
    expect(sudoFailure({ side: "source", name: "h" }, refused)).toBeNull();
    expect(
      sudoFailure({ side: "source", name: "h", sudo: true }, { code: 0, stderr: "" }),
    ).toBeNull();
    expect(sudoFailure({ side: "source", name: "h", sudo: true }, refused)).toBeInstanceOf(
      SudoError,
    );
  });
});
