import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  failedStage,
  formatPipelineFailure,
  type PipelineResult,
  pipelineScript,
  runPipeline,
  UNKNOWN_CODE,
} from "../../lib/run/pipeline.ts";
import { pidFrom } from "../helpers/pid-file.ts";

const scratch = mkdtempSync(join(tmpdir(), "abg-pipetest-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const MiB = 1024 * 1024;

/** peak resident memory of this process so far, in bytes (Linux VmHWM) */
function peakRss(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return Number(match?.[1] ?? 0) * 1024;
}

/** a process is gone when /proc has no entry for it or only its zombie */
function isGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

/** a stage that records its pid in `file` and then becomes `argv` */
function recordingPid(file: string, argv: string[]): string[] {
  return ["sh", "-c", 'echo $$ >"$1"; shift; exec "$@"', "sh", file, ...argv];
}

describe("pipelineScript", () => {
  test("holds only generated numbers: argvs are positional parameters", () => {
    expect(pipelineScript([3, 1, 2])).toBe(
      [
        "set -o pipefail",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
        '( echo "$BASHPID" >"${10}"; exec "${@:1:3}" ) | "${@:4:1}" 2>"${7}" | "${@:5:2}" 2>"${8}"',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
        'echo "${PIPESTATUS[*]}" >"${9}"',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
        'if ! kill -0 "$PPID" 2>/dev/null; then rm -rf -- "${9%/*}"; fi',
      ].join("\n"),
    );
  });

  test("with a lifeline: a watcher on stdin, the stages on /dev/null, the watcher stopped at the end", () => {
    const lines = pipelineScript([1, 1], false, true).split("\n");
    expect(lines[0]).toBe("exec 9<&0 </dev/null");
    expect(lines[3]).toBe(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
      '{ while read -r _ <&9; do :; done; p=$(cat "${5}" 2>/dev/null); [ -n "$p" ] && stop_tree "$p"; while kill -0 $$ 2>/dev/null; do sleep 0.1; done; rm -rf -- "${4%/*}"; } &',
    );
    expect(lines.slice(4, 6)).toEqual(["w=$!", "exec 9<&-"]);
    expect(lines.slice(-2)).toEqual([
      'kill "$w" 2>/dev/null; wait "$w" 2>/dev/null',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
      'if ! kill -0 "$PPID" 2>/dev/null; then rm -rf -- "${4%/*}"; fi',
    ]);
    // nothing but fixed text and numbers
    expect(lines.join("\n")).not.toMatch(/[a-z]+\.ts|\/tmp/);
  });

  test("an empty stage is refused with a message naming it", () => {
    expect(() => pipelineScript([1, 0])).toThrow("pipeline stage 2 is empty");
  });
});

describe("runPipeline", () => {
  /**
   * runPipeline(stages) in a runner process, killed outright (as kill -9 or the OOM killer
   * would) once the process whose pid `pidFile` names is running; whether that process then
   * ended by itself within 3 s
   */
  async function killRunnerOf(
    stages: string[][],
    pidFile: string,
    options: { holdStdin?: boolean } = {},
  ): Promise<boolean> {
    const runner = Bun.spawn(
      [
        process.execPath,
        "-e",
        `const { runPipeline } = await import(${JSON.stringify(join(import.meta.dir, "../../lib/run/pipeline.ts"))}); await runPipeline(${JSON.stringify(stages)}, ${JSON.stringify(options)});`,
      ],
      // a runner killed outright cannot remove its temporary folder: keep it in ours
      { stdout: "ignore", stderr: "ignore", env: { ...process.env, TMPDIR: scratch } },
    );
    const pid = await pidFrom(pidFile);
    expect(isGone(pid)).toBe(false);
    runner.kill("SIGKILL");
    await runner.exited;
    for (let i = 0; i < 200; i++) {
      if (isGone(pid)) return true;
      await Bun.sleep(50);
    }
    return false;
  }

  test("abgleich killed outright (kill -9): the pipeline does not run on without it, nor leaves its folder", async () => {
    const pidFile = join(scratch, "orphan-pid");
    const before = new Set(readdirSync(scratch));
    const folders = () =>
      readdirSync(scratch).filter((name) => name.startsWith("abg-pipe-") && !before.has(name));
    expect(await killRunnerOf([recordingPid(pidFile, ["sleep", "60"]), ["cat"]], pidFile)).toBe(
      true,
    );
    // the runner's temporary folder (status, stderr files) is removed by the script itself
    for (let i = 0; i < 200 && folders().length > 0; i++) await Bun.sleep(50);
    expect(folders()).toEqual([]);
  });

  test("abgleich killed outright while stage 1 reads its held stdin (a relayed send's ssh): it ends, and the folder goes", async () => {
    const pidFile = join(scratch, "held-pid");
    const before = new Set(readdirSync(scratch));
    const folders = () =>
      readdirSync(scratch).filter((name) => name.startsWith("abg-pipe-") && !before.has(name));
    // as ssh with its stdin held: the command ends when that stdin does
    const stage1 = recordingPid(pidFile, ["sh", "-c", "cat >/dev/null"]);
    expect(await killRunnerOf([stage1, ["cat"]], pidFile, { holdStdin: true })).toBe(true);
    for (let i = 0; i < 200 && folders().length > 0; i++) await Bun.sleep(50);
    expect(folders()).toEqual([]);
  });

  test("abgleich killed outright while stage 1 is a shell waiting for its send (a batch): both stop, nothing after starts", async () => {
    const childPid = join(scratch, "batch-child-pid");
    const after = join(scratch, "batch-after");
    // as a batch's group script: a shell that traps TERM, running its sends in the foreground
    const stage1 = [
      "sh",
      "-c",
      'trap "exit 143" TERM; m=$1; shift; "$@"; touch "$m"',
      "sh",
      after,
      ...recordingPid(childPid, ["sleep", "1000"]),
    ];
    expect(await killRunnerOf([stage1, ["cat"]], childPid)).toBe(true);
    await Bun.sleep(300);
    expect(existsSync(after)).toBe(false);
  });

  test("the last stage's stderr read live, line by line, while the pipeline still runs", async () => {
    const seen: { line: string; at: number }[] = [];
    const started = performance.now();
    const result = await runPipeline(
      [
        ["sh", "-c", "echo first >&2; printf data"],
        ["sh", "-c", "cat >/dev/null; echo middle >&2"],
        ["sh", "-c", 'echo "one $1" >&2; sleep 0.5; echo two >&2; exit 3', "sh", "a b"],
      ],
      { onLastStageLine: (line) => seen.push({ line, at: performance.now() - started }) },
    );
    expect(result.codes).toEqual([0, 0, 3]);
    expect(result.stderr).toEqual(["first\n", "middle\n", "one a b\ntwo\n"]);
    expect(seen.map((s) => s.line)).toEqual(["one a b", "two"]);
    // the first line came before the stage ended, not with the rest at the end
    expect((seen[1]?.at ?? 0) - (seen[0]?.at ?? 0)).toBeGreaterThan(300);
  });

  test("a process the last stage left behind holding its stderr does not hold up the end", async () => {
    const started = performance.now();
    const result = await runPipeline(
      [["true"], ["sh", "-c", "cat >/dev/null; (sleep 30 >/dev/null &) ; echo done >&2"]],
      { onLastStageLine: () => {} },
    );
    expect(result.stderr[1]).toBe("done\n");
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  test("a cancel stops a shell's stream at its source: the command the shell waits for ends too", async () => {
    // as a batch's sends on this machine: a shell whose TERM trap waits for its command
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = performance.now();
    const result = await runPipeline(
      [
        ["sh", "-c", "trap 'exit 143' TERM; yes"],
        ["sh", "-c", "cat >/dev/null; echo reader saw the end >&2"],
      ],
      { signal: controller.signal },
    );
    expect(result.cancelled).toBe(true);
    // the reader ended by itself on the cut stream, long before the 15 s drain grace
    expect(result.stderr[1]).toBe("reader saw the end\n");
    expect(performance.now() - started).toBeLessThan(5000);
  });

  test("256 MiB flow through three stages and arrive complete", async () => {
    const result = await runPipeline([
      ["head", "-c", String(256 * MiB), "/dev/zero"],
      ["cat"],
      ["wc", "-c"],
    ]);
    expect(result).toEqual({
      ok: true,
      codes: [0, 0, 0],
      stderr: ["", "", ""],
      stdout: `${256 * MiB}\n`,
      cancelled: false,
    });
  });

  test("hostile strings are data in every stage, never shell syntax", async () => {
    const marker = join(scratch, "pwned");
    const hostile = [
      `x;touch ${marker}`,
      `$(touch ${marker})`,
      `\`touch ${marker}\``,
      `'; touch ${marker}; '`,
      `" && touch ${marker} #`,
      "a\nb",
      "*",
    ];
    for (const text of hostile) {
      const result = await runPipeline([["printf", "%s", text], ["cat"], ["cat"]]);
      expect(result.stdout).toBe(text);
      expect(result.codes).toEqual([0, 0, 0]);
    }
    expect(existsSync(marker)).toBe(false);
  });

  test("PIPESTATUS gives each stage's code and the failing middle stage is blamed", async () => {
    const stages = [
      ["printf", "data"],
      ["sh", "-c", "cat >/dev/null; echo 'cannot receive: out of space' >&2; exit 3"],
      ["wc", "-c"],
    ];
    const result = await runPipeline(stages);
    expect(result.ok).toBe(false);
    expect(result.codes).toEqual([0, 3, 0]);
    expect(failedStage(result)).toBe(1);
    expect(formatPipelineFailure(result, stages)).toBe(
      [
        "command failed (stage 2 of 3): sh -c 'cat >/dev/null; echo '\\''cannot receive: out of space'\\'' >&2; exit 3'",
        "exit code: 3",
        "stderr:",
        "cannot receive: out of space",
      ].join("\n"),
    );
  });

  test("a stage that died of SIGPIPE (141) is not blamed for the reader's failure", async () => {
    const result = await runPipeline([
      ["yes"],
      ["sh", "-c", "head -c 10 >/dev/null; echo 'receive failed' >&2; exit 1"],
    ]);
    expect(result.codes).toEqual([141, 1]);
    expect(failedStage(result)).toBe(1);
  });

  test("ssh's 255 after a send that only reported progress is not blamed for the receive", () => {
    // real OpenZFS behind ssh, target pool full: the receive fails, the send loses its reader
    const result: PipelineResult = {
      ok: false,
      codes: [255, 1],
      stderr: [
        "full\tsrc/data@s1\t40180832\nsize\t40180832\n06:52:58\t922560\tsrc/data@s1\n",
        "cannot receive new filesystem stream: out of space\n",
      ],
      stdout: "",
      cancelled: false,
    };
    expect(failedStage(result)).toBe(1);
    // a send that says more than progress failed for a reason of its own
    const own = { ...result, stderr: ["ssh: connect to host x port 22: Connection refused", ""] };
    expect(failedStage(own)).toBe(0);
  });

  test("each stage's stderr is kept separately, and a missing command reads 127", async () => {
    const result = await runPipeline([
      ["sh", "-c", "echo first >&2; echo data"],
      ["sh", "-c", "cat; echo second >&2"],
      ["sh", "-c", "cat >/dev/null; echo third >&2"],
      ["abgleich-no-such-command"],
    ]);
    expect(result.codes).toEqual([0, 0, 0, 127]);
    expect(result.stderr.slice(0, 3)).toEqual(["first\n", "second\n", "third\n"]);
    expect(result.stderr[3]).toContain("abgleich-no-such-command: command not found");
  });

  test("any number of stages: one stage alone, or with an optional middle stage", async () => {
    const one = await runPipeline([["printf", "solo"]]);
    expect(one).toMatchObject({ ok: true, codes: [0], stdout: "solo" });
    const five = await runPipeline([["printf", "abc"], ["cat"], ["cat"], ["cat"], ["cat"]]);
    expect(five).toMatchObject({ ok: true, codes: [0, 0, 0, 0, 0], stdout: "abc" });
  });

  test("a stage alone that fails is a failure with its code (a direct transfer is one stage)", async () => {
    const alone = await runPipeline([["sh", "-c", "echo refused >&2; exit 255"]]);
    expect(alone).toMatchObject({ ok: false, codes: [255] });
    expect(alone.stderr[0]).toBe("refused\n");
  });

  test("progress lines of the first stage arrive while the pipeline still runs", async () => {
    const seen: { line: string; at: number }[] = [];
    const script = [
      "printf 'full\\ttank/a@s1\\t1000\\nsize\\t1000\\n' >&2",
      "for i in 1 2 3; do printf '00:00:0%s\\t%s00\\ttank/a@s1\\n' $i $i >&2; sleep 0.25; done",
      "printf data",
    ].join("; ");
    const result = await runPipeline(
      [
        ["sh", "-c", script],
        ["wc", "-c"],
      ],
      {
        onProgressLine: (line) => seen.push({ line, at: Date.now() }),
      },
    );
    const end = Date.now();
    expect(result.stdout.trim()).toBe("4");
    expect(seen.map((entry) => entry.line)).toEqual([
      "full\ttank/a@s1\t1000",
      "size\t1000",
      "00:00:01\t100\ttank/a@s1",
      "00:00:02\t200\ttank/a@s1",
      "00:00:03\t300\ttank/a@s1",
    ]);
    // The first lines came at least ~0.5 s before the end: live, not collected afterwards.
    expect(end - (seen[0]?.at ?? end)).toBeGreaterThan(400);
    // The lines are also kept for an error report.
    expect(result.stderr[0]).toContain("00:00:03\t300\ttank/a@s1");
  });

  test("aborting mid-stream kills every process and reports cancelled", async () => {
    const pidFiles = [1, 2, 3].map((n) => join(scratch, `pid-${n}`));
    const controller = new AbortController();
    const running = runPipeline(
      [
        recordingPid(pidFiles[0] as string, ["head", "-c", String(100 * 1024 * MiB), "/dev/zero"]),
        recordingPid(pidFiles[1] as string, ["cat"]),
        recordingPid(pidFiles[2] as string, ["wc", "-c"]),
      ],
      { signal: controller.signal },
    );
    while (
      !pidFiles.every((file) => existsSync(file) && readFileSync(file, "utf8").endsWith("\n"))
    ) {
      await Bun.sleep(10);
    }
    const pids = pidFiles.map((file) => Number(readFileSync(file, "utf8")));
    expect(pids.every((pid) => !isGone(pid))).toBe(true);
    const started = Date.now();
    controller.abort();
    const result: PipelineResult = await running;
    expect(Date.now() - started).toBeLessThan(1500);
    expect(result.cancelled).toBe(true);
    expect(result.ok).toBe(false);
    expect(result.codes).toEqual([UNKNOWN_CODE, UNKNOWN_CODE, UNKNOWN_CODE]);
    await Bun.sleep(50);
    expect(pids.filter((pid) => !isGone(pid))).toEqual([]);
    expect(formatPipelineFailure(result, [["send"], ["cat"], ["receive"]])).toBe(
      "cancelled: send | cat | receive",
    );
  });

  test("a cancel cuts the first stage; the rest end on their own, as after a lost connection", async () => {
    const controller = new AbortController();
    const running = runPipeline(
      [
        ["head", "-c", String(100 * 1024 * MiB), "/dev/zero"],
        ["sh", "-c", "wc -c; echo tail-ran >&2"],
      ],
      { signal: controller.signal, drainGraceMs: 5000 },
    );
    await Bun.sleep(200);
    controller.abort();
    const result = await running;
    expect(result.cancelled).toBe(true);
    // the reader saw end of input and finished its work (a receive saves its partial state)
    expect(result.stderr[1]).toContain("tail-ran");
  });

  test("a stage that never ends after the cut is terminated after the grace time", async () => {
    const controller = new AbortController();
    const running = runPipeline(
      [
        ["head", "-c", String(100 * 1024 * MiB), "/dev/zero"],
        ["sh", "-c", "cat >/dev/null; sleep 30"],
      ],
      {
        signal: controller.signal,
        drainGraceMs: 300,
      },
    );
    await Bun.sleep(200);
    const started = Date.now();
    controller.abort();
    const result = await running;
    expect(result.cancelled).toBe(true);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  test("an already aborted signal starts nothing", async () => {
    const marker = join(scratch, "started");
    const result = await runPipeline([["touch", marker]], { signal: AbortSignal.abort() });
    expect(result.cancelled).toBe(true);
    expect(existsSync(marker)).toBe(false);
  });

  test("1 GiB passes without the bytes entering this process (peak RSS stays small)", async () => {
    const before = peakRss();
    const result = await runPipeline([
      ["head", "-c", String(1024 * MiB), "/dev/zero"],
      ["cat"],
      ["wc", "-c"],
    ]);
    const growth = peakRss() - before;
    expect(result.stdout.trim()).toBe(String(1024 * MiB));
    console.log(
      `1 GiB pipeline: peak RSS ${(peakRss() / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB`,
    );
    expect(growth).toBeLessThan(32 * MiB);
  });
});
