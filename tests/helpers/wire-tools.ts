// Pass-through stand-ins for the wire tools a machine lacks (a fresh machine has none of zstd,
// lz4, mbuffer, pv; CI installs them). The tests that use these check how the stages are
// built, grouped, quoted and reported, not what the tool does to the bytes, so a `cat` under
// the tool's name runs in its place, and the test says so on its output.

import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { WireTool } from "../../lib/run/wire.ts";

/**
 * Writes an executable `cat` named after each of `tools` missing from PATH into `dir` (which
 * the caller puts first on PATH) and prints which; returns those stood in for.
 */
export function standInMissingTools(
  dir: string,
  tools: readonly WireTool[],
  who: string,
): WireTool[] {
  const missing = tools.filter((tool) => Bun.which(tool) === null);
  for (const tool of missing) {
    writeFileSync(
      join(dir, tool),
      "#!/bin/sh\n# stand-in: passes the stream through unchanged\nexec cat\n",
    );
    chmodSync(join(dir, tool), 0o755);
  }
  if (missing.length > 0)
    console.log(
      `${who}: ${missing.join(", ")} not installed; a pass-through stand-in (cat) runs in its place, ` +
        "so the stream is not compressed here (`apt-get install -y zstd lz4 mbuffer pv` for the real tools)",
    );
  return missing;
}
