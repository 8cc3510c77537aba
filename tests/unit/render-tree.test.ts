import { describe, expect, test } from "bun:test";
import { createStyle, plainStyle, stripAnsi } from "../../lib/cli/render/style.ts";
import { renderTree, treeJson } from "../../lib/cli/render/tree.ts";
import type { Dataset, Inventory, Snapshot } from "../../lib/zfs/model.ts";

const ESC = "\u001b";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

function snapshot(name: string, used: number, guid = "18446744073709551615"): Snapshot {
  return {
    name,
    guid,
    createtxg: 10,
    creation: 1_764_000_000,
    used,
    referenced: 2 * MiB,
    written: used,
    compressratio: 1.5,
    userrefs: 0,
  };
}

function dataset(name: string, subname: string, used: number, snapshots: Snapshot[]): Dataset {
  return {
    name,
    subname,
    type: "filesystem",
    guid: "9007199254740993",
    createtxg: 5,
    creation: 1_763_000_000,
    used,
    referenced: 1992294,
    written: 0,
    compressratio: 1,
    mountpoint: `/${name}`,
    mounted: true,
    resumeToken: null,
    encryption: "off",
    keystatus: null,
    bookmarks: [],
    snapshots,
  };
}

const inventory: Inventory = {
  side: "source",
  root: "tank/data",
  datasets: [
    dataset("tank/data", "", 12.4 * GiB, [snapshot("2026112601", 0)]),
    dataset("tank/data/home", "home", 3 * GiB, [
      snapshot("2026112601", 512),
      snapshot("2026112602", 3 * MiB),
    ]),
    dataset("tank/data/home/CACHE", "home/CACHE", 700 * MiB, []),
  ],
};

const empty: Inventory = { side: "target", root: "backup/data", datasets: [] };

describe("renderTree", () => {
  test("datasets by full name with their snapshots below, exact text with colour off", () => {
    const out = renderTree(inventory, {
      style: plainStyle,
      ignored: new Set(["home/CACHE"]),
      rootIncluded: true,
    });
    expect(out).toBe(
      [
        "NAME                                 USED    REFER  RATIO",
        "tank/data                        12.4 GiB  1.9 MiB  1.00x",
        "- 2026112601                          0 B  2.0 MiB  1.50x",
        "tank/data/home                    3.0 GiB  1.9 MiB  1.00x",
        "- 2026112601                        512 B  2.0 MiB  1.50x",
        "- 2026112602                      3.0 MiB  2.0 MiB  1.50x",
        "tank/data/home/CACHE (ignored)  700.0 MiB  1.9 MiB  1.00x",
      ].join("\n"),
    );
  });

  test("the root is marked when include_root is off", () => {
    const out = renderTree(inventory, {
      style: plainStyle,
      ignored: new Set(),
      rootIncluded: false,
    });
    const lines = out.split("\n");
    expect(lines[1]).toStartWith("tank/data (root not included) ");
    expect(lines.filter((line) => line.includes("(root not included)"))).toHaveLength(1);
    expect(out).not.toContain("(ignored)");
  });

  test("ignore is exact: a child of an ignored subname is not marked", () => {
    const out = renderTree(inventory, {
      style: plainStyle,
      ignored: new Set(["home"]),
      rootIncluded: true,
    });
    expect(out).toContain("tank/data/home (ignored)");
    expect(out).not.toContain("CACHE (ignored)");
  });

  test("an empty inventory prints (empty)", () => {
    expect(renderTree(empty, { style: plainStyle, ignored: new Set(), rootIncluded: true })).toBe(
      "(empty)",
    );
  });

  test("with colour: snapshot rows dim, sizes coloured, same text underneath", () => {
    const opts = { ignored: new Set(["home/CACHE"]), rootIncluded: true };
    const colored = renderTree(inventory, { ...opts, style: createStyle(true) });
    const plain = renderTree(inventory, { ...opts, style: plainStyle });
    expect(stripAnsi(colored)).toBe(plain);
    const snapshotLine = colored.split("\n")[2] ?? "";
    expect(snapshotLine).toStartWith("\u001b[2m- 2026112601");
    expect(colored).toContain("\u001b[2m(ignored)");
    expect(colored).toMatch(new RegExp(`${ESC}\\[\\d+m12\\.4 GiB`));
  });
});

describe("treeJson", () => {
  test("sizes in bytes, guids as strings, exclusion spelled out", () => {
    const json = treeJson(inventory, { ignored: new Set(["home/CACHE"]), rootIncluded: false });
    expect(json.side).toBe("source");
    expect(json.root).toBe("tank/data");
    expect(json.datasets.map((d) => [d.subname, d.included, d.excludedBecause])).toEqual([
      ["", false, "root not included"],
      ["home", true, null],
      ["home/CACHE", false, "ignored"],
    ]);
    const home = json.datasets[1];
    expect(home?.used).toBe(3 * GiB);
    expect(home?.guid).toBe("9007199254740993");
    expect(home?.snapshots.map((s) => s.name)).toEqual(["2026112601", "2026112602"]);
    expect(home?.snapshots[0]?.guid).toBe("18446744073709551615");
  });

  test("survives a JSON round trip unchanged (no bigints, no undefined)", () => {
    const json = treeJson(inventory, { ignored: new Set(), rootIncluded: true });
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
  });

  test("an empty inventory has an empty list", () => {
    expect(treeJson(empty, { ignored: new Set(), rootIncluded: true })).toEqual({
      side: "target",
      root: "backup/data",
      datasets: [],
    });
  });
});

describe("encryption, bookmarks and holds", () => {
  const secret: Dataset = {
    ...dataset("tank/data/secret", "secret", 3 * MiB, [
      { ...snapshot("2026112601", 0), userrefs: 1 },
      { ...snapshot("2026112602", 0), userrefs: 2 },
    ]),
    encryption: "aes-256-gcm",
    keystatus: "unavailable",
    bookmarks: [
      { name: "old", guid: "1", createtxg: 3, creation: 1 },
      { name: "2026112601", guid: "2", createtxg: 10, creation: 2 },
    ],
  };
  const inv: Inventory = { side: "target", root: "tank/data", datasets: [secret] };

  test("in words after the ratio: the dataset's encryption and bookmarks, a snapshot's holds", () => {
    const out = renderTree(inv, { style: plainStyle, ignored: new Set(), rootIncluded: true });
    expect(out).toBe(
      [
        "NAME                 USED    REFER  RATIO",
        "tank/data/secret  3.0 MiB  1.9 MiB  1.00x  encrypted, key not loaded; 2 bookmarks",
        "- 2026112601          0 B  2.0 MiB  1.50x  1 hold",
        "- 2026112602          0 B  2.0 MiB  1.50x  2 holds",
      ].join("\n"),
    );
  });

  test("a dataset holding a cut receive says the next backup resumes it", () => {
    const cut: Dataset = {
      ...dataset("tank/data/new", "new", 3 * MiB, []),
      resumeToken: "1-abc-def-0123456789abcdef",
    };
    const out = renderTree(
      { side: "target", root: "tank/data", datasets: [cut] },
      { style: plainStyle, ignored: new Set(), rootIncluded: true },
    );
    expect(out.split("\n")[1]).toEndWith("a cut transfer waits here: the next backup resumes it");
    expect(out).not.toContain("1-abc");
    // on a source, it is no backup of abgleich's to resume
    const source = renderTree(
      { side: "source", root: "tank/data", datasets: [cut] },
      { style: plainStyle, ignored: new Set(), rootIncluded: true },
    );
    expect(source.split("\n")[1]).toEndWith(
      "a cut receive waits here (another run's, into this pool)",
    );
  });

  test("--json: encryption, key status, bookmark count and the newest bookmark", () => {
    const [json] = treeJson(inv, { ignored: new Set(), rootIncluded: true }).datasets;
    expect(json).toMatchObject({
      encryption: "aes-256-gcm",
      keystatus: "unavailable",
      bookmarks: 2,
      newestBookmark: "2026112601",
    });
    expect(json?.snapshots.map((s) => s.userrefs)).toEqual([1, 2]);
  });
});
