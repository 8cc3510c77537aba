import { describe, expect, test } from "bun:test";
import { inflateSync } from "node:zlib";
import { processAlive, processStart } from "../../lib/engine/proc.ts";
import {
  BASE_FS,
  compactExtents,
  datasetWritten,
  freeBytes,
  reclaimable,
  slop,
  snapshotUsed,
  snapshotWritten,
} from "../../lib/sim/accounting.ts";
import { parseOptions, ZfsError } from "../../lib/sim/errors.ts";
import {
  formatTable,
  holdDate,
  listDate,
  nicebytes,
  nicenum,
  parseSize,
} from "../../lib/sim/format.ts";
import { buildState } from "../../lib/sim/scenario.ts";
import { reapReceives, type SimDataset } from "../../lib/sim/state.ts";
import { decodeToken, describeToken, encodeToken, fletcher4Word0 } from "../../lib/sim/token.ts";

// A token printed by real OpenZFS 2.1.11 (transcript ex1).
const REAL_TOKEN =
  "1-e8c5cb21a-e0-789c636064000310a501c49c50360710a715e5e7a69766a63040c115c6a267829fbf3c5200b2d991d4e52765a5269730303441d561c8a7a515a7968064a6c1e5d990e4932a4b528b81b447d50cacfa4bf221aed03b512459bf7d6a8e06923c27583e2f31379581a1b828b9203f3f473f25b124d1a1d8046c1600d25d21aa";

describe("sizes", () => {
  test("nicenum/nicebytes match zfs list output", () => {
    expect(nicebytes(368640)).toBe("360K");
    expect(nicebytes(13000704)).toBe("12.4M");
    expect(nicebytes(8470528)).toBe("8.08M");
    expect(nicebytes(4308992)).toBe("4.11M");
    expect(nicebytes(98304)).toBe("96K");
    expect(nicebytes(0)).toBe("0B");
    expect(nicenum(0)).toBe("0");
    expect(nicenum(4268032)).toBe("4.07M");
  });
  test("parseSize reads zfs-style sizes and rejects junk", () => {
    expect(parseSize("8M")).toBe(8 * 1024 * 1024);
    expect(parseSize("1.5K")).toBe(1536);
    expect(parseSize("123")).toBe(123);
    expect(parseSize("12Q")).toBeNull();
  });
  test("dates use zfs's strftime layouts", () => {
    process.env.TZ = "UTC";
    expect(listDate(1795663147)).toBe("Thu Nov 26  3:19 2026");
    // `zfs holds`: a one-digit day is space-padded, the hour zero-padded ("%e", "%H")
    expect(holdDate(1796096220)).toBe("Tue Dec  1 03:37 2026");
    expect(holdDate(1795663147)).toBe("Thu Nov 26 03:19 2026");
  });
});

describe("table layout", () => {
  test("fixed-width number columns overflow like real zfs", () => {
    const lines = formatTable(
      [
        { header: "NAME", rightAlign: false, width: 0, fixed: false },
        { header: "GUID", rightAlign: true, width: 5, fixed: true },
        { header: "MOUNTPOINT", rightAlign: false, width: 0, fixed: false },
      ],
      [["pool", "9979146286458884581", "/pool"]],
      true,
    );
    expect(lines).toEqual(["NAME   GUID  MOUNTPOINT", "pool  9979146286458884581  /pool"]);
  });
});

describe("resume tokens", () => {
  test("decodes a real OpenZFS token", () => {
    const token = decodeToken(REAL_TOKEN);
    expect(token.toname).toBe("srcpool/data@s4");
    expect(token.fromguid).toBe(0xe2f4f311e67201d4n);
    expect(token.offset).toBe(0x960000n);
    expect(token.bytes).toBe(0x987a48n);
    expect(describeToken(token)).toContain("\ttoguid = 0x6c95b77f1972c82e\n");
  });
  test("encodes the same nvlist bytes as OpenZFS", () => {
    const real = decodeToken(REAL_TOKEN);
    const ours = encodeToken(real);
    const payload = (t: string): Buffer =>
      inflateSync(Buffer.from(t.split("-")[3] as string, "hex"));
    expect(payload(ours).equals(payload(REAL_TOKEN))).toBe(true);
    expect(ours.split("-")[2]).toBe("e0");
    expect(decodeToken(ours)).toEqual(real);
  });
  test("checksum is fletcher4 word 0 of the compressed bytes", () => {
    const hex = REAL_TOKEN.split("-")[3] as string;
    expect(fletcher4Word0(Buffer.from(hex, "hex")).toString(16)).toBe("e8c5cb21a");
  });
  test("rejects a corrupt token with zfs's words", () => {
    expect(() => decodeToken("1-deadbeef-e0-789c0000")).toThrow(
      "resume token is corrupt (incorrect checksum)",
    );
    expect(() => decodeToken("nonsense")).toThrow("resume token is corrupt (invalid format)");
  });
});

// Printed by real OpenZFS 2.1.11 for a cut `zfs send -w` (raw, full) of an encrypted dataset.
const REAL_RAW_TOKEN =
  "1-cebc17831-f0-789c636064000310a500c4ec50360710e72765a52697303034409460caa7a515a796806478e0f26c48f2499525a9c540ba248b0fabfe92fcf4d2cc1406868735b17b0e7627c96a20c97382e5f312735319180af453f3921d8a8d1990dcc1cd807077727e6e41516a71717e36444c02ea0e987c5162394c8a0100ca5d1c59";

describe("resume tokens of raw and compressed streams", () => {
  test("decodes the boolean pairs a raw send records", () => {
    const token = decodeToken(REAL_RAW_TOKEN);
    expect(token.toname).toBe("p/enc@s3");
    expect(token.flags).toEqual(["compressok", "rawok"]);
    expect(describeToken(token)).toEndWith("\ttoname = p/enc@s3\n\tcompressok = 1\n\trawok = 1\n");
  });
  test("encodes them byte for byte as OpenZFS", () => {
    const ours = encodeToken(decodeToken(REAL_RAW_TOKEN));
    const payload = (t: string): Buffer =>
      inflateSync(Buffer.from(t.split("-")[3] as string, "hex"));
    expect(payload(ours).equals(payload(REAL_RAW_TOKEN))).toBe(true);
    expect(ours.split("-")[2]).toBe("f0");
  });
});

describe("option parsing", () => {
  test("combined flags and option values", () => {
    const parsed = parseOptions(
      "list",
      ["-Hpo", "name,guid", "-t", "all", "pool"],
      "Hprd:o:s:S:t:",
    );
    expect([...parsed.flags]).toEqual(["H", "p"]);
    expect(parsed.values).toEqual([
      ["o", "name,guid"],
      ["t", "all"],
    ]);
    expect(parsed.operands).toEqual(["pool"]);
  });
  test("unknown option is a usage error with exit code 2", () => {
    try {
      parseOptions("holds", ["-Hp", "x@y"], "rH");
      throw new Error("expected a failure");
    } catch (error) {
      expect(error).toBeInstanceOf(ZfsError);
      expect((error as ZfsError).code).toBe(2);
      expect((error as ZfsError).message).toStartWith(
        "invalid option 'p'\nusage:\n\tholds [-rH] <snapshot> ...",
      );
    }
  });
});

describe("accounting", () => {
  const seeded = (): SimDataset => {
    const state = buildState(
      {
        now: 1795663146,
        pools: [
          {
            name: "tank",
            size: "1G",
            datasets: [
              {
                name: "data",
                snapshots: [
                  { name: "s1", written: "8M" },
                  { name: "s2", written: "4M", freed: "8M" },
                  { name: "s3", written: "64K" },
                ],
                written: "1M",
              },
            ],
          },
        ],
      },
      {},
    );
    return state.datasets["tank/data"] as SimDataset;
  };
  test("written per snapshot and since the newest one", () => {
    const ds = seeded();
    const [s1, s2, s3] = ds.snapshots as [never, never, never];
    expect(snapshotWritten(ds, s1)).toBe(8 * 1048576 + BASE_FS);
    expect(snapshotWritten(ds, s2)).toBe(4 * 1048576);
    expect(snapshotWritten(ds, s3)).toBe(65536);
    expect(datasetWritten(ds)).toBe(1048576);
  });
  test("freed data is used by the only snapshot holding it", () => {
    const ds = seeded();
    const [s1, s2] = ds.snapshots as [never, never];
    expect(snapshotUsed(ds, s1)).toBe(8 * 1048576);
    expect(snapshotUsed(ds, s2)).toBe(0);
    expect(reclaimable(ds, new Set(["s1", "s2"]))).toBe(8 * 1048576);
  });
  test("frees the oldest data first; snapshots that saw it keep holding it", () => {
    const ds = seeded();
    freeBytes(ds, 1048576, 1000);
    const held = ds.extents.filter((e) => e.died === 1000);
    expect(held.reduce((a, e) => a + e.bytes, 0)).toBe(1048576);
    expect(held.every((e) => e.born <= (ds.snapshots[1]?.createtxg ?? 0))).toBe(true);
  });
  test("freed data no snapshot saw is dropped at once", () => {
    const ds = seeded();
    const newest = Math.max(...ds.snapshots.map((s) => s.createtxg));
    ds.extents = ds.extents.filter((e) => e.born <= newest);
    ds.extents.push({ born: newest + 1, died: newest + 2, bytes: 4096 });
    compactExtents(ds);
    expect(ds.extents.some((e) => e.born === newest + 1)).toBe(false);
  });
  test("slop follows OpenZFS 2.1 (min 128 MiB, at most half)", () => {
    expect(slop(503316480)).toBe(134217728);
    expect(slop(100 * 1048576)).toBe(50 * 1048576);
  });
});

describe("receives in flight", () => {
  const PARTIAL = {
    toguid: "1",
    fromguid: null,
    toname: "src/a@s",
    received: 0,
    streamBytes: 0,
    newfs: true,
  };
  const withClaims = () => {
    const state = buildState(
      {
        now: 1795663146,
        pools: [
          { name: "dst", size: "1G", datasets: [{ name: "a" }, { name: "b" }, { name: "c" }] },
        ],
      },
      {},
    );
    return state;
  };
  const deadPid = (): number => {
    const child = Bun.spawnSync(["true"]);
    return child.pid;
  };

  test("a claim of a live process stays; a dead one's is reaped like the kernel would", () => {
    const state = withClaims();
    const dead = deadPid();
    const claim = (pid: number, newfs: boolean, resumable: boolean) => ({
      id: `${pid}-${newfs}-${resumable}`,
      pid,
      newfs,
      resumable,
    });
    const [a, b, c] = ["dst/a", "dst/b", "dst/c"].map((n) => state.datasets[n] as SimDataset) as [
      SimDataset,
      SimDataset,
      SimDataset,
    ];
    a.receiving = claim(process.pid, true, false);
    b.receiving = claim(dead, true, true);
    b.partial = { ...PARTIAL };
    c.receiving = claim(dead, true, false);
    expect(processAlive(process.pid)).toBe(true);
    expect(processAlive(process.pid, processStart(process.pid))).toBe(true);
    // a later process that got the claim's pid is not the claim's process
    expect(processAlive(process.pid, "1")).toBe(false);
    expect(processAlive(dead)).toBe(false);
    expect(reapReceives(state)).toBe(true);
    // alive: untouched; -s: the partial stays resumable; without -s: the new dataset goes
    expect(state.datasets["dst/a"]?.receiving?.pid).toBe(process.pid);
    expect(state.datasets["dst/b"]?.receiving).toBeNull();
    expect(state.datasets["dst/b"]?.partial).toEqual(PARTIAL);
    expect(state.datasets["dst/c"]).toBeUndefined();
    expect(reapReceives(state)).toBe(false);
  });
});
