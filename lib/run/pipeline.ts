// One transfer as ONE OS pipeline (`send | [pv |] receive`, each stage maybe behind ssh):
// the bytes flow kernel to kernel and never through JavaScript. bash runs the pipeline;
// every argv reaches it only as positional parameters, so the script text holds nothing
// but numbers generated here and no data can be read as shell syntax.

import { closeSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { shellJoin } from "../hosts/quote.ts";

/** exit code of a stage killed by SIGPIPE: its reader went away first, not its own fault */
export const SIGPIPE_CODE = 141;

/** a stage whose exit code bash never reported (the pipeline was killed) */
export const UNKNOWN_CODE = -1;

/** how much stderr is kept per stage: the tail, which holds the error */
const MAX_STDERR_CHARS = 256 * 1024;

/** after the source stage is cut, how long the rest may take to finish (save partial state) */
const DRAIN_GRACE_MS = 15_000;

/** after SIGTERM, how long a cancelled pipeline may take before SIGKILL */
const KILL_GRACE_MS = 2000;

export interface PipelineOptions {
  /** aborting stops every process of the pipeline */
  signal?: AbortSignal;
  /** after a cancel cut the first stage, how long the others may take to end by themselves */
  drainGraceMs?: number;
  /** called with each line of the FIRST stage's stderr as it arrives (`zfs send -v -P` progress) */
  onProgressLine?: (line: string) => void;
  /**
   * stage 1 reads a stdin held open until the pipeline ends or is cancelled; a cancel ends it
   * before cutting stage 1, so a remote watcher of that stdin (a direct transfer's) stops the
   * send on the far host, where killing the local ssh alone would not reach it
   */
  holdStdin?: boolean;
  /**
   * called with each line of the LAST stage's stderr as it arrives (a batch's receives report
   * each end there); without it that stderr is read when the pipeline has ended
   */
  onLastStageLine?: (line: string) => void;
}

/** after a held stdin ended on cancel, how long before stage 1 is cut as well */
const STDIN_END_GRACE_MS = 250;

export interface PipelineResult {
  /** every stage exited 0 and nothing was cancelled */
  ok: boolean;
  /** exit code per stage (PIPESTATUS); UNKNOWN_CODE for all when the pipeline was killed */
  codes: number[];
  /** stderr per stage (the tail when very long) */
  stderr: string[];
  /** stdout of the last stage (keep it small: `zfs receive` says little) */
  stdout: string;
  /** the signal aborted the pipeline */
  cancelled: boolean;
}

/**
 * The bash script for `stages` whose argvs are the positional parameters, flattened in order,
 * followed by one stderr file per stage after the first, the status file, then the file that
 * receives stage 1's pid. Exported for tests; it only ever contains numbers.
 *
 * With `lifeline`, bash's stdin is a pipe abgleich holds and never writes: it ends when abgleich
 * ends, however it ends (kill -9, the OOM killer). A watcher reading it then cuts stage 1 as a
 * cancel does, the processes it started first (a batch's shell waits for its send, and would
 * only act on a signal after it), so the receive saves what arrived and the pipeline does not
 * run on, unlocked, after its run. The stages read /dev/null; the watcher is stopped (and
 * reaped) once the pipeline ended. A pipeline that outlives abgleich removes its own temporary
 * folder (the status and stderr files), which abgleich no longer can.
 */
export function pipelineScript(
  stageLengths: readonly number[],
  liveLast = false,
  lifeline = false,
): string {
  const stages: string[] = [];
  let next = 1;
  let errorFile = stageLengths.reduce((sum, n) => sum + n, 0) + 1;
  stageLengths.forEach((length, index) => {
    if (length < 1) throw new Error(`pipeline stage ${index + 1} is empty`);
    const command = `"\${@:${next}:${length}}"`;
    next += length;
    // Stage 1 writes to bash's own stderr, read live, and records its pid (the subshell's,
    // which `exec` hands to the command) so a cancel can cut the stream at its source; the
    // other stages write stderr to their own files.
    const pidFile = stageLengths.reduce((sum, n) => sum + n, 0) + stageLengths.length + 1;
    // a subshell even when alone: `exec` must not replace bash itself, or the status of a
    // one-stage pipeline (a direct transfer) is never written
    // with liveLast, the last stage's stderr goes to fd 3, a pipe read as it comes
    const last = index === stageLengths.length - 1;
    // (only the last stage keeps fd 3, so its end is that pipe's end)
    const errors =
      liveLast && last ? "2>&3 3>&-" : `2>"\${${errorFile}}"${liveLast ? " 3>&-" : ""}`;
    if (index > 0) errorFile++;
    stages.push(
      index === 0
        ? `( echo "$BASHPID" >"\${${pidFile}}"; exec ${command}${liveLast ? " 3>&-" : ""} )`
        : `${command} ${errors}`,
    );
  });
  const statusFile = errorFile;
  const pidFile = statusFile + 1;
  const watch = lifeline
    ? [
        "exec 9<&0 </dev/null",
        // the children of a pid, from /proc (PPid of each process's status)
        // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
        'kids() { for s in /proc/[0-9]*/status; do while read -r k v; do if [ "$k" = PPid: ]; then [ "$v" = "$1" ] && echo "${s//[^0-9]/}"; break; fi; done <"$s"; done 2>/dev/null; }',
        // a process after everything below it, deepest first
        'stop_tree() { local c; for c in $(kids "$1"); do stop_tree "$c"; done; kill -TERM "$1" 2>/dev/null; }',
        // abgleich is gone: stop stage 1, then remove the pipeline's folder once bash is gone
        // (it dies of SIGPIPE when it reports the stopped stage on its stderr, abgleich's
        // closed pipe; if it lives on, its last line removes the folder)
        `{ while read -r _ <&9; do :; done; p=$(cat "\${${pidFile}}" 2>/dev/null); [ -n "$p" ] && stop_tree "$p"; while kill -0 $$ 2>/dev/null; do sleep 0.1; done; rm -rf -- "\${${statusFile}%/*}"; } &`,
        "w=$!",
        "exec 9<&-",
      ]
    : [];
  return [
    ...watch,
    "set -o pipefail",
    stages.join(" | "),
    `echo "\${PIPESTATUS[*]}" >"\${${statusFile}}"`,
    ...(lifeline ? ['kill "$w" 2>/dev/null; wait "$w" 2>/dev/null'] : []),
    // abgleich died meanwhile (kill -9): nobody reads the status, and its folder would stay
    `if ! kill -0 "$PPID" 2>/dev/null; then rm -rf -- "\${${statusFile}%/*}"; fi`,
  ].join("\n");
}

/** keep only the tail of an ever-growing text */
function tail(text: string): string {
  return text.length > MAX_STDERR_CHARS ? text.slice(-MAX_STDERR_CHARS) : text;
}

/** read a stream to its end, handing out whole lines as they arrive */
async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: ((line: string) => void) | undefined,
): Promise<string> {
  const decoder = new TextDecoder();
  let kept = "";
  let partial = "";
  for await (const chunk of stream) {
    const text = decoder.decode(chunk, { stream: true });
    kept = tail(kept + text);
    if (!onLine) continue;
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) onLine(line.replace(/\r$/, ""));
  }
  const rest = decoder.decode();
  kept = tail(kept + rest);
  partial += rest;
  if (onLine && partial !== "") onLine(partial);
  return kept;
}

function readIfPresent(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** the processes below `root` (Linux /proc), parents before their children */
export function descendantsOf(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readIfPresent(`/proc/${entry}/stat`);
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so read after the last `)`
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!Number.isInteger(ppid)) continue;
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const out: number[] = [];
  for (let queue = [root]; queue.length > 0; ) {
    const next: number[] = [];
    for (const pid of queue) next.push(...(children.get(pid) ?? []));
    out.push(...next);
    queue = next;
  }
  return out;
}

/** signal the whole process group (bash runs in its own, so all stages are in it) */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** run `stages` (local argvs, remote ones already wrapped by Host.wrap) as `s1 | s2 | …` */
export async function runPipeline(
  stages: readonly (readonly string[])[],
  options: PipelineOptions = {},
): Promise<PipelineResult> {
  if (stages.length === 0) throw new Error("a pipeline needs at least one stage");
  const liveLast = options.onLastStageLine !== undefined && stages.length > 1;
  // a held stdin is stage 1's own (its end stops a remote send); otherwise it is the lifeline
  const lifeline = options.holdStdin !== true;
  const script = pipelineScript(
    stages.map((stage) => stage.length),
    liveLast,
    lifeline,
  );
  const dir = mkdtempSync(join(tmpdir(), "abg-pipe-"));
  const errorFiles = stages.slice(1).map((_, index) => join(dir, `stderr-${index + 2}`));
  const statusFile = join(dir, "status");
  const pidFile = join(dir, "pid");
  const args = [...stages.flat(), ...errorFiles, statusFile, pidFile];

  const { signal } = options;
  try {
    if (signal?.aborted) return cancelledResult(stages.length, []);
    // detached: bash leads a new process group, so one kill reaches every stage.
    // stdin is a pipe either way: stage 1's held stdin, or the lifeline (never written)
    const child = Bun.spawn(["bash", "-c", script, "bash", ...args], {
      // fd 3 too with liveLast: the last stage's stderr, read as it comes
      stdio: liveLast ? ["pipe", "pipe", "pipe", "pipe"] : ["pipe", "pipe", "pipe"],
      detached: true,
      env: process.env,
    });
    const lastStderr = liveLast ? readLastStage(child, options.onLastStageLine) : null;
    let cancelled = false;
    let forceKill: ReturnType<typeof setTimeout> | undefined;
    let cut: ReturnType<typeof setTimeout> | undefined;
    const endStdin = () => {
      if (typeof child.stdin !== "object") return;
      try {
        child.stdin.end();
      } catch {
        // already closed
      }
    };
    const abort = () => {
      cancelled = true;
      // Cut the stream at its source, as a lost connection would: the receiving end sees an
      // incomplete stream and `zfs receive -s` saves resumable state. Only if the pipeline
      // does not end by itself are the other stages terminated, then killed.
      const cutFirst = () => {
        const first = Number(readIfPresent(pidFile).trim());
        if (!Number.isInteger(first) || first <= 1) return;
        // stage 1 may be a shell running the sends of a batch on this machine: the send it
        // waits for is what has to stop, so its processes go too, deepest first
        for (const pid of [...descendantsOf(first).reverse(), first]) {
          try {
            process.kill(pid, "SIGTERM");
          } catch {
            // already gone
          }
        }
      };
      if (options.holdStdin) {
        endStdin();
        cut = setTimeout(cutFirst, STDIN_END_GRACE_MS);
      } else cutFirst();
      forceKill = setTimeout(() => {
        killGroup(child.pid, "SIGTERM");
        forceKill = setTimeout(() => killGroup(child.pid, "SIGKILL"), KILL_GRACE_MS);
      }, options.drainGraceMs ?? DRAIN_GRACE_MS);
    };
    signal?.addEventListener("abort", abort, { once: true });
    try {
      const [stdout, firstStderr] = await Promise.all([
        new Response(child.stdout).text(),
        readLines(child.stderr, options.onProgressLine),
        child.exited,
      ]);
      const files = errorFiles.map((file) => tail(readIfPresent(file)));
      if (lastStderr !== null) files[files.length - 1] = await lastStderr;
      const stderr = [firstStderr, ...files];
      if (cancelled) return { ...cancelledResult(stages.length, stderr), stdout };
      const codes = parseStatus(readIfPresent(statusFile), stages.length);
      const ok = codes.every((code) => code === 0);
      return { ok, codes, stderr, stdout, cancelled: false };
    } finally {
      signal?.removeEventListener("abort", abort);
      clearTimeout(forceKill);
      clearTimeout(cut);
      endStdin();
      // Stray stages (e.g. a reader that never saw EOF) must not outlive the transfer.
      if (cancelled) killGroup(child.pid, "SIGKILL");
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** after the pipeline ended, how long its last stage's stderr pipe may stay open (a process
 * it left behind holding it, such as a new ssh connection master) before reading stops */
const LAST_STDERR_GRACE_MS = 1000;

/** the last stage's stderr (fd 3 of bash), line by line as it comes, then its tail */
async function readLastStage(
  child: { stdio: readonly (number | null)[]; exited: Promise<number> },
  onLine: ((line: string) => void) | undefined,
): Promise<string> {
  const fd = child.stdio[3];
  if (typeof fd !== "number") return "";
  const stream = Bun.file(fd).stream();
  const reader = stream.getReader();
  const chunks = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: () => reader.cancel(),
  });
  const reading = readLines(chunks, onLine);
  try {
    await child.exited;
    const ended = await Promise.race([
      reading.then(() => true),
      Bun.sleep(LAST_STDERR_GRACE_MS).then(() => false),
    ]);
    if (!ended) await reader.cancel().catch(() => {});
    return await reading.catch(() => "");
  } finally {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}

function cancelledResult(count: number, stderr: string[]): PipelineResult {
  return {
    ok: false,
    codes: Array.from({ length: count }, () => UNKNOWN_CODE),
    stderr: stderr.length === count ? stderr : Array.from({ length: count }, () => ""),
    stdout: "",
    cancelled: true,
  };
}

function parseStatus(text: string, count: number): number[] {
  const trimmed = text.trim();
  const codes = trimmed.split(/\s+/).map(Number);
  // no status at all (bash never got there) is unknown, not `Number("")`'s 0
  if (trimmed === "" || codes.length !== count || codes.some((code) => !Number.isInteger(code))) {
    return Array.from({ length: count }, () => UNKNOWN_CODE);
  }
  return codes;
}

/** ssh's exit code when the remote command was killed by a signal, or ssh itself failed */
const SSH_CODE = 255;

/**
 * `zfs send -v -P` (and `-t`) report on stderr while all goes well: the estimate, the token's
 * contents and one progress line per second. None of it is an error message.
 */
const SEND_REPORT_LINE =
  /^(full|incremental|size)\t|^\d\d:\d\d:\d\d\t|^resume token contents:$|^nvlist version: |^\s+\w+ = /;

/**
 * A failure that only follows from a later stage's: the stage lost its reader. Locally that
 * is SIGPIPE (141); behind ssh the remote command's death by signal shows as 255 with no
 * message (send's own progress report aside: real OpenZFS behind ssh, a full target pool).
 * A 255 WITH a message is real: ssh's connection error or `zfs send -t`'s own.
 */
function lostItsReader(result: PipelineResult, index: number, carrier: boolean): boolean {
  const code = result.codes[index];
  const stderr = result.stderr[index] ?? "";
  const silent = stderr
    .split("\n")
    .every((line) => line.trim() === "" || SEND_REPORT_LINE.test(line));
  const laterFailed = result.codes.slice(index + 1).some((later) => later !== 0);
  // a stage that only carries bytes (zstd, mbuffer, pv) says so in words when its reader died
  const brokenPipe = carrier && /broken pipe|EPIPE/i.test(stderr);
  return laterFailed && (code === SIGPIPE_CODE || (code === SSH_CODE && silent) || brokenPipe);
}

/**
 * the stage to blame: the first that failed for a reason of its own. `carriers` marks the
 * stages that only move bytes (compressor, buffer, limiter), whose broken pipe is a symptom.
 */
export function failedStage(
  result: PipelineResult,
  carriers: readonly boolean[] = [],
): number | null {
  const failed = result.codes.flatMap((code, index) => (code === 0 ? [] : [index]));
  return (
    failed.find((index) => !lostItsReader(result, index, carriers[index] === true)) ??
    failed[0] ??
    null
  );
}

/**
 * A failure as a user reads it: the failing stage's command, its exit code and its stderr.
 * `commands` may be the unwrapped argvs (`zfs receive …` rather than `ssh … -- …`).
 */
export function formatPipelineFailure(
  result: PipelineResult,
  commands: readonly (readonly string[])[],
  carriers: readonly boolean[] = [],
): string {
  const pipeline = commands.map((argv) => shellJoin(argv)).join(" | ");
  if (result.cancelled) return `cancelled: ${pipeline}`;
  const index = failedStage(result, carriers);
  if (index === null) return `succeeded: ${pipeline}`;
  const command = commands[index] ?? [];
  const code = result.codes[index];
  const stderr = (result.stderr[index] ?? "").trimEnd();
  const lines = [
    `command failed (stage ${index + 1} of ${commands.length}): ${shellJoin(command)}`,
    `exit code: ${code === UNKNOWN_CODE ? "unknown" : code}`,
  ];
  lines.push(stderr === "" ? "stderr: (empty)" : `stderr:\n${stderr}`);
  return lines.join("\n");
}
