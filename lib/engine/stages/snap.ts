// The snap stage: decide which source datasets changed (rules of "When is a dataset changed?",
// `zfs diff` only where the cheaper rules could not decide), then take all new snapshots of the
// pool in one call. It needs only the source: snapshots are taken while the backup host is away.

import { CommandTimeoutError } from "../../hosts/host.ts";
import { decideChanges, planSnap } from "../../plan/snap.ts";
import type { Action } from "../../plan/types.ts";
import { mapLimit, QUERY_CONCURRENCY } from "../../run/limit.ts";
import { ZfsCommandError } from "../../zfs/errors.ts";
import type { ChangingStage, Run } from "../runner.ts";
import { requireSourceRoot } from "./preflight.ts";

export function snapStage(run: Run): ChangingStage {
  const port = run.ports.source;
  return {
    stage: "snap",
    reads: ["source"],
    changes: ["source"],
    preflight: async ({ source }) => requireSourceRoot(run, source),
    plan: async ({ source }) => {
      const undecided = decideChanges(source, run.config).decisions.flatMap((d) =>
        d.changed === "diff" && d.newest !== null
          ? [{ subname: d.subname, snapshot: `${d.dataset}@${d.newest}` }]
          : [],
      );
      // rule 8: one `zfs diff` per undecided dataset, a few at a time over the shared connection.
      // A diff zfs refused or that timed out decides nothing: its dataset has written bytes, so
      // it is snapshotted, as if changed (a missed change would be a backup missed). After one
      // timeout the rest are not asked (each would wait as long). A host that went down, a
      // cancel or anything else still ends the stage.
      let timedOut = false;
      const changed = await mapLimit(undecided, QUERY_CONCURRENCY, async ({ snapshot }) => {
        if (timedOut) return true;
        try {
          return await port.changedSince(snapshot);
        } catch (error) {
          if (run.signal.aborted) throw error;
          if (error instanceof CommandTimeoutError) timedOut = true;
          else if (!(error instanceof ZfsCommandError)) throw error;
          run.ui.warn(
            `zfs diff ${snapshot} failed, so it is snapshotted as changed${timedOut ? ", as is every dataset not yet asked" : ""}: ${error.message.split("\n")[0]}`,
          );
          return true;
        }
      });
      const diffs = new Map(undecided.map((d, i) => [d.subname, changed[i] as boolean]));
      return planSnap(source, run.config, diffs, run.namer(), run.options.now());
    },
    execute: async (action: Action) => {
      if (action.kind !== "snapshot") throw new Error(`snap cannot run a ${action.kind} action`);
      const outcome = await port.snapshot(action.snapshots.map((s) => `${s.dataset}@${s.name}`));
      if (outcome.ok) for (const s of action.snapshots) run.summary.snapshotMade(s.subname, s.name);
      return outcome;
    },
  };
}
