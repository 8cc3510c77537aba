// Running a transfer: one OS pipeline from the source host's `zfs send` into the target host's
// `zfs receive`, so bytes never pass through JavaScript. Every other action is a single zfs
// command of the zfs port (lib/zfs/port.ts).

import { hostFailure } from "../hosts/failure.ts";
import type { Host } from "../hosts/host.ts";
import { sudoFailure } from "../hosts/sudo.ts";
import type { SendAction } from "../plan/types.ts";
import { type SendSpec, zfsReceive, zfsSend } from "../zfs/commands.ts";
import type { ActionOutcome } from "../zfs/outcome.ts";
import { failedStage, formatPipelineFailure, runPipeline } from "./pipeline.ts";
import { sendProgressCounter } from "./send-output.ts";
import { type DirectTarget, PLAIN_WIRE, type Wire, wirePipeline } from "./wire.ts";

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

export interface SendOptions {
  signal: AbortSignal;
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
  const receive = zfsReceive(action.targetDataset);
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
    // zfs prints progress once a second: a short transfer ends before its first line, so the
    // estimate stands in for the count when it is larger
    const bytes = Math.max(counter.total(), options.expectedBytes ?? 0);
    options.onBytes(bytes);
    return { ok: true, bytes, durationMs };
  }
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
  const saved = /Partially received snapshot is saved|receive_resume_token|resum/i.test(
    receiveErrors,
  );
  // cut, not refused: the stream ended early or the link went; a full pool is not retried
  const cut = connectionLost || (saved && /incomplete stream/.test(receiveErrors));
  return {
    ok: false,
    bytes: counter.total(),
    error: saved || result.cancelled ? `${error}\nthe next backup resumes this transfer` : error,
    durationMs,
    ...(cut && !result.cancelled ? { resumable: true } : {}),
  };
}
