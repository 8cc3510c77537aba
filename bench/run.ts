// `bun run bench`: inventory parsing + compare planning on synthetic `zfs list` text, then
// transfer overhead (bench/transfer.ts) and commands per run (bench/commands.ts); see bench/README.md.
// Each case runs in a fresh process; the text is generated beforehand into files, as a run
// would receive it from zfs, so the figures are parse + plan only (and the text in memory).

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { syntheticList } from "./synthetic.ts";

const cases = [
  { datasets: 1_000, snapshots: 100 },
  { datasets: 10_000, snapshots: 100 },
];
const dir = mkdtempSync(join(tmpdir(), "abgleich-bench-"));
try {
  for (const c of cases) {
    const sourceFile = join(dir, `source-${c.datasets}.txt`);
    const targetFile = join(dir, `target-${c.datasets}.txt`);
    writeFileSync(sourceFile, syntheticList({ root: "tank", ...c }));
    // the target is behind: it holds the first 90 of each dataset's snapshots, same guids
    writeFileSync(targetFile, syntheticList({ root: "backup", ...c, keep: c.snapshots - 10 }));
    const child = Bun.spawnSync([
      process.execPath,
      join(import.meta.dir, "inventory.ts"),
      sourceFile,
      targetFile,
    ]);
    if (child.exitCode !== 0) throw new Error(child.stderr.toString());
    const result = JSON.parse(child.stdout.toString());
    console.log(
      `${c.datasets} datasets x ${c.snapshots} snapshots (${result.snapshotRows} snapshot rows per side): ` +
        `parse ${result.parseSourceMs} + ${result.parseTargetMs} ms, compare ${result.compareMs} ms, ` +
        `total ${result.totalMs} ms, peak RSS ${result.peakRssMiB} MiB`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// the issue-3 benchmarks, each in its own process (own peak RSS, own PATH with simulator shims)
for (const script of ["transfer.ts", "commands.ts"]) {
  console.log("");
  const child = Bun.spawnSync([process.execPath, join(import.meta.dir, script)], {
    stdout: "inherit",
    stderr: "inherit",
  });
  if (child.exitCode !== 0) process.exit(child.exitCode ?? 1);
}
