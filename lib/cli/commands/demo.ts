// `abgleich demo`: the whole cycle on the built-in simulator, in a temporary directory, through
// the very commands a user runs (same code paths; only `zfs` on PATH is the simulator).
// tree → snap → compare → backup → cleanup, then data changes and a second round that sends
// incrementals and skips the unchanged datasets.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { shellJoin, shellQuote } from "../../hosts/quote.ts";
import { localDateStamp } from "../../plan/naming.ts";
import { type Scenario, seedState, simMain, writeShims } from "../../sim/main.ts";
import { commandIo, EXIT_OK, type GlobalFlags } from "../io.ts";
import { backupCommand, cleanupCommand, snapCommand } from "./change.ts";
import { compareCommand } from "./compare.ts";
import { statusCommand } from "./status.ts";
import { treeCommand } from "./tree.ts";

const DEMO_CONFIG = `# abgleich demo: tank/data is backed up into backup/tank-data
source:
  zpool: tank
  prefix: data
  host: localhost
target:
  zpool: backup
  prefix: tank-data
  host: localhost
include_root: yes
keep_snapshots: 1
written_threshold: 1048576
check_diff: yes
suffix: _demo
digits: 2
ignore:
  - home/user/cache
`;

/** yesterday's snapshots, named as abgleich names them, so cleanup recognises them */
function demoScenario(now: Date): Scenario {
  const yesterdayDate = new Date(now.getTime() - 86_400_000);
  const yesterday = localDateStamp(yesterdayDate);
  const snap = (n: number, written: string, freed?: string) => ({
    name: `${yesterday}0${n}_demo`,
    written,
    freed,
  });
  return {
    now: Math.floor(yesterdayDate.getTime() / 1000),
    pools: [
      {
        name: "tank",
        size: "4G",
        datasets: [
          { name: "data", snapshots: [snap(1, "64K")] },
          { name: "data/home", snapshots: [snap(1, "2M"), snap(2, "512K", "1M")], written: "0" },
          {
            name: "data/home/user",
            snapshots: [snap(1, "24M"), snap(2, "3M", "16M")],
            written: "40K",
            changes: ["M /home/user/notes.txt"],
          },
          { name: "data/home/user/cache", written: "80M" },
          {
            name: "data/photos",
            compressratio: 1.02,
            snapshots: [snap(1, "96M")],
            written: "12M",
            freed: "30M",
          },
          {
            name: "data/vm",
            type: "volume",
            volsize: "256M",
            snapshots: [snap(1, "48M")],
            written: "4M",
            freed: "2M",
          },
        ],
      },
      { name: "backup", size: "8G", datasets: [] },
    ],
  };
}

export async function demoCommand(flags: GlobalFlags & { keep?: boolean }): Promise<number> {
  const io = commandIo(flags);
  const dir = mkdtempSync(join(tmpdir(), "abgleich-demo-"));
  const stateDir = join(dir, "state");
  const binDir = join(dir, "bin");
  const configPath = join(dir, "demo.yaml");
  const runStateDir = join(dir, "run-state");
  const lockDir = join(dir, "locks");
  const savedPath = process.env.PATH;
  const savedStateDir = process.env.ABGLEICH_STATE_DIR;
  const savedLockDir = process.env.ABGLEICH_LOCK_DIR;
  const step = (text: string) => io.print(`\n${io.style.paint(["bold", "magenta"], `▶ ${text}`)}`);
  const shell = (argv: string[]) => io.print(io.style.paint("dim", `$ ${argv.join(" ")}`));
  try {
    // the compiled binary serves the simulator itself (`abgleich sim …`); under bun, its source
    const compiled = import.meta.path.startsWith("/$bunfs");
    writeShims(binDir, stateDir, compiled ? [process.execPath, "sim"] : undefined);
    seedState(stateDir, demoScenario(new Date()));
    writeFileSync(configPath, DEMO_CONFIG);
    process.env.PATH = `${binDir}:${savedPath ?? ""}`;
    // the runs' state files (for `status`) belong to the demo too, and go with its directory
    process.env.ABGLEICH_STATE_DIR = runStateDir;
    // and so are its run locks: the simulated tank/data is not a real pool of that name, whose
    // runs (or a test's) must neither block the demo nor be blocked by it
    process.env.ABGLEICH_LOCK_DIR = lockDir;
    const run = { ...flags, yes: true };
    const cfg = "demo.yaml";
    const check = (code: number, what: string) => {
      if (code !== EXIT_OK) throw new Error(`demo: ${what} ended with exit code ${code}`);
    };

    io.print(io.style.paint("bold", "abgleich demo — a simulated ZFS source and target in"));
    io.print(`  ${dir}\n${io.style.paint("dim", DEMO_CONFIG)}`);

    step("1. The source tree: tank/data with yesterday's snapshots (home/user/cache is ignored)");
    shell(["abgleich", "tree", cfg, "source"]);
    check(await treeCommand(configPath, "source", flags), "tree");

    step("2. snap: snapshot what changed (written > threshold, zfs diff for small changes)");
    shell(["abgleich", "snap", cfg, "--yes"]);
    check(await snapCommand(configPath, run), "snap");

    step("3. compare: the target is still empty");
    shell(["abgleich", "compare", cfg]);
    check(await compareCommand(configPath, flags), "compare");

    step("4. backup: full sends of the oldest snapshot, then incrementals to the newest");
    shell(["abgleich", "backup", cfg, "--yes"]);
    check(await backupCommand(configPath, run), "backup");

    step(
      "5. cleanup: free source snapshots the target holds, keeping the newest (keep_snapshots: 1)",
    );
    shell(["abgleich", "cleanup", cfg, "--yes"]);
    check(await cleanupCommand(configPath, "source", run), "cleanup");

    step(
      "6. Time passes: photos gets 20 MiB of new files (6 MiB replaced), home/user a small edit, the rest stays as it was",
    );
    for (const argv of [
      ["sim-write", "--free", "6M", "tank/data/photos", "20M", "+ /photos/2026/beach.jpg"],
      ["sim-write", "tank/data/home/user", "8K", "M /home/user/todo.txt"],
    ]) {
      shell(["zfs(sim)", ...argv]);
      check(await simMain(["--state", stateDir, ...argv]), argv[0] as string);
    }

    step("7. Second round: only the changed datasets get a snapshot, and incrementals are sent");
    shell(["abgleich", "snap", cfg, "--yes"]);
    check(await snapCommand(configPath, run), "snap");
    shell(["abgleich", "backup", cfg, "--yes"]);
    check(await backupCommand(configPath, run), "backup");
    shell(["abgleich", "cleanup", cfg, "--yes"]);
    check(await cleanupCommand(configPath, "source", run), "cleanup");

    step("8. Both sides now");
    shell(["abgleich", "compare", cfg]);
    check(await compareCommand(configPath, flags), "compare");

    step(
      "9. status: is the backup fresh? (for monitoring: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)",
    );
    shell(["abgleich", "status", cfg]);
    check(await statusCommand(configPath, flags), "status");

    io.print(
      `\n${io.style.paint(["bold", "green"], "Demo complete.")} Try it on your own pools: see README.md.`,
    );
    if (flags.keep) {
      // this very abgleich (a source checkout has none on PATH), with the demo's state and locks
      const self = compiled
        ? [process.execPath]
        : [process.execPath, ...process.execArgv, process.argv[1] ?? ""];
      const env = [
        `PATH=${shellQuote(binDir)}:"$PATH"`,
        `ABGLEICH_STATE_DIR=${shellQuote(runStateDir)}`,
        `ABGLEICH_LOCK_DIR=${shellQuote(lockDir)}`,
      ].join(" ");
      io.print(`kept: ${dir}\n  try: ${env} ${shellJoin([...self, "tree", configPath])}`);
    }
    return EXIT_OK;
  } catch (error) {
    io.warn((error as Error).message);
    return 1;
  } finally {
    process.env.PATH = savedPath;
    if (savedStateDir === undefined) delete process.env.ABGLEICH_STATE_DIR;
    else process.env.ABGLEICH_STATE_DIR = savedStateDir;
    if (savedLockDir === undefined) delete process.env.ABGLEICH_LOCK_DIR;
    else process.env.ABGLEICH_LOCK_DIR = savedLockDir;
    if (!flags.keep) rmSync(dir, { recursive: true, force: true });
  }
}
