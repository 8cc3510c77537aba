// The pure parts of `npm run release`: the .deb's control file and dependency on glibc, and the
// files every .deb carries besides the binary.

import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import {
  bundledPackages,
  changelog,
  control,
  copyright,
  DEB_PATHS,
  glibcNeeded,
  MAINTAINER_SCRIPTS,
  sharedFiles,
  TARGETS,
} from "../../../scripts/release.ts";

describe("glibcNeeded", () => {
  test("the highest GLIBC_ version, compared as numbers", () => {
    const readelf = [
      "  0x0010:   Name: GLIBC_2.2.5  Flags: none  Version: 3",
      "  0x0020:   Name: GLIBC_2.17  Flags: none  Version: 5",
      "  0x0030:   Name: GLIBC_2.3.4  Flags: none  Version: 2",
      "  0x0040:   Name: GLIBC_PRIVATE  Flags: none  Version: 4",
    ].join("\n");
    expect(glibcNeeded(readelf)).toBe("2.17");
    expect(glibcNeeded("no versions")).toBeUndefined();
  });
});

describe("control", () => {
  test("the fields dpkg needs, the glibc dependency, a folded description", () => {
    const text = control({ version: "1.2.3", arch: "arm64", installedKiB: 4096, glibc: "2.17" });
    expect(text).toMatch(/^Package: abgleich\nVersion: 1\.2\.3\nArchitecture: arm64\n/);
    expect(text).toContain("\nInstalled-Size: 4096\n");
    expect(text).toContain("\nDepends: libc6 (>= 2.17)\n");
    expect(text.endsWith("\n")).toBe(true);
    // after `Description:` every line is a continuation (starts with a space)
    const description = text.slice(text.indexOf("Description:")).split("\n").slice(1, -1);
    expect(description.length).toBeGreaterThan(2);
    for (const line of description) expect(line).toMatch(/^ \S/);
    expect(
      control({ version: "1", arch: "amd64", installedKiB: 1, glibc: undefined }),
    ).not.toContain("Depends:");
  });

  test("one target per architecture the README promises", () => {
    expect(TARGETS.map((t) => [t.name, t.debArch])).toEqual([
      ["linux-x64", "amd64"],
      ["linux-arm64", "arm64"],
    ]);
  });

  test("copyright: the machine-readable header, abgleich's license, what the binary bundles, each license once", () => {
    const text = copyright(bundledPackages());
    expect(text).toStartWith(
      "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: abgleich\n\nFiles: *\n",
    );
    // GPL and Apache point to Debian's copies, as policy asks, instead of a full text
    expect(text).toContain(
      "License: GPL-2.0-or-later\n On Debian systems, the full text of this license is in\n /usr/share/common-licenses/GPL-2.",
    );
    expect(text).toContain("/usr/share/common-licenses/Apache-2.0.");
    expect(text).not.toContain("GNU GENERAL PUBLIC LICENSE");
    // every npm package the binary holds, with its version and license, and that license's text
    for (const name of ["ajv", "commander", "tapable", "yaml", "zx"])
      expect(text).toMatch(new RegExp(`^ ${name} \\d`, "m"));
    for (const license of new Set(bundledPackages().map((b) => b.license)))
      expect(text.split("\n").filter((line) => line === `License: ${license}`)).toHaveLength(1);
    expect(text).toContain("Bun runtime (MIT)");
    expect(text).toContain("JavaScriptCore (LGPL-2.1");
    expect(() => copyright([{ name: "x", version: "1", license: "WTFPL" }])).toThrow(
      "no license text for WTFPL",
    );
  });

  test("maintainer scripts: sh that parses, systemd told after install and removal, a purge takes the enabled timers and the state", () => {
    for (const [name, script] of Object.entries(MAINTAINER_SCRIPTS)) {
      const check = Bun.spawnSync(["sh", "-n", "-c", script]);
      expect(`${name}: ${check.stderr.toString()}`).toBe(`${name}: `);
      expect(script).toStartWith("#!/bin/sh\nset -e\n");
    }
    expect(MAINTAINER_SCRIPTS.postinst).toContain("daemon-reload");
    expect(MAINTAINER_SCRIPTS.prerm).toContain("systemctl stop 'abgleich@*.timer'");
    expect(MAINTAINER_SCRIPTS.postrm).toContain('if [ "$1" = purge ]; then');
    expect(MAINTAINER_SCRIPTS.postrm).toContain("rm -rf /var/lib/abgleich");
    expect(changelog("1.2.3", "2026-01-02")).toStartWith(
      "abgleich (1.2.3) unstable; urgency=medium\n",
    );
    expect(changelog("1.2.3", "2026-01-02")).toContain("  Fri, 02 Jan 2026 00:00:00 +0000\n");
  });
});

describe("sharedFiles", () => {
  const files = sharedFiles("1.2.3", "2026-01-02");
  const text = (path: string) => {
    const content = files.get(path);
    if (content === undefined) throw new Error(`${path} is not in the package`);
    return typeof content === "string" ? content : Buffer.from(content).toString("utf8");
  };

  test("units, man page, completions, copyright and examples at their Debian paths", () => {
    const units = readdirSync(join(import.meta.dir, "..", "..", "..", "packaging", "systemd"));
    for (const unit of units) expect(files.has(`${DEB_PATHS.units}/${unit}`)).toBe(true);
    const man = gunzipSync(files.get(DEB_PATHS.man) as Uint8Array).toString("utf8");
    expect(man).toContain('.TH ABGLEICH 1 "2026-01-02" "abgleich 1.2.3"');
    expect(text(DEB_PATHS.bash)).toContain("complete -F _abgleich abgleich");
    expect(text(DEB_PATHS.zsh).startsWith("#compdef abgleich")).toBe(true);
    expect(text(DEB_PATHS.fish)).toContain("complete -c abgleich");
    expect(text(`${DEB_PATHS.doc}/copyright`)).toContain("/usr/share/common-licenses/GPL-2");
    expect(
      gunzipSync(files.get(`${DEB_PATHS.doc}/changelog.gz`) as Uint8Array).toString("utf8"),
    ).toStartWith("abgleich (1.2.3) unstable;");
    // what README.md links to ships beside it
    expect(
      gunzipSync(files.get(`${DEB_PATHS.doc}/docs/plugins.md.gz`) as Uint8Array).toString("utf8"),
    ).toContain("definePlugin");
    expect(JSON.parse(text(`${DEB_PATHS.doc}/docs/events.schema.json`))).toHaveProperty("$schema");
    expect(text("usr/share/lintian/overrides/abgleich")).toContain(
      "abgleich: unstripped-binary-or-object [usr/bin/abgleich]\n",
    );
    expect(text(`${DEB_PATHS.doc}/examples/config.yaml`)).toContain("zpool:");
  });

  test("the examples' schema comment points at the schema shipped beside them", () => {
    const remote = text(`${DEB_PATHS.doc}/examples/config-remote.yaml`);
    expect(remote).toContain("$schema=schema.json");
    expect(remote).not.toContain("../lib/");
    expect(JSON.parse(text(`${DEB_PATHS.doc}/examples/schema.json`))).toHaveProperty("properties");
  });
});
