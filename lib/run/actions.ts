// Running one planned action on the hosts. Transfers are one OS pipeline each (bytes never
// pass through JavaScript); everything else is a single zfs command.

import type { ActionOutcome } from "../engine/hooks.ts";
import type { Host } from "../hosts/host.ts";
import { shellJoin } from "../hosts/quote.ts";
import { isSshFailure, sshReason } from "../hosts/ssh.ts";
import type {
  AbortResumeAction,
  DestroyAction,
  SendAction,
  SnapshotAction,
} from "../plan/types.ts";
import {
  type SendSpec,
  zfsDestroySnapshots,
  zfsReceive,
  zfsReceiveAbort,
  zfsSend,
  zfsSnapshot,
} from "../zfs/commands.ts";
import { failedStage, formatPipelineFailure, runPipeline } from "./pipeline.ts";
import { estimatedSize, sendProgressCounter } from "./send-output.ts";

/** a failed single command: the command, its exit code and its stderr (SPEC 6.6) */
export function commandFailure(
  host: Host,
  argv: readonly string[],
  code: number,
  stderr: string,
): string {
  const where = `${host.side} (${host.name})`;
  const reason = isSshFailure({ code, stderr })
    ? `ssh failed: ${sshReason(stderr)}`
    : stderr.trim() || "(no message)";
  return `command failed on ${where}: ${shellJoin(argv)}\nexit code: ${code}\nstderr: ${reason}`;
}

async function runOne(host: Host, argv: string[]): Promise<ActionOutcome> {
  const started = performance.now();
  const result = await host.run(argv);
  const durationMs = Math.round(performance.now() - started);
  if (result.code === 0) return { ok: true, durationMs };
  return { ok: false, error: commandFailure(host, argv, result.code, result.stderr), durationMs };
}

export function runSnapshot(source: Host, action: SnapshotAction): Promise<ActionOutcome> {
  return runOne(source, zfsSnapshot(action.snapshots.map((s) => `${s.dataset}@${s.name}`)));
}

export function runDestroy(host: Host, action: DestroyAction): Promise<ActionOutcome> {
  return runOne(host, zfsDestroySnapshots(action.dataset, action.snapshots));
}

export function runAbortResume(target: Host, action: AbortResumeAction): Promise<ActionOutcome> {
  return runOne(target, zfsReceiveAbort(action.targetDataset));
}

export function sendSpec(action: SendAction): SendSpec {
  switch (action.mode) {
    case "full":
      return { mode: "full", snapshot: `${action.sourceDataset}@${action.to}` };
    case "incremental":
      return {
        mode: "incremental",
        from: `${action.sourceDataset}@${action.from}`,
        snapshot: `${action.sourceDataset}@${action.to}`,
      };
    case "resume":
      return { mode: "resume", token: action.token ?? "" };
  }
}

/** `zfs send -n -v -P`: the stream's size, or null when zfs cannot tell */
export async function estimateSend(source: Host, action: SendAction): Promise<number | null> {
  const result = await source.run(zfsSend(sendSpec(action), { progress: true, dryRun: true }));
  if (result.code !== 0) return null;
  // zfs 2.1 prints the estimate on stdout for -n, on stderr otherwise: read both
  return estimatedSize(result.stdout) ?? estimatedSize(result.stderr);
}

export async function runSend(
  source: Host,
  target: Host,
  action: SendAction,
  options: { signal: AbortSignal; onBytes: (bytes: number) => void; expectedBytes?: number | null },
): Promise<ActionOutcome> {
  const send = zfsSend(sendSpec(action), { progress: true });
  const receive = zfsReceive(action.targetDataset);
  const counter = sendProgressCounter();
  const started = performance.now();
  const result = await runPipeline([source.wrap(send), target.wrap(receive)], {
    signal: options.signal,
    onProgressLine: (line) => {
      const bytes = counter.feed(line);
      if (bytes !== null) options.onBytes(bytes);
    },
  });
  const durationMs = Math.round(performance.now() - started);
  if (result.ok) {
    // zfs prints progress once a second: a short transfer ends before its first line, so the
    // estimate stands in for the count when it is larger
    const bytes = Math.max(counter.total(), options.expectedBytes ?? 0);
    options.onBytes(bytes);
    return { ok: true, bytes, durationMs };
  }
  let error = formatPipelineFailure(result, [send, receive]);
  // ssh ends with 255 and often says nothing when the other end vanished (host down, cut link)
  const stage = failedStage(result);
  const host = stage === 0 ? source : stage === 1 ? target : null;
  if (
    host &&
    !host.isLocal &&
    result.codes[stage as number] === 255 &&
    !(result.stderr[stage as number] ?? "").trim()
  ) {
    error += `\nthe ssh connection to the ${host.side} (${host.name}) was lost`;
  }
  const resumable = /Partially received snapshot is saved|receive_resume_token|resum/i.test(
    result.stderr[1] ?? "",
  );
  return {
    ok: false,
    bytes: counter.total(),
    error:
      resumable || result.cancelled ? `${error}\nthe next backup resumes this transfer` : error,
    durationMs,
  };
}
