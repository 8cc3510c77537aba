// One measurement, run in its own process so peak RSS is its own: read two synthetic `zfs list`
// outputs (as a run reads ssh/zfs stdout), parse both sides and plan `compare`.
// usage: bun bench/inventory.ts SOURCE_FILE TARGET_FILE

import { readFileSync } from "node:fs";
import { configWithDefaults } from "../lib/config/types.ts";
import { compareTrees } from "../lib/plan/compare.ts";
import { parseList } from "../lib/zfs/list.ts";

const [sourceFile, targetFile] = process.argv.slice(2) as [string, string];
const sourceText = readFileSync(sourceFile, "latin1");
const targetText = readFileSync(targetFile, "latin1");

const config = configWithDefaults({ zpool: "tank" }, { zpool: "backup" }, { suffix: "_backup" });

const started = performance.now();
const source = parseList(sourceText, "source", "tank", "source (bench)");
const parsed = performance.now();
const target = parseList(targetText, "target", "backup", "target (bench)");
const parsedBoth = performance.now();
const comparison = compareTrees(source, target, config);
const done = performance.now();

const status = readFileSync("/proc/self/status", "utf8");
const peakKiB = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
console.log(
  JSON.stringify({
    rows: comparison.rows.length,
    snapshotRows: source.datasets.reduce((n, d) => n + d.snapshots.length, 0),
    parseSourceMs: Math.round(parsed - started),
    parseTargetMs: Math.round(parsedBoth - parsed),
    compareMs: Math.round(done - parsedBoth),
    totalMs: Math.round(done - started),
    peakRssMiB: Math.round(peakKiB / 1024),
  }),
);
