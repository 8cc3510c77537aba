// The changing commands (snap, backup, cleanup) as the real CLI on localhost against the
// simulator: a full cycle and a second round, --dry-run, a declined prompt, and cleanup's
// limits on both sides. Every test checks the resulting state through `zfs list`.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import type { Scenario } from "../../lib/sim/main.ts";
import { configYaml, createSimEnv, jsonEvents, must, type SimEnv } from "../helpers/sim-env.ts";

const ODD = "a b:c.d-e";
/** a test with many CLI runs (each ~0.3 s on two idle cores, several times that under load) */
const LONG_MS = 90_000;
/** dated like abgleich's own snapshots (digits 2, no suffix), so cleanup recognises them */
const day = (n: number) => `202601010${n}`;

const scenario: Scenario = {
  now: 1_767_225_600,
  pools: [
    {
      name: "src",
      size: "1G",
      datasets: [
        { name: "data", snapshots: [{ name: day(1), written: "1M" }] },
        { name: "data/home", snapshots: [{ name: day(1), written: "2M" }], written: "2M" },
        { name: `data/${ODD}`, snapshots: [{ name: day(1), written: "1M" }] },
      ],
    },
    { name: "dst", size: "1G" },
  ],
};

let env: SimEnv;
let config: string;

/** nothing that could lose data on either side ever ran: README, Safety rule 3 */
function expectNoDataLoss(calls: string[]): void {
  for (const call of calls) {
    expect(call).not.toMatch(/^zfs (receive|recv) .*-F/);
    expect(call).not.toMatch(/^zfs rollback/);
    // destroys name snapshots or abgleich's old bookmarks only, never a dataset
    if (call.startsWith("zfs destroy")) expect(call).toMatch(/[@#]/);
  }
}

/** everything the sim lists, as name → guid */
function snapshotGuids(): Map<string, string> {
  return new Map(
    [...env.list().values()].filter((o) => o.type === "snapshot").map((o) => [o.name, o.guid]),
  );
}

beforeAll(() => {
  env = createSimEnv();
  config = env.writeConfig(
    configYaml(
      { zpool: "src", prefix: "data" },
      { zpool: "dst", prefix: "backup" },
      "keep_backlog: 1\n",
    ),
  );
});

afterAll(() => env?.remove());

beforeEach(() => env.seed(scenario));

describe("full cycle on localhost", () => {
  test(
    "snap → backup → cleanup, then a second round sends one incremental and skips the rest",
    async () => {
      // ~10 CLI runs
      const snap = await env.cli(["snap", config, "--yes"]);
      expect(snap.code).toBe(0);
      // only home had data written after its snapshot
      const homeSnaps = env.snapshots("src/data/home");
      expect(homeSnaps).toHaveLength(2);
      const today = must(homeSnaps[1], "new snapshot");
      expect(today).toMatch(/^\d{8}01$/);
      expect(env.snapshots("src/data")).toEqual([day(1)]);
      expect(env.snapshots(`src/data/${ODD}`)).toEqual([day(1)]);

      // (each line off a terminal begins with its time)
      expect(snap.stdout).toMatch(/── snap ──\n\S+ source src\/data on localhost\n/);
      const backup = await env.cli(["backup", config, "--yes"]);
      expect(backup.stdout).toContain("backup: ok");
      // the plan says which machine and pool each side is
      expect(backup.stdout).toMatch(
        /── backup ──\n\S+ source src\/data on localhost → target dst\/backup on localhost\n/,
      );
      expect(backup.code).toBe(0);
      const guids = snapshotGuids();
      for (const sub of ["", "/home", `/${ODD}`]) {
        for (const snap of env.snapshots(`src/data${sub}`)) {
          expect(guids.get(`dst/backup${sub}@${snap}`)).toBe(
            must(guids.get(`src/data${sub}@${snap}`), snap),
          );
        }
      }
      expect(env.snapshots("dst/backup/home")).toEqual([day(1), today]);

      const cleanup = await env.cli(["cleanup", config, "--yes"]);
      expect(cleanup.code).toBe(0);
      expect(cleanup.stdout).toMatch(/── cleanup source ──\n\S+ source src\/data on localhost\n/);
      expect(cleanup.stdout).toMatch(/space freed on source src\/data/);
      expect(env.snapshots("src/data/home")).toEqual([today]);
      expect(env.snapshots("dst/backup/home")).toEqual([day(1), today]);
      expect(env.snapshots("src/data")).toEqual([day(1)]);

      // round two: only the odd-named dataset changes
      expect(env.zfs("sim-write", `src/data/${ODD}`, "3M").code).toBe(0);
      expect((await env.cli(["snap", config, "--yes"])).code).toBe(0);
      expect(env.snapshots(`src/data/${ODD}`)).toEqual([day(1), today]);
      expect(env.snapshots("src/data/home")).toEqual([today]);

      const second = await env.cli(["backup", config, "--yes", "--json"]);
      expect(second.code).toBe(0);
      const events = jsonEvents(second.stdout);
      const plan = must(
        events.find((e) => e.event === "plan"),
        "plan event",
      ).plan as {
        actions: {
          kind: string;
          mode: string;
          subname: string;
          from: string;
          to: string;
          entries?: { subname: string; base: string; releaseSource: string[] }[];
        }[];
        skipped: { subname: string; reason: string }[];
      };
      expect(plan.actions.map((a) => [a.subname, a.mode, a.from, a.to]).slice(0, -1)).toEqual([
        [ODD, "incremental", day(1), today],
      ]);
      // the chain moves to the new base: held and bookmarked, the old base's hold released
      const chain = plan.actions.at(-1);
      expect(chain?.kind).toBe("chain");
      expect(chain?.entries?.map((e) => [e.subname, e.base, e.releaseSource])).toEqual([
        [ODD, today, [day(1)]],
      ]);
      expect(env.zfs("holds", "-H", `src/data/${ODD}@${today}`).stdout).toContain(
        "abgleich:dst/backup",
      );
      expect(env.zfs("holds", "-H", `dst/backup/${ODD}@${today}`).stdout).toContain("abgleich");
      expect(env.zfs("holds", "-H", `src/data/${ODD}@${day(1)}`).stdout).toBe("");
      expect(plan.skipped.map((s) => s.subname).sort()).toEqual(["", "home"]);
      expect(events.at(-2)).toMatchObject({ event: "stage-done", stage: "backup", status: "ok" });
      expect(events.at(-1)).toMatchObject({ event: "summary", status: "ok", exitCode: 0 });
      expect(env.guid(`dst/backup/${ODD}@${today}`)).toBe(env.guid(`src/data/${ODD}@${today}`));

      // a third backup has nothing to do and still ends well
      const third = await env.cli(["backup", config, "--yes"]);
      expect(third.code).toBe(0);
      expect(third.stdout).toContain("Nothing to do.");
      expectNoDataLoss(env.calls());
    },
    LONG_MS,
  );
});

describe("nothing changes without a yes", () => {
  test(
    "--dry-run prints the plan of snap, backup and cleanup and changes nothing",
    async () => {
      const before = env.list();
      for (const command of ["snap", "backup"]) {
        const run = await env.cli([command, config, "--dry-run"]);
        expect(run.code).toBe(0);
        expect(run.stdout).toContain(`${command}: dry-run`);
        expect(run.stdout).not.toContain("Do you want to continue");
      }
      // before the first backup the target root is missing: cleanup says so instead of
      // "nothing to do" (which a typo in target.prefix would print every night)
      const cleanup = await env.cli(["cleanup", config, "--dry-run"]);
      expect(cleanup.code).toBe(1);
      expect(cleanup.stderr).toContain("does not exist");
      expect(cleanup.stderr).toContain("run backup first");
      const backup = await env.cli(["backup", config, "--dry-run"]);
      expect(backup.stdout).toContain("full");
      expect(backup.stdout).toContain(`src/data/${ODD}`);
      expect(env.list()).toEqual(before);
      for (const call of env.calls()) expect(call).toMatch(/^(zfs (list|get|send -n|diff)|zpool )/);
    },
    LONG_MS,
  );

  test(
    "without a terminal and without --yes, snap and backup refuse even a piped 'y': exit 1, nothing changed",
    async () => {
      const before = env.list();
      for (const command of ["snap", "backup"]) {
        const run = await env.cli([command, config], { stdin: "y\n" });
        expect(run.code).toBe(1);
        expect(run.stdout + run.stderr).toMatch(/terminal|--yes/);
        expect(run.stdout).toMatch(/declined/);
      }
      expect(env.list()).toEqual(before);
      for (const call of env.calls()) expect(call).toMatch(/^(zfs (list|get|send -n|diff)|zpool )/);
    },
    LONG_MS,
  );
});

describe("cleanup", () => {
  /** src/data/home with days 1..4 on both sides (backed up) and day 5 on the source only */
  async function backedUpHistory(): Promise<void> {
    env.seed({
      now: 1_767_225_600,
      pools: [
        {
          name: "src",
          size: "1G",
          datasets: [
            { name: "data", snapshots: [{ name: day(1) }] },
            {
              name: "data/home",
              snapshots: [1, 2, 3, 4].map((n) => ({ name: day(n), written: "1M", freed: "512K" })),
            },
          ],
        },
        { name: "dst", size: "1G" },
      ],
    });
    expect((await env.cli(["backup", config, "--yes"])).code).toBe(0);
    expect(env.zfs("snapshot", `src/data/home@${day(5)}`).code).toBe(0);
  }

  test(
    "source: common snapshots go except the newest keep_snapshots; source-only ones stay",
    async () => {
      await backedUpHistory();
      const run = await env.cli(["cleanup", config, "source", "--yes"]);
      expect(run.code).toBe(0);
      expect(env.snapshots("src/data/home")).toEqual([day(4), day(5)]);
      expect(env.snapshots("dst/backup/home")).toEqual([day(1), day(2), day(3), day(4)]);
      // the root's only snapshot is its newest common one
      expect(env.snapshots("src/data")).toEqual([day(1)]);
      const keep2 = env.writeConfig(
        configYaml(
          { zpool: "src", prefix: "data" },
          { zpool: "dst", prefix: "backup" },
          "keep_snapshots: 2\n",
        ),
        "keep2.yaml",
      );
      expect((await env.cli(["cleanup", keep2, "--yes"])).stdout).toContain("Nothing to do.");
      expectNoDataLoss(env.calls());
    },
    LONG_MS,
  );

  test(
    "target: refused with only --yes without a terminal, done with --yes-destroy-target, keeping keep_backlog",
    async () => {
      await backedUpHistory();
      expect((await env.cli(["cleanup", config, "--yes"])).code).toBe(0);
      const target = ["dst/backup/home", [day(1), day(2), day(3), day(4)]] as const;
      expect(env.snapshots(target[0])).toEqual([...target[1]]);

      const refused = await env.cli(["cleanup", config, "target", "--yes"], { stdin: "dst\n" });
      expect(refused.code).toBe(1);
      expect(refused.stdout + refused.stderr).toContain("DANGER");
      expect(refused.stdout + refused.stderr).toContain("--yes-destroy-target");
      expect(env.snapshots(target[0])).toEqual([...target[1]]);

      const done = await env.cli(["cleanup", config, "target", "--yes", "--yes-destroy-target"]);
      expect(done.code).toBe(0);
      // older than the first common snapshot (day 4): days 1–3; keep_backlog 1 keeps day 3
      expect(env.snapshots(target[0])).toEqual([day(3), day(4)]);
      expect(env.snapshots("src/data/home")).toEqual([day(4), day(5)]);
      expect(done.stdout).toContain('Type "dst" to continue: dst (--yes-destroy-target)');
      expect(done.stdout).toMatch(/space freed on target dst\/backup/);
      expectNoDataLoss(env.calls());
    },
    LONG_MS,
  );
});
