// The wire: which compression, buffer and limit a backup stage uses (every branch of the
// choice), and the stages that carry it, run for real through sh with odd argvs.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_TRANSFER, type TransferConfig } from "../../lib/config/types.ts";
import type { Host } from "../../lib/hosts/host.ts";
import { LocalHost } from "../../lib/hosts/local.ts";
import { shellJoin } from "../../lib/hosts/quote.ts";
import {
  failedStage,
  formatPipelineFailure,
  type PipelineResult,
  runPipeline,
} from "../../lib/run/pipeline.ts";
import {
  AUTO_BUFFER,
  chooseWire,
  directProbeArgv,
  directSshArgv,
  groupScript,
  PLAIN_WIRE,
  parseGroupReport,
  parseTools,
  sequenceReport,
  TOOLS_PROBE,
  type Wire,
  type WireCapability,
  type WireEnd,
  type WireTool,
  wireBatch,
  wirePipeline,
  ZSTD_SINGLE_THREAD,
} from "../../lib/run/wire.ts";
import { standInMissingTools } from "../helpers/wire-tools.ts";

const ALL: WireTool[] = ["zstd", "lz4", "mbuffer", "pv"];
const end = (
  side: "source" | "target",
  tools: WireTool[] = ALL,
  isLocal = false,
  name = side === "source" ? "src-host" : "backup-host",
): WireEnd => ({ side, name, isLocal, address: name, tools: new Set(tools) });
const transfer = (over: Partial<TransferConfig> = {}): TransferConfig => ({
  ...DEFAULT_TRANSFER,
  ...over,
});
const MiB = 1024 * 1024;

function chosen(t: TransferConfig, source: WireEnd, target: WireEnd): Wire {
  const choice = chooseWire(t, source, target);
  if (!choice.ok) throw new Error(`refused: ${choice.problems.join("; ")}`);
  return choice.wire;
}

function refused(t: TransferConfig, source: WireEnd, target: WireEnd): string {
  const choice = chooseWire(t, source, target);
  if (choice.ok) throw new Error(`chosen: ${choice.wire.text}`);
  return choice.problems.join("\n");
}

describe("parseTools", () => {
  test("only the known tools, whatever else the probe printed", () => {
    expect([...parseTools("zstd\nmbuffer\n/usr/bin/zstd\nrm\n")]).toEqual(["zstd", "mbuffer"]);
    expect([...parseTools("")]).toEqual([]);
    expect([...parseTools(`zstd\n${ZSTD_SINGLE_THREAD}\n`)]).toEqual(["zstd", ZSTD_SINGLE_THREAD]);
  });

  test("the probe finds whether this machine's zstd takes --single-thread, and not an old one's", async () => {
    const probe = async (path: string) => {
      const child = Bun.spawn([...TOOLS_PROBE], { env: { PATH: path }, stdout: "pipe" });
      return parseTools(await new Response(child.stdout).text());
    };
    const real = Bun.which("zstd");
    if (real !== null) {
      const version = Bun.spawnSync(["zstd", "--version"]).stdout.toString();
      // zstd 1.4 and later take the option (CI installs Debian's 1.5)
      if (!/v1\.[0-3]\./.test(version))
        expect((await probe(process.env.PATH ?? "")).has(ZSTD_SINGLE_THREAD)).toBe(true);
    }
    // an old zstd (1.3) refuses the option: zstd is found, the option is not
    const old = mkdtempSync(join(tmpdir(), "abg-oldzstd-"));
    try {
      writeFileSync(
        join(old, "zstd"),
        '#!/bin/sh\nfor a do [ "$a" = --single-thread ] && { echo "Incorrect parameters" >&2; exit 1; }; done\ncat\n',
        { mode: 0o755 },
      );
      const found = await probe(`${old}:/usr/bin:/bin`);
      expect(found.has("zstd")).toBe(true);
      expect(found.has(ZSTD_SINGLE_THREAD)).toBe(false);
    } finally {
      rmSync(old, { recursive: true, force: true });
    }
  });
});

describe("chooseWire: compression", () => {
  test("auto: zstd where both ends have it", () => {
    const wire = chosen(transfer(), end("source"), end("target"));
    expect(wire.compression).toBe("zstd");
    expect(wire.text).toBe("wire: zstd over ssh, mbuffer 64 MiB on target for streams from 8 MiB");
  });

  test("zstd runs with --single-thread where the source's zstd takes it (it then writes each block as made)", () => {
    const withOption = end("source", ALL);
    const tools = new Set<WireCapability>([...ALL, ZSTD_SINGLE_THREAD]);
    const prompt = chosen(transfer(), { ...withOption, tools }, end("target"));
    expect(prompt.zstdSingleThread).toBe(true);
    const send = ["zfs", "send", "tank/a@s1"];
    const receive = ["zfs", "receive", "-s", "-u", "backup/a"];
    const batched = wirePipeline(send, receive, remote("source"), remote("target"), prompt);
    expect(batched.commands).toContainEqual(["zstd", "-c", "-3", "--single-thread"]);
    // an old zstd on the source: the option is left out (it would be refused mid-stream)
    const old = chosen(transfer(), withOption, end("target"));
    expect(old.zstdSingleThread).toBeUndefined();
    expect(
      wirePipeline(send, receive, remote("source"), remote("target"), old).commands,
    ).toContainEqual(["zstd", "-c", "-3"]);
    // only the source compresses: the target's zstd does not matter, nor lz4's
    const target = { ...end("target"), tools };
    expect(chosen(transfer(), withOption, target).zstdSingleThread).toBeUndefined();
    expect(
      chosen(transfer({ compression: "lz4" }), { ...withOption, tools }, end("target"))
        .zstdSingleThread,
    ).toBeUndefined();
  });

  test("auto: lz4 when zstd is missing on an end, and says so", () => {
    const wire = chosen(transfer(), end("source"), end("target", ["lz4", "mbuffer"]));
    expect(wire.compression).toBe("lz4");
    expect(wire.text).toBe(
      "wire: lz4 over ssh, mbuffer 64 MiB on target for streams from 8 MiB (lz4: zstd missing on backup-host (target))",
    );
  });

  test("auto: off when neither is on both ends, naming what is missing where", () => {
    const one = chosen(transfer({ buffer: 0 }), end("source"), end("target", []));
    expect(one.compression).toBeNull();
    expect(one.text).toBe(
      "wire: uncompressed over ssh (compression off: zstd and lz4 missing on backup-host (target))",
    );
    const split = chosen(transfer({ buffer: 0 }), end("source", ["lz4"]), end("target", ["zstd"]));
    expect(split.text).toContain(
      "compression off: zstd missing on src-host (source), lz4 missing on backup-host (target)",
    );
  });

  test("explicit zstd or lz4 is used where both have it", () => {
    expect(chosen(transfer({ compression: "lz4" }), end("source"), end("target")).compression).toBe(
      "lz4",
    );
    expect(
      chosen(transfer({ compression: "zstd" }), end("source"), end("target")).compression,
    ).toBe("zstd");
  });

  test("explicit zstd missing on an end refuses, naming host, tool and fix", () => {
    const problem = refused(
      transfer({ compression: "zstd" }),
      end("source"),
      end("target", ["lz4"]),
    );
    expect(problem).toBe(
      "transfer.compression is zstd, but zstd is missing on backup-host (target): install it there (`apt install zstd`) or set `compression: auto`",
    );
    expect(refused(transfer({ compression: "lz4" }), end("source", []), end("target"))).toContain(
      "lz4 is missing on src-host (source)",
    );
  });

  test("off: never, even with every tool", () => {
    const wire = chosen(transfer({ compression: "off" }), end("source"), end("target"));
    expect(wire.compression).toBeNull();
    expect(wire.text).toBe(
      "wire: uncompressed over ssh, mbuffer 64 MiB on target for streams from 8 MiB",
    );
  });

  test("both sides local: no compression, no auto buffer, explicit zstd not refused", () => {
    const local = [end("source", [], true, "localhost"), end("target", [], true, "localhost")];
    const wire = chosen(
      transfer({ compression: "zstd" }),
      local[0] as WireEnd,
      local[1] as WireEnd,
    );
    expect(wire).toMatchObject({ compression: null, buffer: 0, limiter: null });
    expect(wire.text).toBe("wire: local pipe");
  });

  test("one side local: compressed between this machine and the remote end", () => {
    const wire = chosen(transfer(), end("source", ALL, true, "localhost"), end("target"));
    expect(wire.compression).toBe("zstd");
  });
});

describe("chooseWire: buffer", () => {
  test("auto: mbuffer 64 MiB where the target has it, else none and why", () => {
    expect(chosen(transfer(), end("source", []), end("target", ["mbuffer"])).buffer).toBe(
      AUTO_BUFFER,
    );
    const none = chosen(transfer({ compression: "off" }), end("source"), end("target", []));
    expect(none.buffer).toBe(0);
    expect(none.text).toBe(
      "wire: uncompressed over ssh (no buffer: mbuffer missing on backup-host (target))",
    );
  });

  test("auto on the source's mbuffer alone: none (the buffer is on the receiving host)", () => {
    expect(chosen(transfer(), end("source"), end("target", ["zstd"])).buffer).toBe(0);
  });

  test("an explicit size: used, and refused without mbuffer on the target", () => {
    const wire = chosen(transfer({ buffer: 1024 * MiB }), end("source"), end("target"));
    expect(wire.buffer).toBe(1024 * MiB);
    expect(wire.text).toContain("mbuffer 1 GiB on target");
    expect(refused(transfer({ buffer: 256 * MiB }), end("source"), end("target", []))).toBe(
      "transfer.buffer is 256 MiB, but mbuffer is missing on backup-host (target): install it there (`apt install mbuffer`) or set `buffer: auto`",
    );
  });

  test("an explicit size between local pools needs mbuffer here too", () => {
    const here = (side: "source" | "target", tools: WireTool[]) =>
      end(side, tools, true, "localhost");
    expect(
      chosen(transfer({ buffer: 8 * MiB }), here("source", ALL), here("target", ALL)).buffer,
    ).toBe(8 * MiB);
    expect(
      refused(transfer({ buffer: 8 * MiB }), here("source", ALL), here("target", [])),
    ).toContain("mbuffer is missing on localhost (target)");
  });

  test("off (0): none, and nothing said", () => {
    expect(chosen(transfer({ buffer: 0 }), end("source"), end("target", [])).text).toBe(
      "wire: zstd over ssh (compression off: zstd and lz4 missing on backup-host (target))".replace(
        "zstd over ssh",
        "uncompressed over ssh",
      ),
    );
  });
});

describe("chooseWire: bandwidth limit", () => {
  test("pv on the sending host is preferred", () => {
    const wire = chosen(transfer({ bwlimit: 10 * MiB }), end("source"), end("target"));
    expect(wire).toMatchObject({ limiter: "pv", bwlimit: 10 * MiB });
    expect(wire.text).toBe(
      "wire: zstd over ssh, mbuffer 64 MiB on target for streams from 8 MiB, limit 10 MiB/s (pv on source)",
    );
  });

  test("mbuffer -r when pv is missing", () => {
    const wire = chosen(
      transfer({ bwlimit: 512 * 1024 }),
      end("source", ["mbuffer"]),
      end("target", []),
    );
    expect(wire).toMatchObject({ limiter: "mbuffer", bwlimit: 512 * 1024 });
  });

  test("neither on the sending host: refused (the target's tools do not count)", () => {
    expect(refused(transfer({ bwlimit: 10 * MiB }), end("source", ["zstd"]), end("target"))).toBe(
      "transfer.bwlimit is 10 MiB/s, but neither pv nor mbuffer is on src-host (source): install one there (`apt install pv`) or set `bwlimit: off`",
    );
  });

  test("every problem at once", () => {
    const problems = refused(
      transfer({ compression: "zstd", buffer: 64 * MiB, bwlimit: MiB }),
      end("source", []),
      end("target", []),
    ).split("\n");
    expect(problems).toHaveLength(4);
  });
});

describe("chooseWire: direct", () => {
  test("both remote: direct, named in the text", () => {
    const wire = chosen(transfer({ direct: true }), end("source"), end("target"));
    expect(wire.direct).toBe(true);
    expect(wire.text).toStartWith("wire: zstd over ssh, direct from src-host to backup-host");
  });

  test("never with a local side (the config refuses it; the choice ignores it)", () => {
    expect(
      chosen(transfer({ direct: true }), end("source", ALL, true, "localhost"), end("target"))
        .direct,
    ).toBe(false);
  });
});

describe("chooseWire: source and target on one remote host", () => {
  test("a pipe on that host: no compression, no auto buffer, direct has nothing to do", () => {
    const nas = (side: "source" | "target") => end(side, ALL, false, "root@nas");
    for (const t of [transfer(), transfer({ compression: "zstd", direct: true })]) {
      const wire = chosen(t, nas("source"), nas("target"));
      expect(wire).toMatchObject({ oneHost: true, direct: false, compression: null, buffer: 0 });
      expect(wire.text).toBe("wire: local pipe on root@nas (source and target are one host)");
    }
    // a limit still applies, with the host's own tool
    expect(chosen(transfer({ bwlimit: MiB }), nas("source"), nas("target"))).toMatchObject({
      oneHost: true,
      limiter: "pv",
    });
  });

  test("the same name on another port (or as another user) is another host", () => {
    const other = { ...end("target", ALL, false, "root@nas"), address: "root@nas:2222" };
    const wire = chosen(transfer(), end("source", ALL, false, "root@nas"), other);
    expect(wire.oneHost).toBeUndefined();
    expect(wire.compression).toBe("zstd");
  });
});

describe("groupScript", () => {
  test("holds nothing but fixed text and numbers, on one line, without `!`", () => {
    for (const script of [groupScript([3, 2, 5]), groupScript([4, 7], true)]) {
      expect(script).not.toContain("\n");
      expect(script).not.toContain("!");
      expect(script).toContain(`"\${10}"`);
    }
    expect(groupScript([3, 2, 5])).toContain(`"\${11}"`); // the nonce after the 10 words
  });

  test("runs each argv exactly, reports each code and stderr in order", async () => {
    const odd = "a b:c.d-e $(x) ';\"";
    const stages = [
      ["sh", "-c", 'printf "%s|" "$@"; echo live >&2', "sh", odd, "x y"],
      ["sh", "-c", 'cat; echo "two says $1" >&2; exit 3', "sh", odd],
      ["sh", "-c", 'cat >"$1"; echo "three" >&2', "sh", join(dir, "out")],
    ];
    const argv = [
      "sh",
      "-c",
      groupScript(stages.map((s) => s.length)),
      "sh",
      ...stages.flat(),
      "tag-1",
    ];
    const child = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
    const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
    // the group ran to its end: exit 0, the codes are in the report
    expect(code).toBe(0);
    expect(await Bun.file(join(dir, "out")).text()).toBe(`${odd}|x y|`);
    expect(parseGroupReport(stderr, "tag-1", 3)).toEqual({
      codes: [0, 3, 0],
      stderr: ["live\n", `two says ${odd}\n`, "three\n"],
    });
  });

  test("stages writing errors at once, even through bash's line-buffered printf: every line and code arrives", async () => {
    const lines = (word: string) =>
      `i=0; while [ $i -lt 40 ]; do echo "${word}$i" >&2; i=$((i+1)); done`;
    const stages = [
      ["sh", "-c", `printf data; ${lines("progress")}`],
      ["sh", "-c", `cat; ${lines("two")}`],
      ["sh", "-c", `cat; ${lines("three")}`],
      ["sh", "-c", `cat >/dev/null; ${lines("four")}`],
    ];
    const script = groupScript(stages.map((s) => s.length));
    for (const shell of [["sh"], ["bash", "--posix"]]) {
      for (let run = 0; run < 5; run++) {
        const child = Bun.spawn([...shell, "-c", script, "sh", ...stages.flat(), "tag-r"], {
          stdout: "ignore",
          stderr: "pipe",
        });
        const [stderr] = await Promise.all([new Response(child.stderr).text(), child.exited]);
        const report = parseGroupReport(stderr, "tag-r", 4);
        expect(report?.codes).toEqual([0, 0, 0, 0]);
        const expected = (word: string) =>
          Array.from({ length: 40 }, (_, i) => `${word}${i}\n`).join("");
        expect(report?.stderr.slice(1)).toEqual([
          expected("two"),
          expected("three"),
          expected("four"),
        ]);
        expect(report?.stderr[0]).toBe(expected("progress"));
      }
    }
  });

  test("a report is found only with its own tag; none means the group never ended", () => {
    // c2's lines and the codes come as they happen, between (even inside) c1's lines
    const text =
      "prog\rtag-2 2|cannot receive\n\rtag-2 2|  full pool\nress\n\rtag-2 2 1\n\rtag-2 1 0\nend\n";
    expect(parseGroupReport(text, "tag-2", 2)).toEqual({
      codes: [0, 1],
      stderr: ["progress\nend\n", "cannot receive\n  full pool\n"],
    });
    // a command not yet ended has no code
    expect(parseGroupReport("\rtag-2 2|x\n", "tag-2", 2)).toEqual({
      codes: [-1, -1],
      stderr: ["", "x\n"],
    });
    expect(parseGroupReport(text, "tag-9", 2)).toBeNull();
    expect(parseGroupReport("ssh: connect to host x: refused\n", "tag-2", 2)).toBeNull();
  });
});

let dir: string;
let fakeSsh: string;
const savedPath = process.env.PATH;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "abg-wire-"));
  // ssh as the far end sees it: the words after `--` joined into one line for a shell
  fakeSsh = join(dir, "ssh");
  writeFileSync(
    fakeSsh,
    '#!/bin/sh\nwhile [ "$#" -gt 0 ] && [ "$1" != "--" ]; do shift; done\nshift\nexec sh -c "$*"\n',
  );
  chmodSync(fakeSsh, 0o755);
  // the pipelines below run zstd for real where it is installed
  standInMissingTools(dir, ["zstd"], "wirePipeline tests");
  process.env.PATH = `${dir}:${savedPath}`;
});

afterAll(() => {
  process.env.PATH = savedPath;
  rmSync(dir, { recursive: true, force: true });
});

/** a remote host whose ssh is the fake above: commands reach a shell as one quoted line */
function remote(side: "source" | "target"): Host {
  const local = new LocalHost(side);
  return {
    ...local,
    side,
    name: `${side}-host`,
    isLocal: false,
    run: local.run,
    ping: local.ping,
    close: local.close,
    wrap: (argv) => ["ssh", "-o", "BatchMode=yes", `${side}-host`, "--", shellJoin(argv)],
  };
}

const wireOf = (over: Partial<Wire>): Wire => ({ ...PLAIN_WIRE, ...over });
/** what runPipeline reports for stages that ended with `codes` and `stderr` */
const ended = (codes: number[], stderr: string[]): PipelineResult => ({
  ok: codes.every((code) => code === 0),
  codes,
  stderr,
  stdout: "",
  cancelled: false,
});
const ODD_DS = "backup/a b:c.d-e";

/** stand-ins for zfs: the send writes a known stream, the receive stores it and names its argv */
function zfsStandIns(bytes: number, receiveFails = false) {
  const send = [
    "sh",
    "-c",
    'head -c "$1" /dev/zero | tr "\\0" z; echo "sending $2" >&2',
    "send",
    String(bytes),
    ODD_DS,
  ];
  const receive = [
    "sh",
    "-c",
    receiveFails
      ? 'head -c 10 >/dev/null; echo "cannot receive new filesystem stream: out of space ($2)" >&2; exit 1'
      : 'cat >"$1"; echo "received into $2" >&2',
    "receive",
    join(dir, "received"),
    ODD_DS,
  ];
  return { send, receive };
}

describe("wirePipeline", () => {
  test("plain: exactly `send | receive`, each wrapped for its host", () => {
    const { send, receive } = zfsStandIns(1);
    const source = remote("source");
    const target = remote("target");
    const p = wirePipeline(send, receive, source, target, PLAIN_WIRE);
    expect(p.stages).toEqual([source.wrap(send), target.wrap(receive)]);
    expect(p.commands).toEqual([send, receive]);
    expect(p.holdStdin).toBe(false);
  });

  test("local to local: each tool its own stage, no wrapping", () => {
    const here = new LocalHost("source");
    const p = wirePipeline(
      ["zfs", "send", "a"],
      ["zfs", "receive", "b"],
      here,
      new LocalHost("target"),
      wireOf({ buffer: 8 * MiB, bwlimit: 1000, limiter: "pv" }),
    );
    expect(p.stages).toEqual([
      ["zfs", "send", "a"],
      ["pv", "-q", "-L", "1000"],
      ["mbuffer", "-q", "-m", String(8 * MiB)],
      ["zfs", "receive", "b"],
    ]);
    expect(p.carriers).toEqual([false, true, true, false]);
    expect(p.sides).toEqual(["source", "source", "target", "target"]);
  });

  test("`buffer: auto` leaves the buffer out for a stream expected small, never a set one", () => {
    const mbuffers = (wire: Wire, expectedBytes: number | null) =>
      wirePipeline(
        ["zfs", "send", "a"],
        ["zfs", "receive", "b"],
        remote("source"),
        remote("target"),
        wire,
        {
          expectedBytes,
        },
      ).commands.filter((argv) => argv[0] === "mbuffer").length;
    const auto = wireOf({ buffer: 64 * MiB, bufferFrom: 8 * MiB });
    expect(mbuffers(auto, 300 * 1024)).toBe(0);
    expect(mbuffers(auto, 8 * MiB)).toBe(1);
    // a resumed stream's size is not known: buffered
    expect(mbuffers(auto, null)).toBe(1);
    expect(mbuffers(wireOf({ buffer: 64 * MiB }), 300 * 1024)).toBe(1);
    expect(chosen(transfer({ buffer: 64 * MiB }), end("source"), end("target")).bufferFrom).toBe(0);
    expect(chosen(transfer({}), end("source"), end("target")).bufferFrom).toBe(8 * MiB);
  });

  test("relayed: one ssh per host, ssh carries the compressed stream, the bytes arrive intact", async () => {
    const stream = "z".repeat(200_000);
    const { send, receive } = zfsStandIns(stream.length);
    const p = wirePipeline(
      send,
      receive,
      remote("source"),
      remote("target"),
      wireOf({ compression: "zstd" }),
    );
    expect(p.stages).toHaveLength(2);
    expect(p.stages.every((stage) => stage[0] === "ssh")).toBe(true);
    expect(p.commands).toEqual([send, ["zstd", "-c", "-3"], ["zstd", "-dc"], receive]);
    const lines: string[] = [];
    const raw = await runPipeline(p.stages, { onProgressLine: (line) => lines.push(line) });
    const result = p.expand(raw);
    expect(result.ok).toBe(true);
    expect(result.codes).toEqual([0, 0, 0, 0]);
    expect(await Bun.file(join(dir, "received")).text()).toBe(stream);
    // the send's stderr is read live, first; the receive's arrives as its own
    expect(lines[0]).toBe(`sending ${ODD_DS}`);
    expect(result.stderr[0]).toBe(`sending ${ODD_DS}\n`);
    expect(result.stderr[3]).toBe(`received into ${ODD_DS}\n`);
  });

  test("one host: one ssh command holds send and receive, watched; the bytes arrive intact", async () => {
    const stream = "z".repeat(150_000);
    const { send, receive } = zfsStandIns(stream.length);
    const source = remote("source");
    const p = wirePipeline(send, receive, source, remote("target"), wireOf({ oneHost: true }));
    expect(p.stages).toHaveLength(1);
    expect(p.stages[0]?.slice(0, 4)).toEqual(["ssh", "-o", "BatchMode=yes", "source-host"]);
    expect(p.commands).toEqual([send, receive]);
    expect(p.sides).toEqual(["source", "target"]);
    expect(p.holdStdin).toBe(true);
    const result = p.expand(await runPipeline(p.stages, { holdStdin: true }));
    expect(result.codes).toEqual([0, 0]);
    expect(await Bun.file(join(dir, "received")).text()).toBe(stream);
    expect(result.stderr[1]).toBe(`received into ${ODD_DS}\n`);
    // a batch goes one transfer per command on one host, as direct does
    expect(() =>
      wireBatch(
        [send, send],
        [receive, receive],
        source,
        remote("target"),
        wireOf({ oneHost: true }),
      ),
    ).toThrow("one transfer at a time");
  });

  test("a receive failing behind zstd -d is the receive's failure, with its stderr", async () => {
    const { send, receive } = zfsStandIns(3_000_000, true);
    const p = wirePipeline(
      send,
      receive,
      remote("source"),
      remote("target"),
      wireOf({ compression: "zstd", buffer: 0 }),
    );
    const result = p.expand(await runPipeline(p.stages));
    expect(result.ok).toBe(false);
    const blamed = failedStage(result, p.carriers);
    expect(blamed).toBe(3);
    const message = formatPipelineFailure(result, p.commands, p.carriers);
    expect(message).toContain("command failed (stage 4 of 4): sh -c");
    expect(message).toContain("exit code: 1");
    expect(message).toContain(`out of space (${ODD_DS})`);
  });

  // A batch's receives can only start as its sends go if the compressor writes while its input
  // is still open: with their defaults zstd 1.5 (jobs of MiBs) and lz4 (4 MiB blocks) do not.
  for (const [compression, tool] of [
    ["zstd", "zstd"],
    ["lz4", "lz4"],
  ] as const) {
    test.skipIf(Bun.which(tool) === null)(
      `${compression}: what the compressor has read comes out the far side before its input ends`,
      async () => {
        const p = wirePipeline(
          ["zfs", "send", "a@s"],
          ["zfs", "receive", "b"],
          remote("source"),
          remote("target"),
          wireOf({ compression, zstdSingleThread: compression === "zstd" }),
        );
        const [compress, decompress] = [p.commands[1], p.commands[2]] as [string[], string[]];
        const child = Bun.spawn(["sh", "-c", `${shellJoin(compress)} | ${shellJoin(decompress)}`], {
          stdin: "pipe",
          stdout: "pipe",
          stderr: "pipe",
        });
        // 1 MB of incompressible bytes in, the input left open
        child.stdin.write(new Uint8Array(randomBytes(1_000_000)));
        await child.stdin.flush();
        const reader = child.stdout.getReader();
        let out = 0;
        const enough = (async () => {
          while (out < 600_000) {
            const { value, done } = await reader.read();
            if (done) return false;
            out += value.length;
          }
          return true;
        })();
        const waited = await Promise.race([enough, Bun.sleep(4000).then(() => false)]);
        // our end of stdout closed, then the input: every process of the pipe ends
        await reader.cancel();
        await child.stdin.end();
        await child.exited;
        // nothing said on stderr either (lz4 names its block size unless quiet)
        const said = await new Response(child.stderr).text();
        expect({ compress: compress.join(" "), out: waited ? ">= 600000" : out, said }).toEqual({
          compress: compress.join(" "),
          out: ">= 600000",
          said: "",
        });
      },
    );
  }

  test("no report from a group (ssh could not connect): the zfs command carries the code", () => {
    const { send, receive } = zfsStandIns(1);
    const p = wirePipeline(
      send,
      receive,
      remote("source"),
      remote("target"),
      wireOf({ compression: "lz4" }),
    );
    // the source's ssh lost its reader (SIGPIPE) before its group reported anything
    const result = p.expand(
      ended([141, 255], ["", "ssh: connect to host target-host port 22: Connection refused\n"]),
    );
    expect(result.codes).toEqual([141, 0, 0, 255]);
    expect(failedStage(result, p.carriers)).toBe(3);
    expect(result.stderr[3]).toContain("Connection refused");
    // a group that exited 0 without a word did not run as written: unknown, not a success
    const silent = p.expand(ended([0, 0], ["", ""]));
    expect(silent.codes).toEqual([-1, -1, -1, -1]);
    expect(silent.ok).toBe(false);
  });

  test("a group cut before its main command ended: the connection's code is that command's", () => {
    const tags = ["tag-s", "tag-t"];
    const [source, target] = [remote("source"), remote("target")];
    const zstd = wireOf({ compression: "zstd" });
    const p = wirePipeline(["zfs", "send", "a@s"], ["zfs", "receive", "b"], source, target, zstd, {
      nonce: () => tags.shift() ?? "tag-x",
    });
    // the decompressor ended and said so; the receive never did before the link went
    const stderr = [
      "\rtag-s 1 0\n\rtag-s 2 0\n",
      "\rtag-t 1 0\n\rtag-t 2|cannot receive: partial\nssh: connection reset\n",
    ];
    const result = p.expand(ended([0, 255], stderr));
    expect(result.codes).toEqual([0, 0, 0, 255]);
    expect(failedStage(result, p.carriers)).toBe(3);
    // its own lines, then what ssh said about the connection
    expect(result.stderr[3]).toBe("cannot receive: partial\nssh: connection reset\n");
    // the same report from a group that ran to its end (exit 0): unknown, never a success
    const quiet = p.expand(ended([0, 0], stderr));
    expect(quiet.codes[3]).toBe(-1);
    expect(quiet.ok).toBe(false);
  });

  test("direct: one ssh to the source, which runs ssh to the target; odd names survive both", async () => {
    const stream = "z".repeat(100_000);
    const { send, receive } = zfsStandIns(stream.length);
    const p = wirePipeline(
      send,
      receive,
      remote("source"),
      remote("target"),
      wireOf({ compression: "zstd", direct: true }),
      {
        direct: {
          sideConfig: { host: "nas.example", user: "backup", port: 2222 },
          ssh: { compression: false, cipher: "" },
        },
      },
    );
    expect(p.stages).toHaveLength(1);
    expect(p.holdStdin).toBe(true);
    const outer = p.stages[0]?.join(" ") ?? "";
    expect(outer).toContain("-p 2222 -l backup nas.example --");
    const lines: string[] = [];
    const result = p.expand(
      await runPipeline(p.stages, { holdStdin: true, onProgressLine: (l) => lines.push(l) }),
    );
    expect(result.codes).toEqual([0, 0, 0, 0]);
    expect(result.ok).toBe(true);
    expect(await Bun.file(join(dir, "received")).text()).toBe(stream);
    expect(lines[0]).toBe(`sending ${ODD_DS}`);
    expect(result.stderr[3]).toBe(`received into ${ODD_DS}\n`);
  });

  test("direct: a failing receive on the far side is still the receive's", async () => {
    const { send, receive } = zfsStandIns(2_000_000, true);
    const p = wirePipeline(
      send,
      receive,
      remote("source"),
      remote("target"),
      wireOf({ compression: "zstd", direct: true, buffer: 0 }),
      {
        direct: {
          sideConfig: { host: "nas", user: "", port: null },
          ssh: { compression: false, cipher: "" },
        },
      },
    );
    const result = p.expand(await runPipeline(p.stages, { holdStdin: true }));
    expect(failedStage(result, p.carriers)).toBe(3);
    expect(result.stderr[3]).toContain(`out of space (${ODD_DS})`);
  });

  test("direct: a cancel ends the held stdin, and the far side stops the send", async () => {
    // a send that never ends by itself: only the watcher's SIGTERM stops it
    const marker = join(dir, "send-ended");
    const send = [
      "sh",
      "-c",
      "trap 'echo term >\"$1\"; exit 143' TERM; while :; do printf x; sleep 0.01; done",
      "send",
      marker,
    ];
    const receive = ["sh", "-c", "cat >/dev/null"];
    const p = wirePipeline(
      send,
      receive,
      remote("source"),
      remote("target"),
      wireOf({ direct: true }),
      {
        direct: {
          sideConfig: { host: "nas", user: "", port: null },
          ssh: { compression: false, cipher: "" },
        },
      },
    );
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 500);
    const result = await runPipeline(p.stages, {
      holdStdin: true,
      signal: controller.signal,
      drainGraceMs: 2000,
    });
    expect(result.cancelled).toBe(true);
    for (let i = 0; i < 50 && !(await Bun.file(marker).exists()); i++) await Bun.sleep(100);
    expect(await Bun.file(marker).text()).toBe("term\n");
  });
});

describe("direct ssh", () => {
  test("the target as the config names it, its own keys, never a prompt", () => {
    const target = {
      sideConfig: { host: "nas.example", user: "backup", port: 2222 },
      ssh: { compression: false, cipher: "aes128-gcm@openssh.com" },
    };
    expect(directSshArgv(target)).toEqual([
      "ssh",
      "-o",
      "BatchMode=yes",
      "-o",
      "ConnectTimeout=20",
      "-o",
      "ServerAliveInterval=15",
      "-o",
      "ServerAliveCountMax=4",
      "-o",
      "Compression=no",
      "-c",
      "aes128-gcm@openssh.com",
      "-p",
      "2222",
      "-l",
      "backup",
      "nas.example",
    ]);
    const probe = directProbeArgv(target);
    expect(probe).toContain("ConnectTimeout=10");
    expect(probe.slice(-2)).toEqual(["--", "true"]);
    expect(() =>
      directSshArgv({ ...target, sideConfig: { host: "-oProxyCommand=x", user: "", port: null } }),
    ).toThrow("not an ssh destination");
  });
});

describe("wireBatch: several transfers through one session per host", () => {
  /** send `i` writes `bytes` of letter i; receive `i` reads exactly that much into out-i */
  const standIns = (count: number, bytes: number, refuse: number | null) => {
    const sends = Array.from({ length: count }, (_, i) => [
      "sh",
      "-c",
      'head -c "$1" /dev/zero | tr "\\0" "$2"; echo "sending $2" >&2',
      "send",
      String(bytes),
      String.fromCharCode(97 + i),
    ]);
    const receives = Array.from({ length: count }, (_, i) => [
      "sh",
      "-c",
      i === refuse
        ? 'echo "cannot receive new filesystem stream: refused ($2)" >&2; exit 1'
        : 'dd bs="$3" count=1 iflag=fullblock status=none >"$1"; echo "received $2" >&2',
      "receive",
      join(dir, `out-${i}`),
      `${ODD_DS}/${i}`,
      String(bytes),
    ]);
    return { sends, receives };
  };

  test("one group per host; each receive reads exactly its own stream; the report per transfer", async () => {
    const { sends, receives } = standIns(3, 70_000, null);
    const source = remote("source");
    const target = remote("target");
    const p = wireBatch(sends, receives, source, target, wireOf({ compression: "zstd" }));
    expect(p.stages).toHaveLength(2);
    expect(p.sends).toEqual([0, 1, 2]);
    expect(p.receives).toEqual([5, 6, 7]);
    expect(p.carriers).toEqual([false, false, false, true, true, false, false, false]);
    const lines: string[] = [];
    const result = await runPipeline(p.stages, { onProgressLine: (line) => lines.push(line) });
    expect(result.ok).toBe(true);
    const report = p.report(result);
    expect(report.codes).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(report.stderr.slice(0, 3)).toEqual(["sending a\n", "sending b\n", "sending c\n"]);
    expect(report.stderr.slice(5)).toEqual([
      `received ${ODD_DS}/0\n`,
      `received ${ODD_DS}/1\n`,
      `received ${ODD_DS}/2\n`,
    ]);
    for (const [i, letter] of ["a", "b", "c"].entries())
      expect(await Bun.file(join(dir, `out-${i}`)).text()).toBe(letter.repeat(70_000));
    // each send's end is reported live, tagged, for the next one's progress
    expect(lines.filter((line) => line.includes(`${p.stepTag} 1.`))).toHaveLength(3);
  });

  test("a refused receive stops its side: the ones before it arrived, the ones after never ran", async () => {
    for (const i of [0, 1, 2, 3]) rmSync(join(dir, `out-${i}`), { force: true });
    const { sends, receives } = standIns(4, 1000, 1);
    const p = wireBatch(sends, receives, remote("source"), remote("target"), PLAIN_WIRE);
    const report = p.report(await runPipeline(p.stages));
    const receiveCodes = p.receives.map((i) => report.codes[i]);
    expect(receiveCodes).toEqual([0, 1, -1, -1]);
    expect(report.stderr[p.receives[1] as number]).toBe(
      `cannot receive new filesystem stream: refused (${ODD_DS}/1)\n`,
    );
    expect(await Bun.file(join(dir, "out-0")).text()).toBe("a".repeat(1000));
    expect(await Bun.file(join(dir, "out-2")).exists()).toBe(false);
    expect(await Bun.file(join(dir, "out-3")).exists()).toBe(false);
  });

  test("a batch between local pools is still one group per side; one transfer stays as it was", () => {
    const { sends, receives } = standIns(2, 10, null);
    const here = new LocalHost("source");
    const p = wireBatch(sends, receives, here, new LocalHost("target"), PLAIN_WIRE);
    expect(p.stages.map((stage) => stage.slice(0, 2))).toEqual([
      ["sh", "-c"],
      ["sh", "-c"],
    ]);
    const single = wireBatch(sends.slice(0, 1), receives.slice(0, 1), here, here, PLAIN_WIRE);
    expect(single.stages).toEqual([sends[0] as string[], receives[0] as string[]]);
    expect(single.stepTag).toBeNull();
    expect(() =>
      wireBatch(sends, receives, remote("source"), remote("target"), wireOf({ direct: true })),
    ).toThrow(/one transfer at a time/);
  });

  test("sequenceReport: each step's code and lines; a step cut before its report is unknown", () => {
    const text = "one\nT 2.1 0\ntwo\nT 2.2 0\nthree, cut";
    expect(sequenceReport(text, "T", 2, 4)).toEqual({
      codes: [0, 0, -1, -1],
      stderr: ["one\n", "two\n", "three, cut", ""],
    });
    // another part's reports, or reports out of order, are not this sequence's
    expect(sequenceReport("T 3.1 0\nT 2.2 0\n", "T", 2, 2).codes).toEqual([-1, -1]);
  });
});
