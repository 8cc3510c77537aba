// `npm run release`: everything needed to install abgleich without a toolchain, in dist/:
//
//   abgleich-linux-x64, abgleich-linux-arm64   standalone binaries (bun build --compile)
//   abgleich_VERSION_amd64.deb, …_arm64.deb     the binary, systemd units, man page,
//                                              bash/zsh/fish completions, example configs,
//                                              docs, changelog, copyright (with what the
//                                              binary bundles), maintainer scripts
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

/** an npm package compiled into the binary */
export interface Bundled {
  readonly name: string;
  readonly version: string;
  readonly license: string;
}

/** the npm packages the binary holds: the dependencies, and theirs, as installed */
export function bundledPackages(root = ROOT): Bundled[] {
  const found = new Map<string, Bundled>();
  const visit = (name: string) => {
    if (found.has(name) || name === "bun") return; // bun is the runtime, named on its own
    const manifest = JSON.parse(
      readFileSync(join(root, "node_modules", name, "package.json"), "utf8"),
    ) as { version: string; license?: string; dependencies?: Record<string, string> };
    found.set(name, {
      name,
      version: manifest.version,
      license: manifest.license ?? "see package",
    });
    for (const dependency of Object.keys(manifest.dependencies ?? {})) visit(dependency);
  };
  for (const name of Object.keys(pkg.dependencies)) visit(name);
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** license texts Debian does not ship in /usr/share/common-licenses */
const LICENSE_TEXTS: Record<string, string> = {
  MIT: `Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
 SOFTWARE.`,
  ISC: `Permission to use, copy, modify, and/or distribute this software for any
 purpose with or without fee is hereby granted, provided that the above
 copyright notice and this permission notice appear in all copies.
 .
 THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES WITH
 REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF MERCHANTABILITY
 AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR ANY SPECIAL, DIRECT,
 INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES WHATSOEVER RESULTING FROM
 LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION OF CONTRACT, NEGLIGENCE OR
 OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE USE OR
 PERFORMANCE OF THIS SOFTWARE.`,
  "BSD-3-Clause": `Redistribution and use in source and binary forms, with or without
 modification, are permitted provided that the following conditions are met:
 1. Redistributions of source code must retain the above copyright notice,
 this list of conditions and the following disclaimer.
 2. Redistributions in binary form must reproduce the above copyright notice,
 this list of conditions and the following disclaimer in the documentation
 and/or other materials provided with the distribution.
 3. Neither the name of the copyright holder nor the names of its contributors
 may be used to endorse or promote products derived from this software without
 specific prior written permission.
 .
 THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND
 ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED
 WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
 DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR
 ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES
 (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES;
 LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON
 ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT
 (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS
 SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.`,
};

/** licenses Debian ships: a pointer to /usr/share/common-licenses */
const COMMON_LICENSES: Record<string, string> = {
  "GPL-2.0-or-later": "GPL-2",
  "Apache-2.0": "Apache-2.0",
  "LGPL-2.1": "LGPL-2.1",
};

/**
 * The Debian copyright file (machine-readable): abgleich's own license, then what the binary
 * bundles (the Bun runtime with the libraries it links, the npm packages), each license once
 */
export function copyright(bundled: readonly Bundled[]): string {
  const licenses = new Set([
    "GPL-2.0-or-later",
    "MIT",
    "LGPL-2.1",
    ...bundled.map((b) => b.license),
  ]);
  const paragraphs = [
    `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: abgleich

Files: *
Copyright: 2026 the abgleich authors
License: GPL-2.0-or-later`,
    `Files: usr/bin/abgleich
Copyright: 2026 the abgleich authors, and the authors of what it bundles
License: GPL-2.0-or-later and MIT and LGPL-2.1 and ${[...new Set(bundled.map((b) => b.license))].filter((l) => !["MIT", "GPL-2.0-or-later"].includes(l)).join(" and ")}
Comment: The binary is abgleich compiled with the Bun runtime (MIT), which statically
 links WebKit's JavaScriptCore (LGPL-2.1, parts BSD-2-Clause) and other libraries;
 Bun lists them all at https://bun.sh/docs/project/licensing. Bundled npm packages:
${bundled.map((b) => ` ${b.name} ${b.version} (${b.license})`).join("\n")}`,
  ];
  for (const license of [...licenses].sort()) {
    const common = COMMON_LICENSES[license];
    const text = LICENSE_TEXTS[license];
    if (common !== undefined)
      paragraphs.push(
        `License: ${license}\n On Debian systems, the full text of this license is in\n /usr/share/common-licenses/${common}.`,
      );
    else if (text !== undefined) paragraphs.push(`License: ${license}\n ${text}`);
    else
      throw new Error(
        `no license text for ${license}: add it to LICENSE_TEXTS in scripts/release.ts`,
      );
  }
  return `${paragraphs.join("\n\n")}\n`;
}

/** /usr/share/doc/abgleich/changelog.gz's text: this version, in Debian's format */
export function changelog(version: string, date: string): string {
  const when = new Date(`${date}T00:00:00Z`).toUTCString().replace("GMT", "+0000");
  return `abgleich (${version}) unstable; urgency=medium

  * Release ${version}: the changes are in the project's git history.

 -- ${MAINTAINER}  ${when}
`;
}

/**
 * DEBIAN/postinst, prerm, postrm. systemd reads the units again after an install, an upgrade
 * or a removal; a removal stops the timers and runs the admin started; a purge also removes
 * the timers the admin enabled and the run state (/var/lib/abgleich). The configs in
 * /etc/abgleich are the admin's and stay.
 */
export const MAINTAINER_SCRIPTS: Record<"postinst" | "prerm" | "postrm", string> = {
  postinst: `#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
`,
  prerm: `#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl stop 'abgleich@*.timer' 'abgleich-status@*.timer' 'abgleich@*.service' 'abgleich-status@*.service' >/dev/null 2>&1 || true
fi
`,
  postrm: `#!/bin/sh
set -e
if [ "$1" = purge ]; then
	rm -f /etc/systemd/system/timers.target.wants/abgleich@*.timer /etc/systemd/system/timers.target.wants/abgleich-status@*.timer
	rm -rf /var/lib/abgleich
fi
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
`,
};

/**
 * lintian, on what abgleich cannot change: the binary is Bun's runtime (built by Bun, with the
 * libraries it links and their strings) with the program appended, which strip would cut off;
 * the timers to stop are the admin's instances, whose names no deb-systemd-invoke call knows
 */
export const LINTIAN_OVERRIDES = `# Bun's runtime with the program appended: strip would cut the program off
abgleich: unstripped-binary-or-object [usr/bin/abgleich]
# the runtime as Bun builds it: its linked libraries, flags and strings
abgleich: embedded-library * [usr/bin/abgleich]
abgleich: hardening-no-pie [usr/bin/abgleich]
abgleich: hardening-no-relro [usr/bin/abgleich]
abgleich: hardening-no-bindnow [usr/bin/abgleich]
abgleich: spelling-error-in-binary * [usr/bin/abgleich]
# the admin's timer instances (abgleich@NAME.timer) by pattern: deb-systemd-invoke needs names
abgleich: maintainer-script-calls-systemctl [prerm:*]
`;

/** DEBIAN/md5sums: every installed file's md5, as dpkg --verify reads it */
function md5sums(root: string): string {
  const lines: string[] = [];
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = relative(root, join(entry.parentPath, entry.name));
    if (path.startsWith("DEBIAN/")) continue;
    const digest = createHash("md5")
      .update(readFileSync(join(root, path)))
      .digest("hex");
    lines.push(`${digest}  ${path}`);
  }
  return `${lines.sort().join("\n")}\n`;
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
  files.set(join(DEB_PATHS.doc, "copyright"), copyright(bundledPackages()));
  files.set(join(DEB_PATHS.doc, "changelog.gz"), gzipSync(changelog(version, date), { level: 9 }));
  files.set("usr/share/lintian/overrides/abgleich", LINTIAN_OVERRIDES);
  files.set(join(DEB_PATHS.doc, "README.md.gz"), gzipSync(readFileSync(join(ROOT, "README.md"))));
  // what the README links to: the plugin guide, the events' schema, the wizard's pictures
  const docs = join(ROOT, "docs");
  for (const entry of readdirSync(docs, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = relative(docs, join(entry.parentPath, entry.name));
    const content = readFileSync(join(docs, path));
    files.set(
      join(DEB_PATHS.doc, "docs", path.endsWith(".md") ? `${path}.gz` : path),
      path.endsWith(".md") ? gzipSync(content, { level: 9 }) : content,
    );
  }
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
    for (const [name, script] of Object.entries(MAINTAINER_SCRIPTS))
      put(root, join("DEBIAN", name), script, 0o755);
    put(root, "DEBIAN/md5sums", md5sums(root));
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
