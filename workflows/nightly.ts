// Bundled workflow `nightly`: snap → backup → cleanup source, stopping at the first stage that
// does not end well (a failed backup must not be followed by a cleanup). Notifications come
// from the `notify` plugin in the config; without one, the summary of a run that went well goes
// to the log (a run that did not, the command prints its summary itself: once is enough).
//
//   abgleich run nightly config.yaml --yes

import { defineWorkflow, summaryText } from "../lib/engine/api.ts";

export default defineWorkflow(async (run) => {
  const notifies = run.config.plugins.some((entry) => entry.name === "notify");
  if (!notifies)
    run.hooks.done.tap("nightly", (summary) => {
      if (summary.exitCode === 0) run.log(summaryText(summary));
    });

  for (const stage of [() => run.snap(), () => run.backup(), () => run.cleanup("source")]) {
    await stage();
    if (run.failed) return;
  }
}, "snap, backup and cleanup source, stopping at the first stage that fails");
