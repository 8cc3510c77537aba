// transfer.parallel: several datasets at once, parents before children, every byte arriving.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { configYaml, createSimEnv, jsonEvents, type SimEnv } from "../helpers/sim-env.ts";

const day = (n: number) => `202601010${n}`;
const CHILDREN = Array.from({ length: 6 }, (_, i) => `c${i}`);

let env: SimEnv;

beforeAll(() => {
  env = createSimEnv();
  env.seed({
    now: 1_767_225_600,
    pools: [
      {
        name: "src",
        size: "2G",
        datasets: [
          { name: "data", snapshots: [{ name: day(1), written: "1M" }] },
          ...CHILDREN.map((child) => ({
            name: `data/${child}`,
            snapshots: [
              { name: day(1), written: "3M" },
              { name: day(2), written: "1M" },
            ],
          })),
          { name: "data/c0/deep", snapshots: [{ name: day(1), written: "1M" }] },
        ],
      },
      { name: "dst", size: "2G" },
    ],
  });
});

afterAll(() => env?.remove());

test("parallel: 4 sends up to four datasets at once, a parent's streams before its children's", async () => {
  const config = env.writeConfig(
    configYaml(
      { zpool: "src", prefix: "data" },
      { zpool: "dst", prefix: "backup" },
      "transfer:\n  parallel: 4\n",
    ),
  );
  const run = await env.cli(["backup", config, "--yes", "--json"]);
  expect(run.code).toBe(0);
  const events = jsonEvents(run.stdout);
  // how many transfers were running at each start: at most four, and more than one at some point
  const running = new Set<string>();
  let most = 0;
  const order: string[] = [];
  for (const event of events) {
    const action = String(event.action);
    if (event.event === "action-start" && action.includes(" send ")) {
      running.add(action);
      most = Math.max(most, running.size);
      order.push(`start ${action}`);
    }
    if (event.event === "action-done" && running.delete(action)) order.push(`done ${action}`);
  }
  expect(most).toBeGreaterThan(1);
  expect(most).toBeLessThanOrEqual(4);
  // the root is received before any child starts; c0 before c0/deep
  const firstChild = order.findIndex((line) => line.startsWith("start") && line.includes("/c"));
  const rootDone = order.findIndex(
    (line) => line.startsWith("done") && line.includes("src/data → "),
  );
  expect(rootDone).toBeGreaterThanOrEqual(0);
  expect(rootDone).toBeLessThan(firstChild);
  const deepStart = order.findIndex((l) => l.startsWith("start") && l.includes("c0/deep"));
  const c0Done = order.findLastIndex((l) => l.startsWith("done") && l.includes("src/data/c0@"));
  expect(c0Done).toBeLessThan(deepStart);
  // everything arrived, the same snapshots as on the source
  for (const child of CHILDREN) {
    expect(env.snapshots(`dst/backup/${child}`)).toEqual([day(1), day(2)]);
    expect(env.guid(`dst/backup/${child}@${day(2)}`)).toBe(env.guid(`src/data/${child}@${day(2)}`));
  }
  expect(env.snapshots("dst/backup/c0/deep")).toEqual([day(1)]);
}, 120_000);
