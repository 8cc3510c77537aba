// `abgleich status` without a CLI: threshold durations, the exposition format's escaping, the
// state file's place and contents, the config's `status` section, and the judgement itself
// over hand-built trees (an idle dataset is not stale; what waits, and for how long, is).

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { plainStyle } from "../../lib/cli/render/style.ts";
import { ConfigError, parseConfig } from "../../lib/config/load.ts";
import type { RunSummary } from "../../lib/engine/hooks.ts";
import {
  durationProblem,
  formatAge,
  formatThreshold,
  parseDuration,
} from "../../lib/status/duration.ts";
import {
  escapeHelp,
  escapeLabelValue,
  exposition,
  statusMetrics,
} from "../../lib/status/prometheus.ts";
import { firstLine, renderStatus } from "../../lib/status/render.ts";
import {
  CRITICAL,
  LEVEL_NAMES,
  OK,
  type StatusInput,
  statusReport,
  UNKNOWN,
  WARNING,
} from "../../lib/status/report.ts";
import {
  type RunState,
  readRunState,
  recordRun,
  shortened,
  stateDirectory,
  stateFile,
} from "../../lib/status/state.ts";
import type { Snapshot } from "../../lib/zfs/model.ts";
import { config, dst, history, inventory, snap, src, TARGET_ROOT } from "./plan/fixtures.ts";

/** the sides a stage ran on, as the summary records them */
const WHERE = { source: "localhost:tank/data", target: "localhost:backup/tank-data" };

const H = 3600;
const NOW = 1_800_000_000;
const LIMITS = { warn: 26 * H, crit: 50 * H };

describe("durations", () => {
  test("a number with one or more units", () => {
    expect(parseDuration("26h")).toBe(26 * H);
    expect(parseDuration("90m")).toBe(5400);
    expect(parseDuration("45s")).toBe(45);
    expect(parseDuration("2d")).toBe(2 * 86_400);
    expect(parseDuration("1w")).toBe(604_800);
    expect(parseDuration("1d12h")).toBe(36 * H);
    expect(parseDuration(" 2h30m ")).toBe(9000);
  });

  test("no unit, a fraction, an unknown unit or nothing at all is refused with the fix", () => {
    expect(() => parseDuration("26")).toThrow('"26" has no unit: write e.g. 26h or 26m');
    for (const bad of ["", "h", "1.5h", "26x", "-1h", "1h 30m", "1ms"])
      expect(durationProblem(bad)).toContain("is not a duration");
  });

  test("ages read in their two largest units; thresholds in the largest exact one", () => {
    expect(formatAge(0)).toBe("0s");
    expect(formatAge(45)).toBe("45s");
    expect(formatAge(3 * H + 20 * 60 + 5)).toBe("3h 20m");
    expect(formatAge(2 * 86_400 + 4 * H + 13 * 60)).toBe("2d 4h");
    expect(formatAge(86_400)).toBe("1d");
    expect(formatAge(-30)).toBe("0s");
    expect(formatAge(null)).toBe("-");
    expect(formatThreshold(26 * H)).toBe("26h");
    expect(formatThreshold(50 * H)).toBe("50h");
    expect(formatThreshold(2 * 86_400)).toBe("2d");
    expect(formatThreshold(5400)).toBe("90m");
    expect(formatThreshold(90)).toBe("90s");
  });
});

describe("exposition format", () => {
  test("label values escape backslash, double quote and line feed; HELP only backslash and line feed", () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    expect(escapeLabelValue("plain/path.yaml")).toBe("plain/path.yaml");
    expect(escapeHelp('say "hi"\\\nnext')).toBe('say "hi"\\\\\\nnext');
  });

  test("a metric is HELP, TYPE and one line per sample; one without samples is left out", () => {
    const text = exposition([
      {
        name: "x_seconds",
        help: "two\nlines",
        type: "gauge",
        samples: [
          { labels: { config: 'c"1' }, value: 1.5 },
          { labels: {}, value: Number.NaN },
        ],
      },
      { name: "empty", help: "nothing", type: "gauge", samples: [] },
    ]);
    expect(text).toBe(
      '# HELP x_seconds two\\nlines\n# TYPE x_seconds gauge\nx_seconds{config="c\\"1"} 1.5\nx_seconds NaN\n',
    );
  });

  test("a check that could not run still says UNKNOWN and what the state file knows", () => {
    const state: RunState = {
      version: 1,
      config: "/etc/a.yaml",
      lastRun: run("failed", NOW - H),
      lastSuccess: run("ok", NOW - 2 * H),
    };
    const text = exposition(statusMetrics("/etc/a.yaml", UNKNOWN, NOW, null, state));
    expect(text).toContain('abgleich_status{config="/etc/a.yaml"} 3\n');
    expect(text).toContain(
      `abgleich_last_run_timestamp_seconds{config="/etc/a.yaml"} ${NOW - H}\n`,
    );
    expect(text).toContain('abgleich_last_run_success{config="/etc/a.yaml"} 0\n');
    expect(text).not.toContain("abgleich_snapshot_lag");
    // a job that never succeeded: 0, so `time() - …` alerts rather than finding no series
    const never = exposition(
      statusMetrics("/etc/a.yaml", WARNING, NOW, null, { ...state, lastSuccess: null }),
    );
    expect(never).toContain('abgleich_last_success_timestamp_seconds{config="/etc/a.yaml"} 0\n');
    const none = exposition(statusMetrics("/etc/a.yaml", WARNING, NOW, null, null));
    expect(none).toContain('abgleich_last_success_timestamp_seconds{config="/etc/a.yaml"} 0\n');
  });
});

function run(result: "ok" | "failed", finished: number) {
  return {
    stages: ["backup"],
    result,
    exitCode: result === "ok" ? 0 : 1,
    startedAt: new Date((finished - 60) * 1000).toISOString(),
    finishedAt: new Date(finished * 1000).toISOString(),
    error: result === "ok" ? null : "backup: 1 action(s) failed",
  };
}

const goodState: RunState = {
  version: 1,
  config: "/etc/abgleich.yaml",
  lastRun: run("ok", NOW - H),
  lastSuccess: run("ok", NOW - H),
};

function input(overrides: Partial<StatusInput>): StatusInput {
  return {
    config: config(),
    source: inventory("source", []),
    target: inventory("target", []),
    now: NOW,
    thresholds: LIMITS,
    state: goodState,
    stateFile: "/state/abgleich.json",
    ...overrides,
  };
}

const at = (name: string, hoursAgo: number, written = 100) =>
  snap(name, { creation: NOW - hoursAgo * H, written, referenced: 5000 });

describe("the judgement", () => {
  test("an idle dataset whose newest snapshot is weeks old, but on the target, is OK", () => {
    const old = history(at("s1", 24 * 30));
    const report = statusReport(
      input({
        source: inventory("source", [src("", old)]),
        target: inventory("target", [dst("", old)]),
      }),
    );
    expect(report.level).toBe(OK);
    expect(report.datasets[0]).toMatchObject({ lagSnapshots: 0, lagBytes: 0, waitingSince: null });
    expect(report.datasets[0]?.source?.ageSeconds).toBe(24 * 30 * H);
    expect(report.summary).toBe("1 dataset, newest backup 4w 2d ago, last run ok 1h ago");
  });

  test("the newest backup is the newest snapshot that came from the source: one made on the target by hand is none", () => {
    const source = history(at("s1", 50), at("s2", 30));
    const byHand = snap("by-hand", { guid: "made-on-target", creation: NOW - 1 * H });
    const report = statusReport(
      input({
        source: inventory("source", [src("", source)]),
        target: inventory("target", [dst("", [...source, byHand])]),
      }),
    );
    expect(report.datasets[0]?.target?.name).toBe("by-hand");
    expect(report.datasets[0]?.backedUpAt).toBe(NOW - 30 * H);
    expect(report.newestBackup).toBe(NOW - 30 * H);
    expect(report.summary).toContain("newest backup 1d 6h ago");
  });

  test("a backup whose source snapshot is gone but bookmarked still counts, behind one made by hand", () => {
    const [s1, s2, s3] = history(at("s1", 50), at("s2", 30), at("s3", 10));
    const byHand = snap("by-hand", { guid: "made-on-target", creation: NOW - 1 * H });
    // the source destroyed s2 and s3 after the backup, keeping s3's bookmark
    const bookmark = {
      name: "s3",
      guid: (s3 as Snapshot).guid,
      createtxg: 3,
      creation: NOW - 10 * H,
    };
    const report = statusReport(
      input({
        source: inventory("source", [src("", [s1 as Snapshot], { bookmarks: [bookmark] })]),
        target: inventory("target", [dst("", [s1, s2, s3, byHand] as Snapshot[])]),
      }),
    );
    expect(report.datasets[0]?.backedUpAt).toBe(NOW - 10 * H);
  });

  test("what the target lacks: counted from the newest common snapshot, aged by the oldest of it", () => {
    const source = history(at("s1", 60), at("s2", 30, 200), at("s3", 2, 300));
    const report = statusReport(
      input({
        source: inventory("source", [src("", source)]),
        target: inventory("target", [dst("", source.slice(0, 1))]),
      }),
    );
    const [root] = report.datasets;
    expect(root).toMatchObject({ lagSnapshots: 2, lagBytes: 500, waitingSince: NOW - 30 * H });
    expect(report.level).toBe(WARNING);
    expect(root?.notes).toEqual(["behind 1d 6h"]);
    expect(report.summary).toStartWith(
      "(root): 2 snapshots not on the target, the oldest for 1d 6h;",
    );
    // the same history, judged against tighter thresholds
    expect(
      statusReport(
        input({
          source: inventory("source", [src("", source)]),
          target: inventory("target", [dst("", source.slice(0, 1))]),
          thresholds: { warn: 12 * H, crit: 24 * H },
        }),
      ).level,
    ).toBe(CRITICAL);
  });

  test("a target without the dataset lacks a full send: the oldest snapshot's referenced, the rest's written", () => {
    const source = history(at("s1", 3, 100), at("s2", 2, 200));
    const report = statusReport(
      input({ source: inventory("source", [src("", source), src("home", [])]) }),
    );
    expect(report.datasets.map((d) => [d.subname, d.lagSnapshots, d.lagBytes])).toEqual([
      ["", 2, 5200],
      ["home", 0, 0],
    ]);
    expect(report.datasets[0]?.exists.target).toBe(false);
    // home was created long ago and never snapshotted: snap has not run for it
    expect(report.datasets[1]?.notes[0]).toStartWith("no snapshot for");
    expect(report.level).toBe(CRITICAL);
  });

  test("conflicts are CRITICAL; a pending resume is shown; ignored datasets are not watched", () => {
    const source = history(at("s1", 3), at("s2", 2));
    const foreign = history(snap("s1", { guid: "other", creation: NOW - 3 * H }));
    const report = statusReport(
      input({
        config: config({ ignore: ["cache"] }),
        source: inventory("source", [src("", source), src("a", source), src("cache", [])]),
        target: inventory("target", [dst("", foreign), dst("a", [], { resumeToken: "1-abc-def" })]),
      }),
    );
    expect(report.datasets.map((d) => d.subname)).toEqual(["", "a"]);
    expect(report.datasets[0]?.conflicts.map((c) => c.kind)).toEqual([
      "guid-mismatch",
      "no-common",
    ]);
    expect(report.datasets[0]?.level).toBe(CRITICAL);
    expect(report.datasets[1]).toMatchObject({ resumePending: true, level: OK });
    expect(report.datasets[1]?.notes).toContain("resume pending");
    expect(report.level).toBe(CRITICAL);
    expect(report.perfdata).toContain("conflicts=1 resume_pending=1");
    // one dataset, one problem: both kinds named together, as perfdata counts one
    expect(report.problems.map((p) => p.text)).toEqual([
      "(root): conflicts (guid-mismatch, no-common), backup skips it",
    ]);
    expect(report.datasets[0]?.notes).toEqual([
      "conflict: guid-mismatch",
      "conflict: no-common",
      "behind 2h",
    ]);
  });

  test("a dataset only on the target (its source gone) is a WARNING naming both ways out", () => {
    const source = history(at("s1", 3));
    const report = statusReport(
      input({
        config: config({ ignore: ["old"] }),
        source: inventory("source", [src("", source)]),
        target: inventory("target", [dst("", source), dst("photos", source), dst("old", source)]),
      }),
    );
    // a row of its own in the table and the JSON, but not counted among the datasets backed up
    expect(report.datasets.map((d) => [d.subname, d.exists, LEVEL_NAMES[d.level]])).toEqual([
      ["", { source: true, target: true }, "OK"],
      ["photos", { source: false, target: true }, "WARNING"],
    ]);
    expect(report.level).toBe(WARNING);
    // an ignored one (removed on purpose, said so) is not watched
    expect(report.problems.map((p) => p.text)).toEqual([
      "photos: only on the target, the source has no such dataset: restore it from the backup, or if it was removed on purpose add it to ignore",
    ]);
    expect(report.summary).toContain("; 1 dataset, newest backup");
    expect(report.perfdata).toStartWith("datasets=1 lag_snapshots=0 ");
    const row = renderStatus(report, plainStyle)
      .split("\n")
      .find((line) => line.startsWith("photos"));
    expect(row?.split(/\s{2,}/)).toEqual(["photos", "(gone)", "-", "s1", "3h", "0", "source gone"]);
    // no source root at all: that one CRITICAL, not a warning per dataset besides
    const rootless = statusReport(
      input({
        source: inventory("source", []),
        target: inventory("target", [dst("", source), dst("photos", source)]),
      }),
    );
    expect(rootless.problems.map((p) => p.level)).toEqual([CRITICAL]);
  });

  test("a missing target root is named, with both readings: no backup yet, or a wrong name", () => {
    const source = history(at("s1", 3));
    const report = statusReport(
      input({
        source: inventory("source", [src("", source), src("home", source)]),
        target: inventory("target", []),
        targetHost: "nas",
      }),
    );
    expect(report.level).toBe(WARNING);
    expect(report.problems[0]?.text).toBe(
      `target root ${TARGET_ROOT} does not exist on nas: no backup there yet, or check target.zpool and target.prefix`,
    );
    expect(report.summary).toStartWith("target root ");
    // with the target there, nothing of the kind
    const there = statusReport(
      input({
        source: inventory("source", [src("", source)]),
        target: inventory("target", [dst("", source)]),
      }),
    );
    expect(there.problems).toEqual([]);
    // past crit every dataset is CRITICAL: the cause is still first, as CRITICAL
    const old = history(at("s1", 60));
    const late = statusReport(
      input({
        source: inventory("source", [src("", old), src("a", old), src("b", old), src("c", old)]),
        target: inventory("target", []),
      }),
    );
    expect(late.level).toBe(CRITICAL);
    expect(late.problems[0]).toMatchObject({ level: CRITICAL });
    expect(late.summary).toStartWith(`target root ${TARGET_ROOT} does not exist: no backup there`);
    // nothing watched (every dataset ignored, or include_root: no and no children): no target
    // root is needed, so none is missed
    const ignored = statusReport(
      input({
        config: config({ ignore: ["", "a"] }),
        source: inventory("source", [src("", old), src("a", old)]),
        target: inventory("target", []),
      }),
    );
    expect(ignored.datasets).toEqual([]);
    expect(ignored.problems.some((p) => p.text.includes("target root"))).toBe(false);
    // include_root: no: backup does not make the root, the user does
    const rootless = statusReport(
      input({
        config: config({ includeRoot: false }),
        source: inventory("source", [src("", old), src("a", old)]),
        target: inventory("target", []),
      }),
    );
    expect(rootless.problems[0]?.text).toContain(
      "does not exist: create it (backup does not, with include_root: no), or check",
    );
  });

  test("the last run: none recorded, failed, or its last success too long ago", () => {
    const fresh = history(at("s1", 1));
    const trees = {
      source: inventory("source", [src("", fresh)]),
      target: inventory("target", [dst("", fresh)]),
    };
    const none = statusReport(input({ ...trees, state: null }));
    expect(none.level).toBe(WARNING);
    expect(none.summary).toStartWith("no run recorded in /state/abgleich.json");
    const failed = statusReport(
      input({ ...trees, state: { ...goodState, lastRun: run("failed", NOW - 600) } }),
    );
    expect(failed.level).toBe(WARNING);
    expect(failed.summary).toStartWith(
      "last run (backup) failed 10m ago: backup: 1 action(s) failed",
    );
    // a run that ended 31.6 s ago counts from the whole second it ended in, as the time shown
    // and the textfile say it: 32 s in the words, the perfdata, the run's line and the metrics
    const recent = run("ok", NOW - 31.6);
    const recentState = { ...goodState, lastRun: recent, lastSuccess: recent };
    const just = statusReport(input({ ...trees, state: recentState }));
    expect(just.summary).toContain("last run ok 32s ago");
    expect(just.perfdata).toContain("last_success_age=32s;");
    const text = renderStatus(just, plainStyle);
    expect(text).toContain(
      `finished ${new Date((NOW - 32) * 1000).toISOString().replace(".000Z", "Z")} (32s ago)`,
    );
    const metrics = exposition(statusMetrics("/etc/a.yaml", OK, NOW, just, recentState));
    expect(metrics).toContain(
      `abgleich_last_run_timestamp_seconds{config="/etc/a.yaml"} ${NOW - 32}`,
    );
    expect(metrics).toContain(`abgleich_status_timestamp_seconds{config="/etc/a.yaml"} ${NOW}`);
    const longAgo = run("ok", NOW - 3 * 86_400);
    const stale = statusReport(
      input({ ...trees, state: { ...goodState, lastRun: longAgo, lastSuccess: longAgo } }),
    );
    expect(stale.level).toBe(CRITICAL);
    expect(stale.summary).toStartWith("no successful run for 3d");
    const unreadable = statusReport(input({ ...trees, stateProblem: "the state file is damaged" }));
    expect(unreadable.level).toBe(UNKNOWN);
    // a record from the future (the clock went back) is no proof of freshness: a WARNING; a
    // few minutes of drift are not
    const ahead = run("ok", NOW + 3600);
    const future = statusReport(
      input({ ...trees, state: { ...goodState, lastRun: ahead, lastSuccess: ahead } }),
    );
    expect(future.level).toBe(WARNING);
    expect(future.summary).toStartWith(
      `the state file dates a run ${ahead.finishedAt}, after now: this machine's clock went back`,
    );
    const drift = run("ok", NOW + 60);
    expect(
      statusReport(input({ ...trees, state: { ...goodState, lastRun: drift, lastSuccess: drift } }))
        .level,
    ).toBe(OK);
  });

  test("the first line is one line: a message's line breaks become spaces", () => {
    expect(firstLine(WARNING, "a\nb", "x=1")).toBe("ABGLEICH WARNING - a b | x=1");
  });
});

describe("the state file", () => {
  const dir = mkdtempSync(join(tmpdir(), "abg-state-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("where it lives: ABGLEICH_STATE_DIR, /var/lib/abgleich for root, else XDG state", () => {
    expect(stateDirectory({ ABGLEICH_STATE_DIR: "/srv/s" }, 0)).toBe("/srv/s");
    expect(stateDirectory({ HOME: "/home/u" }, 0)).toBe("/var/lib/abgleich");
    expect(stateDirectory({ HOME: "/home/u" }, 1000)).toBe("/home/u/.local/state/abgleich");
    expect(stateDirectory({ HOME: "/home/u", XDG_STATE_HOME: "/x" }, 1000)).toBe("/x/abgleich");
    // a relative XDG_STATE_HOME is invalid by the spec and ignored
    expect(stateDirectory({ HOME: "/home/u", XDG_STATE_HOME: "x" }, 1000)).toBe(
      "/home/u/.local/state/abgleich",
    );
  });

  test("one file per config: the name, and a hash of the absolute path", () => {
    const env = { ABGLEICH_STATE_DIR: "/s" };
    const a = stateFile("/etc/abgleich/nightly.yaml", env);
    expect(a).toMatch(/^\/s\/nightly-[0-9a-f]{12}\.json$/);
    expect(stateFile("/root/nightly.yaml", env)).not.toBe(a);
    expect(stateFile("/etc/abgleich/nightly.yaml", env)).toBe(a);
  });

  const summary = (exitCode: number, mode: RunSummary["mode"] = "changing"): RunSummary => ({
    config: config({ file: join(dir, "my config.yaml") }),
    mode,
    stages: [
      { where: WHERE, stage: "snap", outcome: { status: "ok" } },
      exitCode === 0
        ? { where: WHERE, stage: "cleanup", side: "source", outcome: { status: "nothing-to-do" } }
        : {
            where: WHERE,
            stage: "backup",
            outcome: { status: "failed", error: new Error("backup: boom\nmore") },
          },
    ],
    datasets: [],
    exitCode,
    startedAt: new Date("2026-11-30T02:00:00Z"),
    finishedAt: new Date("2026-11-30T02:05:00Z"),
  });

  test("a good run, then a failed one: the last run fails, the last success stays", () => {
    const env = { ABGLEICH_STATE_DIR: join(dir, "state") };
    const warnings: string[] = [];
    recordRun(summary(0), (text) => warnings.push(text), env);
    const file = stateFile(join(dir, "my config.yaml"), env);
    const first = readRunState(file);
    expect(first?.lastRun).toMatchObject({ stages: ["snap", "cleanup source"], result: "ok" });
    recordRun(summary(1), (text) => warnings.push(text), env);
    const second = readRunState(file);
    expect(second?.lastRun).toMatchObject({
      stages: ["snap", "backup"],
      result: "failed",
      exitCode: 1,
      error: "backup: boom",
    });
    expect(second?.lastSuccess).toEqual(first?.lastSuccess ?? null);
    expect(warnings).toEqual([]);
    // a workflow that backed up to two targets: the record says which stage went where
    const offsite = { ...WHERE, target: "usb:offsite/tank" };
    const two = summary(0);
    two.stages.push({ where: offsite, stage: "backup", outcome: { status: "ok" } });
    recordRun(two, (text) => warnings.push(text), env);
    expect(readRunState(file)?.lastRun.stages).toEqual([
      "snap",
      `cleanup source to ${WHERE.target}`,
      "backup to usb:offsite/tank",
    ]);
  });

  test("a wizard's skipped step (declined, the run ok) is not among the stages it ran", () => {
    const env = { ABGLEICH_STATE_DIR: join(dir, "skipped") };
    const run = summary(0);
    run.stages.push({
      where: WHERE,
      stage: "cleanup",
      side: "target",
      outcome: { status: "declined" },
    });
    recordRun(run, () => {}, env);
    const file = stateFile(join(dir, "my config.yaml"), env);
    expect(readRunState(file)?.lastRun).toMatchObject({
      stages: ["snap", "cleanup source"],
      result: "ok",
    });
  });

  test("a long error is kept to 300 characters, cut after a whole word and marked", () => {
    const words = "Roll back or destroy the target's newer snapshots by hand ".repeat(8);
    const kept = shortened(words, 300);
    expect(kept.length).toBeLessThanOrEqual(300);
    expect(kept).toEndWith("…");
    expect(words.startsWith(kept.slice(0, -1))).toBe(true);
    // the cut falls between words: what is kept ends with one
    expect(words.charAt(kept.length - 1)).toBe(" ");
    expect(shortened("short", 300)).toBe("short");
    // one word longer than the room is cut inside it, still marked
    expect(shortened("x".repeat(400), 300)).toBe(`${"x".repeat(299)}…`);
  });

  test("read-only and dry runs write nothing; an unwritable folder is a warning, not a failure", () => {
    const env = { ABGLEICH_STATE_DIR: join(dir, "untouched") };
    recordRun(summary(0, "dry-run"), () => {}, env);
    recordRun(summary(0, "read-only"), () => {}, env);
    expect(readRunState(stateFile(join(dir, "my config.yaml"), env))).toBeNull();
    const blocker = join(dir, "a-file");
    writeFileSync(blocker, "");
    const warnings: string[] = [];
    recordRun(summary(0), (text) => warnings.push(text), {
      ABGLEICH_STATE_DIR: join(blocker, "sub"),
    });
    expect(warnings[0]).toContain("could not record this run for `abgleich status`");
  });

  test("a damaged file says so and how to fix it", () => {
    const file = join(dir, "damaged.json");
    writeFileSync(file, "{not json");
    expect(() => readRunState(file)).toThrow(/damaged .*delete it, the next run writes it again/);
    expect(readFileSync(file, "utf8")).toBe("{not json");
  });
});

describe("the config's status section", () => {
  const base = "source:\n  zpool: tank\ntarget:\n  zpool: backup\n";
  const load = (extra: string) => parseConfig(base + extra, "/etc/abgleich.yaml");
  const problem = (extra: string): ConfigError => {
    try {
      load(extra);
    } catch (error) {
      if (error instanceof ConfigError) return error;
      throw error;
    }
    throw new Error("no ConfigError");
  };

  test("durations become seconds; left out, the defaults 26h and 50h", () => {
    expect(load("").status).toEqual({ warn: 26 * H, crit: 50 * H });
    expect(load("status:\n  warn: 2h\n  crit: 1d\n").status).toEqual({ warn: 2 * H, crit: 24 * H });
    expect(load("status:\n").status).toEqual({ warn: 26 * H, crit: 50 * H });
  });

  test("crit before warn, a bare number or a wrong unit are refused with the key and the fix", () => {
    const early = problem("status:\n  warn: 2d\n  crit: 1d\n");
    expect(early.keyPath).toBe("status.crit");
    expect(early.reason).toContain("crit (1d) is shorter than warn (2d)");
    // only crit given: it must still not come before the default warn
    expect(problem("status:\n  crit: 12h\n").reason).toContain(
      "crit (12h) is shorter than warn (26h)",
    );
    const bare = problem("status:\n  warn: 26\n");
    expect(bare.keyPath).toBe("status.warn");
    expect(bare.reason).toContain("26 has no unit: write e.g. 26h");
    expect(problem("status:\n  warn: 26x\n").reason).toContain("must be a duration with a unit");
    expect(problem("status:\n  late: 1h\n").keyPath).toContain("status");
  });
});
