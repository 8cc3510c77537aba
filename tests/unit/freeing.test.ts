// cleanup's bounded wait for a pool's asynchronous `freeing` to reach 0, on the output format
// of OpenZFS 2.1.11 (`zpool get -Hp freeing POOL` → `POOL\tfreeing\tBYTES\t-`).

import { expect, test } from "bun:test";
import { waitForFreeing } from "../../lib/engine/stages/cleanup.ts";
import type { Host, RunResult } from "../../lib/hosts/host.ts";
import { ZfsPort } from "../../lib/zfs/port.ts";

function poolHost(answers: string[]): Host & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    side: "source",
    name: "localhost",
    isLocal: true,
    calls,
    run: async (argv): Promise<RunResult> => {
      calls.push([...argv]);
      const value = answers[Math.min(calls.length - 1, answers.length - 1)] as string;
      return { code: 0, stdout: `tank\tfreeing\t${value}\t-\n`, stderr: "" };
    },
    wrap: (argv) => [...argv],
    ping: async () => {},
    close: async () => {},
  };
}

test("waits while the pool is still freeing, then reports it settled", async () => {
  const host = poolHost(["8388608", "4096", "0"]);
  expect(await waitForFreeing(new ZfsPort(host), "tank", 5000)).toBe(true);
  expect(host.calls).toHaveLength(3);
  expect(host.calls[0]).toEqual(["zpool", "get", "-H", "-p", "freeing", "tank"]);
});

test("gives up after the bound instead of waiting forever", async () => {
  const host = poolHost(["8388608"]);
  const started = Date.now();
  expect(await waitForFreeing(new ZfsPort(host), "tank", 400)).toBe(false);
  expect(Date.now() - started).toBeLessThan(1500);
});

test("output it cannot read ends the wait at once", async () => {
  const host = poolHost(["garbage"]);
  expect(await waitForFreeing(new ZfsPort(host), "tank", 5000)).toBe(false);
  expect(host.calls).toHaveLength(1);
});
