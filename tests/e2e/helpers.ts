// Drives the COMPILED abgleich against real OpenZFS in the e2e VMs: builds dist/abgleich into a
// temp dir (CI's clean clone has none), writes configs that reach the VMs through the
// harness's ssh_config aliases, runs the binary, and reads the resulting state back.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Action, Conflict, SendAction, SnapshotAction } from "../../lib/plan/types.ts";
import { COMPILE_FLAGS } from "../../scripts/build.ts";
import {
  READY_TIMEOUT_MS,
  secondName,
  shellJoin,
  shellQuote,
  type Vm,
  writeSshConfig,
  zfsList,
} from "./vm.ts";

export const REPO = resolve(import.meta.dir, "../..");
/**
 * A file's setup: one boot, or two booted together, on the 2-core machine (measured 18–72 s),
 * and when a boot hangs, its timeout and a second boot (tests/e2e/vm.ts bootVm), then the pools
 */
export const BOOT_TIMEOUT_MS = 2 * READY_TIMEOUT_MS + 90_000;
/** a CLI run that does not end within this is killed: a hang fails the test, not the suite */
const CLI_TIMEOUT_MS = 300_000;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Compiles lib/cli/main.ts with the project's COMPILE_FLAGS; returns the binary's path. */
export function buildBinary(dir: string): string {
  const outfile = join(dir, "abgleich");
  const build = Bun.spawnSync(
    [
      process.execPath,
      "build",
      ...COMPILE_FLAGS,
      join(REPO, "lib/cli/main.ts"),
      "--outfile",
      outfile,
    ],
    { cwd: REPO, stdout: "pipe", stderr: "pipe" },
  );
  if (build.exitCode !== 0) {
    throw new Error(`bun build failed (exit ${build.exitCode}): ${build.stderr.toString()}`);
  }
  return outfile;
}

export interface SideYaml {
  zpool: string;
  prefix?: string;
  /** the VM whose alias is the host */
  vm: Vm;
  /** the ssh user, when not the alias's (root) */
  user?: string;
}

export interface ConfigOptions {
  /**
   * both sides on one VM named alike, so the stream stays on that host (`local pipe on …`);
   * by default the target names the VM by its second name and the stream is relayed here
   */
  oneHost?: boolean;
}

/** A temp dir with the binary, the VMs' ssh_config and config files; runs the CLI there. */
export class E2eEnv {
  readonly dir: string;
  readonly binary: string;
  readonly sshConfig: string;

  constructor(vms: readonly Vm[]) {
    this.dir = mkdtempSync(join(tmpdir(), "abgleich-e2e-"));
    mkdirSync(join(this.dir, "bin"));
    this.binary = buildBinary(join(this.dir, "bin"));
    this.sshConfig = join(this.dir, "ssh_config");
    writeSshConfig(vms, this.sshConfig);
  }

  /** a config file (ssh.config_file points at the VMs' aliases); `extra` is YAML lines */
  writeConfig(
    name: string,
    source: SideYaml,
    target: SideYaml,
    extra = "",
    options: ConfigOptions = {},
  ): string {
    const relayed = source.vm === target.vm && options.oneHost !== true;
    const side = (s: SideYaml) => {
      const alias = s.vm.sshConfig.alias;
      const host = s === target && relayed ? secondName(alias) : alias;
      return `  zpool: ${JSON.stringify(s.zpool)}\n  prefix: ${JSON.stringify(s.prefix ?? "")}\n  host: ${JSON.stringify(host)}\n${s.user ? `  user: ${JSON.stringify(s.user)}\n` : ""}`;
    };
    const file = join(this.dir, `${name}.yaml`);
    writeFileSync(
      file,
      `source:\n${side(source)}target:\n${side(target)}ssh:\n  config_file: ssh_config\n${extra}`,
    );
    return file;
  }

  /** starts the binary (for tests that signal it mid-run) */
  spawn(args: readonly string[]) {
    return Bun.spawn([this.binary, ...args], {
      cwd: this.dir,
      // run state (for `status`) in the temp dir, not in /var/lib/abgleich
      env: {
        PATH: "/usr/bin:/bin",
        HOME: this.dir,
        TZ: "UTC",
        ABGLEICH_STATE_DIR: join(this.dir, "state"),
      },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
  }

  /** runs the binary to its end (stdin not a terminal) */
  async cli(args: readonly string[], timeoutMs = CLI_TIMEOUT_MS): Promise<RunResult> {
    const child = this.spawn(args);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    const [stdout, stderr, code] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    clearTimeout(timer);
    return { code, stdout, stderr };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** newline-delimited JSON events of a `--json` run */
export function jsonEvents(stdout: string): Record<string, unknown>[] {
  return stdout
    .split("\n")
    .filter((line) => line.trim().startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

export interface PlanEvent {
  actions: Action[];
  conflicts: Conflict[];
  skipped: { subname: string; reason: string }[];
}

export function planOf(stdout: string): PlanEvent {
  const event = jsonEvents(stdout).find((e) => e.event === "plan");
  if (!event) throw new Error(`no plan event in:\n${stdout}`);
  return event.plan as PlanEvent;
}

/** the plan's transfers as [subname, mode, from, to] */
export function transfers(plan: PlanEvent): [string, string, string | null, string][] {
  return plan.actions
    .filter((a): a is SendAction => a.kind === "send")
    .map((a) => [a.subname, a.mode, a.from, a.to]);
}

/** the snapshots a snap plan takes */
export function plannedSnapshots(plan: PlanEvent): SnapshotAction["snapshots"] {
  return plan.actions.flatMap((a) => (a.kind === "snapshot" ? a.snapshots : []));
}

/** name → row of everything below root (datasets, snapshots); empty when root is absent */
export async function listTree(vm: Vm, root: string): Promise<Map<string, Record<string, string>>> {
  const exists = await vm.ssh(shellJoin(["zfs", "list", "-H", "-o", "name", root]));
  if (exists.code !== 0) return new Map();
  const rows = await zfsList(vm, root, ["name", "type", "guid", "receive_resume_token"]);
  return new Map(rows.map((row) => [row.name ?? "", row]));
}

/** short snapshot names of one dataset, oldest first */
export async function snapshotsOf(vm: Vm, dataset: string): Promise<string[]> {
  const result = await vm.ssh(
    shellJoin([
      "zfs",
      "list",
      "-H",
      "-t",
      "snapshot",
      "-s",
      "createtxg",
      "-o",
      "name",
      "-d",
      "1",
      dataset,
    ]),
  );
  if (result.code !== 0) throw new Error(`zfs list ${dataset}: ${result.stderr.trim()}`);
  return result.stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => line.slice(dataset.length + 1));
}

/** snapshot name → guid on each side; equal guids mean the target holds that snapshot */
export async function guidsOf(vm: Vm, dataset: string): Promise<Map<string, string>> {
  const rows = await zfsList(vm, dataset, ["name", "guid"]);
  return new Map(
    rows
      .filter((row) => row.name?.startsWith(`${dataset}@`))
      .map((row) => [(row.name ?? "").slice(dataset.length + 1), row.guid ?? ""]),
  );
}

/**
 * Appends `bytes` random bytes to a file below the dataset's mountpoint. `zpool sync`, not
 * `sync`: `written` counts only synced txgs, so right after a plain sync it can still be 0.
 */
export async function writeFile(vm: Vm, path: string, bytes: number): Promise<void> {
  await vm.sshOk(`head -c ${Math.floor(bytes)} /dev/urandom >> ${shellQuote(path)} && zpool sync`);
}

/**
 * `zfs mount -a`, then each filesystem below root that is still unmounted by name: abgleich
 * receives them with canmount=noauto, which `mount -a` leaves alone (checked here). Returns
 * what `mount -a` left unmounted.
 */
export async function mountBackups(vm: Vm, root: string): Promise<string[]> {
  await vm.sshOk("zfs mount -a");
  const rows = await vm.sshOk(
    shellJoin(["zfs", "list", "-H", "-t", "filesystem", "-o", "name,mounted", "-r", root]),
  );
  const unmounted = rows
    .split("\n")
    .map((line) => line.split("\t"))
    .filter(([name, mounted]) => name && mounted === "no")
    .map(([name]) => name ?? "");
  for (const name of unmounted) await vm.sshOk(shellJoin(["zfs", "mount", name]));
  return unmounted;
}

/** `canmount` of every dataset below root (volumes: `-`), by name */
export async function canmountOf(vm: Vm, root: string): Promise<Map<string, string>> {
  const rows = await zfsList(vm, root, ["name", "canmount"]);
  return new Map(
    rows
      .filter((row) => !row.name?.includes("@"))
      .map((row) => [row.name ?? "", row.canmount ?? ""]),
  );
}

/** sha256 of files, in order */
export async function sha256(vm: Vm, paths: readonly string[]): Promise<string[]> {
  const out = await vm.sshOk(shellJoin(["sha256sum", "--", ...paths]));
  return out
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => line.split(" ")[0] ?? "");
}

/** snapshot names as abgleich makes them today (UTC in the VM and here) */
export function todayPrefix(date = new Date()): string {
  return date.toISOString().slice(0, 10).replaceAll("-", "");
}

export { shellJoin, shellQuote };
