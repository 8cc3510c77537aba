// The snap stage: decide which source datasets changed (rules of "When is a dataset changed?",
// `zfs diff` only where the cheaper rules could not decide), then take all new snapshots of the
// pool in one call. It needs only the source: snapshots are taken while the backup host is away.

import { decideChanges, planSnap } from "../../plan/snap.ts";
import type { Action } from "../../plan/types.ts";
import { commandFailure, runSnapshot } from "../../run/actions.ts";
import { mapLimit, QUERY_CONCURRENCY } from "../../run/limit.ts";
import { zfsDiff } from "../../zfs/commands.ts";
import type { ChangingStage, Run } from "../runner.ts";
import { requireSourceRoot } from "./preflight.ts";

/** rule 8: does `zfs diff DATASET@NEWEST` print anything? One call per undecided dataset. */
async function diffs(
  run: Run,
  targets: { subname: string; dataset: string; newest: string }[],
): Promise<Map<string, boolean>> {
  const host = run.hosts.source;
  const changed = await mapLimit(targets, QUERY_CONCURRENCY, async ({ dataset, newest }) => {
    const argv = zfsDiff(`${dataset}@${newest}`);
    const result = await host.run(argv);
    if (result.code !== 0) throw new Error(commandFailure(host, argv, result.code, result.stderr));
    return result.stdout.trim() !== "";
  });
  return new Map(targets.map((target, i) => [target.subname, changed[i] as boolean]));
}

export function snapStage(run: Run): ChangingStage {
  return {
    stage: "snap",
    reads: ["source"],
    changes: ["source"],
    preflight: async ({ source }) => requireSourceRoot(run, source),
    plan: async ({ source }) => {
      const undecided = decideChanges(source, run.config).decisions.flatMap((d) =>
        d.changed === "diff" && d.newest !== null
          ? [{ subname: d.subname, dataset: d.dataset, newest: d.newest }]
          : [],
      );
      return planSnap(
        source,
        run.config,
        await diffs(run, undecided),
        run.namer(),
        run.options.now(),
      );
    },
    execute: async (action: Action) => {
      if (action.kind !== "snapshot") throw new Error(`snap cannot run a ${action.kind} action`);
      const outcome = await runSnapshot(run.hosts.source, action);
      if (outcome.ok) for (const s of action.snapshots) run.summary.snapshotMade(s.subname, s.name);
      return outcome;
    },
  };
}
