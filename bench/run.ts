// `bun run bench`: the whole `abgleich compare` on large synthetic trees (bench/inventory.ts),
// then transfer overhead (bench/transfer.ts) and commands per run (bench/commands.ts); see
// bench/README.md. Each runs in its own process (own peak RSS, own PATH with shims).

import { join } from "node:path";

for (const [index, script] of ["inventory.ts", "transfer.ts", "commands.ts"].entries()) {
  if (index > 0) console.log("");
  const child = Bun.spawnSync([process.execPath, join(import.meta.dir, script)], {
    stdout: "inherit",
    stderr: "inherit",
  });
  if (child.exitCode !== 0) process.exit(child.exitCode ?? 1);
}
