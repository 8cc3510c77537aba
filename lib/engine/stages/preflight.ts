// Checks before anything is planned or shown: a typo in a pool or prefix must be an error that
// says so, not "Nothing to do" every night, and a target that cannot receive must be found
// before the first transfer, not mid-stream.

import { rootOf } from "../../config/types.ts";
import type { Inventory, Side } from "../../zfs/model.ts";
import type { Run } from "../runner.ts";

/** a stage that cannot start: the message says what is wrong and how to fix it */
export class PreflightError extends Error {
  override readonly name = "PreflightError";
}

const where = (run: Run, side: Side) => `${run.hosts[side].name} (${side})`;

/** snap, backup and cleanup need the source root: a missing one is a typo, not an empty tree */
export function requireSourceRoot(run: Run, source: Inventory): void {
  if (source.datasets.length > 0) return;
  throw new PreflightError(
    `source root ${source.root} does not exist on ${where(run, "source")}: check source.zpool and source.prefix in ${run.config.file}`,
  );
}

/** backup: the target root exists, or its parent does, so the first full send can create it */
export async function requireTargetParent(run: Run, target: Inventory): Promise<void> {
  if (target.datasets.length > 0) return;
  const port = run.ports.target;
  const root = rootOf(run.config.target);
  const pool = run.config.target.zpool;
  if (root !== pool) {
    const parent = root.slice(0, root.lastIndexOf("/"));
    if (await port.exists(parent)) return;
    if (parent !== pool && (await port.exists(pool))) {
      throw new PreflightError(
        `target parent ${parent} does not exist on ${where(run, "target")}, so ${root} cannot be received: create it with \`zfs create -p -o mountpoint=none ${parent}\`, or check target.prefix in ${run.config.file}`,
      );
    }
  }
  throw new PreflightError(
    `target pool ${pool} does not exist on ${where(run, "target")} (or is not imported): check target.zpool in ${run.config.file}, or import the pool (\`zpool import ${pool}\`)`,
  );
}

/** cleanup compares with the target: a missing target root means nothing was backed up there */
export function requireTargetRoot(run: Run, target: Inventory): void {
  if (target.datasets.length > 0) return;
  throw new PreflightError(
    `target root ${target.root} does not exist on ${where(run, "target")}: nothing has been backed up there yet (run backup first), or check target.zpool and target.prefix in ${run.config.file}`,
  );
}
