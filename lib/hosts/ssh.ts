// A remote host reached with the system's `ssh`. Every command of a run shares one TCP
// connection (ControlMaster); the remote command is quoted here and handed to ssh as ONE
// argument after `--`, because ssh joins its arguments and the remote shell parses them again.
// The local `ssh` of a control command is killed on timeout or cancel like any local command
// (lib/hosts/exec.ts); the shared master is not in its process group and stays for the others.

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config, SideConfig } from "../config/types.ts";
import type { Side } from "../zfs/model.ts";
import { execArgv, timeLeft } from "./exec.ts";
import { hostFailure, sshReason } from "./failure.ts";
import {
  type CommandInfo,
  CommandTimeoutError,
  type Host,
  HostDownError,
  type PingOptions,
  type RunOptions,
  type RunResult,
} from "./host.ts";
import { shellJoin } from "./quote.ts";

export { isSshFailure, SSH_FAILED, sshReason } from "./failure.ts";

/** unix socket paths must fit sockaddr_un (104 bytes on BSD/macOS, 108 on Linux) */
const MAX_SOCKET_PATH = 100;

/** how long the shared connection outlives its last command, in seconds */
const DEFAULT_CONTROL_PERSIST = 60;

/** seconds ssh waits for TCP before "host is not up" (ssh's own default waits for the kernel, ~2 min) */
const DEFAULT_CONNECT_TIMEOUT = 20;

/**
 * Keepalives inside the encrypted channel (not TCPKeepAlive, which the kernel times in hours):
 * a probe after 15 s of silence from the server, and the connection is given up after 4
 * unanswered ones, so a dead peer or a cut link is noticed in about a minute (ssh exits 255,
 * "Timeout, server … not responding"), while a blip of up to ~45 s survives. The remote sshd
 * answers the probes itself, so a command that is quiet for hours (`zfs diff`, a long
 * `zfs destroy`) is not cut. With ControlMaster they matter on the master, which is started by
 * whichever command comes first: every argv carries them.
 */
export const SERVER_ALIVE_INTERVAL = 15;
export const SERVER_ALIVE_COUNT_MAX = 4;

/** beyond ssh's ConnectTimeout (TCP, handshake, key exchange): time for auth and `true` */
const PING_EXTRA_MS = 40_000;

/** how long `close()` waits for `ssh -O exit` before killing it, in ms */
const CLOSE_TIMEOUT_MS = 5000;

export interface SshHostOptions {
  side: Side;
  /** host, user and port of this side */
  sideConfig: Pick<SideConfig, "host" | "user" | "port">;
  /** the config's `ssh` section */
  ssh: Config["ssh"];
  /** ssh options placed before all others, so their `-o` values win (ssh keeps the first): `-i key`, … */
  extraOptions?: readonly string[];
  /** seconds the shared connection stays up after its last command */
  controlPersist?: number;
  /** seconds ssh waits for the TCP connection before it gives up */
  connectTimeout?: number;
}

/** reject values ssh would read as options (`-oProxyCommand=…`): README, Configuration */
export function checkSshWord(what: "host" | "user", value: string): void {
  if (value.startsWith("-")) {
    throw new Error(`ssh ${what} must not start with "-": ${JSON.stringify(value)}`);
  }
  if (/[\s\0]/.test(value)) {
    throw new Error(`ssh ${what} must not contain whitespace: ${JSON.stringify(value)}`);
  }
}

/**
 * `sh -c WATCHDOG sh ARGV…` on the remote host: ARGV runs with stdin from /dev/null while a
 * watcher reads the session's stdin; its end (the channel closed: the local ssh was killed, or
 * the connection died) stops ARGV with SIGTERM. OpenSSH sends no signal to a command without a
 * terminal when its channel closes, so without this a cancelled `zfs list` or `zfs diff` would
 * run on. The exit code is ARGV's.
 */
const REMOTE_WATCHDOG = [
  "sh",
  "-c",
  'exec 3<&0; "$@" </dev/null & p=$!; { while read -r _ <&3; do :; done; kill -TERM "$p" 2>/dev/null; } & w=$!; wait "$p"; c=$?; kill "$w" 2>/dev/null; exit "$c"',
  "sh",
];

/** control directories not yet closed, with the ssh argv that ends their master */
const openMasters = new Map<string, string[]>();

/**
 * A run that ends without close() (a second Ctrl-C exits at once) still ends its shared
 * connections and removes their sockets: synchronously, as an exit handler must.
 */
process.on("exit", () => {
  for (const [dir, exitArgv] of openMasters) {
    if (existsSync(join(dir, "cm")))
      spawnSync(exitArgv[0] as string, exitArgv.slice(1), { stdio: "ignore", timeout: 2000 });
    rmSync(dir, { recursive: true, force: true });
  }
});

/** a private (0700) directory short enough for a unix socket path inside it */
function makeControlDir(): string {
  const base = join(tmpdir(), "abg-XXXXXX/cm").length <= MAX_SOCKET_PATH ? tmpdir() : "/tmp";
  return mkdtempSync(join(base, "abg-"));
}

export class SshHost implements Host {
  readonly side: Side;
  readonly name: string;
  readonly isLocal = false;
  private readonly options: SshHostOptions;
  private controlDir: string | null = null;
  /** the first command opens the shared connection; the others wait for it */
  private firstCommand: Promise<unknown> | null = null;

  constructor(options: SshHostOptions) {
    const { host, user, port } = options.sideConfig;
    if (host === "") throw new Error(`ssh host for ${options.side} is empty`);
    checkSshWord("host", host);
    if (user !== "") checkSshWord("user", user);
    if (port !== null && !(Number.isInteger(port) && port >= 1 && port <= 65535)) {
      throw new Error(`ssh port must be an integer from 1 to 65535, got ${port}`);
    }
    if (options.ssh.cipher.startsWith("-")) {
      throw new Error(`ssh cipher must not start with "-": ${JSON.stringify(options.ssh.cipher)}`);
    }
    this.options = options;
    this.side = options.side;
    this.name = user === "" ? host : `${user}@${host}`;
  }

  private get connectTimeout(): number {
    return this.options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
  }

  /** the ControlPath socket, created with its directory on first use */
  get controlPath(): string {
    if (this.controlDir === null) {
      this.controlDir = makeControlDir();
      openMasters.set(this.controlDir, this.exitArgv(join(this.controlDir, "cm")));
    }
    return join(this.controlDir, "cm");
  }

  /** `ssh` and its options up to and including the destination (no command) */
  sshArgv(): string[] {
    const { sideConfig, ssh, extraOptions = [] } = this.options;
    const persist = this.options.controlPersist ?? DEFAULT_CONTROL_PERSIST;
    const argv = ["ssh", ...extraOptions];
    if (ssh.configFile) argv.push("-F", ssh.configFile);
    if (sideConfig.port !== null) argv.push("-p", String(sideConfig.port));
    argv.push("-o", `Compression=${ssh.compression ? "yes" : "no"}`);
    if (ssh.cipher !== "") argv.push("-c", ssh.cipher);
    argv.push(
      "-o",
      "BatchMode=yes",
      "-o",
      "ControlMaster=auto",
      "-o",
      `ControlPath=${this.controlPath}`,
      "-o",
      `ControlPersist=${persist}`,
    );
    argv.push("-o", `ConnectTimeout=${this.connectTimeout}`);
    argv.push(
      "-o",
      `ServerAliveInterval=${SERVER_ALIVE_INTERVAL}`,
      "-o",
      `ServerAliveCountMax=${SERVER_ALIVE_COUNT_MAX}`,
    );
    if (sideConfig.user !== "") argv.push("-l", sideConfig.user);
    argv.push(sideConfig.host);
    return argv;
  }

  wrap(argv: readonly string[]): string[] {
    if (argv.length === 0) throw new Error("cannot run an empty command");
    return [...this.sshArgv(), "--", shellJoin(argv)];
  }

  async run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    // a control command that reads no stdin runs under the remote watchdog, and our end of
    // its stdin stays open until it ends: a cancel or a timeout that kills the local client
    // closes the channel, and the watchdog stops the remote command instead of leaving it
    const watched = options.stdin === undefined;
    const wrapped = this.wrap(watched ? [...REMOTE_WATCHDOG, ...argv] : argv);
    const info: CommandInfo = { argv, side: this.side, host: this.name };
    const since = Date.now();
    if (this.firstCommand === null) {
      const result = execArgv(wrapped, { ...options, since, holdStdin: watched }, info);
      this.firstCommand = result;
      return result;
    }
    // Commands started together would each open a connection until a master exists. The wait
    // counts against the command's timeout and ends on its signal.
    await this.masterReady(this.firstCommand, { ...options, since }, info);
    return execArgv(wrapped, { ...options, since, holdStdin: watched }, info);
  }

  /** until the first command's master listens (ssh renames its socket into place) or it ended */
  private async masterReady(
    first: Promise<unknown>,
    options: RunOptions & { since: number },
    info: CommandInfo,
  ): Promise<void> {
    let ended = false;
    first.then(
      () => {
        ended = true;
      },
      () => {
        ended = true;
      },
    );
    const command = shellJoin(info.argv);
    while (!ended && !existsSync(this.controlPath)) {
      timeLeft(options, info, command); // throws once the time is up or the signal fired
      await Bun.sleep(10);
    }
  }

  /** every stage checks its hosts; once this one answered, its shared connection is up and a
   * later loss shows in the failing command itself, so one round trip per run is enough */
  private answered = false;

  /**
   * Run `true` on the host. Bounded by default by ssh's ConnectTimeout plus time for auth and
   * the command: a host that takes longer is not up either.
   */
  async ping(options: PingOptions = {}): Promise<void> {
    if (this.answered) return;
    const timeoutMs = options.timeoutMs ?? this.connectTimeout * 1000 + PING_EXTRA_MS;
    let result: RunResult;
    try {
      result = await this.run(["true"], { timeoutMs, signal: options.signal });
    } catch (error) {
      if (error instanceof CommandTimeoutError) {
        throw new HostDownError(this.side, `no answer within ${Math.round(timeoutMs / 1000)} s`);
      }
      throw error;
    }
    const failure = hostFailure(this, result);
    // before the answer, a connection that closed silently is a host that is not up
    if (failure?.lost) throw new HostDownError(this.side, "ssh exited 255 without a message");
    if (failure) throw failure;
    if (result.code !== 0) {
      throw new HostDownError(
        this.side,
        `remote "true" exited ${result.code}: ${sshReason(result.stderr)}`,
      );
    }
    this.answered = true;
  }

  async close(): Promise<void> {
    const dir = this.controlDir;
    if (dir === null) return;
    this.controlDir = null;
    this.firstCommand = null;
    openMasters.delete(dir);
    const socket = join(dir, "cm");
    try {
      if (existsSync(socket)) await this.exitMaster(socket);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** ask the master to exit; never waits longer than CLOSE_TIMEOUT_MS */
  private exitArgv(socket: string): string[] {
    const { extraOptions = [] } = this.options;
    return [
      "ssh",
      ...extraOptions,
      "-o",
      `ControlPath=${socket}`,
      "-O",
      "exit",
      this.options.sideConfig.host,
    ];
  }

  private async exitMaster(socket: string): Promise<void> {
    const argv = this.exitArgv(socket);
    const child = Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    const timer = setTimeout(() => child.kill("SIGKILL"), CLOSE_TIMEOUT_MS);
    try {
      await child.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
