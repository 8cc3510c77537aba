// How a failed transfer is reported: the failing command, its exit code, its stderr, and what
// that means when ssh died without a word.

import { expect, test } from "bun:test";
import type { Host } from "../../lib/hosts/host.ts";
import { LocalHost } from "../../lib/hosts/local.ts";
import type { SendAction } from "../../lib/plan/types.ts";
import { runSend } from "../../lib/run/actions.ts";

const action: SendAction = {
  kind: "send",
  subname: "",
  sourceDataset: "tank/data",
  targetDataset: "backup/data",
  mode: "full",
  from: null,
  to: "s1",
  snapshots: ["s1"],
  token: null,
  raw: false,
  fromBookmark: false,
  keepUnmounted: false,
};

/** a "remote" host whose commands are stand-ins run locally */
function fakeRemote(side: "source" | "target", stand: string[]): Host {
  const local = new LocalHost(side);
  return {
    ...local,
    side,
    name: "backup-host",
    isLocal: false,
    wrap: () => stand,
    run: local.run,
    ping: local.ping,
    close: local.close,
  };
}

test("ssh dying silently on the target is named as a lost connection", async () => {
  const source = fakeRemote("source", ["head", "-c", "1000000", "/dev/zero"]);
  const target = fakeRemote("target", ["sh", "-c", "head -c 1000 >/dev/null; exit 255"]);
  const outcome = await runSend(source, target, action, {
    signal: new AbortController().signal,
    onBytes: () => {},
  });
  expect(outcome.ok).toBe(false);
  expect(outcome.error).toContain("zfs receive -s -u backup/data");
  expect(outcome.error).toContain("exit code: 255");
  expect(outcome.error).toContain("the ssh connection to the target (backup-host) was lost");
});

test("a receive that fails with a message is reported with it, and no lost-connection guess", async () => {
  const source = fakeRemote("source", ["head", "-c", "1000", "/dev/zero"]);
  const target = fakeRemote("target", [
    "sh",
    "-c",
    "cat >/dev/null; echo 'cannot receive new filesystem stream: out of space' >&2; exit 1",
  ]);
  const outcome = await runSend(source, target, action, {
    signal: new AbortController().signal,
    onBytes: () => {},
  });
  expect(outcome.ok).toBe(false);
  expect(outcome.error).toContain("exit code: 1");
  expect(outcome.error).toContain("out of space");
  expect(outcome.error).not.toContain("was lost");
});
