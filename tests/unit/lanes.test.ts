// How the runner forms lanes and batches (runInLanes): what waits for what, which actions may
// share a batch, a fair share per lane, and the actions a batch did not run going again.

import { describe, expect, test } from "bun:test";
import { dependencies, runInLanes } from "../../lib/engine/runner.ts";
import type { Action, SendAction } from "../../lib/plan/types.ts";
import { newChainEntry } from "../helpers/chain.ts";

const send = (subname: string, mode: SendAction["mode"] = "full"): SendAction => ({
  kind: "send",
  subname,
  sourceDataset: subname === "" ? "src/data" : `src/data/${subname}`,
  targetDataset: subname === "" ? "dst/backup" : `dst/backup/${subname}`,
  mode,
  from: mode === "full" ? null : "s1",
  to: "s2",
  snapshots: ["s2"],
  token: null,
  raw: false,
  fromBookmark: false,
  keepUnmounted: false,
});
const chain = (subnames: string[]): Action => ({
  kind: "chain",
  entries: subnames.map((subname) =>
    newChainEntry(subname, { source: "src/data", target: "dst/backup" }, "s2"),
  ),
});
const nameOf = (action: Action) => (action.kind === "send" ? action.subname || "/" : action.kind);

/** run `actions` and record the batches, in the order they started */
async function batches(
  actions: Action[],
  lanes: number,
  size: number,
  notRun: (batch: Action[]) => Action[] = () => [],
): Promise<string[][]> {
  const seen: string[][] = [];
  await runInLanes(
    actions,
    lanes,
    (action) => (action.kind === "send" ? size : 1),
    async (batch) => {
      seen.push(batch.map(nameOf));
      await Bun.sleep(1);
      return notRun(batch);
    },
    () => false,
  );
  return seen;
}

describe("dependencies", () => {
  test("one after another, or by the tree with chain actions as barriers", () => {
    const actions = [send(""), send("a"), send("a/x"), send("b"), chain(["a", "b"]), send("c")];
    expect(dependencies(actions, false)).toEqual([[], [0], [1], [2], [3], [4]]);
    expect(dependencies(actions, true)).toEqual([[], [0], [1, 0], [0], [0, 1, 2, 3], [4, 0]]);
  });
});

describe("runInLanes", () => {
  test("one lane: the root alone, then its children in batches of at most the size", async () => {
    const actions = [send(""), ...["a", "b", "c", "d", "e"].map((s) => send(s))];
    expect(await batches(actions, 1, 3)).toEqual([["/"], ["a", "b", "c"], ["d", "e"]]);
    expect(await batches(actions, 1, 1)).toEqual([["/"], ["a"], ["b"], ["c"], ["d"], ["e"]]);
  });

  test("one lane: a batch never holds an action that waits for another of it, nor skips one", async () => {
    // a's incremental follows its full; a child follows its parent; the chain is no send
    const actions = [
      send("a"),
      send("a", "incremental"),
      send("b"),
      send("b/x"),
      send("c"),
      chain(["a", "b", "c"]),
      send("d"),
    ];
    expect(await batches(actions, 1, 16)).toEqual([
      ["a"],
      ["a", "b"],
      ["b/x", "c"],
      ["chain"],
      ["d"],
    ]);
  });

  test("several lanes: each takes a fair share of the ready ones", async () => {
    const children = Array.from({ length: 10 }, (_, i) => send(`d${i}`));
    const seen = await batches([send(""), ...children], 4, 16);
    expect(seen[0]).toEqual(["/"]);
    // 10 ready for 4 lanes: 3, 3, 2, 2
    expect(seen.slice(1).map((batch) => batch.length)).toEqual([3, 3, 2, 2]);
    expect(seen.slice(1).flat().sort()).toEqual(children.map(nameOf).sort());
  });

  test("the actions a batch did not run wait again and run later", async () => {
    const actions = ["a", "b", "c", "d"].map((s) => send(s));
    let first = true;
    const seen = await batches(actions, 1, 16, (batch) => {
      if (!first) return [];
      first = false;
      return batch.slice(2); // c and d did not run
    });
    expect(seen).toEqual([
      ["a", "b", "c", "d"],
      ["c", "d"],
    ]);
  });
});
