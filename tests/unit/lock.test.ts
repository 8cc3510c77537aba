// Run locks (lib/engine/lock.ts): one run per key at a time, refused with the holder named or
// waited for; never two holders, even when runs start at the same instant; a holder killed with
// SIGKILL blocks nobody. Every case runs on both mechanisms: flock (the normal one) and the
// claim files used where no libc loads.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  acquireRunLock,
  LockBusyError,
  type LockMechanism,
  lockDirectory,
  lockMechanism,
  lockTestHooks,
  type RunLock,
  type RunLockRequest,
} from "../../lib/engine/lock.ts";
import { parseWaitDuration } from "../../lib/engine/wait.ts";

const CHILD = resolve(import.meta.dir, "../helpers/lock-child.ts");
const KEY = "backup target localhost:backup/tank-data";
const root = mkdtempSync(join(tmpdir(), "abgleich-lock-"));
let dirs = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

function freshDir(): string {
  return join(root, String(dirs++));
}

/** a child process (tests/helpers/lock-child.ts) and its stdout, line by line */
function spawnChild(args: string[], prefix: string[] = []) {
  const child = Bun.spawn([...prefix, process.execPath, CHILD, ...args], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  return {
    child,
    /** the next line, "" at the end */
    async line(): Promise<string> {
      for (;;) {
        const end = buffered.indexOf("\n");
        if (end >= 0) {
          const line = buffered.slice(0, end);
          buffered = buffered.slice(end + 1);
          return line;
        }
        const { value, done } = await reader.read();
        if (done) return buffered;
        buffered += decoder.decode(value);
      }
    },
  };
}

/** a child process holding the lock (mode "exit": about to exit without releasing it) */
async function holderChild(
  mode: "hold" | "exit",
  dir: string,
  mechanism: LockMechanism,
  prefix: string[] = [],
) {
  const { child, line } = spawnChild([mode, dir, KEY, mechanism], prefix);
  expect(await line()).toBe("held");
  return child;
}

test("this machine locks with flock (libc loads through bun:ffi)", () => {
  expect(lockMechanism()).toBe("flock");
});

describe.each(["flock", "claims"] as const)("%s", (mechanism) => {
  const request = (dir: string, extra: Partial<RunLockRequest> = {}): RunLockRequest => ({
    key: KEY,
    description: "abgleich backup /etc/abgleich/nightly.yaml",
    waitMs: 0,
    dir,
    mechanism,
    ...extra,
  });

  test("a second acquire is refused and names the holder; release frees it", async () => {
    const dir = freshDir();
    const before = Date.now();
    const first = await acquireRunLock(request(dir));
    const error = await acquireRunLock(request(dir, { description: "second" })).catch((e) => e);
    expect(error).toBeInstanceOf(LockBusyError);
    expect(error.holder.pid).toBe(process.pid);
    expect(error.holder.description).toBe("abgleich backup /etc/abgleich/nightly.yaml");
    expect(error.holder.started.getTime()).toBeGreaterThanOrEqual(before - 1);
    expect(error.holder.started.getTime()).toBeLessThanOrEqual(Date.now());
    expect(error.waitedMs).toBe(0);
    expect(error.message).toMatch(
      new RegExp(
        `^${KEY} is in use by pid ${process.pid} \\(abgleich backup /etc/abgleich/nightly.yaml\\) ` +
          "since \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d[+-]\\d\\d:\\d\\d; wait for it with --wait",
      ),
    );
    first.release();
    const second = await acquireRunLock(request(dir));
    first.release(); // idempotent: does not touch the lock the second one holds now
    await expect(acquireRunLock(request(dir))).rejects.toBeInstanceOf(LockBusyError);
    second.release();
    expect(readdirSync(dir)).toEqual([]); // nothing left behind
  });

  test("a holder in another process is named with its pid and start time", async () => {
    const dir = freshDir();
    const before = Date.now();
    const child = await holderChild("hold", dir, mechanism);
    const error = await acquireRunLock(request(dir)).catch((e) => e);
    expect(error).toBeInstanceOf(LockBusyError);
    expect(error.holder.pid).toBe(child.pid);
    expect(error.holder.description).toBe("lock-child hold");
    expect(error.holder.started.getTime()).toBeGreaterThanOrEqual(before - 1);
    expect(error.message).toContain(`pid ${child.pid} (lock-child hold) since `);
    child.stdin.end(); // the child releases and ends
    expect(await child.exited).toBe(0);
    (await acquireRunLock(request(dir))).release();
  });

  test("waiting takes the lock once the holder releases it", async () => {
    const dir = freshDir();
    const first = await acquireRunLock(request(dir));
    const begun = Date.now();
    // held long enough that the claims mechanism, too, is past its first few quick tries
    // (a holder that withdraws at once is a passer-by, not one to wait for)
    setTimeout(() => first.release(), 400);
    const told: string[] = [];
    const second = await acquireRunLock(
      request(dir, { waitMs: Number.POSITIVE_INFINITY, onWait: (text) => told.push(text) }),
    );
    expect(Date.now() - begun).toBeGreaterThanOrEqual(390);
    expect(Date.now() - begun).toBeLessThan(1500);
    // said once, naming the holder, while it waited
    expect(told).toHaveLength(1);
    expect(told[0]).toMatch(
      new RegExp(
        `is in use by pid ${process.pid} \\(.*\\) since .*: waiting for it; Ctrl-C stops waiting$`,
      ),
    );
    second.release();
    // a lock that is free, or a run that does not wait, says nothing
    const quiet: string[] = [];
    const third = await acquireRunLock(request(dir, { onWait: (text) => quiet.push(text) }));
    await acquireRunLock(request(dir, { onWait: (text) => quiet.push(text) })).catch(() => {});
    third.release();
    expect(quiet).toEqual([]);
  });

  test("a bounded wait that runs out is a LockBusyError that says how long it waited", async () => {
    const dir = freshDir();
    const first = await acquireRunLock(request(dir));
    const begun = Date.now();
    const error = await acquireRunLock(request(dir, { waitMs: 150 })).catch((e) => e);
    expect(error).toBeInstanceOf(LockBusyError);
    expect(error.waitedMs).toBeGreaterThanOrEqual(150);
    expect(Date.now() - begun).toBeLessThan(1000);
    expect(error.message).toContain("is still in use after waiting");
    expect(error.message).toContain(`pid ${process.pid}`);
    first.release();
  });

  test("the signal cancels a wait, with its reason", async () => {
    const dir = freshDir();
    const first = await acquireRunLock(request(dir));
    const controller = new AbortController();
    const reason = new Error("interrupted");
    setTimeout(() => controller.abort(reason), 50);
    const begun = Date.now();
    const waiting = acquireRunLock(
      request(dir, { waitMs: Number.POSITIVE_INFINITY, signal: controller.signal }),
    );
    await expect(waiting).rejects.toBe(reason);
    expect(Date.now() - begun).toBeLessThan(500);
    // an aborted signal does not even try
    await expect(acquireRunLock(request(dir, { signal: controller.signal }))).rejects.toBe(reason);
    first.release();
    (await acquireRunLock(request(dir))).release(); // the cancelled waiter left nothing behind
  });

  test("different keys do not block each other", async () => {
    const dir = freshDir();
    const target = await acquireRunLock(request(dir));
    const source = await acquireRunLock(request(dir, { key: "snap source localhost:tank/data" }));
    target.release();
    source.release();
  });

  test("a holder killed with SIGKILL does not block the next run", async () => {
    const dir = freshDir();
    const child = await holderChild("hold", dir, mechanism);
    await expect(acquireRunLock(request(dir))).rejects.toBeInstanceOf(LockBusyError);
    child.kill("SIGKILL");
    expect(await child.exited).not.toBe(0);
    const begun = Date.now();
    const next = await acquireRunLock(request(dir)); // waitMs 0: at once
    expect(Date.now() - begun).toBeLessThan(200);
    next.release();
    expect(readdirSync(dir)).toEqual([]); // the dead holder's file is gone too
  });

  test("a normal exit without release() frees the lock and leaves no file", async () => {
    const dir = freshDir();
    const child = await holderChild("exit", dir, mechanism);
    expect(await child.exited).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
    (await acquireRunLock(request(dir))).release();
  });

  test("two processes racing for the same key never both hold it", async () => {
    const dir = freshDir();
    (await acquireRunLock(request(dir))).release(); // creates dir
    const racers = [0, 1].map(() => spawnChild(["race", dir, KEY, mechanism, "400"]));
    for (const racer of racers) expect(await racer.line()).toBe("ready"); // started, wait for go
    writeFileSync(join(dir, "go"), "");
    const results = await Promise.all(
      racers.map(async (racer) => {
        const counts = JSON.parse(await racer.line());
        expect(await racer.child.exited).toBe(0);
        return counts;
      }),
    );
    for (const counts of results) {
      expect(counts.overlaps).toBe(0);
      expect(counts.held).toBeGreaterThan(0);
    }
    // it was a race: the lock went back and forth between them, not to one and then the other
    const turns = results
      .flatMap((counts, racer) => counts.starts.map((at: number) => ({ at, racer })))
      .sort((a, b) => a.at - b.at);
    const switches = turns.filter((turn, i) => i > 0 && turn.racer !== turns[i - 1]!.racer);
    expect(switches.length).toBeGreaterThan(2);
  });
});

// One run may load libc and another not (bun:ffi needs the JIT: BUN_JSC_useJIT=0, a unit with
// MemoryDenyWriteExecute=): each must still see the other's lock.
describe.each([
  ["flock", "claims"],
  ["claims", "flock"],
] as const)("held by %s, asked for by %s", (holding, asking) => {
  const request = (dir: string): RunLockRequest => ({
    key: KEY,
    description: "second",
    waitMs: 0,
    dir,
    mechanism: asking,
  });

  test("refused naming the holder, then taken once it is free", async () => {
    const dir = freshDir();
    const child = await holderChild("hold", dir, holding);
    const error = await acquireRunLock(request(dir)).catch((e) => e);
    expect(error).toBeInstanceOf(LockBusyError);
    expect(error.holder.pid).toBe(child.pid);
    expect(error.holder.description).toBe("lock-child hold");
    child.stdin.end();
    expect(await child.exited).toBe(0);
    const lock = await acquireRunLock(request(dir));
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  test("a holder killed with SIGKILL blocks nobody", async () => {
    const dir = freshDir();
    const child = await holderChild("hold", dir, holding);
    child.kill("SIGKILL");
    await child.exited;
    (await acquireRunLock(request(dir))).release();
  });

  test("racing each other, they never both hold it", async () => {
    const dir = freshDir();
    (await acquireRunLock(request(dir))).release(); // creates dir
    const racers = [holding, asking].map((m) => spawnChild(["race", dir, KEY, m, "400"]));
    for (const racer of racers) expect(await racer.line()).toBe("ready");
    writeFileSync(join(dir, "go"), "");
    for (const racer of racers) {
      const counts = JSON.parse(await racer.line());
      expect(await racer.child.exited).toBe(0);
      expect(counts.overlaps).toBe(0);
      expect(counts.held).toBeGreaterThan(0);
    }
  });
});

describe("a claims run and a flock lock file left behind", () => {
  const lockFile = (dir: string) =>
    join(dir, `${new Bun.CryptoHasher("sha256").update(KEY).digest("hex").slice(0, 32)}.lock`);
  const request = (dir: string) => ({
    key: KEY,
    description: "claims",
    waitMs: 0,
    dir,
    mechanism: "claims" as const,
  });

  test("a half-written one (a crash, a power loss) holds nothing", async () => {
    const dir = freshDir();
    (await acquireRunLock(request(dir))).release(); // creates dir
    writeFileSync(lockFile(dir), '{"pid": 4');
    (await acquireRunLock(request(dir))).release();
  });

  test("another machine's holds, and the refusal names that machine", async () => {
    const dir = freshDir();
    (await acquireRunLock(request(dir))).release();
    const started = new Date().toISOString();
    const holder = { pid: 4242, started, description: "abgleich backup", host: "elsewhere" };
    writeFileSync(lockFile(dir), JSON.stringify(holder));
    const error = await acquireRunLock(request(dir)).catch((e) => e);
    expect(error).toBeInstanceOf(LockBusyError);
    expect(error.message).toContain("in use by pid 4242 on elsewhere (abgleich backup)");
  });
});

// qemu-user answers a process's own /proc/PID/stat itself, with another start time than the
// kernel's: what a holder wrote about itself then differed from what others read, and a live
// holder looked like a reused pid (CI runs the arm64 binary so). Not on a machine without it.
const QEMU = Bun.which(process.arch === "arm64" ? "qemu-aarch64" : "qemu-x86_64");
describe.skipIf(QEMU === null).each(["flock", "claims"] as const)(
  "a holder under qemu-user (%s)",
  (holding) => {
    test("is seen alive by either kind of run", async () => {
      const dir = freshDir();
      const child = await holderChild("hold", dir, holding, [QEMU as string]);
      for (const asking of ["claims", "flock"] as const) {
        const request = { key: KEY, description: "native", waitMs: 0, dir, mechanism: asking };
        const error = await acquireRunLock(request).catch((e) => e);
        expect(error).toBeInstanceOf(LockBusyError);
        expect(error.holder.description).toBe("lock-child hold");
      }
      child.stdin.end();
      expect(await child.exited).toBe(0);
    }, 60_000);
  },
);

test("a run whose lock file was released and retaken under it does not take it too", async () => {
  // C opens the lock file; before C flocks it, A releases it (unlinks it, then drops the flock)
  // and B takes a new one. C's flock on A's old file now succeeds, but that file is no longer
  // the lock: C must look again and find B holding it.
  const dir = freshDir();
  const request = { key: KEY, description: "A", waitMs: 0, dir, mechanism: "flock" as const };
  const a = await acquireRunLock(request);
  let b: Promise<RunLock> | undefined;
  lockTestHooks.afterOpen = () => {
    lockTestHooks.afterOpen = undefined;
    a.release();
    b = acquireRunLock({ ...request, description: "B" }); // its attempt runs synchronously here
  };
  try {
    const error = await acquireRunLock({ ...request, description: "C" }).catch((e) => e);
    expect(b).toBeDefined();
    expect(error).toBeInstanceOf(LockBusyError);
    expect(error.holder.description).toBe("B");
  } finally {
    lockTestHooks.afterOpen = undefined;
  }
  (await b!).release();
});

test("the lock file is closed on exec, so zfs and ssh children do not keep it held", async () => {
  const dir = freshDir();
  const lock = await acquireRunLock({ key: KEY, description: "d", waitMs: 0, dir });
  const lockFile = statSync(lock.path);
  const fd = readdirSync("/proc/self/fd").find((n) => {
    try {
      const open = statSync(`/proc/self/fd/${n}`);
      return open.ino === lockFile.ino && open.dev === lockFile.dev;
    } catch {
      return false;
    }
  });
  expect(fd).toBeDefined();
  const flags = /flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))?.[1];
  expect(Number.parseInt(flags!, 8) & 0o2000000).toBe(0o2000000); // O_CLOEXEC
  lock.release();
});

test("lockDirectory takes ABGLEICH_LOCK_DIR and creates it", () => {
  const dir = join(freshDir(), "nested");
  expect(lockDirectory({ ABGLEICH_LOCK_DIR: dir })).toBe(dir);
  // relative, or a file: refused, naming the variable
  expect(() => lockDirectory({ ABGLEICH_LOCK_DIR: "locks" })).toThrow(
    'ABGLEICH_LOCK_DIR must be an absolute path, not "locks"',
  );
  const file = join(dir, "..", "a-file");
  writeFileSync(file, "");
  expect(() => lockDirectory({ ABGLEICH_LOCK_DIR: file })).toThrow(
    `ABGLEICH_LOCK_DIR ${file} cannot be the lock directory (it is a file)`,
  );
  expect(readdirSync(dir)).toEqual([]);
});

test("a negative or NaN waitMs is a mistake", async () => {
  const dir = freshDir();
  const request = { key: KEY, description: "d", dir };
  await expect(acquireRunLock({ ...request, waitMs: -1 })).rejects.toBeInstanceOf(RangeError);
  await expect(acquireRunLock({ ...request, waitMs: Number.NaN })).rejects.toBeInstanceOf(
    RangeError,
  );
});

describe("parseWaitDuration", () => {
  test.each([
    [true, Number.POSITIVE_INFINITY],
    ["90", 90_000],
    ["0", 0],
    ["1.5", 1_500],
    ["500ms", 500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["2h", 7_200_000],
    ["1d", 86_400_000],
    ["1h30m", 5_400_000],
    [" 10S ", 10_000],
  ] as const)("%p is %p ms", (text, ms) => {
    expect(parseWaitDuration(text)).toBe(ms);
  });

  test.each(["", "abc", "-5", "5x", "m", "1h 30m", "1e3", "Infinity", "5 m"])(
    "%p is refused with a hint",
    (text) => {
      expect(() => parseWaitDuration(text)).toThrow(/^--wait=.*: not a duration; give seconds/);
    },
  );
});
