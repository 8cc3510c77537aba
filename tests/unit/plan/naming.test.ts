import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { defaultNamer, localDateStamp } from "../../../lib/plan/naming.ts";
import { checkSnapshotShortName } from "../../../lib/zfs/names.ts";

// local time, so the date part does not depend on the machine's time zone
const NOW = new Date(2026, 10, 26, 14, 30);
const DAY = "20261126";

function nameOf(result: { name: string } | { error: string }): string {
  if ("error" in result) throw new Error(`expected a name, got error: ${result.error}`);
  return result.name;
}

describe("defaultNamer", () => {
  test("local date plus a counter starting at 1, plus the suffix", () => {
    expect(nameOf(defaultNamer({ digits: 2, suffix: "backup" }).next([], NOW))).toBe(
      `${DAY}01backup`,
    );
    expect(localDateStamp(new Date(2026, 0, 5, 23, 59))).toBe("20260105");
  });

  for (const digits of [1, 2, 3, 4, 5, 6]) {
    test(`digits ${digits}: counts up, ignores other shapes and days, errors when full`, () => {
      const namer = defaultNamer({ digits, suffix: "_x" });
      const pad = (n: number) => String(n).padStart(digits, "0");
      const existing = [
        `${DAY}${pad(3)}_x`,
        `${DAY}${pad(1)}_x`,
        // other days, other widths, other suffixes, foreign names: never counted
        `20261125${pad(7)}_x`,
        `${DAY}${"9".repeat(digits + 1)}_x`,
        `${DAY}${pad(8)}_y`,
        `${DAY}${pad(9)}`,
        "manual",
      ];
      const name = nameOf(namer.next(existing, NOW));
      expect(name).toBe(`${DAY}${pad(4)}_x`);
      expect(namer.isOwn(name)).toBe(true);
      expect(namer.isOwn(`${DAY}${"1".repeat(digits + 1)}_x`)).toBe(false);
      expect(namer.isOwn(`${DAY}${pad(1)}`)).toBe(false);

      const max = 10 ** digits - 1;
      const full = namer.next([`${DAY}${pad(max)}_x`], NOW);
      expect("error" in full && full.error).toContain(`${DAY}${pad(max)}_x`);
      expect("error" in full && full.error).toContain(`${digits} digit(s)`);
      // one below the limit still works and gives the last name
      expect(nameOf(namer.next([`${DAY}${pad(max - 1)}_x`], NOW))).toBe(`${DAY}${pad(max)}_x`);
    });
  }

  test("isOwn recognises only this scheme's shape with a real-looking date", () => {
    const namer = defaultNamer({ digits: 2, suffix: "" });
    expect(namer.isOwn("2026112601")).toBe(true);
    expect(namer.isOwn("2026132601")).toBe(false); // month 13
    expect(namer.isOwn("202611260")).toBe(false);
    expect(namer.isOwn("2026112601x")).toBe(false);
    expect(namer.isOwn("zfs-auto-snap_daily-2026-11-26")).toBe(false);
  });

  test("bad options are refused with the cause", () => {
    expect(() => defaultNamer({ digits: 0, suffix: "" })).toThrow(
      "digits must be an integer from 1 to 6",
    );
    expect(() => defaultNamer({ digits: 7, suffix: "" })).toThrow("got 7");
    expect(() => defaultNamer({ digits: 2, suffix: "a b" })).toThrow("suffix");
  });

  test("property: repeated rounds on one day never repeat a name, all names valid", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.stringMatching(/^[A-Za-z0-9_]{0,6}$/),
        fc.array(
          fc.string({ maxLength: 12 }).filter((s) => !/^\d{8}/.test(s)),
          { maxLength: 5 },
        ),
        fc.integer({ min: 1, max: 1200 }),
        (digits, suffix, foreign, rounds) => {
          const namer = defaultNamer({ digits, suffix });
          const names = [...foreign];
          const made = new Set<string>();
          let errors = 0;
          for (let i = 0; i < rounds; i++) {
            const result = namer.next(names, NOW);
            if ("error" in result) {
              errors++;
              continue;
            }
            expect(checkSnapshotShortName(result.name)).toBeNull();
            expect(namer.isOwn(result.name)).toBe(true);
            expect(names).not.toContain(result.name);
            made.add(result.name);
            names.push(result.name);
          }
          // exactly the counters 1..10^digits-1 are used up before errors start
          expect(made.size).toBe(Math.min(rounds, 10 ** digits - 1));
          expect(errors).toBe(rounds - made.size);
        },
      ),
      { numRuns: 200 },
    );
  }, 30_000);
});
