// `npm run release`: everything needed to install abgleich without a toolchain, in dist/:
//
//   abgleich-linux-x64, abgleich-linux-arm64   standalone binaries (bun build --compile)
//   abgleich_VERSION_amd64.deb, …_arm64.deb     the binary, systemd units, man page,
//                                              bash/zsh/fish completions, example configs
//   SHA256SUMS                                  for `sha256sum -c`
//
// The x64 binary is Bun's "baseline" build: it runs on x86-64 CPUs without AVX2 (the Atom and
// Celeron CPUs of many NAS boxes), and abgleich's time goes to zfs, not to JavaScript.
// `bun build --compile --target=…` fetches each target's runtime from the npm registry.

import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  createReadStream,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { gzipSync } from "node:zlib";
import pkg from "../package.json" with { type: "json" };
import { COMPILE_FLAGS } from "./build.ts";
import { cliModel } from "./release/cli-model.ts";
import { bash, fish, zsh } from "./release/completions.ts";
import { manPage } from "./release/man.ts";

const ROOT = join(import.meta.dir, "..");
const DIST = join(ROOT, "dist");

export interface Target {
  /** the binary's name: abgleich-<name> */
  readonly name: string;
  readonly bunTarget: string;
  readonly debArch: string;
}

export const TARGETS: readonly Target[] = [
  { name: "linux-x64", bunTarget: "bun-linux-x64-baseline", debArch: "amd64" },
  { name: "linux-arm64", bunTarget: "bun-linux-arm64", debArch: "arm64" },
];

const MAINTAINER = "the abgleich authors <maintainers@users.noreply.r-seed-8d74fe69.example>";

/** where each generated or copied file goes in the package (mode 0644 unless given) */
export const DEB_PATHS = {
  binary: "usr/bin/abgleich",
  units: "usr/lib/systemd/system",
  man: "usr/share/man/man1/abgleich.1.gz",
  bash: "usr/share/bash-completion/completions/abgleich",
  zsh: "usr/share/zsh/vendor-completions/_abgleich",
  fish: "usr/share/fish/vendor_completions.d/abgleich.fish",
  doc: "usr/share/doc/abgleich",
  config: "etc/abgleich",
} as const;

function run(argv: string[], what: string): string {
  const result = Bun.spawnSync(argv, { cwd: ROOT, stdout: "pipe", stderr: "inherit" });
  if (result.exitCode !== 0) {
    throw new Error(`${what} failed (exit ${result.exitCode}): ${argv.join(" ")}`);
  }
  return result.stdout.toString();
}

/** the newest glibc symbol version the binary needs: the .deb's `libc6 (>= …)` */
export function glibcNeeded(readelfOutput: string): string | undefined {
  const versions = [...readelfOutput.matchAll(/GLIBC_(\d+(?:\.\d+)+)/g)].map((m) => m[1] as string);
  const key = (v: string) => v.split(".").map(Number);
  return versions.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      const d = (x[i] ?? 0) - (y[i] ?? 0);
      if (d !== 0) return d;
    }
    return 0;
  })[versions.length - 1];
}

export interface ControlFields {
  readonly version: string;
  readonly arch: string;
  readonly installedKiB: number;
  readonly glibc: string | undefined;
}

/** DEBIAN/control */
export function control({ version, arch, installedKiB, glibc }: ControlFields): string {
  return `${[
    "Package: abgleich",
    `Version: ${version}`,
    `Architecture: ${arch}`,
    `Maintainer: ${MAINTAINER}`,
    `Installed-Size: ${installedKiB}`,
    ...(glibc ? [`Depends: libc6 (>= ${glibc})`] : []),
    "Recommends: openssh-client, zfsutils-linux",
    "Suggests: zstd, lz4, mbuffer, pv, prometheus-node-exporter",
    "Section: admin",
    "Priority: optional",
    "Description: ZFS snapshot, backup and cleanup tool",
    " abgleich keeps a tree of ZFS datasets backed up into a second pool, on one",
    " machine or across machines over ssh: it snapshots the datasets that changed,",
    " shows source and target side by side, sends what the target lacks (full or",
    " incremental, resuming cut transfers) and frees source snapshots once the",
    " target holds them. Every change is listed before it runs.",
    " .",
    " Remote hosts need only ssh and zfs. Includes systemd units for a nightly",
    " run (abgleich@.timer) and a Prometheus textfile (abgleich-status@.timer).",
  ].join("\n")}\n`;
}

/** the Debian copyright file: LICENSE, under the machine-readable header */
export function copyright(license: string): string {
  return `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: abgleich

Files: *
Copyright: 2026 the abgleich authors
License: GPL-2.0-or-later

${license}`;
}

function sizeKiB(dir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) bytes += statSync(join(entry.parentPath, entry.name)).size;
  }
  return Math.ceil(bytes / 1024);
}

function put(root: string, path: string, content: string | Uint8Array, mode = 0o644): void {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  writeFileSync(file, content);
  chmodSync(file, mode);
}

/** the files every .deb shares (all but the binary), generated once */
export function sharedFiles(version: string, date: string): Map<string, string | Uint8Array> {
  const model = cliModel();
  const files = new Map<string, string | Uint8Array>();
  const unitsDir = join(ROOT, "packaging", "systemd");
  for (const unit of readdirSync(unitsDir).sort()) {
    files.set(join(DEB_PATHS.units, unit), readFileSync(join(unitsDir, unit)));
  }
  files.set(DEB_PATHS.man, gzipSync(manPage(model, { version, date }), { level: 9 }));
  files.set(DEB_PATHS.bash, bash(model));
  files.set(DEB_PATHS.zsh, zsh(model));
  files.set(DEB_PATHS.fish, fish(model));
  files.set(
    join(DEB_PATHS.doc, "copyright"),
    copyright(readFileSync(join(ROOT, "LICENSE"), "utf8")),
  );
  files.set(join(DEB_PATHS.doc, "README.md.gz"), gzipSync(readFileSync(join(ROOT, "README.md"))));
  // the examples' schema comment points into the repository; in the package it sits beside them
  const examples = join(ROOT, "examples");
  const schema = readFileSync(join(ROOT, "lib", "config", "schema.json"));
  files.set(join(DEB_PATHS.doc, "examples", "schema.json"), schema);
  for (const entry of readdirSync(examples, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = relative(examples, join(entry.parentPath, entry.name));
    let text = readFileSync(join(examples, path), "utf8");
    if (path.endsWith(".yaml"))
      text = text.replace("$schema=../lib/config/schema.json", "$schema=schema.json");
    files.set(join(DEB_PATHS.doc, "examples", path), text);
  }
  return files;
}

async function sha256(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

function releaseDate(): string {
  const epoch = process.env.SOURCE_DATE_EPOCH;
  if (epoch) return new Date(Number(epoch) * 1000).toISOString().slice(0, 10);
  const git = Bun.spawnSync(["git", "log", "-1", "--format=%cs"], { cwd: ROOT, stdout: "pipe" });
  const date = git.stdout.toString().trim();
  return git.exitCode === 0 && date ? date : new Date().toISOString().slice(0, 10);
}

export async function release(targets: readonly Target[] = TARGETS): Promise<string[]> {
  const version = pkg.version;
  mkdirSync(DIST, { recursive: true });
  const shared = sharedFiles(version, releaseDate());
  const artifacts: string[] = [];
  for (const target of targets) {
    const binary = join(DIST, `abgleich-${target.name}`);
    console.log(`== ${basename(binary)} (${target.bunTarget})`);
    run(
      [
        process.execPath,
        "build",
        ...COMPILE_FLAGS,
        `--target=${target.bunTarget}`,
        join(ROOT, "lib", "cli", "main.ts"),
        "--outfile",
        binary,
      ],
      `bun build for ${target.name}`,
    );
    artifacts.push(binary);

    const deb = join(DIST, `abgleich_${version}_${target.debArch}.deb`);
    console.log(`== ${basename(deb)}`);
    const root = join(DIST, "deb", target.debArch);
    rmSync(root, { recursive: true, force: true });
    mkdirSync(join(root, DEB_PATHS.config), { recursive: true, mode: 0o755 });
    for (const [path, content] of shared) put(root, path, content);
    mkdirSync(join(root, dirname(DEB_PATHS.binary)), { recursive: true, mode: 0o755 });
    copyFileSync(binary, join(root, DEB_PATHS.binary));
    chmodSync(join(root, DEB_PATHS.binary), 0o755);
    const glibc = glibcNeeded(run(["readelf", "--version-info", "-W", binary], "readelf"));
    put(
      root,
      "DEBIAN/control",
      control({ version, arch: target.debArch, installedKiB: sizeKiB(root), glibc }),
    );
    // gzip: every dpkg reads it, and it is quick on a 100 MB binary
    run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, deb], "dpkg-deb");
    rmSync(root, { recursive: true, force: true });
    artifacts.push(deb);
  }
  rmSync(join(DIST, "deb"), { recursive: true, force: true });

  const sums = [];
  for (const file of artifacts) sums.push(`${await sha256(file)}  ${basename(file)}`);
  writeFileSync(join(DIST, "SHA256SUMS"), `${sums.join("\n")}\n`);
  artifacts.push(join(DIST, "SHA256SUMS"));
  return artifacts;
}

if (import.meta.main) {
  try {
    const artifacts = await release();
    console.log(`released into ${relative(ROOT, DIST)}/:`);
    for (const file of artifacts) console.log(`  ${basename(file)}`);
  } catch (error) {
    console.error(`release: ${(error as Error).message}`);
    process.exit(1);
  }
}
