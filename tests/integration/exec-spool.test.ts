// RunOptions.readStdout: stdout goes through a temporary file instead of a pipe (a whole tree's
// listing is 100 MB and more) and is handed over piece by piece. The bytes must be the same as
// through the pipe, and the file must be gone afterwards, however the command ended.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CancelledError, CommandTimeoutError, LocalHost } from "../../lib/hosts/index.ts";

const spoolDir = mkdtempSync(join(tmpdir(), "abg-spool-"));
const savedTmpdir = process.env.TMPDIR;
afterAll(() => {
  if (savedTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmpdir;
  rmSync(spoolDir, { recursive: true, force: true });
});

/** run with the spool directory as TMPDIR, so what is left there is the spool's */
async function inSpoolDir<T>(run: () => Promise<T>): Promise<T> {
  process.env.TMPDIR = spoolDir;
  try {
    return await run();
  } finally {
    if (savedTmpdir === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmpdir;
  }
}

const host = new LocalHost("source");

/** a readStdout that keeps copies of the pieces (their buffer is reused), and their text */
function reader(): { read: (piece: Uint8Array) => void; pieces: number[]; text: () => string } {
  const chunks: Buffer[] = [];
  const pieces: number[] = [];
  return {
    read: (piece) => {
      pieces.push(piece.length);
      chunks.push(Buffer.from(piece));
    },
    pieces,
    text: () => Buffer.concat(chunks).toString("utf8"),
  };
}
// 200,000 lines with tabs and non-ASCII (a mountpoint may hold any UTF-8), about 7 MB
const PRINT = [
  "sh",
  "-c",
  'i=0; while [ $i -lt 200000 ]; do printf "tank/d%s\\t/mnt/ü€%s\\n" $i $i; i=$((i+1)); done; echo err >&2; exit 3',
];

describe("readStdout", () => {
  test("hands over the same bytes as the pipe, in pieces, with stderr and code; removes its file", async () => {
    const piped = await host.run(PRINT);
    const out = reader();
    const spooled = await inSpoolDir(() => host.run(PRINT, { readStdout: out.read }));
    expect(spooled).toEqual({ code: 3, stdout: "", stderr: "err\n" });
    const text = out.text();
    expect(text.length).toBeGreaterThan(5_000_000);
    expect(text === piped.stdout).toBe(true);
    expect(text.split("\n")[199_999]).toBe("tank/d199999\t/mnt/ü€199999");
    // pieces of a bounded size, not the whole output at once
    expect(out.pieces.length).toBeGreaterThan(5);
    expect(Math.max(...out.pieces)).toBeLessThanOrEqual(1 << 20);
    expect(readdirSync(spoolDir)).toEqual([]);
  }, 60_000);

  test("the output goes through a file of its own in TMPDIR, readable by us only", async () => {
    const out = reader();
    await inSpoolDir(() =>
      host.run(["sh", "-c", 'cd "$TMPDIR" && stat -c "%a %n" *'], { readStdout: out.read }),
    );
    expect(out.text()).toMatch(/^600 abgleich-out-\d+-[0-9a-f]{12}\n$/);
    expect(readdirSync(spoolDir)).toEqual([]);
  });

  test("an unusable TMPDIR: the pipe is used instead", async () => {
    process.env.TMPDIR = join(spoolDir, "missing");
    try {
      const out = reader();
      const result = await host.run(["echo", "still read"], { readStdout: out.read });
      expect(result).toEqual({ code: 0, stdout: "", stderr: "" });
      expect(out.text()).toBe("still read\n");
    } finally {
      if (savedTmpdir === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmpdir;
    }
  });

  test("a command that cannot start: code 127, no file left", async () => {
    const result = await inSpoolDir(() =>
      host.run(["abgleich-no-such-command"], { readStdout: () => {} }),
    );
    expect(result.code).toBe(127);
    expect(readdirSync(spoolDir)).toEqual([]);
  });

  test("cancelled or timed out: the typed error, no file left", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const cancelled = inSpoolDir(() =>
      host.run(["sh", "-c", "echo partial; sleep 30"], {
        readStdout: () => {},
        signal: controller.signal,
      }),
    );
    await expect(cancelled).rejects.toBeInstanceOf(CancelledError);
    expect(readdirSync(spoolDir)).toEqual([]);
    const timedOut = inSpoolDir(() =>
      host.run(["sh", "-c", "echo partial; sleep 30"], { readStdout: () => {}, timeoutMs: 300 }),
    );
    await expect(timedOut).rejects.toBeInstanceOf(CommandTimeoutError);
    expect(readdirSync(spoolDir)).toEqual([]);
  }, 60_000);
});
