// A real OpenSSH server on 127.0.0.1 for integration tests: its own host key, client key,
// config and port, all inside one temp dir that `stop()` removes.
//
// Always stop it, even when a test fails:
//
//   let sshd: SshdHandle;
//   beforeAll(async () => { sshd = await startSshd({ env: { PATH: `${shimDir}:/usr/bin:/bin` } }); });
//   afterAll(async () => { await sshd?.stop(); });
//
// and give SshHost `extraOptions: sshd.extraOptions`, `sideConfig: { host: sshd.host, port: sshd.port, user: "" }`.

import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const SSHD_PATH = "/usr/sbin/sshd";

export interface SshdOptions {
  /**
   * variables set for every remote session (sshd_config `SetEnv`), e.g. PATH with a shim dir
   * first. HOME defaults to an empty dir in the temp dir: bash sources ~/.bashrc for ssh
   * commands, and this machine's (pyenv, cargo) costs ~100 ms per command and rewrites PATH.
   */
  env?: Record<string, string>;
}

export interface SshdHandle {
  readonly host: "127.0.0.1";
  readonly port: number;
  /** the temp dir holding keys, config and pid file */
  readonly dir: string;
  /** ssh options that make a client trust this server and log in with the generated key */
  readonly extraOptions: string[];
  /** sshd's log so far (`-e`: it logs to stderr), e.g. to count "Accepted publickey" */
  log(): string;
  /** kill sshd (by its pid) and remove the temp dir; safe to call twice */
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

/** a SetEnv value goes through sshd's argument splitting: quote it */
function setEnvLine(env: Record<string, string>): string {
  const words = Object.entries(env).map(([name, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`bad env name: ${name}`);
    if (/["\n]/.test(value)) throw new Error(`env value must not contain " or newline: ${name}`);
    return `"${name}=${value}"`;
  });
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

/** resolve once sshd logs that it listens; reject if it exits first */
async function waitListening(
  child: Bun.Subprocess<"ignore", "ignore", "pipe">,
  append: (text: string) => void,
  logged: () => string,
): Promise<void> {
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
  while (!logged().includes("Server listening on")) {
    if (child.exitCode !== null) {
      await pump;
      throw new Error(`sshd exited with ${child.exitCode}:\n${logged()}`);
    }
    if (Date.now() > deadline) throw new Error(`sshd did not start within 10 s:\n${logged()}`);
    await Bun.sleep(20);
  }
}

export async function startSshd(options: SshdOptions = {}): Promise<SshdHandle> {
  // sshd refuses to start without its privilege separation directory.
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), "abg-sshd-"));
  chmodSync(dir, 0o700);
  try {
    keygen(join(dir, "host_key"));
    keygen(join(dir, "client_key"));
    writeFileSync(join(dir, "authorized_keys"), await Bun.file(join(dir, "client_key.pub")).text());
    writeFileSync(join(dir, "known_hosts"), "");
    const port = freePort();
    const home = join(dir, "home");
    mkdirSync(home);
    const config = join(dir, "sshd_config");
    writeFileSync(config, sshdConfig(dir, port, { HOME: home, ...options.env }));

    const child = Bun.spawn([SSHD_PATH, "-D", "-e", "-f", config], {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    let log = "";
    await waitListening(
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
