// The pure parts of `npm run release`: the .deb's control file and dependency on glibc, and the
// files every .deb carries besides the binary.

import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import {
  control,
  copyright,
  DEB_PATHS,
  glibcNeeded,
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

  test("copyright: the machine-readable header, then the license", () => {
    expect(copyright("LICENSE TEXT")).toMatch(
      /^Format: https:\/\/www\.debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\/\n[\s\S]*License: GPL-2\.0-or-later\n\nLICENSE TEXT$/,
    );
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
    expect(text(`${DEB_PATHS.doc}/copyright`)).toContain("GNU GENERAL PUBLIC LICENSE");
    expect(text(`${DEB_PATHS.doc}/examples/config.yaml`)).toContain("zpool:");
  });

  test("the examples' schema comment points at the schema shipped beside them", () => {
    const remote = text(`${DEB_PATHS.doc}/examples/config-remote.yaml`);
    expect(remote).toContain("$schema=schema.json");
    expect(remote).not.toContain("../lib/");
    expect(JSON.parse(text(`${DEB_PATHS.doc}/examples/schema.json`))).toHaveProperty("properties");
  });
});
