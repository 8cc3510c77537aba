// Retention through the real CLI on the simulator: `cleanup source` and `cleanup target` with a
// `retention` section keep the newest snapshot of the last days, say which rule kept or destroyed
// each snapshot (table and --json), and a second cleanup right after has nothing to do.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { expectValidEvent } from "../helpers/events-schema.ts";
import { configYaml, createSimEnv, jsonEvents, type SimEnv } from "../helpers/sim-env.ts";

/** a test with several CLI runs (each ~0.3 s on two idle cores, several times that under load) */
const LONG_MS = 90_000;
const DAYS = [25, 26, 27, 28];
/** two snapshots a day, at 06:00 and 18:00 UTC, named as abgleich names them */
const name = (day: number, n: number) => `202611${day}0${n}`;
const at = (day: number, hour: number) => Date.UTC(2026, 10, day, hour) / 1000;

let env: SimEnv;
let config: string;

beforeAll(async () => {
  env = createSimEnv();
  env.seed({
    now: at(24, 0),
    pools: [
      {
        name: "src",
        size: "1G",
        datasets: [
          { name: "data", snapshots: [{ name: name(25, 1), creation: at(25, 6) }] },
          {
            name: "data/home",
            snapshots: DAYS.flatMap((day) => [
              { name: name(day, 1), creation: at(day, 6), written: "1M" },
              { name: name(day, 2), creation: at(day, 18), written: "1M" },
            ]),
          },
        ],
      },
      { name: "dst", size: "1G" },
    ],
  });
  config = env.writeConfig(
    configYaml(
      { zpool: "src", prefix: "data" },
      { zpool: "dst", prefix: "backup" },
      "retention:\n  source:\n    daily: 2\n  target:\n    daily: 3\n",
    ),
  );
  const backup = await env.cli(["backup", config, "--yes"]);
  expect(backup.code).toBe(0);
}, LONG_MS);

afterAll(() => env?.remove());

describe("cleanup with retention", () => {
  test(
    "source keeps the newest of the last two days, target of the last three; both say why; a second round does nothing",
    async () => {
      const all = DAYS.flatMap((day) => [name(day, 1), name(day, 2)]);
      expect(env.snapshots("dst/backup/home")).toEqual(all);

      const source = await env.cli(["cleanup", config, "source", "--yes", "-v"]);
      expect(source.code).toBe(0);
      expect(source.stdout).toContain("kept 2: newest common 1, daily 1");
      expect(source.stdout).toContain(`- ${name(27, 1)}  destroyed: outside retention`);
      // -v: each kept snapshot with its rule
      expect(source.stdout).toContain(`${name(27, 2)}  kept: daily 2026-11-27`);
      expect(source.stdout).toContain(`${name(28, 2)}  kept: newest common`);
      // the newest of 11-27 by the daily rule, the newest common one by the safety rule
      expect(env.snapshots("src/data/home")).toEqual([name(27, 2), name(28, 2)]);
      expect(env.snapshots("src/data")).toEqual([name(25, 1)]);
      expect(env.snapshots("dst/backup/home")).toEqual(all);

      const target = await env.cli(
        ["cleanup", config, "target", "--yes", "--yes-destroy-target", "--json"],
        {},
      );
      expect(target.code).toBe(0);
      // the plan event with its retention verdicts, as docs/events.schema.json describes it
      for (const event of jsonEvents(target.stdout)) expectValidEvent(event);
      const plan = jsonEvents(target.stdout).find((e) => e.event === "plan")?.plan as {
        retention: {
          dataset: string;
          snapshots: { name: string; kept: boolean; reasons: string[] }[];
        }[];
      };
      const home = plan.retention.find((r) => r.dataset === "dst/backup/home");
      expect(home?.snapshots).toEqual([
        { name: name(25, 1), kept: false, reasons: ["outside retention"] },
        { name: name(25, 2), kept: false, reasons: ["outside retention"] },
        { name: name(26, 1), kept: false, reasons: ["outside retention"] },
        { name: name(26, 2), kept: true, reasons: ["daily 2026-11-26"] },
        { name: name(27, 1), kept: false, reasons: ["outside retention"] },
        { name: name(27, 2), kept: true, reasons: ["still on the source"] },
        { name: name(28, 1), kept: false, reasons: ["outside retention"] },
        { name: name(28, 2), kept: true, reasons: ["newest common"] },
      ]);
      expect(env.snapshots("dst/backup/home")).toEqual([name(26, 2), name(27, 2), name(28, 2)]);
      expect(env.snapshots("dst/backup")).toEqual([name(25, 1)]);

      for (const side of ["source", "target"]) {
        const again = await env.cli(["cleanup", config, side, "--yes", "--yes-destroy-target"]);
        expect(again.code).toBe(0);
        expect(again.stdout).toContain("Nothing to do.");
      }
      for (const call of env.calls()) {
        if (call.startsWith("zfs destroy")) expect(call).toMatch(/@/);
      }
    },
    LONG_MS,
  );

  test("a negative count stops before any zfs command, naming the key (exit 2)", async () => {
    const bad = env.writeConfig(
      configYaml(
        { zpool: "src", prefix: "data" },
        { zpool: "dst", prefix: "backup" },
        "retention:\n  target:\n    weekly: -1\n",
      ),
      "bad.yaml",
    );
    const before = env.calls().length;
    const run = await env.cli(["cleanup", bad, "target"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("retention.target.weekly: must be at least 0, got -1");
    expect(env.calls().length).toBe(before);
  });
});
