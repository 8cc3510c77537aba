import { expect, test } from "bun:test";
import { mapLimit } from "../../lib/run/limit.ts";

test("mapLimit keeps input order and never runs more than the limit at once", async () => {
  let running = 0;
  let most = 0;
  const results = await mapLimit([5, 1, 4, 2, 3, 0, 6], 3, async (n) => {
    running++;
    most = Math.max(most, running);
    await Bun.sleep(n * 3);
    running--;
    return n * 10;
  });
  expect(results).toEqual([50, 10, 40, 20, 30, 0, 60]);
  expect(most).toBe(3);
});

test("mapLimit on no items does nothing", async () => {
  expect(await mapLimit([], 4, async () => 1)).toEqual([]);
});

test("a failing item rejects the whole map", async () => {
  await expect(
    mapLimit([1, 2], 2, async (n) => {
      if (n === 2) throw new Error("two failed");
      return n;
    }),
  ).rejects.toThrow("two failed");
});

test("mapLimit starts nothing new after the first failure, and rejects with it", async () => {
  const started: number[] = [];
  const failure = new Error("host is not up: source");
  const result = mapLimit([0, 1, 2, 3, 4, 5, 6, 7], 2, async (n) => {
    started.push(n);
    await Bun.sleep(5);
    if (n === 1) throw failure;
    return n;
  });
  expect(await result.catch((caught: unknown) => caught)).toBe(failure);
  await Bun.sleep(30);
  // 0 and 1 ran together; once 1 failed, at most the other worker had taken one more item
  expect(started.length).toBeLessThanOrEqual(3);
});
