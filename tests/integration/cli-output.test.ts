// The CLI's output for logs and machines, on the simulator: --quiet (nothing at all for an idle
// nightly run), timestamps on log lines off a terminal, -v, the --json events checked against
// docs/events.schema.json, and no secret in any line, event or notification.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import type { Scenario } from "../../lib/sim/main.ts";
import { expectValidEvent, validateEvent } from "../helpers/events-schema.ts";
import {
  CLI_MAIN,
  configYaml,
  createSimEnv,
  jsonEvents,
  must,
  type RunResult,
  type SimEnv,
} from "../helpers/sim-env.ts";

/** a test with several CLI runs (each ~0.3–1 s on two busy cores) */
const LONG_MS = 60_000;
const day = (n: number) => `202601010${n}`;
/** local time with its offset, at the start of a line */
const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d /;

const scenario: Scenario = {
  now: 1_767_225_600,
  pools: [
    {
      name: "src",
      size: "1G",
      datasets: [
        { name: "data", snapshots: [{ name: day(1), written: "1M" }] },
        {
          name: "data/home",
          snapshots: [
            { name: day(1), written: "2M" },
            { name: day(2), written: "4M" },
          ],
          // above written_threshold: changed without a diff
          written: "2M",
        },
      ],
    },
    { name: "dst", size: "1G" },
  ],
};

/** every line of a --json run is one valid event, all of one run; the events */
function checkedEvents(run: RunResult): Record<string, unknown>[] {
  const events = jsonEvents(run.stdout);
  expect(events.length).toBeGreaterThan(0);
  for (const event of events) expectValidEvent(event);
  expect(new Set(events.map((e) => e.runId)).size).toBe(1);
  return events;
}

let env: SimEnv;
let config: string;
let noRetries: string;

beforeAll(() => {
  env = createSimEnv();
  const pair = configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" });
  config = env.writeConfig(pair);
  noRetries = env.writeConfig(`${pair}transfer:\n  retries: 0\n`, "no-retries.yaml");
});
afterAll(() => env?.remove());
beforeEach(() => env.seed(scenario));

describe("--quiet", () => {
  test(
    "a nightly run that did something says so in one line; an idle one prints nothing, exit 0",
    async () => {
      const busy = await env.cli(["run", "nightly", config, "--yes", "--quiet"]);
      expect(busy.code).toBe(0);
      expect(busy.stderr).toBe("");
      const lines = busy.stdout.split("\n").filter((line) => line !== "");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(STAMP);
      expect(lines[0]).toContain("abgleich ok: 1 snapshot made");
      expect(lines[0]).toContain("(snap ok, backup ok, cleanup source ok)");

      // nothing changed since: nothing to say, from the workflow or from each command
      for (const args of [
        ["run", "nightly", config, "--yes", "--quiet"],
        ["snap", config, "--yes", "--quiet"],
        ["backup", config, "--yes", "--quiet"],
        ["cleanup", config, "--yes", "--quiet"],
      ]) {
        const idle = await env.cli(args);
        expect({ args, ...idle }).toEqual({ args, code: 0, stdout: "", stderr: "" });
      }
    },
    LONG_MS,
  );

  test(
    "a failure still shows, on stderr, with the summary line",
    async () => {
      const cut = await env.cli(["backup", noRetries, "--yes", "--quiet"], {
        env: { ABGLEICH_SIM_CUT_AFTER: "500000" },
      });
      expect(cut.code).toBe(1);
      expect(cut.stderr).toContain("failed: full send src/data → dst/backup@");
      expect(cut.stderr).toContain("error: backup: ");
      expect(cut.stdout).toMatch(/^\S+ abgleich FAILED \(exit 1\): .*\(backup failed\)\n$/);
      // no plan, no progress, no question
      expect(cut.stdout + cut.stderr).not.toContain("Do you want to continue");
      expect(cut.stdout + cut.stderr).not.toContain("Transfers (");
    },
    LONG_MS,
  );
});

describe("log lines", () => {
  test(
    "off a terminal each line of a changing command begins with local time and offset; tree and compare are not stamped",
    async () => {
      const backup = await env.cli(["backup", config, "--yes"], {
        env: { TZ: "Asia/Kolkata" },
      });
      expect(backup.code).toBe(0);
      const lines = backup.stdout.split("\n").filter((line) => line !== "");
      expect(lines.length).toBeGreaterThan(3);
      for (const line of lines) expect(line).toMatch(STAMP);
      // India is 5:30 ahead of UTC all year
      expect(lines[0]).toMatch(/^\S+\+05:30 /);

      const compare = await env.cli(["compare", config]);
      expect(compare.stdout).toStartWith("source src/data  →  target dst/backup");
      expect(compare.stdout).not.toMatch(/^\d{4}-/m);
    },
    LONG_MS,
  );

  test(
    "-v names each command run on a host; without it none",
    async () => {
      const verbose = await env.cli(["snap", config, "--yes", "-v"]);
      expect(verbose.code).toBe(0);
      expect(verbose.stderr).toMatch(/source \(localhost\) runs: zfs list .* src\/data\n/);
      expect(verbose.stderr).toContain("source (localhost) runs: zfs snapshot");
      const plain = await env.cli(["snap", config, "--yes"]);
      expect(plain.stderr).not.toContain(" runs: ");
      // a transfer between pools of this machine: each stage of its pipeline, as run
      const backup = await env.cli(["backup", config, "--yes", "-v"]);
      expect(backup.code).toBe(0);
      expect(backup.stderr).toMatch(/source \(localhost\) pipes: zfs send .* src\/data@\S+\n/);
      expect(backup.stderr).toContain("target (localhost) pipes: zfs receive -s -u dst/backup");
    },
    LONG_MS,
  );
});

describe("output that cannot be written", () => {
  test.skipIf(!existsSync("/dev/full"))(
    "stdout on a full disk: the run goes on, one line says the output was lost, exit 1",
    async () => {
      const child = Bun.spawn([process.execPath, CLI_MAIN, "tree", config], {
        cwd: env.dir,
        env: { PATH: env.path, HOME: env.dir, TZ: "UTC" },
        stdout: Bun.file("/dev/full"),
        stderr: "pipe",
      });
      const stderr = await new Response(child.stderr).text();
      expect(await child.exited).toBe(1);
      expect(stderr).toBe(
        "abgleich: output could not be written (stdout: ENOSPC); the run ended with exit 0\n",
      );
    },
    LONG_MS,
  );
});

describe("errors nothing handled", () => {
  test(
    "a plugin's forgotten promise and its timer's throw: one line each, the run goes on, exit 1",
    async () => {
      env.writeFile(
        "stray.ts",
        [
          "export default {",
          '  name: "stray",',
          "  setup(hooks) {",
          '    hooks.beforeStage.tap("x", () => {',
          '      Promise.reject(new Error("forgotten promise"));',
          '      setTimeout(() => { throw new Error("timer throw"); }, 1);',
          "    });",
          "  },",
          "};",
          "",
        ].join("\n"),
      );
      const stray = env.writeConfig(
        configYaml(
          { zpool: "src", prefix: "data" },
          { zpool: "dst", prefix: "backup" },
          "plugins:\n  - path: ./stray.ts\n",
        ),
        "stray.yaml",
      );
      const run = await env.cli(["tree", stray]);
      expect(run.code).toBe(1);
      const said = run.stderr.split("\n").filter((line) => line.includes("error nothing handled"));
      expect(said).toEqual([
        "abgleich: error nothing handled (a plugin's or workflow's promise or timer, or abgleich's own mistake): forgotten promise",
        "abgleich: error nothing handled (a plugin's or workflow's promise or timer, or abgleich's own mistake): timer throw",
      ]);
      // no stack trace, and the tree was still shown
      expect(run.stderr).not.toContain("Bun v");
      expect(run.stdout).toContain("SOURCE src/data");
    },
    LONG_MS,
  );
});

describe("--json events", () => {
  test(
    "every event of snap, backup (cut, resumed), cleanup, the nightly workflow and a bad config matches the schema",
    async () => {
      const runIds = new Set<unknown>();
      const run = async (args: string[], extra: Record<string, string> = {}) => {
        const result = await env.cli(args, { env: extra });
        const events = checkedEvents(result);
        runIds.add(events[0]?.runId);
        return { result, events };
      };

      const snap = await run(["snap", config, "--yes", "--json"]);
      const made = must(
        snap.events.find((e) => e.event === "action-done"),
        "snapshot done",
      );
      expect(made).toMatchObject({ kind: "snapshot", side: "source", dataset: null, ok: true });
      expect(made.snapshots).toEqual([expect.stringMatching(/^src\/data\/home@\d{10}$/)]);
      expect(snap.events.at(-1)).toMatchObject({
        event: "summary",
        status: "ok",
        totals: { snapshotsMade: 1 },
      });

      // a full send cut halfway: a failed action, a failed stage, a failed summary
      const cut = await run(["backup", noRetries, "--yes", "--json"], {
        ABGLEICH_SIM_CUT_AFTER: "500000",
      });
      expect(cut.result.code).toBe(1);
      const failed = must(
        cut.events.find((e) => e.event === "action-done" && e.ok === false),
        "failed send",
      );
      expect(failed).toMatchObject({ kind: "send", side: "target", dataset: "dst/backup" });
      expect(cut.events.at(-1)).toMatchObject({ event: "summary", status: "failed", exitCode: 1 });

      // resumed, with -v: debug events for the commands; the token shows nowhere
      const token = must(env.list().get("dst/backup")?.token, "resume token");
      const resumed = await run(["backup", config, "--yes", "--json", "-v"]);
      expect(resumed.result.code).toBe(0);
      expect(resumed.result.stdout).not.toContain(token);
      expect(resumed.events.some((e) => e.event === "debug")).toBe(true);
      const plan = must(
        resumed.events.find((e) => e.event === "plan"),
        "plan",
      ).plan as { actions: { mode?: string; token?: string }[] };
      expect(plan.actions.find((a) => a.mode === "resume")?.token).toBe("<resume token>");
      const sent = resumed.events.filter((e) => e.event === "action-done" && e.kind === "send");
      expect(sent.map((e) => [e.mode, e.keepUnmounted, e.fromBookmark])).toEqual([
        // the resume of a cut first receive sets canmount as that receive did
        ["resume", true, false],
        ["full", true, false],
        ["incremental", false, false],
      ]);
      for (const e of sent) expect(e.bytes).toBeGreaterThan(0);
      const summary = must(resumed.events.at(-1), "summary");
      expect(summary).toMatchObject({ event: "summary", status: "ok", exitCode: 0 });
      expect((summary.totals as { snapshotsSent: number }).snapshotsSent).toBeGreaterThan(0);

      expect(env.zfs("sim-write", "src/data/home", "3M").code).toBe(0);
      await run(["snap", config, "--yes", "--json"]);
      await run(["backup", config, "--yes", "--json"]);
      const cleanup = await run(["cleanup", config, "--yes", "--json"]);
      const destroyed = cleanup.events.filter((e) => e.event === "action-done");
      expect(destroyed.length).toBeGreaterThan(0);
      for (const e of destroyed)
        expect(e).toMatchObject({ kind: "destroy", side: "source", ok: true });

      const dry = await run(["cleanup", config, "target", "--dry-run", "--json"]);
      expect(dry.events.at(-1)).toMatchObject({ event: "summary", mode: "dry-run" });
      const nightly = await run(["run", "nightly", config, "--yes", "--json"]);
      expect(nightly.events.at(-1)).toMatchObject({ event: "summary", status: "nothing-to-do" });
      // the workflow's own log line is an event too, not a stray line on stderr
      expect(nightly.events.some((e) => e.event === "log")).toBe(true);

      const broken = env.writeConfig("source: {}\n", "broken.yaml");
      const bad = await run(["backup", broken, "--yes", "--json"]);
      expect(bad.result.code).toBe(2);
      expect(bad.events).toEqual([
        expect.objectContaining({ event: "error", kind: "config", exitCode: 2 }),
      ]);
      // one id per run, a new one for each
      expect(runIds.size).toBe(9);

      // and the schema is strict enough to catch a broken event
      const done = must(
        resumed.events.find((e) => e.event === "action-done"),
        "action-done",
      );
      const { runId: _id, ...anonymous } = done;
      const { totals: _t, ...noTotals } = summary;
      for (const broken of [
        anonymous,
        { ...done, kind: "frobnicate" },
        { ...done, side: undefined },
        { ...done, time: "2026-01-01 10:00" },
        noTotals,
        { ...summary, status: "fine" },
      ])
        expect(validateEvent(JSON.parse(JSON.stringify(broken)))).toBe(false);
    },
    LONG_MS * 2,
  );
});

describe("secrets", () => {
  let server: ReturnType<typeof Bun.serve>;
  const received: { path: string; authorization: string | null; body: string }[] = [];
  beforeAll(() => {
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(request) {
        const url = new URL(request.url);
        received.push({
          path: url.pathname,
          authorization: request.headers.get("authorization"),
          body: await request.text(),
        });
        return new Response(url.pathname === "/broken" ? "no" : "ok", {
          status: url.pathname === "/broken" ? 500 : 200,
        });
      },
    });
  });
  afterAll(() => server?.stop(true));

  test(
    "tokens, passwords and resume tokens appear in no line, event, summary or notification",
    async () => {
      const base = `127.0.0.1:${server.port}`;
      const secrets = ["tk_live_SECRET123", "pw-SECRET456", "hdr-SECRET789"];
      const notifying = env.writeConfig(
        `${configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" })}transfer:
  retries: 0
plugins:
  - name: notify
    options:
      events: [start, error, done]
      ntfy: { url: "http://${base}/t", token: "${secrets[0]}" }
      webhook:
        url: "http://bot:${secrets[1]}@${base}/broken"
        headers: { Authorization: "Bearer ${secrets[2]}" }
`,
        "notify.yaml",
      );
      const outputs: string[] = [];
      const cut = await env.cli(["backup", notifying, "--yes", "-v"], {
        env: { ABGLEICH_SIM_CUT_AFTER: "500000" },
      });
      expect(cut.code).toBe(1);
      outputs.push(cut.stdout, cut.stderr);
      const token = must(env.list().get("dst/backup")?.token, "resume token");
      for (const args of [
        ["backup", notifying, "--yes", "-v", "--dry-run"],
        ["backup", notifying, "--yes", "--json", "-v", "--dry-run"],
        ["backup", notifying, "--yes", "-v"],
      ]) {
        const result = await env.cli(args);
        outputs.push(result.stdout, result.stderr);
      }
      // the notifications went out (ntfy with its token, as configured) and the broken webhook
      // was warned about, by its origin only
      expect(
        received.some((r) => r.path === "/t" && r.authorization === `Bearer ${secrets[0]}`),
      ).toBe(true);
      expect(outputs.join("\n")).toContain(
        `could not notify by webhook: http://${base} answered 500`,
      );
      // the resume was estimated (-v shows the command with its token) and run
      expect(outputs.join("\n")).toContain("runs: zfs send -n -v -P -t <resume token>");
      expect(outputs.join("\n")).toContain("(root) (resume): done");
      const everything = [...outputs, ...received.map((r) => r.body)].join("\n");
      for (const secret of [...secrets, token]) expect(everything).not.toContain(secret);
    },
    LONG_MS,
  );
});
