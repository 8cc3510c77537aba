// A second process for tests/unit/lock.test.ts: run locks are between processes, so a test needs
// another one to hold, lose (kill -9) or race for a lock.
//
//   bun lock-child.ts hold DIR KEY MECHANISM   takes the lock, prints "held", releases when stdin ends
//   bun lock-child.ts exit DIR KEY MECHANISM   takes the lock, prints "held", exits without release()
//   bun lock-child.ts race DIR KEY MECHANISM MS
//     prints "ready", waits for DIR/go, then for MS ms tries the lock over and over (waitMs 0); while it holds it,
//     it must be the only one inside: it creates DIR/inside with O_EXCL and removes it again.
//     Prints {"held":n,"busy":n,"overlaps":n,"starts":[ms,…]} as JSON (starts: when it took it).

import { closeSync, constants, existsSync, openSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { acquireRunLock, LockBusyError, type LockMechanism } from "../../lib/engine/lock.ts";

const [mode, dir, key, mechanismArg, msArg] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string | undefined,
];
const mechanism = mechanismArg as LockMechanism;
const request = { key, description: `lock-child ${mode}`, waitMs: 0, dir, mechanism };

if (mode === "hold" || mode === "exit") {
  const lock = await acquireRunLock(request);
  console.log("held");
  if (mode === "exit") process.exit(0);
  for await (const _ of process.stdin) {
    // until the test closes stdin
  }
  lock.release();
} else if (mode === "race") {
  const go = join(dir, "go");
  console.log("ready");
  while (!existsSync(go)) await Bun.sleep(1);
  const inside = join(dir, "inside");
  const until = Date.now() + Number(msArg);
  const counts = { held: 0, busy: 0, overlaps: 0, starts: [] as number[] };
  while (Date.now() < until) {
    let lock: Awaited<ReturnType<typeof acquireRunLock>>;
    try {
      lock = await acquireRunLock(request);
    } catch (error) {
      if (!(error instanceof LockBusyError)) throw error;
      counts.busy++;
      continue;
    }
    counts.held++;
    let mine = false;
    try {
      closeSync(openSync(inside, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY));
      mine = true;
    } catch {
      counts.overlaps++; // the other process is inside too
    }
    counts.starts.push(performance.timeOrigin + performance.now());
    await Bun.sleep(1); // hold it a moment, so an overlap would show
    if (mine) unlinkSync(inside);
    lock.release();
    await Bun.sleep(Math.random() * 2); // as a next run would come: not always in the same µs
  }
  console.log(JSON.stringify(counts));
} else {
  throw new Error(`lock-child: unknown mode ${mode}`);
}
