// Ctrl-C during a transfer: the CLI stops cleanly (no further action, a summary, exit 1), the
// target keeps a resume token, and the next backup resumes instead of starting over.

import { afterAll, beforeAll, expect, test } from "bun:test";
import {
  CLI_MAIN,
  configYaml,
  createSimEnv,
  jsonEvents,
  must,
  type SimEnv,
} from "../helpers/sim-env.ts";
import { readText } from "../helpers/stdout.ts";

let env: SimEnv;
let config: string;

beforeAll(() => {
  env = createSimEnv();
  config = env.writeConfig(
    configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" }),
  );
  env.seed({
    now: 1_767_225_600,
    pools: [
      {
        name: "src",
        size: "64G",
        // big enough that the simulator needs seconds to stream it
        datasets: [
          { name: "data", snapshots: [{ name: "2026010101", written: "6G" }] },
          { name: "data/small", snapshots: [{ name: "2026010101", written: "1M" }] },
        ],
      },
      { name: "dst", size: "64G" },
    ],
  });
});

afterAll(() => env?.remove());

/** one dataset big enough that its transfer runs for seconds, nothing on the target */
/** `backup --yes --json` on the env, its output piped */
function spawnBackup() {
  return Bun.spawn([process.execPath, CLI_MAIN, "backup", config, "--yes", "--json"], {
    env: { ...process.env, PATH: env.path, TZ: "UTC" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
}

function seedOneBigDataset(): void {
  env.seed({
    now: 1_767_225_600,
    pools: [
      {
        name: "src",
        size: "64G",
        datasets: [{ name: "data", snapshots: [{ name: "2026010101", written: "6G" }] }],
      },
      { name: "dst", size: "64G" },
    ],
  });
}

test("SIGINT mid-stream: cancelled before the next action, token kept, next backup resumes", async () => {
  const child = spawnBackup();
  // wait for the first transfer to move bytes (not just start: under load the stream may not
  // have begun, and a cut before the first byte leaves nothing to resume), then interrupt it
  const out = readText(child.stdout);
  await out.until('"event":"progress"');
  await Bun.sleep(300);
  child.kill("SIGINT");
  const stdout = await out.rest();
  const code = await child.exited;
  const stderr = await new Response(child.stderr).text();

  // cancelled by SIGINT: exit 130, after the after-hooks ran
  expect(code).toBe(130);
  expect(stderr).toContain("interrupted");
  const events = jsonEvents(stdout);
  const stageDone = must(
    events.find((e) => e.event === "stage-done"),
    "stage-done event",
  );
  expect(stageDone.status).toBe("cancelled");
  // what ended the run, said as its own event before the summary
  const ending = events.slice(-2);
  expect(ending[0]).toMatchObject({ event: "cancelled", reason: "SIGINT" });
  expect(ending[1]).toMatchObject({ event: "summary", status: "cancelled", exitCode: 130 });
  // the child dataset's transfer never started: nothing after the cut ran
  const started = events.filter((e) => e.event === "action-start");
  expect(started).toHaveLength(1);

  const token = env.list().get("dst/backup")?.token;
  expect(token).toBeTruthy();
  expect(env.snapshots("dst/backup")).toEqual([]);

  const again = await env.cli(["backup", config, "--yes", "--json"]);
  expect(again.code).toBe(0);
  const plan = must(
    jsonEvents(again.stdout).find((e) => e.event === "plan"),
    "plan event",
  ).plan as { actions: { mode?: string; subname: string }[] };
  expect(plan.actions[0]).toMatchObject({ mode: "resume", subname: "" });
  expect(env.calls().some((call) => /^zfs send .*-t /.test(call))).toBe(true);
  expect(env.guid("dst/backup@2026010101")).toBe(env.guid("src/data@2026010101"));
  expect(env.guid("dst/backup/small@2026010101")).toBe(env.guid("src/data/small@2026010101"));
  expect(env.list().get("dst/backup")?.token).toBeNull();
}, 60_000);

/** the simulator's zfs send and receive processes of this test's state, still running */
function transfersRunning(): string[] {
  const ps = Bun.spawnSync(["ps", "-eo", "stat=,args="]);
  return ps.stdout
    .toString()
    .split("\n")
    .filter((line) => !line.trim().startsWith("Z"))
    .filter((line) => line.includes(env.dir) && / zfs (send|receive) /.test(line));
}

test("killed outright (kill -9) mid-stream: the transfer stops with it, the next backup resumes", async () => {
  seedOneBigDataset();
  const child = Bun.spawn([process.execPath, CLI_MAIN, "backup", config, "--yes", "--json"], {
    // killed outright, it cannot remove its pipeline's temporary folder: keep that in the env's
    env: { ...process.env, PATH: env.path, TZ: "UTC", TMPDIR: env.dir },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "ignore",
  });
  await readText(child.stdout).until('"event":"progress"');
  expect(transfersRunning()).not.toEqual([]);
  child.kill("SIGKILL");
  await child.exited;
  // its lock is gone with it: so must be its transfer, or a second run would meet it
  let running = transfersRunning();
  for (let i = 0; i < 100 && running.length > 0; i++) {
    await Bun.sleep(100);
    running = transfersRunning();
  }
  expect(running).toEqual([]);
  expect(env.list().get("dst/backup")?.token).toBeTruthy();
  const again = await env.cli(["backup", config, "--yes", "--json"]);
  expect(again.code).toBe(0);
  expect(env.guid("dst/backup@2026010101")).toBe(env.guid("src/data@2026010101"));
}, 60_000);

test("SIGTERM to the process and its group at once (`timeout`, `kill -- -PGID`): one cancel, not a quit", async () => {
  seedOneBigDataset();
  const child = spawnBackup();
  const out = readText(child.stdout);
  const err = readText(child.stderr);
  await out.until('"event":"progress"');
  child.kill("SIGTERM");
  // the second as soon as the first was taken (two sent at once merge into one before that)
  await err.until("terminated: cancelling");
  child.kill("SIGTERM");
  const stdout = await out.rest();
  expect(await child.exited).toBe(143);
  // the cancel ran its course: the stage's end, the cancel and the summary were told
  const events = jsonEvents(stdout);
  expect(events.find((e) => e.event === "stage-done")?.status).toBe("cancelled");
  expect(events.at(-1)).toMatchObject({ event: "summary", status: "cancelled", exitCode: 143 });
  expect(env.list().get("dst/backup")?.token).toBeTruthy();
  const again = await env.cli(["backup", config, "--yes", "--json"]);
  expect(again.code).toBe(0);
}, 60_000);
