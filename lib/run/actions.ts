// Running a transfer: one OS pipeline from the source host's `zfs send` into the target host's
// `zfs receive`, so bytes never pass through JavaScript. Every other action is a single zfs
// command of the zfs port (lib/zfs/port.ts).

import { hostFailure } from "../hosts/failure.ts";
import type { Host } from "../hosts/host.ts";
import { sudoFailure } from "../hosts/sudo.ts";
import type { SendAction } from "../plan/types.ts";
import { type SendSpec, zfsReceive, zfsSend } from "../zfs/commands.ts";
import type { ActionOutcome } from "../zfs/outcome.ts";
import {
  failedStage,
  formatPipelineFailure,
  type PipelineResult,
  runPipeline,
  UNKNOWN_CODE,
} from "./pipeline.ts";
import { sendProgressCounter } from "./send-output.ts";
import {
  type DirectTarget,
  escapeRegExp,
  PLAIN_WIRE,
  type Wire,
  type WirePipeline,
  wireBatch,
  wirePipeline,
} from "./wire.ts";

export function sendSpec(action: SendAction): SendSpec {
  switch (action.mode) {
    case "full":
      return { mode: "full", snapshot: `${action.sourceDataset}@${action.to}`, raw: action.raw };
    case "incremental":
      return {
        mode: "incremental",
        from: `${action.sourceDataset}${action.fromBookmark ? "#" : "@"}${action.from}`,
        snapshot: `${action.sourceDataset}@${action.to}`,
        raw: action.raw,
      };
    case "resume":
      return { mode: "resume", token: action.token ?? "" };
  }
}

/**
 * The lines where `zfs receive` said it could not set canmount (the one property abgleich sets),
 * though the stream arrived and it exited 0 (`cannot receive canmount property on DS:
 * permission denied`, for a user that `zfs allow` gave `receive` but not `canmount`)
 */
export function refusedProperties(stderr: string): string[] {
  return stderr
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.startsWith("cannot receive canmount property on "));
}

export interface SendOptions {
  signal: AbortSignal;
  /** a property the receive could not set, though the transfer succeeded (refusedProperties) */
  onRefusedProperty?: (line: string) => void;
  onBytes: (bytes: number) => void;
  expectedBytes?: number | null;
  /** the stage's wire (chooseWire): compression, buffer, limit, direct; none: `send | receive` */
  wire?: Wire;
  /** for a direct wire: the target as the source host reaches it */
  direct?: DirectTarget;
}

export async function runSend(
  source: Host,
  target: Host,
  action: SendAction,
  options: SendOptions,
): Promise<ActionOutcome> {
  const send = zfsSend(sendSpec(action), { progress: true });
  const receive = zfsReceive(action.targetDataset, { keepUnmounted: action.keepUnmounted });
  const pipeline = wirePipeline(send, receive, source, target, options.wire ?? PLAIN_WIRE, {
    direct: options.direct,
    expectedBytes: options.expectedBytes,
  });
  const counter = sendProgressCounter();
  const started = performance.now();
  const result = pipeline.expand(
    await runPipeline(pipeline.stages, {
      signal: options.signal,
      holdStdin: pipeline.holdStdin,
      onProgressLine: (line) => {
        const bytes = counter.feed(line);
        if (bytes !== null) options.onBytes(bytes);
      },
    }),
  );
  const durationMs = Math.round(performance.now() - started);
  if (result.ok) {
    const receiveErrors = result.stderr[pipeline.commands.length - 1] ?? "";
    for (const line of refusedProperties(receiveErrors)) options.onRefusedProperty?.(line);
    // zfs prints progress once a second: a short transfer ends before its first line, so the
    // estimate stands in for the count when it is larger
    const bytes = Math.max(counter.total(), options.expectedBytes ?? 0);
    options.onBytes(bytes);
    return { ok: true, bytes, durationMs };
  }
  return failedTransfer(result, pipeline, source, target, counter.total(), durationMs);
}

/** the commands of one transfer's pipeline (all of it, or one transfer's part of a batch) */
type TransferCommands = Pick<WirePipeline, "commands" | "carriers" | "sides">;

/** a failed transfer as a user reads it, and whether a retry may resume it */
function failedTransfer(
  result: PipelineResult,
  pipeline: TransferCommands,
  source: Host,
  target: Host,
  bytes: number,
  durationMs: number,
): ActionOutcome {
  let error = formatPipelineFailure(result, pipeline.commands, pipeline.carriers);
  // ssh ends with 255 and often says nothing when the other end vanished (host down, cut link)
  const stage = failedStage(result, pipeline.carriers);
  const side = stage === null ? undefined : pipeline.sides[stage];
  let connectionLost = false;
  if (side !== undefined && stage !== null) {
    const host = side === "source" ? source : target;
    const stageResult = { code: result.codes[stage] ?? 0, stderr: result.stderr[stage] ?? "" };
    const failure = hostFailure(host, stageResult);
    if (failure) error += `\n${failure.message}`;
    connectionLost = failure !== null;
    // `sudo: yes` and sudo would not run zfs: the fix, as for a query (lib/hosts/sudo.ts)
    const refused = sudoFailure(host, stageResult);
    if (refused) error += `\n${refused.message}`;
  }
  const receiveErrors = result.stderr[pipeline.commands.length - 1] ?? "";
  // `receive -s` keeps what arrived when the pool filled up (OpenZFS 2.1 and 2.3 alike): resumed
  // once there is room, which only the user can make
  const full = /out of space|no space left/i.test(receiveErrors);
  const pool = pipeline.commands.at(-1)?.at(-1)?.split("/")[0] ?? "";
  const saved =
    full || /Partially received snapshot is saved|receive_resume_token|resum/i.test(receiveErrors);
  // cut, not refused: the stream ended early or the link went; a full pool is not retried
  const cut = connectionLost || (saved && /incomplete stream/.test(receiveErrors));
  return {
    ok: false,
    bytes,
    error: full
      ? `${error}\nthe target pool ${pool} is full: free space on it (cleanup target, or destroy what it no longer needs) or grow it; the next backup then resumes this transfer`
      : saved || result.cancelled
        ? `${error}\nthe next backup resumes this transfer`
        : error,
    durationMs,
    ...(cut && !result.cancelled ? { resumable: true } : {}),
  };
}

export interface BatchOptions {
  signal: AbortSignal;
  /** the stage's wire; not a direct one */
  wire: Wire;
  /** per transfer: the plan's estimate, null when unknown */
  expectedBytes: readonly (number | null)[];
  /** transfer `index` begins: the first at once, each next one when the one before arrived */
  started: (index: number) => void;
  /** transfer `index` arrived (its receive succeeded), told as it happens */
  arrived: (index: number, outcome: ActionOutcome) => void;
  onBytes: (index: number, bytes: number) => void;
  /** transfer `index` arrived, but its receive could not set a property (refusedProperties) */
  onRefusedProperty?: (index: number, line: string) => void;
}

/**
 * Several transfers through one pipeline (wireBatch): one ssh session per remote host for
 * all of them. Each is told as begun and as arrived while the batch runs, one at a time as
 * its receive takes it (the sends run ahead into the pipe). The outcome per transfer, in
 * order: those before the first failure arrived, the first failure is reported as runSend
 * reports one, and those after it, which never reached their receive, are null (not run).
 */
export async function runSendBatch(
  source: Host,
  target: Host,
  actions: readonly SendAction[],
  options: BatchOptions,
): Promise<(ActionOutcome | null)[]> {
  const expected = options.expectedBytes;
  const total = expected.every((bytes) => bytes !== null)
    ? expected.reduce<number>((sum, bytes) => sum + (bytes ?? 0), 0)
    : null;
  const pipeline = wireBatch(
    actions.map((action) => zfsSend(sendSpec(action), { progress: true })),
    actions.map((action) =>
      zfsReceive(action.targetDataset, { keepUnmounted: action.keepUnmounted }),
    ),
    source,
    target,
    options.wire,
    { expectedBytes: total },
  );
  const counters = actions.map(() => sendProgressCounter());
  const startedAt = actions.map(() => 0);
  /** the outcome of each transfer told as arrived while the batch ran */
  const told: (ActionOutcome | undefined)[] = actions.map(() => undefined);
  /** the send whose progress lines come now; the transfer begun last */
  let sending = 0;
  let running = 0;
  const begin = (index: number) => {
    running = index;
    startedAt[index] = performance.now();
    options.started(index);
    // its send may have run ahead while the one before was still being received
    const counted = counters[index]?.total() ?? 0;
    if (counted > 0) options.onBytes(index, counted);
  };
  const arrived = (index: number): ActionOutcome => {
    const bytes = Math.max(counters[index]?.total() ?? 0, expected[index] ?? 0);
    options.onBytes(index, bytes);
    const durationMs = Math.round(performance.now() - (startedAt[index] ?? 0));
    return { ok: true, bytes, durationMs };
  };
  /** `TAG I.K CODE`: step K of a group's sequence ended */
  const stepOf = (tag: string | null) =>
    tag === null ? null : new RegExp(`${escapeRegExp(tag)} \\d+\\.(\\d+) (\\d+)`);
  const sendEnd = stepOf(pipeline.stepTag);
  const receiveEnd = stepOf(pipeline.receiveTag);
  begin(0);
  const raw = await runPipeline(pipeline.stages, {
    signal: options.signal,
    onProgressLine: (line) => {
      const end = sendEnd?.exec(line);
      if (end) {
        if (Number(end[1]) === sending + 1 && end[2] === "0") sending++;
        return;
      }
      const bytes = counters[sending]?.feed(line) ?? null;
      if (bytes !== null && sending <= running) options.onBytes(sending, bytes);
    },
    onLastStageLine: (line) => {
      const end = receiveEnd?.exec(line);
      if (!end || Number(end[1]) !== running + 1 || end[2] !== "0") return;
      const outcome = arrived(running);
      told[running] = outcome;
      options.arrived(running, outcome);
      if (running + 1 < actions.length) begin(running + 1);
    },
  });
  const ended = performance.now();
  const report = pipeline.report(raw);
  const receiveCode = (index: number) => report.codes[pipeline.receives[index] as number];
  const firstFailure = actions.findIndex((_, index) => receiveCode(index) !== 0);
  const failedAt = firstFailure < 0 ? actions.length : firstFailure;
  for (let index = 0; index < failedAt; index++) {
    const receiveErrors = report.stderr[pipeline.receives[index] as number] ?? "";
    for (const line of refusedProperties(receiveErrors)) options.onRefusedProperty?.(index, line);
  }
  const carriers = pipeline.commands.flatMap((_, index) =>
    pipeline.sends.includes(index) || pipeline.receives.includes(index) ? [] : [index],
  );
  return actions.map((_, index): ActionOutcome | null => {
    if (index > failedAt && receiveCode(index) === UNKNOWN_CODE) return null;
    // a receive that succeeded holds its snapshot whole, whatever ended the batch after it
    if (index < failedAt) {
      const already = told[index];
      if (already !== undefined) return already;
      if (index > running) begin(index);
      const outcome = arrived(index);
      options.arrived(index, outcome);
      return outcome;
    }
    if (index > running) begin(index);
    // this transfer's commands in pipe order: its send, the wire between, its receive
    const own = [pipeline.sends[index] as number, ...carriers, pipeline.receives[index] as number];
    const cancelled = raw.cancelled;
    const codes = own.map((command) =>
      cancelled ? UNKNOWN_CODE : (report.codes[command] ?? UNKNOWN_CODE),
    );
    const stderr = own.map((command) => report.stderr[command] ?? "");
    const durationMs = Math.round(ended - (startedAt[index] || ended));
    const counted = counters[index]?.total() ?? 0;
    if (!cancelled && codes.every((code) => code === 0)) {
      const bytes = Math.max(counted, expected[index] ?? 0);
      options.onBytes(index, bytes);
      return { ok: true, bytes, durationMs };
    }
    const view: PipelineResult = { ok: false, codes, stderr, stdout: "", cancelled };
    const commands: TransferCommands = {
      commands: own.map((command) => pipeline.commands[command] as string[]),
      carriers: own.map((command) => pipeline.carriers[command] === true),
      sides: own.map((command) => pipeline.sides[command] as "source" | "target"),
    };
    return failedTransfer(view, commands, source, target, counted, durationMs);
  });
}
