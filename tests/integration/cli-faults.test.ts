// backup when things go wrong, as the real CLI on localhost against the simulator: a cut
// transfer and its resume, a token whose snapshot is gone, every kind of conflict, and a
// target pool that runs full mid-transfer and is then grown.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Scenario } from "../../lib/sim/main.ts";
import { configYaml, createSimEnv, jsonEvents, must, type SimEnv } from "../helpers/sim-env.ts";

const day = (n: number) => `202601010${n}`;
/** a test with several CLI runs (each ~0.3 s on two idle cores, several times that under load) */
const LONG_MS = 90_000;

interface PlanEvent {
  actions: { kind: string; mode?: string; subname: string; to?: string }[];
  conflicts: { subname: string; kind: string; message: string }[];
}

let env: SimEnv;
let config: string;
/** the same pair with retries off: a cut stays cut, for the next run to resume */
let noRetries: string;

const sendsOf = (plan: PlanEvent) => plan.actions.filter((a) => a.kind === "send");

function planOf(stdout: string): PlanEvent {
  return must(
    jsonEvents(stdout).find((e) => e.event === "plan"),
    "plan event",
  ).plan as PlanEvent;
}

/** nothing that could lose data ran on the target */
function expectNoDataLoss(calls: string[]): void {
  for (const call of calls) {
    expect(call).not.toMatch(/^zfs (receive|recv) .*-F/);
    expect(call).not.toMatch(/^zfs rollback/);
    // the one destroy a backup runs is of abgleich's own older bookmarks (`ds#name`)
    if (call.startsWith("zfs destroy")) expect(call).toMatch(/^zfs destroy [^@]+#[^@#]+$/);
  }
}

function oneDataset(pools: {
  srcSize?: string;
  dstSize?: string;
  snapshots: Scenario["pools"][0]["datasets"];
}): Scenario {
  return {
    now: 1_767_225_600,
    pools: [
      { name: "src", size: pools.srcSize ?? "1G", datasets: pools.snapshots },
      { name: "dst", size: pools.dstSize ?? "1G" },
    ],
  };
}

beforeAll(() => {
  env = createSimEnv();
  config = env.writeConfig(
    configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" }),
  );
  noRetries = env.writeConfig(
    configYaml(
      { zpool: "src", prefix: "data" },
      { zpool: "dst", prefix: "backup" },
      "transfer:\n  retries: 0\n",
    ),
    "no-retries.yaml",
  );
});

afterAll(() => env?.remove());

describe("interrupted transfer", () => {
  const history = oneDataset({
    snapshots: [
      {
        name: "data",
        snapshots: [
          { name: day(1), written: "4M" },
          { name: day(2), written: "1M" },
        ],
      },
    ],
  });

  async function cutFullSend(): Promise<void> {
    env.seed(history);
    const cut = await env.cli(["backup", noRetries, "--yes"], {
      env: { ABGLEICH_SIM_CUT_AFTER: "2000000" },
    });
    expect(cut.code).toBe(1);
    expect(cut.stdout).toContain("failed");
    const partial = must(env.list().get("dst/backup"), "partially received dst/backup");
    expect(partial.token).not.toBeNull();
    expect(env.snapshots("dst/backup")).toEqual([]);
  }

  test(
    "a cut send leaves a resume token; the next backup resumes it, then sends the rest",
    async () => {
      await cutFullSend();
      const resumed = await env.cli(["backup", config, "--yes", "--json"]);
      expect(resumed.code).toBe(0);
      const plan = planOf(resumed.stdout);
      // the transfers, then the chain's protection (holds, bookmark) as the last action
      expect(plan.actions.at(-1)?.kind).toBe("chain");
      expect(sendsOf(plan).map((a) => [a.mode, a.to])).toEqual([
        ["resume", day(1)],
        ["incremental", day(2)],
      ]);
      const target = must(env.list().get("dst/backup"), "dst/backup");
      expect(target.token).toBeNull();
      expect(env.snapshots("dst/backup")).toEqual([day(1), day(2)]);
      for (const n of [1, 2])
        expect(env.guid(`dst/backup@${day(n)}`)).toBe(env.guid(`src/data@${day(n)}`));
      // the resume sent with -t, not a second full stream
      const sends = env.calls().filter((c) => c.startsWith("zfs send") && !c.includes(" -n"));
      expect(sends.some((c) => / -t /.test(c))).toBe(true);
      expectNoDataLoss(env.calls());
    },
    LONG_MS,
  );

  test(
    "retries: a transfer cut twice is resumed from its token in the same run and finishes",
    async () => {
      env.seed(history);
      // every zfs send of this run stops after 2 MB: the 4 MB full stream needs two resumes
      const run = await env.cli(["backup", config, "--yes", "--json"], {
        env: { ABGLEICH_SIM_CUT_AFTER: "2000000" },
      });
      expect(run.code).toBe(0);
      const notes = jsonEvents(run.stdout)
        .filter((e) => e.event === "note")
        .map((e) => String(e.text));
      expect(notes.filter((text) => text.includes("the transfer was cut"))).toHaveLength(2);
      // the bytes reported for the retried transfer are its stream's, each part counted once
      const full = jsonEvents(run.stdout).find(
        (e) => e.event === "action-done" && String(e.action).startsWith("full send"),
      );
      expect(Number(full?.bytes)).toBeGreaterThan(4_000_000);
      expect(Number(full?.bytes)).toBeLessThan(6_000_000);
      expect(env.snapshots("dst/backup")).toEqual([day(1), day(2)]);
      for (const n of [1, 2])
        expect(env.guid(`dst/backup@${day(n)}`)).toBe(env.guid(`src/data@${day(n)}`));
      const sends = env.calls().filter((c) => c.startsWith("zfs send") && !c.includes(" -n"));
      expect(sends.filter((c) => / -t /.test(c)).length).toBeGreaterThanOrEqual(2);
      expectNoDataLoss(env.calls());
    },
    3 * LONG_MS,
  );

  test(
    "a token whose source snapshot is gone: abort-resume is planned and run, then a full send",
    async () => {
      await cutFullSend();
      expect(env.zfs("destroy", `src/data@${day(1)}`).code).toBe(0);
      const run = await env.cli(["backup", config, "--yes", "--json"]);
      expect(run.code).toBe(0);
      const plan = planOf(run.stdout);
      expect(plan.actions.map((a) => a.kind)).toEqual(["abort-resume", "send", "chain"]);
      expect(plan.actions[1]).toMatchObject({ mode: "full", to: day(2) });
      expect(env.calls().some((c) => /^zfs (receive|recv) -A /.test(c))).toBe(true);
      expect(env.list().get("dst/backup")?.token).toBeNull();
      expect(env.snapshots("dst/backup")).toEqual([day(2)]);
      expect(env.guid(`dst/backup@${day(2)}`)).toBe(env.guid(`src/data@${day(2)}`));
    },
    LONG_MS,
  );
});

describe("conflicts", () => {
  test(
    "each kind is reported for its dataset, the others are still sent, exit 1, nothing destroyed",
    async () => {
      const kids = ["clean", "modified", "ahead", "nocommon", "mismatch"];
      env.seed({
        now: 1_767_225_600,
        pools: [
          {
            name: "src",
            size: "1G",
            datasets: [
              { name: "data", snapshots: [{ name: day(1) }] },
              ...kids.map((k) => ({
                name: `data/${k}`,
                snapshots: [{ name: day(1), written: "256K" }],
              })),
            ],
          },
          { name: "dst", size: "1G" },
        ],
      });
      expect((await env.cli(["backup", config, "--yes"])).code).toBe(0);
      // every child gets a new source snapshot; the targets diverge in their own ways
      for (const k of kids) {
        expect(env.zfs("sim-write", `src/data/${k}`, "128K").code).toBe(0);
        expect(env.zfs("snapshot", `src/data/${k}@${day(2)}`).code).toBe(0);
      }
      const setup = [
        ["sim-write", "dst/backup/modified", "64K"],
        ["snapshot", `dst/backup/ahead@${day(3)}`],
        // abgleich holds the chain's base: released first, as a user would have to
        ["release", "abgleich", `dst/backup/nocommon@${day(1)}`],
        ["destroy", `dst/backup/nocommon@${day(1)}`],
        ["snapshot", "dst/backup/nocommon@other"],
        ["snapshot", `dst/backup/mismatch@${day(2)}`],
      ];
      for (const argv of setup) expect(env.zfs(...argv).code).toBe(0);
      const before = new Map(kids.map((k) => [k, env.snapshots(`dst/backup/${k}`)]));

      // a dry run sees the conflicts too, beside the send it would make: exit 1
      const dry = await env.cli(["backup", config, "--dry-run"]);
      expect(dry.stdout).toContain("Plan: 1 transfer");
      expect(dry.code).toBe(1);

      const run = await env.cli(["backup", config, "--yes", "--json"]);
      expect(run.code).toBe(1);
      const plan = planOf(run.stdout);
      const kinds = new Map<string, string[]>();
      for (const c of plan.conflicts)
        kinds.set(c.subname, [...(kinds.get(c.subname) ?? []), c.kind]);
      expect(kinds.get("modified")).toContain("target-modified");
      expect(kinds.get("ahead")).toContain("target-ahead");
      expect(kinds.get("nocommon")).toContain("no-common");
      expect(kinds.get("mismatch")).toContain("guid-mismatch");
      expect(kinds.has("clean")).toBe(false);
      expect(sendsOf(plan).map((a) => a.subname)).toEqual(["clean"]);
      expect(env.guid(`dst/backup/clean@${day(2)}`)).toBe(env.guid(`src/data/clean@${day(2)}`));
      for (const k of kids.slice(1))
        expect(env.snapshots(`dst/backup/${k}`)).toEqual(must(before.get(k), k));

      // the text form names each dataset with its reason
      const text = await env.cli(["backup", config, "--yes"]);
      expect(text.code).toBe(1);
      for (const [k, kind] of [
        ["modified", "target-modified"],
        ["ahead", "target-ahead"],
        ["nocommon", "no-common"],
        ["mismatch", "guid-mismatch"],
      ]) {
        expect(text.stdout + text.stderr).toContain(`${kind}: dst/backup/${k}`);
      }
      // each said whole once, in the plan; stderr and the summary name them
      const message = must(
        plan.conflicts.find((c: { subname: string }) => c.subname === "ahead"),
        "ahead",
      ).message as string;
      expect((text.stdout + text.stderr).split(message)).toHaveLength(2);
      expect(text.stderr).toContain(
        "error: backup: 5 conflicts in ahead, mismatch, modified, nocommon, shown in the plan above with what to do",
      );
      expect(text.stdout).toContain("ahead: 1 conflict, shown in the plan");
      // --quiet shows no plan: its error line holds each whole
      const quiet = await env.cli(["backup", config, "--yes", "--quiet"]);
      expect(quiet.code).toBe(1);
      expect(quiet.stderr).toContain(`ahead: ${message}`);
      // the setup above bypassed the logging shims: these are the CLI's calls only
      expectNoDataLoss(env.calls());
    },
    LONG_MS,
  );
});

describe("target pool full", () => {
  test(
    "the receive fails with zfs's message, exit 1; after the pool grows the next backup resumes",
    async () => {
      // 160M pool: slop 80M leaves ~80M, less than the 100M snapshot
      env.seed(
        oneDataset({
          dstSize: "160M",
          snapshots: [{ name: "data", snapshots: [{ name: day(1), written: "100M" }] }],
        }),
      );
      const full = await env.cli(["backup", config, "--yes"]);
      expect(full.code).toBe(1);
      // said with the plan, before anything is sent
      expect(full.stderr).toContain(
        "warning: the transfers need about 100.1 MiB and dst has 79.9 MiB available: they may stop",
      );
      expect(full.stdout).toContain("cannot receive new filesystem stream: out of space");
      // what to do about it, and what happens then
      expect(full.stdout).toContain(
        "the target pool dst is full: free space on it (cleanup target, or destroy what it no longer needs) or grow it; the next backup then resumes this transfer",
      );
      expect(env.snapshots("dst/backup")).toEqual([]);
      // receive -s keeps what arrived: a resume token, as for a cut link
      expect(env.list().get("dst/backup")?.token).toEqual(expect.any(String));

      env.growPool("dst", 1024 * 1024 * 1024);
      const again = await env.cli(["backup", config, "--yes", "--json"]);
      expect(again.code).toBe(0);
      expect(again.stdout).not.toContain("they may stop"); // room enough now
      const plan = planOf(again.stdout);
      expect(sendsOf(plan).map((a) => a.mode)).toEqual(["resume"]);
      expect(env.guid(`dst/backup@${day(1)}`)).toBe(env.guid(`src/data@${day(1)}`));
      expect(env.list().get("dst/backup")?.token).toBeNull();
    },
    LONG_MS,
  );
});

describe("room on the target", () => {
  test(
    "an incremental larger than the target root's room is warned of with the plan, naming the root",
    async () => {
      env.seed(
        oneDataset({
          srcSize: "2G",
          dstSize: "400M",
          snapshots: [{ name: "data", snapshots: [{ name: day(1), written: "10M" }] }],
        }),
      );
      const first = await env.cli(["backup", config, "--yes"]);
      expect(first.code).toBe(0);
      expect(first.stderr).not.toContain("they may stop");
      expect(env.zfs("sim-write", "src/data", "500M").code).toBe(0);
      expect(env.zfs("snapshot", `src/data@${day(2)}`).code).toBe(0);
      const dry = await env.cli(["backup", config, "--dry-run"]);
      expect(dry.code).toBe(0);
      expect(dry.stderr).toMatch(
        /warning: the transfers need about 500\.\d MiB and dst\/backup has \d+\.\d MiB available: they may stop/,
      );
    },
    LONG_MS,
  );
});

describe("the chain's protection", () => {
  test(
    "a new base that cannot be bookmarked keeps the old base's hold and bookmark",
    async () => {
      env.seed(oneDataset({ snapshots: [{ name: "data", snapshots: [{ name: day(1) }] }] }));
      expect((await env.cli(["backup", config, "--yes"])).code).toBe(0);
      const holdsOf = (snapshot: string) => env.zfs("holds", "-H", snapshot).stdout;
      const oldHold = holdsOf(`src/data@${day(1)}`);
      expect(oldHold).toContain("abgleich");
      expect(env.list().has(`src/data#${day(1)}`)).toBe(true);
      expect(env.zfs("snapshot", `src/data@${day(2)}`).code).toBe(0);

      // a zfs whose bookmarks fail, made by the program or one by one (the hold beside them
      // works): nothing old of the source's chain may go
      const shims = env.path.split(":")[0] as string;
      mkdirSync(join(env.dir, "failing-bookmark"), { recursive: true });
      const failing = env.writeFile(
        "failing-bookmark/zfs",
        `#!/bin/sh\nif [ "$1" = bookmark ]; then echo "cannot create bookmark '$3': out of space" >&2; exit 1; fi\nif [ "$1" = program ]; then printf '%s\\n' 'Channel program execution failed:' "cannot create bookmark '$5' of '$4': out of space" >&2; exit 1; fi\nexec '${shims}/zfs' "$@"\n`,
      );
      chmodSync(failing, 0o755);
      const run = await env.cli(["backup", config, "--yes"], {
        env: { PATH: `${dirname(failing)}:${env.path}` },
      });
      expect(run.code).toBe(1);
      expect(run.stdout + run.stderr).toContain("cannot create bookmark");
      expect(env.snapshots("dst/backup")).toEqual([day(1), day(2)]);
      expect(holdsOf(`src/data@${day(1)}`)).toBe(oldHold);
      expect(env.list().has(`src/data#${day(1)}`)).toBe(true);
      // on the source, that is: the target, whose new base is held, moved its own hold on
      expect(env.calls().filter((call) => /^zfs (release|destroy) .*src\//.test(call))).toEqual([]);
    },
    LONG_MS,
  );
});
