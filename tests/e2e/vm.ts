// Boots and stops throwaway qemu VMs with real OpenZFS for e2e tests.
// The image comes from scripts/vm/build-image.sh; each VM runs on a qcow2 overlay of it
// in its own folder under RUNTIME_DIR, so a later run can find and stop VMs that an
// interrupted run left behind. Recipe and figures: scripts/vm/README.md.

import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { shellJoin, shellQuote } from "../../lib/hosts/quote.ts";

/** where the image builder publishes its newest images */
export const IMAGE_CACHE_DIR = "/var/cache/abgleich-vm";
/** the newest OpenZFS 2.1 image (`current-2.3` and so on name the other series) */
export const DEFAULT_IMAGE_DIR = `${IMAGE_CACHE_DIR}/current`;
/** the OpenZFS series build-image.sh can build (`--zfs SERIES`) */
export const ZFS_SERIES = ["2.1", "2.3"] as const;
export type ZfsSeries = (typeof ZFS_SERIES)[number];
/** one folder per running VM: overlay, pidfile, serial log, ssh config, owner pid */
export const RUNTIME_DIR = process.env.ABGLEICH_VM_RUNTIME ?? "/run/abgleich-e2e";

/** per boot attempt; bootVm tries twice (BOOT_TIMEOUT_MS leaves room for both) */
export const READY_TIMEOUT_MS = 180_000;
const STOP_GRACE_MS = 5_000;
const SERIAL_TAIL_LINES = 30;
const PROBE_TIMEOUT_MS = 8_000;

export interface VmImage {
  dir: string;
  baseImage: string;
  kernel: string;
  initrd: string;
  privateKey: string;
  manifest: {
    /** the zfs module's version as modinfo prints it, e.g. "2.1.11-1+deb12u1" */
    openzfs: string;
    /** "2.1" or "2.3"; absent in images built before the series existed (those are 2.1) */
    openzfsSeries?: string;
    kernel: string;
    hash: string;
    [key: string]: unknown;
  };
}

/** the upstream part of a module or package version: "2.3.2-2~bpo12+2" → "2.3.2" */
export function upstreamZfsVersion(version: string): string {
  const match = /^(?:zfs-(?:kmod-)?)?(\d+\.\d+\.\d+)/.exec(version.trim());
  if (!match?.[1]) throw new Error(`not an OpenZFS version: ${JSON.stringify(version)}`);
  return match[1];
}

/** The OpenZFS version of the image the VMs boot (its manifest), e.g. "2.1.11" or "2.3.2". */
export function vmZfsVersion(image: VmImage = findImage()): string {
  return upstreamZfsVersion(image.manifest.openzfs);
}

/** The image's OpenZFS series ("2.1", "2.3"): for tests whose expectations differ by version. */
export function vmZfsSeries(image: VmImage = findImage()): ZfsSeries {
  const series = vmZfsVersion(image).split(".").slice(0, 2).join(".");
  const known = ZFS_SERIES.find((s) => s === series);
  if (known === undefined) {
    throw new Error(
      `VM image at ${image.dir} runs OpenZFS ${series}, not one of ${ZFS_SERIES.join(", ")} (build-image.sh --zfs)`,
    );
  }
  return known;
}

/** What the running kernel module says (`/sys/module/zfs/version`), e.g. "2.3.2". */
export async function guestZfsVersion(vm: Vm): Promise<string> {
  return upstreamZfsVersion(await vm.sshOk("cat /sys/module/zfs/version"));
}

/** the image folder: $ABGLEICH_VM_DIR, else the builder's `current` link */
export function findImage(dir = process.env.ABGLEICH_VM_DIR ?? DEFAULT_IMAGE_DIR): VmImage {
  const manifestFile = join(dir, "manifest.json");
  if (!existsSync(manifestFile)) {
    throw new Error(
      `no VM image at ${dir} (missing manifest.json): run scripts/vm/build-image.sh as root first`,
    );
  }
  const image: VmImage = {
    dir,
    baseImage: join(dir, "base.img"),
    kernel: join(dir, "vmlinuz"),
    initrd: join(dir, "initrd.img"),
    privateKey: join(dir, "id_ed25519"),
    manifest: JSON.parse(readFileSync(manifestFile, "utf8")),
  };
  for (const file of [image.baseImage, image.kernel, image.initrd, image.privateKey]) {
    if (!existsSync(file)) throw new Error(`VM image at ${dir} is incomplete: missing ${file}`);
  }
  return image;
}

/** What abgleich's ssh host layer needs to reach a VM. */
export interface VmSshConfig {
  /** always the loopback address: qemu forwards only there */
  host: string;
  port: number;
  user: string;
  /** `Host` alias defined in `configFile`; use it as the ssh destination with `-F configFile` */
  alias: string;
  /** generated ssh_config file with the alias, key, port and host-key settings */
  configFile: string;
  /** the options for `ssh -F configFile alias` (SshHostOptions.extraOptions) */
  configOptions: string[];
  /** equivalent plain options for `ssh -p port root@127.0.0.1`, without a config file */
  options: string[];
}

export interface SshResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface BootOptions {
  memoryMiB?: number;
  /** loopback port forwarded to the VM's ssh; a free one when left out */
  port?: number;
  cpus?: number;
  readyTimeoutMs?: number;
}

export interface Vm {
  name: string;
  dir: string;
  sshConfig: VmSshConfig;
  /** seconds from starting qemu until ssh answered and /dev/zfs existed */
  bootSeconds: number;
  /** runs a shell command line in the VM (quote data with shellQuote/shellJoin) */
  ssh(command: string, stdin?: string): Promise<SshResult>;
  /** like ssh() but throws on a non-zero exit, with the command and stderr in the message */
  sshOk(command: string): Promise<string>;
  /** argv of `ssh … alias` without the command, for pipelines built by the caller */
  sshArgv(): string[];
  serialTail(lines?: number): string;
  stop(): Promise<void>;
}

const runningVms = new Set<Vm>();
let handlersInstalled = false;

/** a loopback port nobody listens on right now */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === "object") resolve(address.port);
        else reject(new Error("could not read the port of a probe listener"));
      });
    });
  });
}

function isQemuPid(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim().startsWith("qemu");
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

function readPid(file: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(file, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

/** SIGKILL the qemu of a VM folder (pidfile checked against /proc/PID/comm), then remove it */
function killVmDirSync(dir: string): void {
  const pid = readPid(join(dir, "qemu.pid"));
  if (pid !== null && isQemuPid(pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  if (process.env.ABGLEICH_VM_KEEP !== "1") rmSync(dir, { recursive: true, force: true });
}

/** Stops VMs whose owning test process is gone (an interrupted earlier run). */
export function cleanStaleVms(runtimeDir = RUNTIME_DIR): string[] {
  if (!existsSync(runtimeDir)) return [];
  const cleaned: string[] = [];
  for (const entry of readdirSync(runtimeDir)) {
    const dir = join(runtimeDir, entry);
    const owner = readPid(join(dir, "owner.pid"));
    if (owner !== null && owner !== process.pid && isAlive(owner)) continue;
    if (owner === process.pid) continue;
    killVmDirSync(dir);
    cleaned.push(dir);
  }
  return cleaned;
}

/** Stops every VM this process booted. Registered for afterAll, SIGINT and SIGTERM. */
export async function stopAllVms(): Promise<void> {
  await Promise.all([...runningVms].map((vm) => vm.stop()));
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      for (const vm of runningVms) killVmDirSync(vm.dir);
      process.exit(signal === "SIGINT" ? 130 : 143);
    });
  }
  // Last resort when the runner exits without afterAll (a crash, process.exit elsewhere).
  process.once("exit", () => {
    for (const vm of runningVms) killVmDirSync(vm.dir);
  });
}

/** runs argv; after timeoutMs the child is killed (exit code then reflects the signal) */
async function run(argv: string[], stdin?: string, timeoutMs?: number): Promise<SshResult> {
  const child = Bun.spawn(argv, {
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = timeoutMs === undefined ? null : setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    const [stdout, stderr, code] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    return { code, stdout, stderr };
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no serial log)";
  }
}

/**
 * The VM under a second name: a config naming it so on one side and by its alias on the other
 * reads as two hosts, and abgleich relays the stream through this machine as between two
 */
export const secondName = (alias: string) => `${alias}-again`;

function sshConfigText(alias: string, port: number, key: string): string {
  // Every value is ours (loopback, a number, a path in the cache); quoted anyway for spaces.
  return [
    `Host ${alias} ${secondName(alias)}`,
    "  HostName 127.0.0.1",
    `  Port ${port}`,
    "  User root",
    `  IdentityFile "${key}"`,
    "  IdentitiesOnly yes",
    "  UserKnownHostsFile /dev/null",
    "  StrictHostKeyChecking no",
    "  LogLevel ERROR",
    "  BatchMode yes",
    "  ConnectTimeout 5",
    "",
  ].join("\n");
}

function checkVmName(name: string): void {
  if (!/^[a-z][a-z0-9-]{0,30}$/.test(name)) {
    throw new Error(
      `VM name must be lowercase letters, digits and dashes: ${JSON.stringify(name)}`,
    );
  }
}

/** a boot that never answered ssh: the guest hung, not the code under test */
class VmNotReadyError extends Error {}

/**
 * Boots a VM on a fresh overlay and waits until ssh answers and /dev/zfs exists. A boot that
 * hangs (seen once in CI under software emulation: a test file lost all its tests to it) is
 * stopped and tried once more on a fresh overlay, its serial log tail printed first.
 */
export async function bootVm(name: string, options: BootOptions = {}): Promise<Vm> {
  checkVmName(name);
  const image = findImage();
  installHandlers();
  cleanStaleVms();
  mkdirSync(RUNTIME_DIR, { recursive: true, mode: 0o700 });
  if (RUNTIME_DIR.includes(",")) {
    // qemu reads "," inside -drive/-serial values as an option separator
    throw new Error(`VM runtime dir must not contain a comma: ${RUNTIME_DIR}`);
  }
  try {
    return await bootOnce(name, image, options);
  } catch (error) {
    if (!(error instanceof VmNotReadyError)) throw error;
    console.error(`[e2e] ${error.message}\n[e2e] booting ${name} once more`);
    return await bootOnce(name, image, options);
  }
}

async function bootOnce(name: string, image: VmImage, options: BootOptions): Promise<Vm> {
  const dir = mkdtempSync(join(RUNTIME_DIR, `${name}-`));
  writeFileSync(join(dir, "owner.pid"), `${process.pid}\n`);
  const port = options.port ?? (await freeLoopbackPort());
  const overlay = join(dir, "vm.qcow2");
  const serialLog = join(dir, "serial.log");
  const pidFile = join(dir, "qemu.pid");
  const alias = `abgleich-e2e-${name}`;
  const configFile = join(dir, "ssh_config");
  writeFileSync(configFile, sshConfigText(alias, port, image.privateKey), { mode: 0o600 });

  const sshConfig: VmSshConfig = {
    host: "127.0.0.1",
    port,
    user: "root",
    alias,
    configFile,
    configOptions: ["-F", configFile],
    options: [
      "-i",
      image.privateKey,
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "LogLevel=ERROR",
      "-p",
      String(port),
    ],
  };

  let stopped = false;
  const vm: Vm = {
    name,
    dir,
    sshConfig,
    bootSeconds: Number.NaN,
    sshArgv: () => ["ssh", "-F", configFile, alias],
    ssh: (command, stdin) => run([...vm.sshArgv(), "--", command], stdin),
    async sshOk(command) {
      const result = await vm.ssh(command);
      if (result.code !== 0) {
        throw new Error(
          `in VM ${name}: \`${command}\` exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`,
        );
      }
      return result.stdout;
    },
    serialTail: (lines = SERIAL_TAIL_LINES) => tail(serialLog, lines),
    async stop() {
      if (stopped) return;
      stopped = true;
      runningVms.delete(vm);
      const pid = readPid(pidFile);
      if (pid !== null && isQemuPid(pid)) {
        process.kill(pid, "SIGTERM");
        const deadline = Date.now() + STOP_GRACE_MS;
        while (isAlive(pid) && Date.now() < deadline) await Bun.sleep(50);
        if (isAlive(pid) && isQemuPid(pid)) process.kill(pid, "SIGKILL");
      }
      if (process.env.ABGLEICH_VM_KEEP !== "1") rmSync(dir, { recursive: true, force: true });
    },
  };
  runningVms.add(vm);

  const started = performance.now();
  try {
    const created = await run([
      "qemu-img",
      "create",
      "-q",
      "-f",
      "qcow2",
      "-b",
      image.baseImage,
      "-F",
      "raw",
      overlay,
    ]);
    if (created.code !== 0) throw new Error(`qemu-img create failed: ${created.stderr.trim()}`);
    const qemu = await run(qemuArgv(image, { overlay, serialLog, pidFile, port, options }));
    if (qemu.code !== 0) throw new Error(`qemu failed to start: ${qemu.stderr.trim()}`);
    await waitUntilReady(vm, pidFile, options.readyTimeoutMs ?? READY_TIMEOUT_MS);
  } catch (error) {
    await vm.stop();
    throw error;
  }
  vm.bootSeconds = (performance.now() - started) / 1000;
  return vm;
}

function qemuArgv(
  image: VmImage,
  vm: { overlay: string; serialLog: string; pidFile: string; port: number; options: BootOptions },
): string[] {
  return [
    "qemu-system-x86_64",
    // /dev/kvm here is paravirtual and hangs a stock kernel: software emulation.
    "-accel",
    "tcg,thread=multi",
    "-cpu",
    "qemu64",
    "-smp",
    String(vm.options.cpus ?? 2),
    "-m",
    String(vm.options.memoryMiB ?? 2048),
    "-nodefaults",
    "-no-reboot",
    "-display",
    "none",
    "-serial",
    `file:${vm.serialLog}`,
    "-kernel",
    image.kernel,
    "-initrd",
    image.initrd,
    "-append",
    "root=/dev/vda rw console=ttyS0 quiet mitigations=off",
    "-drive",
    `file=${vm.overlay},if=virtio,format=qcow2,cache=unsafe`,
    "-netdev",
    `user,id=n,restrict=on,hostfwd=tcp:127.0.0.1:${vm.port}-:22`,
    "-device",
    "virtio-net-pci,netdev=n,romfile=",
    "-pidfile",
    vm.pidFile,
    "-daemonize",
  ];
}

async function waitUntilReady(vm: Vm, pidFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: SshResult = { code: -1, stdout: "", stderr: "" };
  while (Date.now() < deadline) {
    const pid = readPid(pidFile);
    if (pid === null || !isQemuPid(pid)) {
      throw new Error(
        `VM ${vm.name}: qemu exited during boot. Serial log tail:\n${vm.serialTail()}`,
      );
    }
    // slirp accepts the TCP connection before the guest listens, so ssh can hang in the
    // banner exchange: bound each probe.
    last = await run([...vm.sshArgv(), "--", "test -c /dev/zfs"], undefined, PROBE_TIMEOUT_MS);
    if (last.code === 0) return;
    await Bun.sleep(500);
  }
  throw new VmNotReadyError(
    `VM ${vm.name} not ready after ${timeoutMs / 1000} s (last ssh: exit ${last.code} ${last.stderr.trim()}). Serial log tail:\n${vm.serialTail()}`,
  );
}

export interface PoolSpec {
  name: string;
  /** truncate size, e.g. "512M" */
  size?: string;
  /** extra `zpool create` options, e.g. ["-O", "compression=off"] */
  options?: string[];
}

/** Creates file-backed pools in the VM (files in /var/tmp, via the image's `mkpool`). */
export async function createPools(vm: Vm, pools: readonly PoolSpec[]): Promise<void> {
  if (pools.length === 0) return;
  const commands = pools.map((pool) =>
    shellJoin(["mkpool", pool.name, pool.size ?? "512M", ...(pool.options ?? [])]),
  );
  await vm.sshOk(commands.join(" && "));
}

export const DEFAULT_LIST_COLUMNS = ["name", "type", "guid", "createtxg", "creation"] as const;

export type ZfsRow = Record<string, string>;

/**
 * `zfs list -t all -Hp -o COLUMNS -r ROOT` as one object per line, every value a string
 * (GUIDs exceed 2^53). An absent root gives an error naming it.
 */
export async function zfsList(
  vm: Vm,
  root: string,
  columns: readonly string[] = DEFAULT_LIST_COLUMNS,
): Promise<ZfsRow[]> {
  const output = await vm.sshOk(
    shellJoin(["zfs", "list", "-t", "all", "-Hp", "-o", columns.join(","), "-r", root]),
  );
  return parseZfsList(output, columns);
}

/** Splits `zfs list -H` output into rows keyed by column; a wrong field count is an error. */
export function parseZfsList(output: string, columns: readonly string[]): ZfsRow[] {
  return output
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const values = line.split("\t");
      if (values.length !== columns.length) {
        throw new Error(
          `zfs list row has ${values.length} fields, expected ${columns.length}: ${line}`,
        );
      }
      return Object.fromEntries(columns.map((column, i) => [column, values[i] ?? ""]));
    });
}

/** Writes one ssh_config file with a Host alias per VM, for `ssh -F file alias`. */
export function writeSshConfig(vms: readonly Vm[], file: string): void {
  const text = vms.map((vm) => readFileSync(vm.sshConfig.configFile, "utf8")).join("\n");
  writeFileSync(file, text, { mode: 0o600 });
}

export { shellJoin, shellQuote };
