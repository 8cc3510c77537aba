// A remote host reached with the system's `ssh`. Every command of a run shares one TCP
// connection (ControlMaster); the remote command is quoted here and handed to ssh as ONE
// argument after `--`, because ssh joins its arguments and the remote shell parses them again.

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config, SideConfig } from "../config/types.ts";
import type { Side } from "../zfs/model.ts";
import { type Host, HostDownError, type RunOptions, type RunResult } from "./host.ts";
import { runLocal } from "./local.ts";
import { shellJoin } from "./quote.ts";

/** ssh's exit code for its own failures (connection refused, auth, cut connection) */
export const SSH_FAILED = 255;

/** unix socket paths must fit sockaddr_un (104 bytes on BSD/macOS, 108 on Linux) */
const MAX_SOCKET_PATH = 100;

/** how long the shared connection outlives its last command, in seconds */
const DEFAULT_CONTROL_PERSIST = 60;

/** seconds ssh waits for TCP before "host is not up" (ssh's own default waits for the kernel, ~2 min) */
const DEFAULT_CONNECT_TIMEOUT = 20;

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

/** messages ssh itself prints when it, not the remote command, failed */
const SSH_OWN_FAILURE =
  /^ssh: |^kex_exchange_identification|^client_loop: |^mux_client|^Control socket|Connection (refused|closed|reset|timed out)|Permission denied|Host key verification failed|Could not resolve hostname|Broken pipe|No route to host|Network is unreachable/m;

/**
 * Did ssh fail rather than the remote command? Exit 255 alone is not enough: `zfs send -t`
 * with a corrupt token also exits 255, with its own message ("cannot resume send: …").
 */
export function isSshFailure(result: Pick<RunResult, "code" | "stderr">): boolean {
  return result.code === SSH_FAILED && SSH_OWN_FAILURE.test(result.stderr);
}

/** the last non-empty line of ssh's stderr: the reason shown in `host is not up: …` */
export function sshReason(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
  return lines.at(-1) ?? "";
}

/** reject values ssh would read as options (`-oProxyCommand=…`): SPEC section 6 */
export function checkSshWord(what: "host" | "user", value: string): void {
  if (value.startsWith("-")) {
    throw new Error(`ssh ${what} must not start with "-": ${JSON.stringify(value)}`);
  }
  if (/[\s\0]/.test(value)) {
    throw new Error(`ssh ${what} must not contain whitespace: ${JSON.stringify(value)}`);
  }
}

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

  /** the ControlPath socket, created with its directory on first use */
  get controlPath(): string {
    this.controlDir ??= makeControlDir();
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
    argv.push("-o", `ConnectTimeout=${this.options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT}`);
    if (sideConfig.user !== "") argv.push("-l", sideConfig.user);
    argv.push(sideConfig.host);
    return argv;
  }

  wrap(argv: readonly string[]): string[] {
    if (argv.length === 0) throw new Error("cannot run an empty command");
    return [...this.sshArgv(), "--", shellJoin(argv)];
  }

  async run(argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    const wrapped = this.wrap(argv);
    if (this.firstCommand === null) {
      const result = runLocal(wrapped, options);
      this.firstCommand = result;
      return result;
    }
    // Commands started together would each open a connection until a master exists.
    await this.masterReady(this.firstCommand);
    return runLocal(wrapped, options);
  }

  /** until the first command's master listens (ssh renames its socket into place) or it ended */
  private async masterReady(first: Promise<unknown>): Promise<void> {
    let ended = false;
    first.then(
      () => {
        ended = true;
      },
      () => {
        ended = true;
      },
    );
    while (!ended && !existsSync(this.controlPath)) await Bun.sleep(10);
  }

  /** every stage checks its hosts; once this one answered, its shared connection is up and a
   * later loss shows in the failing command itself, so one round trip per run is enough */
  private answered = false;

  async ping(): Promise<void> {
    if (this.answered) return;
    const result = await this.run(["true"]);
    if (result.code === SSH_FAILED) throw new HostDownError(this.side, sshReason(result.stderr));
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
    const socket = join(dir, "cm");
    try {
      if (existsSync(socket)) await this.exitMaster(socket);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** ask the master to exit; never waits longer than CLOSE_TIMEOUT_MS */
  private async exitMaster(socket: string): Promise<void> {
    const { extraOptions = [] } = this.options;
    const argv = ["ssh", ...extraOptions, "-o", `ControlPath=${socket}`, "-O", "exit"];
    argv.push(this.options.sideConfig.host);
    const child = Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    const timer = setTimeout(() => child.kill("SIGKILL"), CLOSE_TIMEOUT_MS);
    try {
      await child.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
