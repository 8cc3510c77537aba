import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import schema from "../../lib/config/schema.json";
import {
  checkDatasetName,
  checkPoolName,
  checkRelativeName,
  checkSnapshotName,
  checkSnapshotShortName,
  MAX_NAME_LENGTH,
} from "../../lib/zfs/names.ts";

describe("checkPoolName", () => {
  test.each(["tank", "tank_ssd", "Tank-2", "a", "a.b:c d", "mirrorpool", "raidz2x"])(
    "accepts %p",
    (name) => {
      expect(checkPoolName(name)).toBeNull();
    },
  );

  test.each([
    ["", "empty"],
    ["1tank", "start with a letter"],
    ["_tank", "start with a letter"],
    ["tank/data", "cannot contain '/'"],
    ["tank@s", "invalid character '@'"],
    ["ta\tnk", "control character U+0009"],
    ["mirror", "reserved"],
    ["raidz", "reserved"],
    ["draid", "reserved"],
    ["t".repeat(240), "longer than 239"],
  ])("rejects %p (%s)", (name, reason) => {
    expect(checkPoolName(name)).toContain(reason);
  });
});

describe("checkDatasetName", () => {
  test.each(["tank", "tank/data", "tank/data/home/user", "tank/a b/c:d.e-f_g", "t/.hidden"])(
    "accepts %p",
    (name) => {
      expect(checkDatasetName(name)).toBeNull();
    },
  );

  test.each([
    ["", "empty"],
    ["/tank", "leading '/'"],
    ["tank/", "trailing '/'"],
    ["tank//data", "empty component"],
    ["tank/./x", "component '.'"],
    ["tank/..", "component '..'"],
    ["tank/da$ta", "invalid character '$'"],
    ["tank/data@snap", "invalid character '@'"],
    ["tank/data#mark", "invalid character '#'"],
    ["1tank/data", "start with a letter"],
    [`tank/${"x".repeat(MAX_NAME_LENGTH)}`, "longer than 255"],
  ])("rejects %p (%s)", (name, reason) => {
    expect(checkDatasetName(name)).toContain(reason);
  });

  test("accepts exactly 255 characters", () => {
    const name = `tank/${"x".repeat(MAX_NAME_LENGTH - 5)}`;
    expect(name.length).toBe(255);
    expect(checkDatasetName(name)).toBeNull();
  });
});

describe("checkRelativeName", () => {
  test("has no pool rules: may start with a digit or be a vdev keyword", () => {
    expect(checkRelativeName("2024/mirror")).toBeNull();
  });
  test("rejects a leading slash", () => {
    expect(checkRelativeName("/home")).toContain("leading '/'");
  });
});

describe("snapshot names", () => {
  test.each(["2026112601_backup", "s1", "a b", "x:y.z-w"])("short name %p is valid", (name) => {
    expect(checkSnapshotShortName(name)).toBeNull();
  });
  test.each([
    ["", "empty"],
    ["a/b", "invalid character '/'"],
    ["a@b", "invalid character '@'"],
    ["..", "component '..'"],
  ])("short name %p is rejected (%s)", (name, reason) => {
    expect(checkSnapshotShortName(name)).toContain(reason);
  });
  test("full names need an @ and fit 255 characters together", () => {
    expect(checkSnapshotName("tank/data@s1")).toBeNull();
    expect(checkSnapshotName("tank/data")).toContain("missing '@'");
    expect(checkSnapshotName("tank//x@s1")).toContain("empty component");
    expect(checkSnapshotName(`tank/${"d".repeat(200)}@${"s".repeat(60)}`)).toContain(
      "longer than 255",
    );
  });
});

// The JSON Schema repeats these rules as regexes (editors only understand regexes);
// prove both say the same for many generated names, including the tricky characters.
describe("schema patterns agree with names.ts", () => {
  const poolPattern = new RegExp(schema.definitions.poolName.pattern, "u");
  const relativePattern = new RegExp(schema.definitions.relativeName.pattern, "u");
  const prefixPattern = new RegExp(schema.definitions.side.properties.prefix.pattern, "u");
  const alphabet = ["a", "Z", "0", "_", "-", ":", ".", " ", "/", "@", "#", "$", "\t", "é", "m"];
  const names = fc.oneof(
    fc.array(fc.constantFrom(...alphabet), { maxLength: 12 }).map((chars) => chars.join("")),
    fc.constantFrom(
      "mirror",
      "raidz",
      "draid",
      "mirror1",
      ".",
      "..",
      "a/.",
      "a/../b",
      "./a",
      "a/.b",
    ),
  );

  test("pool names", () => {
    fc.assert(
      fc.property(names, (name) => {
        expect(poolPattern.test(name)).toBe(checkPoolName(name) === null);
      }),
      { numRuns: 2000 },
    );
  });

  test("relative names (ignore entries)", () => {
    fc.assert(
      fc.property(names, (name) => {
        expect(relativePattern.test(name)).toBe(checkRelativeName(name) === null);
      }),
      { numRuns: 2000 },
    );
  });

  test("prefixes: a relative name or empty", () => {
    fc.assert(
      fc.property(names, (name) => {
        expect(prefixPattern.test(name)).toBe(name === "" || checkRelativeName(name) === null);
      }),
      { numRuns: 2000 },
    );
  });

  test("length limits match", () => {
    expect(schema.definitions.poolName.maxLength).toBe(239);
    expect(schema.definitions.relativeName.maxLength).toBe(MAX_NAME_LENGTH);
    expect(checkPoolName("p".repeat(239))).toBeNull();
  });
});
