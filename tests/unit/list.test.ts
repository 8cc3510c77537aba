import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { syntheticList } from "../../bench/synthetic.ts";
import {
  GuidSharing,
  LIST_COLUMNS,
  ListParseError,
  ListParser,
  parseList,
} from "../../lib/zfs/list.ts";
import type { Dataset, Inventory, Side } from "../../lib/zfs/model.ts";
import { listRows } from "../helpers/memory-host.ts";

// rows as real OpenZFS 2.1.11 prints them, with our column set (a bookmark's used, written,
// ratio, mountpoint, mounted, token, userrefs, encryption and keystatus are all `-`)
const REAL = [
  "srcpool/data\tfilesystem\t1795663151\t11510736035239985695\t8\t13000704\t4308992\t0\t1.00\t/srcpool/data\tyes\t-\t-\toff\t-",
  "srcpool/data@s1\tsnapshot\t1795663151\t18204870599707721633\t11\t8470528\t8503296\t8503296\t1.00\t-\t-\t-\t0\toff\t-",
  "srcpool/data@s2\tsnapshot\t1795663152\t2264125859205254695\t12\t57344\t4300800\t4268032\t1.00\t-\t-\t-\t1\toff\t-",
  "srcpool/data#b4\tbookmark\t1795663163\t7824361684141787182\t22\t-\t46284800\t-\t-\t-\t-\t-\t-\t-\t-",
  "srcpool/data#b2\tbookmark\t1795663152\t2264125859205254695\t12\t-\t4300800\t-\t-\t-\t-\t-\t-\t-\t-",
  "srcpool/data/child\tfilesystem\t1795663151\t15726910147827664403\t10\t163840\t98304\t0\t1.01\t/srcpool/data/child\tno\t1-e8c5cb21a-e0-789c63\t-\taes-256-gcm\tunavailable",
  "srcpool/data/child@s1\tsnapshot\t1795663151\t3989330998213889725\t11\t65536\t98304\t98304\t1.01\t-\t-\t-\t0\taes-256-gcm\tunavailable",
  "srcpool/data/vol\tvolume\t1795663151\t5\t14\t163840\t98304\t4096\t1.50\t-\t-\t-\t-\taes-128-ccm\tavailable",
].join("\n");

/** a dataset row with the given name and guid, 15 columns */
const fsRow = (name: string, guid = 1) =>
  `${name}\tfilesystem\t1\t${guid}\t1\t1\t1\t0\t1.00\t/t\tyes\t-\t-\toff\t-`;

describe("parseList", () => {
  test("parses real rows: guids as exact strings, snapshots and bookmarks under their dataset", () => {
    const inv = parseList(`${REAL}\n`, "source", "srcpool/data", "source (localhost)");
    expect(inv.datasets.map((d) => d.subname)).toEqual(["", "child", "vol"]);
    const data = inv.datasets[0]!;
    expect(data.guid).toBe("11510736035239985695"); // > 2^53: a Number would round it
    expect(data.snapshots.map((s) => s.name)).toEqual(["s1", "s2"]);
    expect(data.snapshots[0]!.guid).toBe("18204870599707721633");
    expect(data.snapshots[1]!.userrefs).toBe(1);
    expect(data.mounted).toBe(true);
    expect(data.resumeToken).toBeNull();
    expect(data.encryption).toBe("off");
    expect(data.keystatus).toBeNull();
    // listed by name, kept oldest first
    expect(data.bookmarks).toEqual([
      { name: "b2", guid: "2264125859205254695", createtxg: 12, creation: 1795663152 },
      { name: "b4", guid: "7824361684141787182", createtxg: 22, creation: 1795663163 },
    ]);
    const child = inv.datasets[1]!;
    expect(child.mounted).toBe(false);
    expect(child.resumeToken).toBe("1-e8c5cb21a-e0-789c63");
    expect(child.compressratio).toBe(1.01);
    expect(child.encryption).toBe("aes-256-gcm");
    expect(child.keystatus).toBe("unavailable");
    expect(child.bookmarks).toEqual([]);
    expect(child.snapshots.map((s) => s.name)).toEqual(["s1"]);
    const vol = inv.datasets[2]!;
    expect(vol.type).toBe("volume");
    expect(vol.mounted).toBeNull();
    expect(vol.written).toBe(4096);
    expect(vol.keystatus).toBe("available");
  });

  test("odd but legal names parse: spaces, colon, dot, dash", () => {
    const name = "tank/a b:c.d-e";
    const text = `${fsRow("tank")}\n${fsRow(name, 2)}\n${name}@2026112601 x\tsnapshot\t1\t3\t3\t1\t1\t0\t1.00\t-\t-\t-\t0\toff\t-\n`;
    const inv = parseList(text, "source", "tank", "source (localhost)");
    expect(inv.datasets[1]!.subname).toBe("a b:c.d-e");
    expect(inv.datasets[1]!.snapshots[0]!.name).toBe("2026112601 x");
  });

  test("empty output is an empty tree", () => {
    expect(parseList("", "target", "tank", "t").datasets).toEqual([]);
  });

  const bad: [string, string, RegExp][] = [
    ["too few columns", "tank\tfilesystem\t1", /line 1: expected 15 tab-separated columns, got 3/],
    [
      "too many columns",
      `${fsRow("tank")}\tx`,
      /line 1: expected 15 tab-separated columns, got 16/,
    ],
    ["garbage", "hello world", /line 1: expected 15/],
    [
      "number column with text",
      fsRow("tank").replace("\t1\t", "\tsoon\t"),
      /creation of tank is not a number/,
    ],
    [
      "guid with text",
      fsRow("tank").replace("\t1\t1\t", "\t1\tabc\t"),
      /guid of tank is not a number/,
    ],
    ["a ratio that is not one", fsRow("tank").replace("1.00", "1.x0"), /compressratio of tank/],
    ["a dataset outside the root", fsRow("other"), /other is not inside tank/],
    [
      "a snapshot before its dataset",
      "tank@s\tsnapshot\t1\t1\t1\t1\t1\t0\t1.00\t-\t-\t-\t0\toff\t-",
      /snapshot tank@s does not follow its dataset/,
    ],
    [
      "a bookmark before its dataset",
      "tank#b\tbookmark\t1\t1\t1\t-\t1\t-\t-\t-\t-\t-\t-\t-\t-",
      /bookmark tank#b does not follow its dataset/,
    ],
    ["an unknown type", fsRow("tank").replace("filesystem", "potato"), /unknown type "potato"/],
    ["a shell metacharacter in a name", fsRow("tank;rm"), /invalid dataset name/],
    [
      "a shell metacharacter in a snapshot name",
      `${fsRow("tank")}\ntank@a$b\tsnapshot\t1\t2\t2\t1\t1\t0\t1.00\t-\t-\t-\t0\toff\t-`,
      /line 2: invalid snapshot name "tank@a\$b"/,
    ],
    ["an unknown cipher", fsRow("tank").replace("\toff\t", "\trot13\t"), /encryption of tank/],
    ["an unknown key status", `${fsRow("tank").slice(0, -1)}maybe`, /keystatus of tank/],
  ];
  for (const [what, text, message] of bad) {
    test(`rejects ${what}, naming host and line`, () => {
      let error: unknown;
      try {
        parseList(`${text}\n`, "target", "tank", "target (backup-host)");
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ListParseError);
      expect((error as Error).message).toContain("target (backup-host)");
      expect((error as Error).message).toMatch(message);
    });
  }

  test("a child listed before its parent is an error", () => {
    const text = `${fsRow("tank")}\n${fsRow("tank/a/b")}\n`;
    expect(() => parseList(text, "source", "tank", "s")).toThrow(
      /line 2: tank\/a\/b is listed before its parent tank\/a/,
    );
  });

  test("synthetic benchmark text has the listed columns and parses to the generated counts", () => {
    const inv = parseList(
      syntheticList({
        root: "tank",
        datasets: 150,
        snapshots: 7,
        chain: "source",
        encrypted: "available",
      }),
      "source",
      "tank",
      "s",
    );
    expect(inv.datasets.length).toBe(150);
    expect(inv.datasets.every((d) => d.snapshots.length === 7)).toBe(true);
    expect(inv.datasets.every((d) => d.bookmarks.length === 1)).toBe(true);
    expect(inv.datasets.filter((d) => d.keystatus === "available").length).toBe(15);
    expect(LIST_COLUMNS.length).toBe(15);
  });

  test("the same model as a plain split-per-line reading, on odd names, orders and values", () => {
    const text = oddList();
    expect(parseList(text, "source", "tank/x y", "s")).toEqual(
      naiveParse(text, "source", "tank/x y"),
    );
  });

  test("pushed in pieces of any size, split anywhere, it reads the same tree", () => {
    // a mountpoint in UTF-8, so some cuts fall inside a character
    const text = oddList().replace("/mnt/tank/x y/a:b", "/mnt/ünï €");
    const bytes = Buffer.from(text, "utf8");
    const whole = parseList(text, "source", "tank/x y", "s");
    expect(whole.datasets[1]?.mountpoint).toBe("/mnt/ünï €");
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (const largest of [1, 2, 7, 100, 5000]) {
      const parser = new ListParser("source", "tank/x y", "s");
      // one reused buffer, as the spool reader hands pieces over
      const reused = new Uint8Array(largest);
      for (let at = 0; at < bytes.length; ) {
        const size = Math.min(1 + Math.floor(random() * largest), bytes.length - at);
        reused.set(bytes.subarray(at, at + size));
        parser.push(reused.subarray(0, size));
        reused.fill(0);
        at += size;
      }
      expect(parser.end()).toEqual(whole);
    }
  });

  test("a last line without its newline is read; errors count lines across pieces", () => {
    const parser = new ListParser("source", "tank", "s");
    parser.push(Buffer.from(`${fsRow("tank")}\n${fsRow("tank/a", 2).slice(0, 10)}`));
    parser.push(Buffer.from(fsRow("tank/a", 2).slice(10)));
    expect(parser.end().datasets.map((d) => d.subname)).toEqual(["", "a"]);

    const broken = new ListParser("target", "tank", "target (nas)");
    broken.push(Buffer.from(`${fsRow("tank")}\n${fsRow("tank/a", 2)}\n`));
    expect(() => broken.push(Buffer.from("tank/b\tfilesystem\n"))).toThrow(
      /target \(nas\), line 3: expected 15 tab-separated columns, got 2/,
    );
  });

  test("names shared between rows are still each row's own", () => {
    // equal names in the same position of consecutive datasets, then a differing one
    const rows = [fsRow("t"), fsRow("t/a", 2), fsRow("t/b", 3)];
    const snap = (ds: string, name: string, guid: number) =>
      `${ds}@${name}\tsnapshot\t1\t${guid}\t${guid}\t1\t1\t0\t1.00\t-\t-\t-\t0\toff\t-`;
    const text = [
      rows[0],
      snap("t", "s1", 10),
      snap("t", "s2", 11),
      rows[1],
      snap("t/a", "s1", 12),
      snap("t/a", "s22", 13),
      rows[2],
      snap("t/b", "s1", 14),
      snap("t/b", "s2", 15),
    ].join("\n");
    const names = parseList(text, "source", "t", "s").datasets.map((d) =>
      d.snapshots.map((s) => s.name),
    );
    expect(names).toEqual([
      ["s1", "s2"],
      ["s1", "s22"],
      ["s1", "s2"],
    ]);
  });
});

/** what parseList must return, read the obvious way: split lines, split tabs, look names up */
function naiveParse(text: string, side: Side, root: string): Inventory {
  const datasets: Dataset[] = [];
  const byName = new Map<string, Dataset>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const f = line.split("\t") as string[];
    const [name, type] = f as [string, string];
    const num = (i: number) => Number(f[i]);
    if (type === "snapshot" || type === "bookmark") {
      const mark = type === "snapshot" ? "@" : "#";
      const at = name.indexOf(mark);
      const parent = byName.get(name.slice(0, at)) as Dataset;
      if (type === "bookmark") {
        parent.bookmarks.push({
          name: name.slice(at + 1),
          guid: f[3] as string,
          createtxg: num(4),
          creation: num(2),
        });
        continue;
      }
      parent.snapshots.push({
        name: name.slice(at + 1),
        guid: f[3] as string,
        createtxg: num(4),
        creation: num(2),
        used: num(5),
        referenced: num(6),
        written: num(7),
        compressratio: Number.parseFloat(f[8] as string),
        userrefs: num(12),
      });
      continue;
    }
    const dataset: Dataset = {
      name,
      subname: name === root ? "" : name.slice(root.length + 1),
      type: type as Dataset["type"],
      guid: f[3] as string,
      createtxg: num(4),
      creation: num(2),
      used: num(5),
      referenced: num(6),
      written: num(7),
      compressratio: Number.parseFloat(f[8] as string),
      mountpoint: f[9] as string,
      mounted: f[10] === "yes" ? true : f[10] === "no" ? false : null,
      resumeToken: f[11] === "-" ? null : (f[11] as string),
      encryption: f[13] as string,
      keystatus: f[14] === "-" ? null : (f[14] as "available" | "unavailable"),
      bookmarks: [],
      snapshots: [],
    };
    datasets.push(dataset);
    byName.set(name, dataset);
  }
  for (const d of datasets) {
    d.snapshots.sort((a, b) => a.createtxg - b.createtxg);
    d.bookmarks.sort((a, b) => a.createtxg - b.createtxg);
  }
  return { side, root, datasets };
}

/** a tree with spaces, colons and dots in names, names repeated and not, snapshots out of txg
 * order, bookmarks out of name order, encryption, volumes, ratios with and without `x` */
function oddList(): string {
  const lines: string[] = [];
  let guid = 18_000_000_000_000_000_000n;
  const next = () => String(guid++);
  const dataset = (name: string, i: number) => {
    const crypt =
      i % 3 === 0 ? "off\t-" : i % 3 === 1 ? "aes-256-gcm\tavailable" : "aes-128-ccm\tunavailable";
    const volume = i % 4 === 3;
    lines.push(
      `${name}\t${volume ? "volume" : "filesystem"}\t${1_700_000_000 + i}\t${next()}\t${i + 1}\t${i * 4096}\t${i * 512}\t${i % 2 ? 0 : 8192}\t${(1 + i / 100).toFixed(2)}${i % 2 ? "x" : ""}\t${volume ? "-" : `/mnt/${name}`}\t${volume ? "-" : i % 2 ? "yes" : "no"}\t${i === 4 ? "1-abc-def-0" : "-"}\t-\t${crypt}`,
    );
    const count = i % 5;
    for (let s = 0; s < count; s++) {
      // the same names in most datasets; a rename in some; createtxg out of order in one
      const short = i === 2 && s === 1 ? "odd one: x.y" : `auto-2026-0${s + 1} 00:00`;
      const txg = i === 3 ? 1000 - s : 100 + i * 10 + s;
      lines.push(
        `${name}@${short}\tsnapshot\t${1_700_000_100 + s}\t${next()}\t${txg}\t${s * 512}\t${s * 1024}\t${s * 256}\t1.${String(s).padStart(2, "0")}x\t-\t-\t-\t${s % 2}\t${crypt}`,
      );
    }
    if (i % 2 === 0 && count > 1) {
      lines.push(
        `${name}#z last\tbookmark\t${1_700_000_300}\t${next()}\t${100 + i * 10 + 1}\t-\t1\t-\t-\t-\t-\t-\t-\t-\t-`,
        `${name}#a first\tbookmark\t${1_700_000_200}\t${next()}\t${100 + i * 10}\t-\t1\t-\t-\t-\t-\t-\t-\t-\t-`,
      );
    }
  };
  const names = ["tank/x y", "tank/x y/a:b", "tank/x y/a:b/c.d", "tank/x y/e-f g", "tank/x y/h"];
  for (let i = 0; i < 40; i++)
    dataset(i < names.length ? (names[i] as string) : `tank/x y/h/n ${i}`, i);
  return `${lines.join("\n")}\n`;
}

describe("GuidSharing: both sides parsed together", () => {
  // A source tree, and a target derived from it as backups, pruning and accidents leave it:
  // missing datasets, older snapshots pruned, a newer part not sent yet, a snapshot of the
  // same name but another guid, target-only snapshots.
  const SOURCE_ROOT = "tank/data";
  const TARGET_ROOT = "backup/data";
  const treeArb = fc.array(
    fc.record({
      snapshots: fc.integer({ min: 0, max: 9 }),
      onTarget: fc.boolean(),
      pruned: fc.integer({ min: 0, max: 4 }),
      sent: fc.integer({ min: 0, max: 9 }),
      mismatch: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined }),
      targetOnly: fc.integer({ min: 0, max: 2 }),
    }),
    { minLength: 1, maxLength: 6 },
  );
  const piecesArb = fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 20 });

  type Shape = typeof treeArb extends fc.Arbitrary<infer T> ? T : never;
  function trees(shape: Shape) {
    let guid = 10_000_000_000_000_000_000n;
    const next = () => String(guid++);
    const source: Dataset[] = [];
    const target: Dataset[] = [];
    shape.forEach((d, index) => {
      const subname = index === 0 ? "" : `d${index}`;
      const snapshot = (name: string, createtxg: number) => ({
        name,
        guid: next(),
        createtxg,
        creation: 1_700_000_000 + createtxg,
        used: 1,
        referenced: 2,
        written: 3,
        compressratio: 1,
        userrefs: 0,
      });
      const snaps = Array.from({ length: d.snapshots }, (_, s) => snapshot(`s${s}`, 10 + s));
      const dataset = (root: string, snapshots: typeof snaps): Dataset => ({
        name: subname === "" ? root : `${root}/${subname}`,
        subname,
        type: "filesystem",
        guid: next(),
        createtxg: 1,
        creation: 1_700_000_000,
        used: 1,
        referenced: 1,
        written: 0,
        compressratio: 1,
        mountpoint: "-",
        mounted: null,
        resumeToken: null,
        encryption: "off",
        keystatus: null,
        bookmarks: [],
        snapshots,
      });
      source.push(dataset(SOURCE_ROOT, snaps));
      // without the target root, nothing below it can be listed
      if (!d.onTarget || (index > 0 && target.length === 0)) return;
      const kept = snaps
        .slice(Math.min(d.pruned, d.sent), Math.max(d.sent, 0))
        .map((s, i) => (i === d.mismatch ? { ...s, guid: next() } : { ...s }));
      for (let t = 0; t < d.targetOnly; t++) kept.push(snapshot(`t${t}`, 100 + t));
      target.push(dataset(TARGET_ROOT, kept));
    });
    return { source, target };
  }

  test("reads the same trees as apart, whatever order the pieces come in; a guid the other side has is shared", () => {
    fc.assert(
      fc.property(treeArb, piecesArb, (shape, sizes) => {
        const { source, target } = trees(shape);
        const texts = {
          source: Buffer.from(listRows(source, SOURCE_ROOT)),
          target: Buffer.from(listRows(target, TARGET_ROOT)),
        };
        const apart = {
          source: parseList(texts.source.toString(), "source", SOURCE_ROOT, "s"),
          target: parseList(texts.target.toString(), "target", TARGET_ROOT, "t"),
        };
        // target snapshots whose guid the source has at the same name
        const sourceGuids = new Map(
          apart.source.datasets.flatMap((d) =>
            d.snapshots.map((s) => [`${d.subname}@${s.name}`, s.guid]),
          ),
        );
        const alike = apart.target.datasets.reduce(
          (count, d) =>
            count +
            d.snapshots.filter((s) => sourceGuids.get(`${d.subname}@${s.name}`) === s.guid).length,
          0,
        );
        for (const order of ["source first", "target first", "interleaved"] as const) {
          const sharing = new GuidSharing();
          const parsers = {
            source: new ListParser("source", SOURCE_ROOT, "s", sharing),
            target: new ListParser("target", TARGET_ROOT, "t", sharing),
          };
          // in pieces, as connections deliver them: one side after the other, or taking turns
          const at = { source: 0, target: 0 };
          let turn = 0;
          const pick = (): Side =>
            order === "source first"
              ? at.source < texts.source.length
                ? "source"
                : "target"
              : order === "target first"
                ? at.target < texts.target.length
                  ? "target"
                  : "source"
                : turn % 2 === 0
                  ? "source"
                  : "target";
          while (at.source < texts.source.length || at.target < texts.target.length) {
            const side = pick();
            const size = sizes[turn % sizes.length] as number;
            turn++;
            if (at[side] >= texts[side].length) continue;
            parsers[side].push(texts[side].subarray(at[side], at[side] + size));
            at[side] += size;
          }
          expect({ source: parsers.source.end(), target: parsers.target.end() }).toEqual(apart);
          const shared = parsers.source.sharedGuids + parsers.target.sharedGuids;
          // one side complete before the other: every such guid is shared; taking turns, a
          // side may reach a snapshot before the other has it
          if (order === "interleaved") expect(shared).toBeLessThanOrEqual(alike);
          else expect(shared).toBe(alike);
        }
      }),
      { numRuns: 300 },
    );
  });
});
