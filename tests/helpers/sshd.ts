// An SSH server on 127.0.0.1 for integration tests: its own host key, client key, config and
// port, all inside one temp dir that `stop()` removes. Two kinds behind one handle:
// - "openssh": OpenSSH's /usr/sbin/sshd, as on a real host; taken when it is installed
// - "js": js-sshd-server.ts beside this file (the `ssh2` package, run by this same Bun), for a
//   machine without sshd: nothing to install as root, so `npm test` runs the ssh tests anywhere
// ABGLEICH_TEST_SSHD=openssh or =js forces one (.ci/run runs the ssh tests once more with js).
//
// Always stop it, even when a test fails:
//
//   let sshd: SshdHandle;
//   beforeAll(async () => { sshd = await startSshd({ env: { PATH: `${shimDir}:/usr/bin:/bin` } }); });
//   afterAll(async () => { await sshd?.stop(); });
//
// and give SshHost `extraOptions: sshd.extraOptions`, `sideConfig: { host: sshd.host, port: sshd.port, user: "" }`.

import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JsSshdConfig } from "./js-sshd-server.ts";

export const SSHD_PATH = "/usr/sbin/sshd";
/** the SSH server for machines without OpenSSH's sshd; runs as `bun js-sshd-server.ts CONFIG` */
export const JS_SSHD_SERVER = join(import.meta.dir, "js-sshd-server.ts");
/** `openssh` or `js` forces that server; unset: OpenSSH's sshd when installed, else js */
export const SSHD_KIND_ENV = "ABGLEICH_TEST_SSHD";

export type SshdKind = "openssh" | "js";

/** which server startSshd() starts here: the env var's choice, else sshd if installed */
export function sshdKind(): SshdKind {
  const forced = process.env[SSHD_KIND_ENV];
  if (forced === "openssh" && !existsSync(SSHD_PATH)) {
    throw new Error(`${SSHD_KIND_ENV}=openssh, but ${SSHD_PATH} is not installed`);
  }
  if (forced === "openssh" || forced === "js") return forced;
  if (forced !== undefined && forced !== "") {
    throw new Error(`${SSHD_KIND_ENV} must be "openssh" or "js", not ${JSON.stringify(forced)}`);
  }
  return existsSync(SSHD_PATH) ? "openssh" : "js";
}

export interface SshdOptions {
  /**
   * variables set for every remote session (sshd_config `SetEnv`), e.g. PATH with a shim dir
   * first. HOME defaults to an empty dir in the temp dir: bash sources ~/.bashrc for ssh
   * commands, and this machine's (pyenv, cargo) costs ~100 ms per command and rewrites PATH.
   * (OpenSSH runs commands with the user's login shell in the user's home directory; the js
   * server runs `sh -c` in HOME.)
   */
  env?: Record<string, string>;
}

export interface SshdHandle {
  /** which server this is (see sshdKind) */
  readonly kind: SshdKind;
  readonly host: "127.0.0.1";
  readonly port: number;
  /** the temp dir holding keys, config and pid file */
  readonly dir: string;
  /** ssh options that make a client trust this server and log in with the generated key */
  readonly extraOptions: string[];
  /**
   * the server's log so far (its stderr), e.g. to count "Accepted publickey": both kinds log
   * one `Accepted publickey for USER from 127.0.0.1 port N …` line per login (connection)
   */
  log(): string;
  /**
   * stop the server (SIGTERM by its pid; the js one hangs up its sessions first) and remove
   * the temp dir; safe to call twice
   */
  stop(): Promise<void>;
}

/** a TCP port nothing listens on right now (the OS picks it) */
export function freePort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = server;
  server.stop(true);
  return port;
}

function keygen(file: string): void {
  const result = Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", file]);
  if (result.exitCode !== 0) {
    throw new Error(`ssh-keygen failed for ${file}: ${result.stderr.toString()}`);
  }
}

/** the same rules for both kinds: what sshd's SetEnv can carry */
function checkEnv(env: Record<string, string>): void {
  for (const [name, value] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`bad env name: ${name}`);
    if (/["\n]/.test(value)) throw new Error(`env value must not contain " or newline: ${name}`);
  }
}

/** a SetEnv value goes through sshd's argument splitting: quote it */
function setEnvLine(env: Record<string, string>): string {
  const words = Object.entries(env).map(([name, value]) => `"${name}=${value}"`);
  return words.length === 0 ? "" : `SetEnv ${words.join(" ")}`;
}

function sshdConfig(dir: string, port: number, env: Record<string, string>): string {
  return [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${join(dir, "host_key")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    `PidFile ${join(dir, "sshd.pid")}`,
    "StrictModes no",
    "PermitRootLogin yes",
    "UsePAM no",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PubkeyAuthentication yes",
    // ControlMaster multiplexes many sessions over one connection; allow plenty.
    "MaxSessions 100",
    "MaxStartups 100",
    "LogLevel INFO",
    setEnvLine(env),
    "",
  ].join("\n");
}

/** a server process whose stderr is its log */
type ServerProcess = Bun.Subprocess<"ignore" | "pipe", "ignore", "pipe">;

/** the port from the server's `Server listening on 127.0.0.1 port N.`, once it logged it */
const LISTENING = /Server listening on 127\.0\.0\.1 port (\d+)/;

/** resolve with the port once the server logs that it listens; reject if it exits first */
async function waitListening(
  name: string,
  child: ServerProcess,
  append: (text: string) => void,
  logged: () => string,
): Promise<number> {
  const reader = child.stderr.getReader();
  const decoder = new TextDecoder();
  const pump = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      append(decoder.decode(value, { stream: true }));
    }
  })();
  const deadline = Date.now() + 10_000;
  for (;;) {
    const match = LISTENING.exec(logged());
    if (match) return Number(match[1]);
    if (child.exitCode !== null || child.signalCode !== null) {
      await pump;
      throw new Error(`${name} exited with ${child.exitCode ?? child.signalCode}:\n${logged()}`);
    }
    if (Date.now() > deadline) throw new Error(`${name} did not start within 10 s:\n${logged()}`);
    await Bun.sleep(20);
  }
}

/** OpenSSH's sshd on a port picked here (it cannot report one the OS picked) */
function spawnOpenSsh(dir: string, env: Record<string, string>): ServerProcess {
  // sshd refuses to start without its privilege separation directory.
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const config = join(dir, "sshd_config");
  writeFileSync(config, sshdConfig(dir, freePort(), env));
  return Bun.spawn([SSHD_PATH, "-D", "-e", "-f", config], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
}

/** the js server under this same Bun, on a port the OS picks; it exits when its stdin closes */
function spawnJs(dir: string, env: Record<string, string>): ServerProcess {
  const config: JsSshdConfig = {
    hostKeyFile: join(dir, "host_key"),
    authorizedKeyFile: join(dir, "authorized_keys"),
    env,
    cwd: env.HOME ?? join(dir, "home"),
  };
  const configFile = join(dir, "js-sshd.json");
  writeFileSync(configFile, JSON.stringify(config));
  // stdin stays an open pipe from us: should this test process die, the server sees EOF and ends
  return Bun.spawn([process.execPath, JS_SSHD_SERVER, configFile], {
    stdin: "pipe",
    stdout: "ignore",
    stderr: "pipe",
  });
}

export async function startSshd(options: SshdOptions = {}): Promise<SshdHandle> {
  const kind = sshdKind();
  const dir = mkdtempSync(join(tmpdir(), "abg-sshd-"));
  chmodSync(dir, 0o700);
  try {
    keygen(join(dir, "host_key"));
    keygen(join(dir, "client_key"));
    writeFileSync(join(dir, "authorized_keys"), await Bun.file(join(dir, "client_key.pub")).text());
    writeFileSync(join(dir, "known_hosts"), "");
    const home = join(dir, "home");
    mkdirSync(home);
    const env = { HOME: home, ...options.env };
    checkEnv(env);

    const name = kind === "openssh" ? "sshd" : "js sshd";
    const child = kind === "openssh" ? spawnOpenSsh(dir, env) : spawnJs(dir, env);
    let log = "";
    const port = await waitListening(
      name,
      child,
      (text) => {
        log += text;
      },
      () => log,
    ).catch((error) => {
      child.kill("SIGKILL");
      throw error;
    });

    let stopped = false;
    return {
      kind,
      host: "127.0.0.1",
      port,
      dir,
      extraOptions: [
        "-F",
        "/dev/null",
        "-i",
        join(dir, "client_key"),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        `UserKnownHostsFile=${join(dir, "known_hosts")}`,
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "LogLevel=ERROR",
      ],
      log: () => log,
      async stop() {
        if (stopped) return;
        stopped = true;
        child.kill("SIGTERM");
        const exited = await Promise.race([child.exited, Bun.sleep(3000).then(() => null)]);
        if (exited === null) {
          child.kill("SIGKILL");
          await child.exited;
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
