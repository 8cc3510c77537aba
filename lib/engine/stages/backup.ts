// The backup stage: send what the target lacks, parents first; resume cut transfers; report
// conflicts and skip them. Each transfer is one OS pipeline from the source host to the target
// host; bytes never pass through JavaScript.

import { planBackup, type TokenInfo } from "../../plan/backup.ts";
import type { Action, Plan, SendAction } from "../../plan/types.ts";
import { runSend } from "../../run/actions.ts";
import type { Inventory } from "../../zfs/model.ts";
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

export function backupStage(run: Run): ChangingStage {
  /** chosen once per stage in preflight (tools asked once per host, not per dataset) */
  let wire: StageWire = NO_WIRE;
  let tokens: ReadonlyMap<string, TokenInfo> = new Map();
  let sourceTree: Inventory | null = null;
  return {
    stage: "backup",
    reads: ["source", "target"],
    changes: ["target"],
    preflight: async ({ source, target }) => {
      requireSourceRoot(run, source);
      await requireTargetParent(run, target);
      wire = await prepareWire(run);
    },
    plan: async ({ source, target }) => {
      tokens = await resumeTokens(run, target);
      sourceTree = source;
      return planBackup(source, target, run.config, tokens);
    },
    estimate: async (plan: Plan) => estimateSends(plan, sourceTree, tokens),
    execute: async (action: Action, estimates) => {
      if (action.kind === "abort-resume")
        return run.ports.target.abortReceive(action.targetDataset);
      if (action.kind !== "send") throw new Error(`backup cannot run a ${action.kind} action`);
      const outcome = await runSend(run.hosts.source, run.hosts.target, action, {
        signal: run.signal,
        expectedBytes: estimates.get(action) ?? null,
        onBytes: (bytes) => run.progress(action, bytes, estimates.get(action) ?? null),
        ...wire,
      });
      if (outcome.ok) run.summary.sent(action.subname, outcome.bytes ?? 0, action.snapshots);
      return outcome;
    },
  };
}
