// `--json` on the changing commands: newline-delimited events on stdout, one object per line,
// described by docs/events.schema.json. Every event carries the run's id, the time and its
// name (`event`); actions carry structured fields (kind, side, dataset, snapshots, bytes)
// beside the human text (`action`); the run ends with one `summary` event.

import { EXIT_FAILED } from "../engine/exit.ts";
import type { ActionOutcome, RunSummary, StageInfo, StageOutcome } from "../engine/hooks.ts";
import { REDACTED_TOKEN } from "../engine/redact.ts";
import { summaryLine, summaryTotals, wasIdle } from "../engine/summary.ts";
import { localIsoTime } from "../engine/time.ts";
import type { StageUi } from "../engine/ui.ts";
import { HostDownError } from "../hosts/host.ts";
import type { Action, Plan, SendAction } from "../plan/types.ts";
import { type CommandIo, errorEvent } from "./io.ts";
import { planJson } from "./render/plan.ts";
import { describeAction } from "./ui.ts";

/** least milliseconds between two progress events of one run */
const PROGRESS_EVENT_INTERVAL_MS = 1000;

/** the side an action changes: a send and an abort change the target, a chain both */
function sideOf(action: Action): "source" | "target" | "both" {
  switch (action.kind) {
    case "snapshot":
      return "source";
    case "destroy":
      return action.side;
    case "chain":
      return "both";
    default:
      return "target";
  }
}

/**
 * What an action does, as data: its kind, the side it changes, the dataset (null for actions
 * over several), full snapshot names, and for sends the mode and both ends.
 */
export function actionFields(action: Action): Record<string, unknown> {
  const base = { kind: action.kind, side: sideOf(action) };
  switch (action.kind) {
    case "snapshot":
      return {
        ...base,
        dataset: null,
        snapshots: action.snapshots.map((s) => `${s.dataset}@${s.name}`),
      };
    case "send":
      return {
        ...base,
        dataset: action.targetDataset,
        sourceDataset: action.sourceDataset,
        mode: action.mode,
        raw: action.raw,
        from: action.from,
        fromBookmark: action.fromBookmark,
        keepUnmounted: action.keepUnmounted,
        snapshots: action.snapshots.map((name) => `${action.targetDataset}@${name}`),
      };
    case "abort-resume":
      return { ...base, dataset: action.targetDataset, snapshots: [] };
    case "destroy":
      return {
        ...base,
        dataset: action.dataset,
        snapshots: action.snapshots.map((name) => `${action.dataset}@${name}`),
      };
    case "chain":
      return {
        ...base,
        dataset: null,
        snapshots: action.entries.map((entry) => `${entry.sourceDataset}@${entry.base}`),
      };
  }
}

/** the plan as JSON, resume tokens left out: they are not for logs (README: Output) */
export function planEventJson(plan: Plan, estimates: ReadonlyMap<SendAction, number>) {
  const json = planJson(plan, estimates);
  return {
    ...json,
    actions: json.actions.map((action) =>
      action.kind === "send" && action.token !== null
        ? { ...action, token: REDACTED_TOKEN }
        : action,
    ),
  };
}

/** the StageUi of `--json`; `confirm` asks as the console does (on stderr, or `--yes`) */
export function eventUi(io: CommandIo, confirm: StageUi["confirm"]): StageUi {
  let lastProgressEvent = 0;
  const stageFields = (info: StageInfo) =>
    info.side ? { stage: info.stage, side: info.side } : { stage: info.stage };
  return {
    showPlan: (info, plan, estimates) =>
      io.event("plan", { ...stageFields(info), plan: planEventJson(plan, estimates) }),
    confirm,
    actionStarted: (action, expectedBytes) =>
      io.event("action-start", {
        action: describeAction(action),
        ...actionFields(action),
        expectedBytes,
      }),
    actionProgress: (action, bytesDone) => {
      const now = Date.now();
      if (now - lastProgressEvent < PROGRESS_EVENT_INTERVAL_MS) return;
      lastProgressEvent = now;
      io.event("progress", { action: describeAction(action), ...actionFields(action), bytesDone });
    },
    actionFinished: (action, outcome: ActionOutcome) =>
      io.event("action-done", {
        action: describeAction(action),
        ...actionFields(action),
        ok: outcome.ok,
        bytes: outcome.bytes ?? (action.kind === "destroy" && outcome.ok ? action.used : null),
        durationMs: outcome.durationMs,
        error: outcome.error ?? null,
      }),
    note: (info, text) => io.event("note", { ...stageFields(info), text }),
    warn: (text) => io.event("warning", { text }),
    stageFinished: (info, outcome: StageOutcome) => {
      io.event("stage-done", {
        ...stageFields(info),
        status: outcome.status,
        error: outcome.error?.message ?? null,
      });
      // a host that is down ends the run: said as the error event that tells why
      if (outcome.error instanceof HostDownError) errorEvent(io, outcome.error, EXIT_FAILED);
    },
  };
}

/** the last event of a run: how it ended, what it did per dataset, and the totals */
export function summaryEvent(summary: RunSummary): Record<string, unknown> {
  return {
    status:
      summary.exitCode === 0
        ? wasIdle(summary)
          ? "nothing-to-do"
          : "ok"
        : summary.exitCode === 130 || summary.exitCode === 143
          ? "cancelled"
          : "failed",
    exitCode: summary.exitCode,
    mode: summary.mode,
    config: summary.config.file,
    startedAt: localIsoTime(summary.startedAt, true),
    finishedAt: localIsoTime(summary.finishedAt, true),
    text: summaryLine(summary) ?? "abgleich ok: nothing to do",
    stages: summary.stages.map((s) => ({
      stage: s.stage,
      ...(s.side ? { side: s.side } : {}),
      source: s.where.source,
      target: s.where.target,
      status: s.outcome.status,
      error: s.outcome.error?.message ?? null,
    })),
    totals: summaryTotals(summary),
    datasets: summary.datasets.map((d) => ({
      subname: d.subname,
      snapshotsMade: [...d.snapshotsMade],
      bytesSent: d.bytesSent,
      snapshotsReceived: [...d.snapshotsReceived],
      destroyed: d.destroyed.map((entry) => ({
        side: entry.side,
        snapshots: [...entry.snapshots],
      })),
      conflicts: [...d.conflicts],
      failures: [...d.failures],
    })),
  };
}
