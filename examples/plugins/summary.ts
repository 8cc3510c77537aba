// A plugin of your own: posts a short summary of every run as JSON to a URL.
//
//   plugins:
//     - path: ./plugins/summary.ts
//       options: { url: "https://example.org/abgleich-runs" }

import { definePlugin, PluginOptionError, type RunSummary } from "abgleich";

interface Options {
  url: string;
}

export default definePlugin<Options>({
  name: "summary",
  options(raw) {
    if (typeof raw.url !== "string" || !/^https?:\/\//.test(raw.url)) {
      throw new PluginOptionError(["url"], "must be an http(s) URL");
    }
    return { url: raw.url };
  },
  setup(hooks, { options, warn }) {
    hooks.done.tapPromise("summary", async (summary: RunSummary) => {
      const body = {
        ok: summary.exitCode === 0,
        seconds: (summary.finishedAt.getTime() - summary.startedAt.getTime()) / 1000,
        stages: summary.stages.map((s) => `${s.stage}: ${s.outcome.status}`),
        snapshotsMade: summary.datasets.reduce((n, d) => n + d.snapshotsMade.length, 0),
        bytesSent: summary.datasets.reduce((n, d) => n + d.bytesSent, 0),
      };
      try {
        const response = await fetch(options.url, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
        if (!response.ok) warn(`${options.url} answered ${response.status}`);
      } catch (error) {
        // a summary that cannot be posted must not fail the backup
        warn(`could not post the summary: ${(error as Error).message}`);
      }
    });
  },
});
