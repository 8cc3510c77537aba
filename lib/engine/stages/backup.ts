// The backup stage: send what the target lacks, parents first; resume cut transfers; report
// conflicts and skip them. Each transfer is one OS pipeline from the source host to the target
// host; bytes never pass through JavaScript.

import { formatBytes } from "../../cli/render/units.ts";
import { rootOf } from "../../config/types.ts";
import { shellJoin, shellQuote } from "../../hosts/quote.ts";
import { planBackup, type TokenInfo } from "../../plan/backup.ts";
import { holdTags, withChain } from "../../plan/chain.ts";
import type { Action, ChainAction, Plan, SendAction } from "../../plan/types.ts";
import { runSend, runSendBatch } from "../../run/actions.ts";
import type { Inventory } from "../../zfs/model.ts";
import type { ActionOutcome } from "../../zfs/outcome.ts";
import { isCancelError, untilCancelled } from "../cancel.ts";
import type { ChangingStage, Run } from "../runner.ts";
import { requireSourceRoot, requireTargetParent } from "./preflight.ts";
import { NO_WIRE, prepareWire, type StageWire } from "./wire.ts";

/** what each partial receive on the target would resume, asked of the source (`send -nvP -t`) */
async function resumeTokens(run: Run, target: Inventory): Promise<Map<string, TokenInfo>> {
  const tokens = new Map<string, TokenInfo>();
  for (const dataset of target.datasets) {
    if (dataset.resumeToken === null) continue;
    tokens.set(dataset.subname, await run.ports.source.resumeTarget(dataset.resumeToken));
  }
  return tokens;
}

/**
 * What each send will move, from the tree as read: a full stream is about its snapshot's
 * `referenced`, an incremental the sum of `written` of the snapshots it brings, a resume what
 * `send -nvP -t` said. No `zfs send -n` per dataset: on a large tree those round trips cost
 * more than the transfers.
 */
export function estimateSends(
  plan: Plan,
  source: Inventory | null,
  tokens: ReadonlyMap<string, TokenInfo>,
): Map<SendAction, number> {
  const estimates = new Map<SendAction, number>();
  const datasets = new Map(source?.datasets.map((dataset) => [dataset.name, dataset]));
  for (const action of plan.actions) {
    if (action.kind !== "send") continue;
    if (action.mode === "resume") {
      const info = tokens.get(action.subname);
      if (info?.ok && info.size !== undefined) estimates.set(action, info.size);
      continue;
    }
    const dataset = datasets.get(action.sourceDataset);
    if (dataset === undefined) continue;
    const bring = new Set(action.snapshots);
    let bytes = 0;
    for (const snapshot of dataset.snapshots) {
      if (!bring.has(snapshot.name)) continue;
      bytes += action.mode === "full" ? snapshot.referenced : snapshot.written;
    }
    estimates.set(action, bytes);
  }
  return estimates;
}

/**
 * Hold each chain's base on both sides and bookmark it on the source, then, once all of that
 * succeeded, release abgleich's holds on older bases and destroy its older bookmarks: a few
 * commands per host for the whole tree, both hosts at once, the two protections (and then the
 * two removals) side by side. Protecting comes first, so a chain is never unprotected.
 */
export async function protectChains(run: Run, action: ChainAction): Promise<ActionOutcome> {
  const tags = holdTags(run.config);
  const { entries } = action;
  const snapshot = (dataset: string, name: string) => `${dataset}@${name}`;
  const onSource = async () => {
    const source = run.ports.source;
    return firstFailure([
      () =>
        bothOf(
          source.hold(
            tags.source,
            entries.filter((e) => e.holdSource).map((e) => snapshot(e.sourceDataset, e.base)),
          ),
          source.bookmark(
            entries
              .filter((e) => e.bookmark)
              .map((e) => ({
                snapshot: snapshot(e.sourceDataset, e.base),
                bookmark: `${e.sourceDataset}#${e.base}`,
              })),
          ),
        ),
      () =>
        bothOf(
          source.release(
            tags.source,
            entries.flatMap((e) => e.releaseSource.map((name) => snapshot(e.sourceDataset, name))),
          ),
          source.destroyBookmarks(
            entries.flatMap((e) => e.destroyBookmarks.map((name) => `${e.sourceDataset}#${name}`)),
          ),
        ),
    ]);
  };
  const onTarget = async () => {
    const target = run.ports.target;
    return firstFailure([
      () =>
        target.hold(
          tags.target,
          entries.filter((e) => e.holdTarget).map((e) => snapshot(e.targetDataset, e.base)),
        ),
      () =>
        target.release(
          tags.target,
          entries.flatMap((e) => e.releaseTarget.map((name) => snapshot(e.targetDataset, name))),
        ),
    ]);
  };
  const started = performance.now();
  const outcomes = await Promise.all([onSource(), onTarget()]);
  const errors = outcomes.flatMap((outcome) => (outcome.ok ? [] : [outcome.error ?? "failed"]));
  const durationMs = Math.round(performance.now() - started);
  return errors.length === 0
    ? { ok: true, durationMs }
    : { ok: false, error: errors.join("\n"), durationMs };
}

/** two steps run side by side: ok when both are; the first one's failure otherwise */
async function bothOf(
  first: Promise<ActionOutcome>,
  second: Promise<ActionOutcome>,
): Promise<ActionOutcome> {
  const outcomes = await Promise.all([first, second]);
  const durationMs = Math.max(...outcomes.map((outcome) => outcome.durationMs));
  const failed = outcomes.find((outcome) => !outcome.ok);
  return failed ? { ...failed, durationMs } : { ok: true, durationMs };
}

/** run steps in order; the first failure ends them */
async function firstFailure(steps: (() => Promise<ActionOutcome>)[]): Promise<ActionOutcome> {
  let durationMs = 0;
  for (const step of steps) {
    const outcome = await step();
    durationMs += outcome.durationMs;
    if (!outcome.ok) return { ...outcome, durationMs };
  }
  return { ok: true, durationMs };
}

/**
 * A transfer arrived but its receive could not set a property (a non-root target user without
 * the `canmount` permission): the backup is whole, but not kept from being mounted at boot
 */
function warnRefusedProperty(run: Run, action: SendAction, line: string): void {
  const { user } = run.config.target;
  const login = user === "" ? "USER" : user;
  const allow = shellJoin(["zfs", "allow", "-u", login, "canmount", rootOf(run.config.target)]);
  run.ui.warn(
    `${action.targetDataset} arrived, but zfs receive said: ${line}. So zfs mount -a (at boot) mounts it where it inherits a mountpoint, and whatever writes there makes the next backup refuse it; let the target's user set canmount (${allow}), then: zfs set canmount=noauto ${shellQuote(action.targetDataset)}`,
  );
}

/** the wait before retry `attempt` (1, 2, …): 1 s, 2 s, 4 s, … at most 30 s */
export const retryDelayMs = (attempt: number) => Math.min(30_000, 1000 * 2 ** (attempt - 1));

/**
 * One send, and when a network fault cuts it with its partial receive saved, up to
 * `transfer.retries` resumes from the target's new token in this run. A resume only ever
 * continues the stream that was shown: its snapshot must be one this action brings, and
 * what is left after it goes as one `-I` to the action's own last snapshot.
 */
async function sendWithRetries(
  run: Run,
  action: SendAction,
  expected: number | null,
  wire: StageWire,
  /** the first attempt's outcome when it ran already (in a batch) */
  ran?: ActionOutcome,
): Promise<ActionOutcome> {
  let done = 0;
  const attempt = (step: SendAction) =>
    runSend(run.hosts.source, run.hosts.target, step, {
      signal: run.signal,
      expectedBytes: step === action ? expected : null,
      onBytes: (bytes) => run.progress(action, done + bytes, expected),
      onRefusedProperty: (line) => warnRefusedProperty(run, action, line),
      ...wire,
    });
  const first = ran ?? (await attempt(action));
  let outcome = first;
  let totalMs = outcome.durationMs;
  const retries = run.config.transfer.retries;
  for (let retry = 1; !outcome.ok && outcome.resumable && retry <= retries; retry++) {
    if (run.signal.aborted) break;
    done += outcome.bytes ?? 0;
    const wait = retryDelayMs(retry);
    run.ui.note(
      run.stageInfo("backup"),
      `${action.targetDataset}: the transfer was cut; resuming in ${wait / 1000} s (retry ${retry} of ${retries})`,
    );
    await untilCancelled(Bun.sleep(wait), run.signal);
    let steps: SendAction[] | string;
    try {
      steps = await resumeSteps(run, action);
    } catch (error) {
      // the host that cut the stream may be gone for good: the first failure is the story
      if (run.signal.aborted || isCancelError(error)) throw error;
      steps = error instanceof Error ? error.message : String(error);
    }
    if (typeof steps === "string") {
      outcome = { ...outcome, error: `${outcome.error}\nnot retried: ${steps}` };
      break;
    }
    for (const step of steps) {
      outcome = await attempt(step);
      totalMs += outcome.durationMs;
      if (!outcome.ok) break;
      done += outcome.bytes ?? 0;
    }
  }
  if (outcome.ok && outcome !== first) {
    // `done` counts every part once, the last one included; zfs reports progress once a
    // second, so short parts may count nothing and the estimate stands in, as in runSend
    const bytes = Math.max(done, expected ?? 0);
    run.progress(action, bytes, expected);
    return { ...outcome, bytes, durationMs: totalMs };
  }
  if (outcome.ok) return { ...outcome, durationMs: totalMs };
  return { ...outcome, durationMs: totalMs };
}

/** the resume of a cut `action` and what follows it, or why it cannot be resumed here */
async function resumeSteps(run: Run, action: SendAction): Promise<SendAction[] | string> {
  const token = await run.ports.target.resumeToken(action.targetDataset);
  if (token === null) return `${action.targetDataset} has no partial receive to resume`;
  const info = await run.ports.source.resumeTarget(token);
  if (!info.ok) return info.reason;
  const prefix = `${action.sourceDataset}@`;
  const name = info.toname.startsWith(prefix) ? info.toname.slice(prefix.length) : null;
  const index = name === null ? -1 : action.snapshots.indexOf(name);
  if (name === null || index < 0) {
    return `the token resumes ${info.toname}, which is not part of this transfer`;
  }
  const rest = action.snapshots.slice(index + 1);
  const resume: SendAction = {
    ...action,
    mode: "resume",
    from: null,
    to: name,
    snapshots: [name],
    token,
    fromBookmark: false,
    // the resume of a cut first receive sets canmount as the first receive did
    keepUnmounted: action.mode !== "incremental" && action.keepUnmounted,
  };
  const follow: SendAction[] =
    rest.length === 0
      ? []
      : [
          {
            ...action,
            mode: "incremental",
            from: name,
            to: action.to,
            snapshots: rest,
            token: null,
            fromBookmark: false,
            keepUnmounted: false,
          },
        ];
  return [resume, ...follow];
}

/**
 * A batch's sends through one ssh session per host (runSendBatch): each told as ended as soon
 * as it arrived; a transfer the network cut goes on through its retries on its own. Only
 * sends of one stage wire that is not direct.
 */
async function sendBatch(
  run: Run,
  actions: readonly SendAction[],
  estimates: ReadonlyMap<SendAction, number>,
  wire: StageWire,
  started: (action: Action) => void,
  ended: (action: Action, outcome: ActionOutcome) => void,
): Promise<(ActionOutcome | null)[]> {
  const expected = actions.map((action) => estimates.get(action) ?? null);
  const sent = (action: SendAction, outcome: ActionOutcome) => {
    if (outcome.ok) run.summary.sent(action.subname, outcome.bytes ?? 0, action.snapshots);
  };
  const outcomes = await runSendBatch(run.hosts.source, run.hosts.target, actions, {
    signal: run.signal,
    wire: wire.wire,
    expectedBytes: expected,
    started: (index) => started(actions[index] as SendAction),
    arrived: (index, outcome) => {
      const action = actions[index] as SendAction;
      sent(action, outcome);
      ended(action, outcome);
    },
    onBytes: (index, bytes) =>
      run.progress(actions[index] as SendAction, bytes, expected[index] ?? null),
    onRefusedProperty: (index, line) =>
      warnRefusedProperty(run, actions[index] as SendAction, line),
  });
  return Promise.all(
    outcomes.map(async (ran, index) => {
      if (ran === null || ran.ok) return ran;
      const action = actions[index] as SendAction;
      const outcome = ran.resumable
        ? await sendWithRetries(run, action, expected[index] ?? null, wire, ran)
        : ran;
      sent(action, outcome);
      return outcome;
    }),
  );
}

interface Room {
  dataset: string;
  available: number;
}

/**
 * Where the sends land and the bytes it has left: the target root, or before the first backup
 * its parent; null when unreadable or cancelled (the check is a warning, never a reason to
 * stop, and the stage notices a cancel itself).
 */
async function roomOnTarget(run: Run, target: Inventory): Promise<Room | null> {
  const root = rootOf(run.config.target);
  const dataset =
    target.datasets.length > 0 || !root.includes("/") ? root : root.slice(0, root.lastIndexOf("/"));
  try {
    const available = await run.ports.target.available(dataset);
    return available === null ? null : { dataset, available };
  } catch {
    return null;
  }
}

export function backupStage(run: Run): ChangingStage {
  /** chosen once per stage when it plans a send (tools asked once per host, not per dataset) */
  let wire: StageWire = NO_WIRE;
  let tokens: ReadonlyMap<string, TokenInfo> = new Map();
  let sourceTree: Inventory | null = null;
  /** the target's room for the sends, asked while planning (never rejects) */
  let room: Promise<Room | null> = Promise.resolve(null);
  return {
    stage: "backup",
    reads: ["source", "target"],
    // the source too: the chain's holds and bookmarks are made and released there, and a
    // cleanup of the source meanwhile would release and destroy what the chain step expects
    changes: ["source", "target"],
    preflight: async ({ source, target }) => {
      requireSourceRoot(run, source);
      await requireTargetParent(run, target);
    },
    plan: async ({ source, target }) => {
      tokens = await resumeTokens(run, target);
      sourceTree = source;
      const plan = withChain(
        planBackup(source, target, run.config, tokens),
        source,
        target,
        run.config,
        run.namer().isOwn,
      );
      // nothing to send (the unattended run's usual case): no host is asked for its tools
      if (plan.actions.some((action) => action.kind === "send")) {
        // the target's room is asked beside the tools, and judged on the plan as shown
        room = roomOnTarget(run, target);
        wire = await prepareWire(run);
      }
      return plan;
    },
    estimate: async (plan: Plan) => {
      const estimates = estimateSends(plan, sourceTree, tokens);
      const free = await room;
      const needed = [...estimates.values()].reduce((total, bytes) => total + bytes, 0);
      // an aborted partial receive frees what it held first: the room read is too small then
      const aborts = plan.actions.some((action) => action.kind === "abort-resume");
      if (free !== null && !aborts && needed > free.available) {
        const pool = run.config.target.zpool;
        run.ui.warn(
          `the transfers need about ${formatBytes(needed)} and ${free.dataset} has ${formatBytes(free.available)} available: they may stop with "out of space" (what arrived is kept, and the next backup resumes it); free space on ${pool} (cleanup target, or destroy what it no longer needs) or grow the pool first`,
        );
      }
      return estimates;
    },
    // over ssh, sends share a session per host; between local pools there is none to share,
    // and a direct or one-host wire carries one transfer per ssh command
    batchSize: (action: Action) =>
      action.kind === "send" &&
      !wire.wire.direct &&
      wire.wire.oneHost !== true &&
      (!run.hosts.source.isLocal || !run.hosts.target.isLocal)
        ? run.config.transfer.batch
        : 1,
    executeBatch: async (actions, estimates, started, ended) => {
      const sends = actions.filter((action): action is SendAction => action.kind === "send");
      if (sends.length !== actions.length) throw new Error("backup batches only sends");
      return sendBatch(run, sends, estimates, wire, started, ended);
    },
    execute: async (action: Action, estimates) => {
      if (action.kind === "abort-resume")
        return run.ports.target.abortReceive(action.targetDataset);
      if (action.kind === "chain") return protectChains(run, action);
      if (action.kind !== "send") throw new Error(`backup cannot run a ${action.kind} action`);
      const outcome = await sendWithRetries(run, action, estimates.get(action) ?? null, wire);
      if (outcome.ok) run.summary.sent(action.subname, outcome.bytes ?? 0, action.snapshots);
      return outcome;
    },
  };
}
