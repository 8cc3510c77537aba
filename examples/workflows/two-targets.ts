// A workflow of your own: one source backed up to two targets, e.g. a local USB pool and a
// machine elsewhere. The config names the first target; the second is given here.
// Cleanup of the source runs only after both backups went well: `cleanup` checks its safety
// rules against the first target (README: Safety), and the second has just received the same
// snapshots, so nothing leaves the source that either target lacks.
//
//   abgleich run examples/workflows/two-targets.ts config.yaml --yes

import { defineWorkflow } from "abgleich";

export default defineWorkflow(async (run) => {
  const offsite = run.with({
    target: { host: "backup.example.org", zpool: "offsite", prefix: "laptop" },
  });

  await run.snap();
  if (run.failed) return;
  await run.backup();
  await offsite.backup();
  if (run.failed) {
    run.log("a backup failed: the source keeps its snapshots");
    return;
  }
  await run.cleanup("source");
});
