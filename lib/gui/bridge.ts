// The GUI's StageUi: the engine's calls become events for the page, and the page's answers
// settle `confirm`. Nothing is decided here but what the user said; the engine plans, checks
// and runs every action, exactly as for the terminal.

import type { ActionOutcome, StageInfo } from "../engine/hooks.ts";
import { redactDeep } from "../engine/redact.ts";
import { PlanTroubles, type StageUi } from "../engine/ui.ts";
import type { Action, ChainAction } from "../plan/types.ts";
import type { AnswerRequest, GuiEvent, StepKey } from "./protocol.ts";
import { narrowedChainView, planView, stepKeyOf } from "./view.ts";

/** what every page sees: the events so far, replayed to a page that (re)connects */
export class EventHub {
  private readonly log: GuiEvent[] = [];
  /** the newest progress of each running action; older ones are not worth replaying */
  private readonly progress = new Map<string, GuiEvent>();
  private readonly listeners = new Set<(event: GuiEvent) => void>();

  /** every event the page gets, its texts redacted (a failed `zfs send -t` names its token) */
  publish(raw: GuiEvent): void {
    const event = redactDeep(raw);
    if (event.type === "progress") this.progress.set(`${event.step}/${event.index}`, event);
    else {
      if (event.type === "action" && event.state !== "running")
        this.progress.delete(`${event.step}/${event.index}`);
      this.log.push(event);
    }
    for (const listener of this.listeners) listener(event);
  }

  replay(): GuiEvent[] {
    return [...this.log, ...this.progress.values()];
  }

  subscribe(listener: (event: GuiEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get subscribers(): number {
    return this.listeners.size;
  }
}

export interface AnswerResult {
  status: number;
  error?: string;
}

interface Question {
  id: number;
  danger: boolean;
  pool: string;
  resolve: (yes: boolean) => void;
}

/** at most this often per action: the page redraws, the network carries it */
const PROGRESS_INTERVAL_MS = 200;
/** the rate is measured over the last few seconds, so a stall shows soon */
const RATE_WINDOW_MS = 5000;

interface Running {
  step: StepKey;
  index: number;
  expected: number | null;
  samples: { at: number; bytes: number }[];
  lastSent: number;
  bytes: number;
}

export interface GuiUi extends StageUi {
  /** the page's answer to the open question: 409 when none is open with that id */
  answer(request: AnswerRequest): AnswerResult;
  /** Cancel: an open question is answered no at once (the run is being cancelled anyway) */
  cancelQuestion(): void;
}

export function guiUi(
  hub: EventHub,
  options: { now?: () => number; warn?: (text: string) => void } = {},
): GuiUi {
  const now = options.now ?? Date.now;
  let nextQuestion = 1;
  let open: Question | null = null;
  /** the actions of the current step's plan, by identity, for their row on the page */
  const rows = new Map<Action, { step: StepKey; index: number }>();
  let chainRow: { step: StepKey; index: number; planned: ChainAction } | null = null;
  const running = new Map<Action, Running>();
  /** per step: bytes of finished sends, and the sum of the estimates */
  const stepBytes = new Map<StepKey, { done: number; total: number | null }>();

  const rowOf = (action: Action): { step: StepKey; index: number } | null => {
    const row = rows.get(action);
    if (row !== undefined) return row;
    if (action.kind !== "chain" || chainRow === null) return null;
    return { step: chainRow.step, index: chainRow.index };
  };
  /** a chain the engine runs narrowed (not the planned object): its row's new words */
  const changedView = (action: Action) =>
    action.kind === "chain" && chainRow !== null && !rows.has(action)
      ? { view: narrowedChainView(chainRow.planned, action) }
      : {};

  const sendProgress = (entry: Running, at: number) => {
    const window = entry.samples;
    window.push({ at, bytes: entry.bytes });
    while (window.length > 2 && at - (window[0] as { at: number }).at > RATE_WINDOW_MS)
      window.shift();
    const first = window[0] as { at: number; bytes: number };
    const seconds = (at - first.at) / 1000;
    const rate = seconds >= 0.5 ? (entry.bytes - first.bytes) / seconds : null;
    const eta =
      rate && rate > 0 && entry.expected !== null
        ? Math.max(0, (entry.expected - entry.bytes) / rate)
        : null;
    const totals = stepBytes.get(entry.step) ?? { done: 0, total: null };
    let current = 0;
    for (const other of running.values()) if (other.step === entry.step) current += other.bytes;
    hub.publish({
      type: "progress",
      step: entry.step,
      index: entry.index,
      bytes: entry.bytes,
      expected: entry.expected,
      rate,
      eta,
      stepDone: totals.done + current,
      stepTotal: totals.total,
    });
  };

  return {
    showPlan(info, plan, estimates) {
      const step = stepKeyOf(info.stage, info.side);
      if (step === null) return;
      rows.clear();
      chainRow = null;
      plan.actions.forEach((action, index) => {
        rows.set(action, { step, index });
        if (action.kind === "chain") chainRow = { step, index, planned: action };
      });
      const sends = plan.actions.filter((action) => action.kind === "send");
      const known = sends.every((action) => estimates.has(action));
      stepBytes.set(step, {
        done: 0,
        total:
          sends.length > 0 && known ? [...estimates.values()].reduce((a, b) => a + b, 0) : null,
      });
      hub.publish({ type: "plan", step, plan: planView(plan, estimates) });
    },

    confirm(info, _plan, danger) {
      const step = stepKeyOf(info.stage, info.side) ?? "snap";
      const pool = info.config.target.zpool;
      const id = nextQuestion++;
      return new Promise<boolean>((resolve) => {
        open = { id, danger, pool, resolve };
        hub.publish({ type: "ask", id, step, danger, pool: danger ? pool : null });
      });
    },

    answer(request) {
      const question = open;
      if (question === null || request.id !== question.id)
        return { status: 409, error: "that question is no longer open" };
      if (request.answer === "go" && question.danger) {
        // the same rule as the terminal's: the pool's name exactly, blanks around it ignored
        const typed = typeof request.pool === "string" ? request.pool.trim() : "";
        if (typed !== question.pool) {
          const text = `Not confirmed: type the target pool's name "${question.pool}" exactly to destroy its snapshots.`;
          hub.publish({ type: "refused", id: question.id, text });
          return { status: 422, error: text };
        }
      }
      open = null;
      hub.publish({ type: "answered", id: question.id, answer: request.answer });
      question.resolve(request.answer === "go");
      return { status: 200 };
    },

    cancelQuestion() {
      const question = open;
      if (question === null) return;
      open = null;
      hub.publish({ type: "answered", id: question.id, answer: "cancel" });
      question.resolve(false);
    },

    actionStarted(action, expectedBytes) {
      const row = rowOf(action);
      if (row === null) return;
      const at = now();
      running.set(action, {
        ...row,
        expected: expectedBytes,
        samples: [{ at, bytes: 0 }],
        lastSent: 0,
        bytes: 0,
      });
      hub.publish({
        type: "action",
        ...row,
        state: "running",
        bytes: null,
        expected: expectedBytes,
        error: null,
        ...changedView(action),
      });
    },

    actionProgress(action, bytesDone) {
      const entry = running.get(action);
      if (entry === undefined) return;
      entry.bytes = bytesDone;
      const at = now();
      if (at - entry.lastSent < PROGRESS_INTERVAL_MS) return;
      entry.lastSent = at;
      sendProgress(entry, at);
    },

    actionFinished(action, outcome: ActionOutcome) {
      const row = rowOf(action);
      if (row === null) return;
      const entry = running.get(action);
      running.delete(action);
      if (action.kind === "send") {
        const totals = stepBytes.get(row.step);
        if (totals) totals.done += outcome.bytes ?? entry?.bytes ?? 0;
      }
      hub.publish({
        type: "action",
        ...row,
        state: outcome.ok ? "done" : "failed",
        bytes: outcome.bytes ?? null,
        expected: entry?.expected ?? null,
        // the command, its exit code and stderr, as the engine wrote them
        error: outcome.ok ? null : (outcome.error ?? "failed"),
        ...changedView(action),
      });
    },

    note(info: StageInfo, text) {
      hub.publish({ type: "note", step: stepKeyOf(info.stage, info.side), text });
    },

    warn(text) {
      options.warn?.(text);
      hub.publish({ type: "warn", text });
    },

    stageFinished(info, outcome) {
      const step = stepKeyOf(info.stage, info.side);
      if (step === null) return;
      hub.publish({
        type: "stage",
        step,
        status: outcome.status,
        // the step's plan shows its conflicts whole: the error names them
        error:
          outcome.error instanceof PlanTroubles
            ? outcome.error.brief
            : (outcome.error?.message ?? null),
      });
    },
  };
}
