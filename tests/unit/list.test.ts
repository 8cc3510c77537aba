import { describe, expect, test } from "bun:test";
import { syntheticList } from "../../bench/synthetic.ts";
import { LIST_COLUMNS, ListParseError, parseList } from "../../lib/zfs/list.ts";

// rows as real OpenZFS 2.1.11 prints them, with our column set
const REAL = [
  "srcpool/data\tfilesystem\t1795663151\t11510736035239985695\t8\t13000704\t4308992\t0\t1.00\t/srcpool/data\tyes\t-\t-",
  "srcpool/data@s1\tsnapshot\t1795663151\t18204870599707721633\t11\t8470528\t8503296\t8503296\t1.00\t-\t-\t-\t0",
  "srcpool/data@s2\tsnapshot\t1795663152\t2264125859205254695\t12\t57344\t4300800\t4268032\t1.00\t-\t-\t-\t1",
  "srcpool/data#b4\tbookmark\t1795663163\t7824361684141787182\t22\t-\t46284800\t-\t-\t-\t-\t-\t-",
  "srcpool/data/child\tfilesystem\t1795663151\t15726910147827664403\t10\t163840\t98304\t0\t1.01\t/srcpool/data/child\tno\t1-e8c5cb21a-e0-789c63\t-",
  "srcpool/data/vol\tvolume\t1795663151\t5\t14\t163840\t98304\t4096\t1.50\t-\t-\t-\t-",
].join("\n");

describe("parseList", () => {
  test("parses real rows: guids as exact strings, snapshots under their dataset, bookmarks skipped", () => {
    const inv = parseList(`${REAL}\n`, "source", "srcpool/data", "source (localhost)");
    expect(inv.datasets.map((d) => d.subname)).toEqual(["", "child", "vol"]);
    const data = inv.datasets[0]!;
    expect(data.guid).toBe("11510736035239985695"); // > 2^53: a Number would round it
    expect(data.snapshots.map((s) => s.name)).toEqual(["s1", "s2"]);
    expect(data.snapshots[0]!.guid).toBe("18204870599707721633");
    expect(data.snapshots[1]!.userrefs).toBe(1);
    expect(data.mounted).toBe(true);
    expect(data.resumeToken).toBeNull();
    const child = inv.datasets[1]!;
    expect(child.mounted).toBe(false);
    expect(child.resumeToken).toBe("1-e8c5cb21a-e0-789c63");
    expect(child.compressratio).toBe(1.01);
    const vol = inv.datasets[2]!;
    expect(vol.type).toBe("volume");
    expect(vol.mounted).toBeNull();
    expect(vol.written).toBe(4096);
  });

  test("odd but legal names parse: spaces, colon, dot, dash", () => {
    const name = "tank/a b:c.d-e";
    const text = `tank\tfilesystem\t1\t1\t1\t1\t1\t0\t1.00\t/tank\tyes\t-\t-\n${name}\tfilesystem\t1\t2\t2\t1\t1\t0\t1.00\t/x\tyes\t-\t-\n${name}@2026112601 x\tsnapshot\t1\t3\t3\t1\t1\t0\t1.00\t-\t-\t-\t0\n`;
    const inv = parseList(text, "source", "tank", "source (localhost)");
    expect(inv.datasets[1]!.subname).toBe("a b:c.d-e");
    expect(inv.datasets[1]!.snapshots[0]!.name).toBe("2026112601 x");
  });

  test("empty output is an empty tree", () => {
    expect(parseList("", "target", "tank", "t").datasets).toEqual([]);
  });

  const bad: [string, string, RegExp][] = [
    ["too few columns", "tank\tfilesystem\t1", /line 1: expected 13 tab-separated columns, got 3/],
    ["garbage", "hello world", /line 1: expected 13/],
    [
      "number column with text",
      "tank\tfilesystem\tsoon\t1\t1\t1\t1\t0\t1.00\t/t\tyes\t-\t-",
      /creation of tank is not a number/,
    ],
    [
      "guid with text",
      "tank\tfilesystem\t1\tabc\t1\t1\t1\t0\t1.00\t/t\tyes\t-\t-",
      /guid of tank is not a number/,
    ],
    [
      "a dataset outside the root",
      "other\tfilesystem\t1\t1\t1\t1\t1\t0\t1.00\t/t\tyes\t-\t-",
      /other is not inside tank/,
    ],
    [
      "a snapshot before its dataset",
      "tank@s\tsnapshot\t1\t1\t1\t1\t1\t0\t1.00\t-\t-\t-\t0",
      /snapshot tank@s does not follow its dataset/,
    ],
    [
      "an unknown type",
      "tank\tpotato\t1\t1\t1\t1\t1\t0\t1.00\t/t\tyes\t-\t-",
      /unknown type "potato"/,
    ],
    [
      "a shell metacharacter in a name",
      "tank;rm\tfilesystem\t1\t1\t1\t1\t1\t0\t1.00\t/t\tyes\t-\t-",
      /invalid dataset name/,
    ],
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
    const text =
      "tank\tfilesystem\t1\t1\t1\t1\t1\t0\t1.00\t/t\tyes\t-\t-\ntank/a/b\tfilesystem\t1\t1\t1\t1\t1\t0\t1.00\t/t\tyes\t-\t-\n";
    expect(() => parseList(text, "source", "tank", "s")).toThrow(
      /line 2: tank\/a\/b is listed before its parent tank\/a/,
    );
  });

  test("synthetic benchmark text has the listed columns and parses to the generated counts", () => {
    const inv = parseList(
      syntheticList({ root: "tank", datasets: 150, snapshots: 7 }),
      "source",
      "tank",
      "s",
    );
    expect(inv.datasets.length).toBe(150);
    expect(inv.datasets.every((d) => d.snapshots.length === 7)).toBe(true);
    expect(LIST_COLUMNS.length).toBe(13);
  });
});
