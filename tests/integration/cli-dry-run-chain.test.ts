// A dry run previews its steps one after the other, each as if the earlier ones had run: the
// real CLI on the simulator, `run nightly --dry-run --json` and `wizard --dry-run --tui`.
// Nothing changes on the pools, and a real run afterwards does what it always did.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import type { Scenario } from "../../lib/sim/main.ts";
import { configYaml, createSimEnv, jsonEvents, must, type SimEnv } from "../helpers/sim-env.ts";

/** a test with several CLI runs (each ~0.3 s on two busy cores) */
const LONG_MS = 60_000;
const S1 = "2026010101";

const scenario: Scenario = {
  now: 1_767_225_600,
  pools: [
    {
      name: "src",
      size: "1G",
      datasets: [
        { name: "data", snapshots: [{ name: S1, written: "1M" }] },
        // written since its snapshot: snap takes a new one
        { name: "data/home", snapshots: [{ name: S1, written: "2M" }], written: "2M" },
      ],
    },
    { name: "dst", size: "1G" },
  ],
};

const ajv = new Ajv2020({ allErrors: true, strict: true });
ajv.addFormat("uuid", /^[0-9a-f-]{36}$/i);
ajv.addFormat("date-time", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?[+-]\d\d:\d\d$/);
const validate = ajv.compile(
  JSON.parse(readFileSync(join(import.meta.dir, "../../docs/events.schema.json"), "utf8")),
);

let env: SimEnv;
let config: string;

beforeAll(() => {
  env = createSimEnv();
  config = env.writeConfig(
    configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" }),
  );
});

afterAll(() => env?.remove());

beforeEach(() => env.seed(scenario));

/** the `plan` event of a stage */
function planOf(events: Record<string, unknown>[], stage: string) {
  const event = must(
    events.find((e) => e.event === "plan" && e.stage === stage),
    `${stage} plan`,
  );
  return event.plan as {
    actions: {
      kind: string;
      sourceDataset?: string;
      to?: string;
      snapshots: { dataset: string; name: string }[];
    }[];
    planned?: string[];
  };
}

describe("a dry run chains its steps", () => {
  test(
    "run nightly --dry-run --json: backup sends the snapshot snap would make; nothing changes; a real run afterwards as before",
    async () => {
      expect((await env.cli(["backup", config, "--yes"])).code).toBe(0);
      const before = env.list();
      const callsBefore = env.calls().length;
      const dry = await env.cli(["run", "nightly", config, "--dry-run", "--json"]);
      expect(dry.stderr).toBe("");
      expect(dry.code).toBe(0);
      const events = jsonEvents(dry.stdout);
      for (const event of events)
        expect([validate(event), ajv.errorsText(validate.errors)]).toEqual([true, "No errors"]);
      const made = planOf(events, "snap").actions.flatMap((a) =>
        a.snapshots.map((s) => `${s.dataset}@${s.name}`),
      );
      expect(made).toHaveLength(1);
      const planned = must(made[0], "planned snapshot");
      expect(planned).toMatch(/^src\/data\/home@/);
      const name = planned.slice(planned.indexOf("@") + 1);

      const backup = planOf(events, "backup");
      const sends = backup.actions.filter((a) => a.kind === "send");
      expect(sends.map((a) => `${a.sourceDataset}@${a.to}`)).toEqual([planned]);
      expect(backup.planned).toEqual([planned]);
      // cleanup source plans after the planned send: S1 is no longer the newest common one
      expect(planOf(events, "cleanup").actions).toMatchObject([
        { kind: "destroy", dataset: "src/data/home", snapshots: [S1] },
      ]);
      expect(events.at(-1)).toMatchObject({ event: "summary", mode: "dry-run" });
      // every stage planned; nothing ran and nothing changed
      expect(events.filter((e) => e.event === "stage-done").map((e) => e.status)).toEqual([
        "dry-run",
        "dry-run",
        expect.stringMatching(/^(dry-run|nothing-to-do)$/),
      ]);
      expect(events.some((e) => e.event === "action-start")).toBe(false);
      expect(env.list()).toEqual(before);
      const calls = env.calls().slice(callsBefore);
      // reads only (`zfs holds` lists holds; `zfs hold` would add one)
      expect(calls.length).toBeGreaterThan(0);
      for (const call of calls)
        expect(call).toMatch(/^(zfs (list|get|send -n|diff|holds -H)|zpool )/);

      // the real run takes the snapshot and sends it, as without the dry run before it
      const real = await env.cli(["run", "nightly", config, "--yes"]);
      expect(real.code).toBe(0);
      // the dry run's names are the real run's; cleanup source then drops the older S1
      expect(env.snapshots("dst/backup/home")).toEqual([S1, name]);
      expect(env.snapshots("src/data/home")).toEqual([name]);
      expect(env.guid(`dst/backup/home@${name}`)).toBe(env.guid(`src/data/home@${name}`));
    },
    LONG_MS,
  );

  test(
    "wizard --dry-run --tui on a fresh target: every step previews, after the ones before it",
    async () => {
      const before = env.list();
      const dry = await env.cli(["wizard", config, "--dry-run", "--tui"]);
      expect(dry.stderr).toBe("");
      expect(dry.code).toBe(0);
      for (const step of ["snap", "backup", "cleanup source"])
        expect(dry.stdout).toContain(`${step}: dry-run`);
      // keep_backlog -1 keeps every target snapshot
      expect(dry.stdout).toContain("cleanup target: nothing-to-do");
      // backup sends the snapshot snap would make, marked as not existing yet
      expect(dry.stdout).toContain("(planned)");
      expect(dry.stdout).toContain("Planned after the earlier steps of this dry run");
      expect(dry.stdout).not.toContain("does not exist");
      expect(env.list()).toEqual(before);
      expect(env.list().has("dst/backup")).toBe(false);

      // a real backup afterwards creates the target, as before
      const real = await env.cli(["backup", config, "--yes"]);
      expect(real.code).toBe(0);
      expect(env.snapshots("dst/backup/home")).toEqual([S1]);
    },
    LONG_MS,
  );
});
