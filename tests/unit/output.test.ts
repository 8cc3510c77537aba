// The log side of the console: local ISO timestamps at the start of each line (not for the
// journal), redaction on every write, and the one summary line of --quiet.

import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { logStream, wantsTimestamps } from "../../lib/cli/io.ts";
import { placeOf, stagePlace } from "../../lib/cli/ui.ts";
import type { RunSummary } from "../../lib/engine/hooks.ts";
import { summaryLine, wasIdle } from "../../lib/engine/summary.ts";
import { localIsoTime } from "../../lib/engine/time.ts";
import { config } from "./plan/fixtures.ts";

/** the sides a stage ran on, as the summary records them */
const WHERE = { source: "localhost:tank/data", target: "localhost:backup/tank-data" };

const dir = mkdtempSync(join(tmpdir(), "abg-output-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** a stream that collects what is written */
function sink(): { stream: NodeJS.WriteStream; text: () => string } {
  let written = "";
  const stream = {
    write: (chunk: string) => {
      written += chunk;
      return true;
    },
  } as unknown as NodeJS.WriteStream;
  return { stream, text: () => written };
}

describe("localIsoTime", () => {
  test("ISO 8601 with the local offset, naming the same instant", () => {
    const date = new Date(Date.UTC(2026, 10, 30, 23, 59, 58, 123));
    const text = localIsoTime(date);
    expect(text).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/);
    expect(new Date(text).getTime()).toBe(date.getTime() - 123);
    const precise = localIsoTime(date, true);
    expect(precise).toMatch(/\.123[+-]\d\d:\d\d$/);
    expect(new Date(precise).getTime()).toBe(date.getTime());
  });
});

describe("logStream", () => {
  const at = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  const stamp = `${localIsoTime(at)} `;

  test("one stamp at the start of each line, however the line was written", () => {
    const out = sink();
    const log = logStream(out.stream, { timestamps: true, now: () => at });
    log.write("backup");
    log.write(": ok\nnext ");
    log.write("line\n\nlast\n");
    expect(out.text()).toBe(`${stamp}backup: ok\n${stamp}next line\n\n${stamp}last\n`);
  });

  test("without timestamps the text is as written, and secrets are gone either way", () => {
    const out = sink();
    const log = logStream(out.stream, { timestamps: false });
    log.write(`zfs send -t 1-abc12-f0-${"789c".repeat(10)} failed\n`);
    expect(out.text()).toBe("zfs send -t <resume token> failed\n");
  });
});

describe("wantsTimestamps", () => {
  test("a terminal: no; a file or pipe: yes; the journal (JOURNAL_STREAM names it): no", () => {
    expect(wantsTimestamps({ isTTY: true }, {})).toBe(false);
    const fd = openSync(join(dir, "log"), "w");
    try {
      const { dev, ino } = fstatSync(fd);
      expect(wantsTimestamps({ isTTY: false, fd }, {})).toBe(true);
      expect(wantsTimestamps({ isTTY: false, fd }, { JOURNAL_STREAM: `${dev}:${ino}` })).toBe(
        false,
      );
      // the journal is another stream (stderr there, stdout into a file here): stamp this one
      expect(wantsTimestamps({ isTTY: false, fd }, { JOURNAL_STREAM: `${dev}:${ino + 1}` })).toBe(
        true,
      );
    } finally {
      closeSync(fd);
    }
  });
});

describe("summaryLine", () => {
  const summary = (
    exitCode: number,
    stages: RunSummary["stages"],
    datasets: RunSummary["datasets"] = [],
  ): RunSummary => ({
    config: config(),
    mode: "changing",
    stages,
    datasets,
    exitCode,
    startedAt: new Date(0),
    finishedAt: new Date(1000),
  });
  const idle: RunSummary["stages"] = [
    { where: WHERE, stage: "snap", outcome: { status: "nothing-to-do" } },
    { where: WHERE, stage: "backup", outcome: { status: "nothing-to-do" } },
    { where: WHERE, stage: "cleanup", side: "source", outcome: { status: "nothing-to-do" } },
  ];

  test("an idle run has no line", () => {
    expect(wasIdle(summary(0, idle))).toBe(true);
    expect(summaryLine(summary(0, idle))).toBeNull();
  });

  test("what changed, then each stage", () => {
    const line = summaryLine(
      summary(
        0,
        [{ where: WHERE, stage: "snap", outcome: { status: "ok" } }, ...idle.slice(1)],
        [
          {
            subname: "home",
            snapshotsMade: ["2026010101"],
            bytesSent: 3 * 1024 * 1024,
            snapshotsReceived: ["a", "b"],
            destroyed: [{ side: "source", snapshots: ["x"] }],
            conflicts: [],
            failures: [],
          },
        ],
      ),
    );
    expect(line).toBe(
      "abgleich ok: 1 snapshot made, 3.0 MiB sent (2 snapshots), 1 snapshot destroyed (snap ok, backup nothing-to-do, cleanup source nothing-to-do)",
    );
  });

  test("a failure, a conflict alone, and a cancel each say so", () => {
    const failed = summary(
      1,
      [{ where: WHERE, stage: "backup", outcome: { status: "failed" } }],
      [
        {
          subname: "",
          snapshotsMade: [],
          bytesSent: 0,
          snapshotsReceived: [],
          destroyed: [],
          conflicts: ["target-ahead"],
          failures: [],
        },
      ],
    );
    expect(summaryLine(failed)).toBe("abgleich FAILED (exit 1): 1 conflict (backup failed)");
    expect(
      summaryLine(
        summary(130, [{ where: WHERE, stage: "backup", outcome: { status: "cancelled" } }]),
      ),
    ).toBe("abgleich cancelled (exit 130): nothing changed (backup cancelled)");
    // nothing to do, but a declined question or a failure is never silent
    expect(summaryLine(summary(1, idle))).toStartWith("abgleich FAILED (exit 1)");
  });
});

describe("where a plan acts", () => {
  test("each side's root and machine, with the login and port the config gives", () => {
    const cfg = config({
      target: { ...config().target, host: "nas", user: "backup", port: 2222 },
    });
    expect(placeOf(cfg.source)).toBe("tank/data on localhost");
    expect(placeOf(cfg.target)).toBe("backup/host on backup@nas:2222");
    const info = (stage: "snap" | "backup" | "cleanup", side?: "source" | "target") =>
      stagePlace({ stage, side, config: cfg } as Parameters<typeof stagePlace>[0]);
    expect(info("backup")).toBe(
      "source tank/data on localhost → target backup/host on backup@nas:2222",
    );
    expect(info("snap")).toBe("source tank/data on localhost");
    expect(info("cleanup", "source")).toBe("source tank/data on localhost");
    expect(info("cleanup", "target")).toBe("target backup/host on backup@nas:2222");
  });
});
