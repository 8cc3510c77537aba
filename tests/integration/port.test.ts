// The zfs port against the ZFS simulator (real command lines, real output formats), a destroy
// of 20,000 snapshots within the argument limit, and a hung `zfs` stopped by timeout or cancel.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CancelledError, CommandTimeoutError, LocalHost } from "../../lib/hosts/index.ts";
import { NO_PROGRAMS } from "../../lib/zfs/commands.ts";
import { ZfsPort } from "../../lib/zfs/port.ts";
import { createSimEnv, type SimEnv } from "../helpers/sim-env.ts";

/** each sim call starts a process; 20,000 snapshots take a few seconds on a busy machine */
const SLOW_TEST_MS = 60_000;

let env: SimEnv;
let savedPath: string | undefined;
const scratch = mkdtempSync(join(tmpdir(), "abg-porttest-"));

beforeAll(() => {
  env = createSimEnv();
  // the port runs `zfs`/`zpool` by name, as in production: the simulator's shims come first
  savedPath = process.env.PATH;
  process.env.PATH = `${env.binDir}:${savedPath}`;
});

afterAll(() => {
  process.env.PATH = savedPath;
  env?.remove();
  rmSync(scratch, { recursive: true, force: true });
});

const port = (options = {}) => new ZfsPort(new LocalHost("source"), options);

/** `count` default-style snapshot names, oldest first */
const names = (count: number) =>
  Array.from({ length: count }, (_, i) => `2020${String(i).padStart(6, "0")}`);

/** a dataset with `count` snapshots, taken with one `zfs snapshot` (seeding one by one is slow) */
function seedMany(dataset: string, count: number): string[] {
  env.seed({
    now: 1795663146,
    pools: [{ name: "tank", size: "8G", datasets: [{ name: "data" }] }],
  });
  const all = names(count);
  const result = env.zfs("snapshot", ...all.map((name) => `${dataset}@${name}`));
  if (result.code !== 0) throw new Error(`seeding failed: ${result.stderr}`);
  return all;
}

const destroyCalls = () => env.calls().filter((line) => line.startsWith("zfs destroy "));

describe("ZfsPort on the simulator", () => {
  test(
    "queries and actions with real output",
    async () => {
      env.seed({
        now: 1795663146,
        pools: [
          {
            name: "srcpool",
            size: "480M",
            datasets: [
              {
                name: "data",
                snapshots: [
                  { name: "s1", written: "8M", changes: ["/f1"] },
                  { name: "s2", written: "4M", changes: ["/f2"] },
                ],
                written: "4K",
                changes: ["/f3"],
              },
            ],
          },
          { name: "dstpool", size: "480M" },
        ],
      });
      const zfs = port({ timeoutMs: 60_000 });
      const tree = await zfs.inventory("srcpool/data");
      expect(tree.datasets.map((d) => d.name)).toEqual(["srcpool/data"]);
      expect(tree.datasets[0]?.snapshots.map((s) => s.name)).toEqual(["s1", "s2"]);
      expect((await zfs.inventory("srcpool/none")).datasets).toEqual([]);

      expect(await zfs.exists("srcpool/data")).toBe(true);
      expect(await zfs.exists("srcpool/none")).toBe(false);
      expect(await zfs.exists("nopool")).toBe(false);

      expect(await zfs.changedSince("srcpool/data@s2")).toBe(true);
      expect(await zfs.used("srcpool/data")).toBeGreaterThan(12_000_000);
      expect(await zfs.freeing("srcpool")).toBe(0);

      expect(await zfs.snapshot(["srcpool/data@s3"])).toMatchObject({ ok: true });
      expect(await zfs.changedSince("srcpool/data@s3")).toBe(false);
      expect(await zfs.destroy("srcpool/data", ["s1", "s2"])).toMatchObject({ ok: true });
      expect(env.snapshots("srcpool/data")).toEqual(["s3"]);

      const abort = await zfs.abortReceive("dstpool");
      expect(abort.ok).toBe(false);
      expect(abort.error).toContain("command failed on source (localhost): zfs receive -A dstpool");
      expect(abort.error).toContain("does not have any resumable receive state to abort");
    },
    SLOW_TEST_MS,
  );

  test(
    "destroy of 20,000 snapshots: a few commands within the argument limit, all gone",
    async () => {
      const all = seedMany("tank/data", 20_000);
      const outcome = await port({ timeoutMs: 60_000 }).destroy("tank/data", all);
      expect(outcome).toMatchObject({ ok: true });
      const calls = destroyCalls();
      expect(calls).toHaveLength(3);
      for (const call of calls) expect(Buffer.byteLength(call)).toBeLessThan(96 * 1024);
      expect(env.snapshots("tank/data")).toEqual([]);
    },
    SLOW_TEST_MS,
  );

  test(
    "a held snapshot stops the destroy at its batch; older batches are gone, newer untouched",
    async () => {
      const all = seedMany("tank/data", 20_000);
      const held = all[12_000] as string; // in the second batch
      expect(env.zfs("hold", "keep", `tank/data@${held}`).code).toBe(0);
      const outcome = await port().destroy("tank/data", all);
      expect(outcome.ok).toBe(false);
      expect(outcome.error).toContain(`cannot destroy snapshot tank/data@${held}: dataset is busy`);
      expect(outcome.error).toContain("batch 2 of 3");
      expect(destroyCalls()).toHaveLength(2);
      const left = env.snapshots("tank/data");
      const firstBatch = all.length - left.length;
      expect(firstBatch).toBeGreaterThan(5000);
      // what is left is exactly the newer part, in order
      expect(left).toEqual(all.slice(firstBatch));
    },
    SLOW_TEST_MS,
  );

  test(
    "bookmarks: one channel program per pool, all of them or none",
    async () => {
      env.seed({
        now: 1795663146,
        pools: [
          {
            name: "tank",
            size: "480M",
            datasets: [
              { name: "a", snapshots: [{ name: "s1" }, { name: "s2" }] },
              { name: "b", snapshots: [{ name: "s1" }] },
            ],
          },
        ],
      });
      const zfs = port();
      const made = await zfs.bookmark([
        { snapshot: "tank/a@s1", bookmark: "tank/a#s1" },
        { snapshot: "tank/b@s1", bookmark: "tank/b#s1" },
      ]);
      expect(made).toMatchObject({ ok: true });
      expect(env.calls().filter((call) => call.startsWith("zfs program tank - "))).toHaveLength(1);
      expect(env.calls().some((call) => call.startsWith("zfs bookmark"))).toBe(false);
      expect(bookmarks()).toEqual(["tank/a#s1", "tank/b#s1"]);

      // the second pair exists: the first is not made either
      const refused = await zfs.bookmark([
        { snapshot: "tank/a@s2", bookmark: "tank/a#s2" },
        { snapshot: "tank/b@s1", bookmark: "tank/b#s1" },
      ]);
      expect(refused.ok).toBe(false);
      expect(refused.error).toContain(
        "cannot create bookmark 'tank/b#s1' of 'tank/b@s1': bookmark exists",
      );
      // the command as it was given, without the program's text
      expect(refused.error).toContain(
        "zfs program tank - tank/a@s2 'tank/a#s2' tank/b@s1 'tank/b#s1'",
      );
      expect(refused.error).not.toContain("zfs.sync.bookmark");
      expect(bookmarks()).toEqual(["tank/a#s1", "tank/b#s1"]);
      // a failure is no refusal: nothing was tried one by one
      expect(env.calls().some((call) => call.startsWith("zfs bookmark"))).toBe(false);
    },
    SLOW_TEST_MS,
  );

  test(
    "bookmarks on two pools: one program each",
    async () => {
      env.seed({
        now: 1795663146,
        pools: [
          { name: "tank", size: "480M", datasets: [{ name: "a", snapshots: [{ name: "s1" }] }] },
          { name: "pond", size: "480M", datasets: [{ name: "b", snapshots: [{ name: "s1" }] }] },
        ],
      });
      const made = await port().bookmark([
        { snapshot: "tank/a@s1", bookmark: "tank/a#s1" },
        { snapshot: "pond/b@s1", bookmark: "pond/b#s1" },
      ]);
      expect(made).toMatchObject({ ok: true });
      expect(env.calls().filter((call) => call.startsWith("zfs program "))).toEqual([
        "zfs program tank - tank/a@s1 tank/a#s1",
        "zfs program pond - pond/b@s1 pond/b#s1",
      ]);
      expect(bookmarks()).toEqual(["pond/b#s1", "tank/a#s1"]);
    },
    SLOW_TEST_MS,
  );

  test.each(NO_PROGRAMS.map((line) => [line]))(
    "bookmarks where zfs runs no channel program (%s): `zfs bookmark` commands",
    async (line) => {
      env.seed({
        now: 1795663146,
        pools: [
          {
            name: "tank",
            size: "480M",
            datasets: [{ name: "a", snapshots: [{ name: "s1" }, { name: "s2" }] }],
          },
        ],
      });
      // a zfs that answers a program as real zfs does for a user without root, or an old zfs
      const dir = mkdtempSync(join(scratch, "noroot-"));
      writeFileSync(
        join(dir, "zfs"),
        `#!/bin/sh
if [ "$1" = program ]; then echo program >>'${dir}/programs'; printf '%s\n%s\n' 'Channel program execution failed:' "${line}" >&2; exit 1; fi
exec '${env.binDir}/zfs' "$@"
`,
      );
      chmodSync(join(dir, "zfs"), 0o755);
      const saved = process.env.PATH;
      process.env.PATH = `${dir}:${saved}`;
      try {
        const zfs = port();
        const first = await zfs.bookmark([{ snapshot: "tank/a@s1", bookmark: "tank/a#s1" }]);
        expect(first).toMatchObject({ ok: true });
        const second = await zfs.bookmark([{ snapshot: "tank/a@s2", bookmark: "tank/a#s2" }]);
        expect(second).toMatchObject({ ok: true });
        expect(bookmarks()).toEqual(["tank/a#s1", "tank/a#s2"]);
        expect(env.calls().filter((call) => call.startsWith("zfs bookmark "))).toHaveLength(2);
        // asked once: the port remembers the refusal
        expect(readFileSync(join(dir, "programs"), "utf8")).toBe("program\n");
      } finally {
        process.env.PATH = saved;
      }
    },
    SLOW_TEST_MS,
  );
});

/** every bookmark in the simulator, by full name */
function bookmarks(): string[] {
  const listed = env.zfs("list", "-t", "bookmark", "-H", "-o", "name");
  return listed.stdout.split("\n").filter((line) => line !== "");
}

// ---- a `zfs` that never answers

/** a `zfs` that records its pid and its child's, then hangs */
function hungZfs(): { dir: string; pids: () => Promise<number[]> } {
  const dir = mkdtempSync(join(scratch, "hung-"));
  const pidFile = join(dir, "pids");
  writeFileSync(
    join(dir, "zfs"),
    `#!/bin/sh\necho $$ >>'${pidFile}'\nsleep 30 &\necho $! >>'${pidFile}'\nwait\n`,
  );
  chmodSync(join(dir, "zfs"), 0o755);
  return {
    dir,
    async pids() {
      for (let i = 0; i < 500; i++) {
        const text = existsSync(pidFile) ? readFileSync(pidFile, "utf8") : "";
        const pids = text.split("\n").filter((line) => line !== "");
        if (pids.length >= 2) return pids.map(Number);
        await Bun.sleep(10);
      }
      throw new Error("the hung zfs did not start");
    },
  };
}

/** alive and not a zombie */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.charAt(stat.lastIndexOf(")") + 2);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

async function leftRunning(pids: number[]): Promise<number[]> {
  for (let i = 0; i < 50 && pids.some(running); i++) await Bun.sleep(10);
  return pids.filter(running);
}

/** PATH with the hung `zfs` first, for the length of `body` */
async function withHungZfs(body: (zfs: ReturnType<typeof hungZfs>) => Promise<void>) {
  const zfs = hungZfs();
  const saved = process.env.PATH;
  process.env.PATH = `${zfs.dir}:${saved}`;
  try {
    await body(zfs);
  } finally {
    process.env.PATH = saved;
  }
}

describe("ZfsPort: a hung zfs", () => {
  test("the port's timeout stops it with CommandTimeoutError and leaves no process", async () => {
    await withHungZfs(async (zfs) => {
      const error = await port({ timeoutMs: 300 })
        .inventory("tank")
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CommandTimeoutError);
      expect((error as Error).message).toContain("zfs list -t all -H -p -o name,type,");
      expect((error as Error).message).toContain("raise command_timeout");
      expect(await leftRunning(await zfs.pids())).toEqual([]);
    });
  });

  test("the port's signal cancels it within a second and leaves no process", async () => {
    await withHungZfs(async (zfs) => {
      const controller = new AbortController();
      const pending = port({ timeoutMs: 60_000, signal: controller.signal }).changedSince(
        "tank@s1",
      );
      const pids = await zfs.pids();
      const started = Date.now();
      controller.abort();
      expect(await pending.catch((caught: unknown) => caught)).toBeInstanceOf(CancelledError);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(await leftRunning(pids)).toEqual([]);
      // and every later command of that port is refused at once
      const later = await port({ signal: controller.signal })
        .exists("tank")
        .catch((caught: unknown) => caught);
      expect(later).toBeInstanceOf(CancelledError);
    });
  });
});
