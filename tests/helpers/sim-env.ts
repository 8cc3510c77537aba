// A temp dir for running the real CLI against the ZFS simulator: `zfs`/`zpool` shims on PATH
// that log every call, a state seeded from a scenario, config and ssh config files, and
// helpers that read the resulting state back through `zfs list`.
//
//   const env = createSimEnv();            // once per test file
//   env.seed(scenario);                     // per test: a fresh state
//   const cfg = env.writeConfig(configYaml({ source: {...}, target: {...} }));
//   const run = await env.cli(["backup", cfg, "--yes"]);
//   expect(env.snapshots("dst/backup")).toEqual(["s1"]);
//   env.remove();                           // afterAll

import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Scenario, seedState, writeShims } from "../../lib/sim/main.ts";
import { withState } from "../../lib/sim/state.ts";

export const CLI_MAIN = resolve(import.meta.dir, "../../lib/cli/main.ts");

/** a CLI run that does not end within this is killed (a hang is a failure, not a stuck suite) */
const CLI_TIMEOUT_MS = 20_000;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** one row of `zfs list -t all -Hp -o name,type,guid,receive_resume_token` */
export interface ListedObject {
  name: string;
  type: string;
  guid: string;
  /** null when the sim lists "-" */
  token: string | null;
}

export interface CliOptions {
  /** extra environment for the CLI (and through it, the local `zfs` shim) */
  env?: Record<string, string>;
  /** text fed on stdin (a pipe, never a terminal); default: /dev/null */
  stdin?: string;
}

export interface SshAlias {
  alias: string;
  port: number;
  /** the client key of the sshd harness (`join(sshd.dir, "client_key")`) */
  identityFile: string;
}

export interface SimEnv {
  readonly dir: string;
  readonly stateDir: string;
  /** the logging shims; put this first on PATH (also for sshd sessions) */
  readonly binDir: string;
  /** PATH for the CLI and for sshd sessions: the shims, then the system */
  readonly path: string;
  /** replace the simulator state with a scenario's and forget logged calls */
  seed(scenario: Scenario): void;
  /** write a file into the temp dir and return its absolute path */
  writeFile(name: string, text: string): string;
  writeConfig(yaml: string, name?: string): string;
  /** an ssh config (`ssh -F`) with one `Host` block per alias */
  writeSshConfig(aliases: readonly SshAlias[], name?: string): string;
  /** run `bun lib/cli/main.ts ARGS…` with the shims on PATH */
  cli(args: readonly string[], options?: CliOptions): Promise<RunResult>;
  /** run the simulator's `zfs` directly (not logged) */
  zfs(...args: string[]): RunResult;
  /** every dataset, snapshot and bookmark, by full name */
  list(): Map<string, ListedObject>;
  /** short snapshot names of a dataset, oldest first */
  snapshots(dataset: string): string[];
  guid(name: string): string;
  /** `zfs …` calls made through the shims since the last seed, one line each: "zfs ARGS" */
  calls(): string[];
  /** make a pool bigger, as `zpool online -e` after growing its disk would */
  growPool(pool: string, size: number): void;
  remove(): void;
}

export function createSimEnv(): SimEnv {
  const dir = mkdtempSync(join(tmpdir(), "abg-cli-"));
  const stateDir = join(dir, "state");
  const realBin = join(dir, "sim-bin");
  const binDir = join(dir, "bin");
  const logFile = join(dir, "calls.log");
  const path = `${binDir}:/usr/bin:/bin`;
  writeShims(realBin, stateDir);
  mkdirSync(binDir);
  for (const tool of ["zfs", "zpool"]) {
    // one printf is one write(2) with O_APPEND: concurrent send/receive lines do not interleave
    const script = `#!/bin/sh\nprintf '%s\\n' "${tool} $*" >> ${shQuote(logFile)}\nexec ${shQuote(join(realBin, tool))} "$@"\n`;
    writeFileSync(join(binDir, tool), script);
    chmodSync(join(binDir, tool), 0o755);
  }

  const zfs = (...args: string[]): RunResult => {
    const result = Bun.spawnSync([join(realBin, "zfs"), ...args], {
      env: { PATH: path, TZ: "UTC" },
    });
    return {
      code: result.exitCode ?? -1,
      stdout: result.stdout.toString(),
      stderr: result.stderr.toString(),
    };
  };

  const list = (): Map<string, ListedObject> => {
    const result = zfs("list", "-t", "all", "-Hp", "-o", "name,type,guid,receive_resume_token");
    if (result.code !== 0) throw new Error(`zfs list failed: ${result.stderr}`);
    const rows = new Map<string, ListedObject>();
    for (const line of result.stdout.split("\n")) {
      if (line === "") continue;
      const [name = "", type = "", guid = "", token = "-"] = line.split("\t");
      rows.set(name, { name, type, guid, token: token === "-" ? null : token });
    }
    return rows;
  };

  const writeFile = (name: string, text: string): string => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  return {
    dir,
    stateDir,
    binDir,
    path,
    seed(scenario) {
      seedState(stateDir, scenario, { TZ: "UTC" });
      writeFileSync(logFile, "");
    },
    writeFile,
    writeConfig: (yaml, name = "abgleich.yaml") => writeFile(name, yaml),
    writeSshConfig(aliases, name = "ssh_config") {
      const user = loginName();
      const blocks = aliases.map((a) =>
        [
          `Host ${a.alias}`,
          "  HostName 127.0.0.1",
          `  Port ${a.port}`,
          `  User ${user}`,
          `  IdentityFile ${a.identityFile}`,
          "  IdentitiesOnly yes",
          "  UserKnownHostsFile /dev/null",
          "  StrictHostKeyChecking no",
          "  LogLevel ERROR",
          // a closed port must fail fast, not after the 20 s default
          "  ConnectTimeout 5",
          "",
        ].join("\n"),
      );
      return writeFile(name, blocks.join("\n"));
    },
    async cli(args, options = {}) {
      const child = Bun.spawn([process.execPath, CLI_MAIN, ...args], {
        cwd: dir,
        // run locks of this env only: another test file (or a user's run) on the same pool
        // names never collides with it
        env: {
          PATH: path,
          HOME: dir,
          TZ: "UTC",
          ABGLEICH_LOCK_DIR: join(dir, "locks"),
          // the runs' state files (for `status`) stay in this env too
          ABGLEICH_STATE_DIR: join(dir, "run-state"),
          ...options.env,
        },
        stdin: options.stdin === undefined ? "ignore" : new TextEncoder().encode(options.stdin),
        stdout: "pipe",
        stderr: "pipe",
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), CLI_TIMEOUT_MS);
      const [stdout, stderr, code] = await Promise.all([
        new Response(child.stdout).text(),
        new Response(child.stderr).text(),
        child.exited,
      ]);
      clearTimeout(timer);
      return { code, stdout, stderr };
    },
    zfs,
    list,
    snapshots(dataset) {
      return [...list().values()]
        .filter((o) => o.type === "snapshot" && o.name.startsWith(`${dataset}@`))
        .map((o) => o.name.slice(dataset.length + 1));
    },
    guid(name) {
      const row = list().get(name);
      if (!row) throw new Error(`no such dataset or snapshot: ${name}`);
      return row.guid;
    },
    calls() {
      return readFileSync(logFile, "utf8")
        .split("\n")
        .filter((line) => line !== "");
    },
    growPool(pool, size) {
      withState(stateDir, (state) => {
        const entry = state.pools[pool];
        if (!entry) throw new Error(`no pool ${pool}`);
        entry.size = size;
        return { save: true, value: undefined };
      });
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** newline-delimited JSON events of a `--json` run (every line must parse) */
export function jsonEvents(stdout: string): Record<string, unknown>[] {
  return stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

export interface SideYaml {
  zpool: string;
  prefix?: string;
  host?: string;
}

/** a config file's text; `extra` is appended verbatim (YAML lines) */
export function configYaml(source: SideYaml, target: SideYaml, extra = ""): string {
  const side = (s: SideYaml) =>
    `  zpool: ${JSON.stringify(s.zpool)}\n  prefix: ${JSON.stringify(s.prefix ?? "")}\n  host: ${JSON.stringify(s.host ?? "localhost")}\n`;
  return `source:\n${side(source)}target:\n${side(target)}${extra}`;
}

/** `id -un`: bun's os.userInfo().username says "unknown" on this machine */
function loginName(): string {
  const result = Bun.spawnSync(["id", "-un"]);
  const name = result.stdout.toString().trim();
  if (result.exitCode !== 0 || name === "")
    throw new Error("id -un failed: cannot name the ssh user");
  return name;
}

function shQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** ANSI escape sequences (CSI), built without a control character in the source */
export const ANSI = new RegExp(`${String.fromCharCode(27)}\\[`);

/** the value, or a test failure naming what was missing (instead of a non-null assertion) */
export function must<T>(value: T | null | undefined, what: string): T {
  if (value === null || value === undefined) throw new Error(`missing: ${what}`);
  return value;
}
