// The chain on real OpenZFS: encrypted data stays encrypted on the target (raw sends, full and
// incremental), holds protect the base and move with each backup, a bookmark keeps the chain
// when the base snapshot is destroyed by hand, retries finish a transfer cut twice in one run,
// and `transfer.parallel` sends a 50-dataset tree. The cuts are made on this machine, not in
// the emulated guest: the run relays each stream through a local `ssh … zfs send | ssh … zfs
// receive`, and killing that sending ssh client is what a dropped link does (backupCutting).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { encryptedCreateArgs } from "../helpers/encryption.ts";
import {
  BOOT_TIMEOUT_MS,
  E2eEnv,
  guidsOf,
  jsonEvents,
  listTree,
  planOf,
  type RunResult,
  shellJoin,
  snapshotsOf,
} from "./helpers.ts";
import { bootVm, createPools, secondName, stopAllVms, type Vm } from "./vm.ts";

const SCENARIO_MS = 300_000;
const PARALLEL_MS = 720_000;
/** a backup whose transfer is cut twice: killed after this (the test's own limit is SCENARIO_MS) */
const CUT_RUN_MS = 240_000;
const day = (n: number) => `202601010${n}`;
const KEY = "/root/abgleich-test.key";

let vm: Vm;
let env: E2eEnv;

beforeAll(async () => {
  vm = await bootVm("chain");
  console.log(`[e2e] chain ready in ${vm.bootSeconds.toFixed(1)} s`);
  await createPools(vm, [{ name: "srcpool" }, { name: "dstpool" }]);
  await vm.sshOk(`printf 'correct horse battery staple' > ${KEY}`);
  env = new E2eEnv([vm]);
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await stopAllVms();
  env?.remove();
}, 30_000);

async function configFor(prefix: string, extra = "", name = prefix): Promise<string> {
  await vm.sshOk(shellJoin(["zfs", "create", "-p", `dstpool/${prefix}`]));
  return env.writeConfig(
    name,
    { zpool: "srcpool", prefix: `${prefix}/data`, vm },
    { zpool: "dstpool", prefix: `${prefix}/backup`, vm },
    extra,
  );
}

async function prop(dataset: string, property: string): Promise<string> {
  return (await vm.sshOk(shellJoin(["zfs", "get", "-H", "-o", "value", property, dataset]))).trim();
}

async function holds(snapshot: string): Promise<string[]> {
  const output = await vm.sshOk(shellJoin(["zfs", "holds", "-H", snapshot]));
  return output
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => line.split("\t")[1] ?? "")
    .sort();
}

async function expectSameSnapshots(source: string, target: string, names: string[]) {
  expect(await snapshotsOf(vm, target)).toEqual(names);
  const [src, dst] = await Promise.all([guidsOf(vm, source), guidsOf(vm, target)]);
  for (const name of names) expect(dst.get(name)).toBe(src.get(name) ?? "missing on source");
}

/**
 * the remote command of the local `ssh` that carries a transfer's sending side: `zfs send -v -P
 * …` or `-t TOKEN` (the size probes are `zfs send -n -v`)
 */
const SEND_CLIENT = /(^|\s)zfs send -v /;

/** pid → parent pid of every process, from /proc */
function parentPids(): Map<number, number> {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so read after the last ")"
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone meanwhile
    }
  }
  return parents;
}

/** running (not a zombie, which has no argv) */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** the `ssh` processes below `root` whose remote command is a transfer's `zfs send` */
function sendClients(root: number): { pid: number; remote: string }[] {
  const parents = parentPids();
  const below = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, parent] of parents) {
      if (below.has(parent) && !below.has(pid)) {
        below.add(pid);
        grew = true;
      }
    }
  }
  below.delete(root);
  return [...below].flatMap((pid) => {
    let argv: string[];
    try {
      // NUL-terminated arguments; a zombie's is empty
      argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);
    } catch {
      return [];
    }
    // ssh's last argument: the remote command, after `--`
    const remote = argv.at(-1) ?? "";
    return basename(argv[0] ?? "") === "ssh" && SEND_CLIENT.test(remote) ? [{ pid, remote }] : [];
  });
}

interface CutRun extends RunResult {
  /** the remote command of each ssh client that was cut, in order */
  cuts: string[];
}

/**
 * Runs `backup --json` and cuts its transfers on THIS machine, where nothing is emulated: with
 * both sides remote, abgleich relays each stream through a local `ssh SOURCE -- … zfs send -v …
 * | ssh TARGET -- … zfs receive -s …`. Up to `count` times, once a sending ssh client of the run
 * is up and the run's progress events have grown by `minBytes` since the first one after it
 * appeared (send's count runs ahead of the wire by what zstd and the pipes hold, so only growth
 * past that first report shows the stream moving), that client is SIGKILLed, as a dropped
 * link ends it: its channel closes, the remote send dies, and `zfs receive -s` sees an
 * incomplete stream and keeps a resume token. Each cut client is waited out before the next
 * (a retry's `zfs send -t TOKEN`) is looked for; the cutting ends with the run.
 */
async function backupCutting(
  config: string,
  count: number,
  minBytes: number,
  timeoutMs = CUT_RUN_MS,
): Promise<CutRun> {
  const child = env.spawn(["backup", config, "--yes", "--json"]);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  let exited = false;
  let stdout = "";
  /** bytesDone of each progress event of a send, as they arrive */
  const progress: number[] = [];
  const reading = (async () => {
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of child.stdout) {
      const text = decoder.decode(chunk, { stream: true });
      stdout += text;
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.startsWith("{")) continue;
        const event = JSON.parse(line) as Record<string, unknown>;
        if (event.event === "progress" && event.kind === "send")
          progress.push(Number(event.bytesDone));
      }
    }
    stdout += decoder.decode();
  })();
  const stderr = new Response(child.stderr).text();
  const code = child.exited.then((c) => {
    exited = true;
    return c;
  });
  const cuts: string[] = [];
  const cutting = (async () => {
    while (cuts.length < count && !exited) {
      const client = sendClients(child.pid)[0];
      if (client === undefined) {
        await Bun.sleep(100);
        continue;
      }
      const seen = progress.length;
      while (!exited && running(client.pid)) {
        const mine = progress.slice(seen);
        if (mine.length >= 2 && (mine.at(-1) ?? 0) - (mine[0] ?? 0) >= minBytes) {
          try {
            process.kill(client.pid, "SIGKILL");
          } catch {
            break; // it ended by itself just now: not a cut
          }
          cuts.push(client.remote);
          console.log(
            `[e2e] cut ${cuts.length}: ssh ${client.pid} after ${(((mine.at(-1) ?? 0) - (mine[0] ?? 0)) / 2 ** 20).toFixed(1)} MiB of this send (${((mine.at(-1) ?? 0) / 2 ** 20).toFixed(1)} MiB in all)`,
          );
          break;
        }
        await Bun.sleep(100);
      }
      while (running(client.pid)) await Bun.sleep(100);
    }
  })();
  const [exitCode, errors] = await Promise.all([code, stderr, reading, cutting]);
  clearTimeout(timer);
  return { code: exitCode, stdout, stderr: errors, cuts };
}

describe("the chain on real OpenZFS", () => {
  test(
    "an encrypted tree arrives encrypted (raw): full, then incremental; no key on the target",
    async () => {
      const src = "srcpool/e/data";
      const dst = "dstpool/e/backup";
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "-p", "srcpool/e"]),
          shellJoin(["zfs", ...encryptedCreateArgs(src, KEY)]),
          shellJoin(["zfs", "create", `${src}/child`]),
          `head -c 2000000 /dev/urandom > /${src}/f`,
          `echo 'plaintext-marker-0123456789' > /${src}/child/secret.txt`,
          "zpool sync",
          shellJoin(["zfs", "snapshot", "-r", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      const config = await configFor("e");
      const first = await env.cli(["backup", config, "--yes", "--json"]);
      expect(first.code).toBe(0);
      const sends = planOf(first.stdout).actions.filter((a) => a.kind === "send");
      expect(sends.length).toBe(2);
      expect(sends.every((a) => a.kind === "send" && a.raw)).toBe(true);
      await expectSameSnapshots(src, dst, [day(1)]);
      await expectSameSnapshots(`${src}/child`, `${dst}/child`, [day(1)]);
      for (const dataset of [dst, `${dst}/child`]) {
        expect(await prop(dataset, "encryption")).toBe("aes-256-gcm");
        expect(await prop(dataset, "keystatus")).toBe("unavailable");
        expect(await prop(dataset, "mounted")).toBe("no");
      }
      // nothing readable on the target: it cannot be mounted without the key
      const mount = await vm.ssh(shellJoin(["zfs", "mount", `${dst}/child`]));
      expect(mount.code).not.toBe(0);
      expect(mount.stderr).toContain("key");

      // an incremental is raw too, and lands on the raw-received target
      await vm.sshOk(
        [
          `head -c 1000000 /dev/urandom > /${src}/child/more`,
          "zpool sync",
          shellJoin(["zfs", "snapshot", "-r", `${src}@${day(2)}`]),
        ].join(" && "),
      );
      const incremental = await env.cli(["backup", config, "--yes", "--json"]);
      expect(incremental.code).toBe(0);
      const second = planOf(incremental.stdout).actions.filter((a) => a.kind === "send");
      expect(second.map((a) => (a.kind === "send" ? [a.mode, a.raw] : []))).toEqual([
        ["incremental", true],
        ["incremental", true],
      ]);
      await expectSameSnapshots(`${src}/child`, `${dst}/child`, [day(1), day(2)]);
      expect(await prop(`${dst}/child`, "keystatus")).toBe("unavailable");
    },
    SCENARIO_MS,
  );

  test(
    "holds protect the base and move with each backup; a destroyed base is bridged by its bookmark",
    async () => {
      const src = "srcpool/h/data";
      const dst = "dstpool/h/backup";
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "-p", src]),
          `head -c 1000000 /dev/urandom > /${src}/f`,
          shellJoin(["zfs", "snapshot", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      const config = await configFor("h");
      expect((await env.cli(["backup", config, "--yes"])).code).toBe(0);
      // the source's tag names the target (its host as the config names it, and its root), so
      // two targets keep two holds; the target is this VM by its second name (configFor)
      const sourceTag = `abgleich:${secondName(vm.sshConfig.alias)}:dstpool/h/backup`;
      expect(await holds(`${src}@${day(1)}`)).toEqual([sourceTag]);
      expect(await holds(`${dst}@${day(1)}`)).toEqual(["abgleich"]);
      // held: a destroy by hand is refused by zfs itself
      const destroy = await vm.ssh(shellJoin(["zfs", "destroy", `${src}@${day(1)}`]));
      expect(destroy.code).not.toBe(0);

      await vm.sshOk(shellJoin(["zfs", "snapshot", `${src}@${day(2)}`]));
      expect((await env.cli(["backup", config, "--yes"])).code).toBe(0);
      expect(await holds(`${src}@${day(2)}`)).toEqual([sourceTag]);
      expect(await holds(`${dst}@${day(2)}`)).toEqual(["abgleich"]);
      expect(await holds(`${src}@${day(1)}`)).toEqual([]);
      expect(await holds(`${dst}@${day(1)}`)).toEqual([]);
      const bookmarks = await vm.sshOk(
        shellJoin(["zfs", "list", "-H", "-t", "bookmark", "-o", "name", "-r", src]),
      );
      expect(bookmarks.trim().split("\n")).toEqual([`${src}#${day(2)}`]);

      // someone releases the hold and destroys the newest common snapshot by hand
      await vm.sshOk(
        [
          shellJoin(["zfs", "release", sourceTag, `${src}@${day(2)}`]),
          shellJoin(["zfs", "destroy", `${src}@${day(1)}%${day(2)}`]),
          `head -c 500000 /dev/urandom > /${src}/g`,
          shellJoin(["zfs", "snapshot", `${src}@${day(3)}`]),
        ].join(" && "),
      );
      const bridged = await env.cli(["backup", config, "--yes", "--json"]);
      expect(bridged.code).toBe(0);
      const sends = planOf(bridged.stdout).actions.filter((a) => a.kind === "send");
      expect(
        sends.map((a) => (a.kind === "send" ? [a.mode, a.from, a.fromBookmark, a.to] : [])),
      ).toEqual([["incremental", day(2), true, day(3)]]);
      expect(await snapshotsOf(vm, dst)).toEqual([day(1), day(2), day(3)]);
      expect((await guidsOf(vm, dst)).get(day(3))).toBe((await guidsOf(vm, src)).get(day(3)));
      expect(await holds(`${src}@${day(3)}`)).toEqual([sourceTag]);
    },
    SCENARIO_MS,
  );

  // The cuts are made on this machine, not in the guest (backupCutting): under TCG a cutter
  // polling for `zfs send` inside the VM missed the sends. Here the run's local ssh client of
  // the send is SIGKILLed once the progress grew 4 MiB, then the retry's `zfs send -t` client
  // likewise. 64 MB of random data at 4 MiB/s are ~15 s on the wire; zstd and the pipes take
  // up ~20 MB ahead of the limit, so each attempt still has MBs left to count after its cut.
  test(
    "retries: a transfer cut twice (its sending ssh killed) is resumed in the same run and completes",
    async () => {
      const src = "srcpool/r/data";
      const dst = "dstpool/r/backup";
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "-p", src]),
          `head -c 64000000 /dev/urandom > /${src}/f`,
          "zpool sync",
          shellJoin(["zfs", "snapshot", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      const config = await configFor("r", "transfer:\n  retries: 3\n  bwlimit: 4M\n");
      const started = performance.now();
      const run = await backupCutting(config, 2, 4 * 2 ** 20);
      console.log(
        `[e2e] cut twice: exit ${run.code} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
      if (run.code !== 0) console.log(`${run.stdout}\n${run.stderr}`);
      expect(run.code).toBe(0);
      // the full send was cut, then its resume
      expect(run.cuts).toHaveLength(2);
      expect(run.cuts[0]).not.toContain(" -t ");
      expect(run.cuts[1]).toContain("zfs send -v -P -t ");
      const notes = jsonEvents(run.stdout).filter(
        (e) => e.event === "note" && String(e.text).includes("the transfer was cut"),
      );
      expect(notes.map((e) => e.text)).toEqual([
        `${dst}: the transfer was cut; resuming in 1 s (retry 1 of 3)`,
        `${dst}: the transfer was cut; resuming in 2 s (retry 2 of 3)`,
      ]);
      await expectSameSnapshots(src, dst, [day(1)]);
      expect((await listTree(vm, dst)).get(dst)?.receive_resume_token).toBe("-");
    },
    SCENARIO_MS,
  );

  test(
    "a batch cut inside: the cut transfer is resumed on its own, the ones after it are sent again",
    async () => {
      const src = "srcpool/bc/data";
      const dst = "dstpool/bc/backup";
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "-p", `${src}/c1`]),
          shellJoin(["zfs", "create", `${src}/c2`]),
          shellJoin(["zfs", "create", `${src}/c3`]),
          `head -c 48000000 /dev/urandom > /${src}/c1/f`,
          `head -c 100000 /dev/urandom > /${src}/c2/f`,
          `head -c 100000 /dev/urandom > /${src}/c3/f`,
          "zpool sync",
          shellJoin(["zfs", "snapshot", "-r", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      const config = await configFor("bc", "transfer:\n  retries: 3\n  bwlimit: 4M\n");
      const run = await backupCutting(config, 1, 4 * 2 ** 20);
      if (run.code !== 0) console.log(`${run.stdout}\n${run.stderr}`);
      expect(run.code).toBe(0);
      // the cut session carried the sends of all three children, one after another
      expect(run.cuts).toHaveLength(1);
      for (const child of ["c1", "c2", "c3"]) expect(run.cuts[0]).toContain(`${src}/${child}@`);
      const notes = jsonEvents(run.stdout).filter(
        (e) => e.event === "note" && String(e.text).includes("the transfer was cut"),
      );
      expect(notes.map((e) => e.text)).toEqual([
        `${dst}/c1: the transfer was cut; resuming in 1 s (retry 1 of 3)`,
      ]);
      const done = jsonEvents(run.stdout).filter(
        (e) => e.event === "action-done" && e.kind === "send",
      );
      expect(done.map((e) => [e.dataset, e.ok])).toEqual([
        [dst, true],
        [`${dst}/c1`, true],
        [`${dst}/c2`, true],
        [`${dst}/c3`, true],
      ]);
      for (const child of ["c1", "c2", "c3"]) {
        await expectSameSnapshots(`${src}/${child}`, `${dst}/${child}`, [day(1)]);
        expect(
          (await listTree(vm, `${dst}/${child}`)).get(`${dst}/${child}`)?.receive_resume_token,
        ).toBe("-");
      }
    },
    SCENARIO_MS,
  );

  test(
    "parallel: 4 sends a 50-dataset tree, every dataset arriving with the source's snapshots",
    async () => {
      const src = "srcpool/p/data";
      const dst = "dstpool/p/backup";
      const children = Array.from({ length: 49 }, (_, i) => `c${String(i).padStart(2, "0")}`);
      await vm.sshOk(
        [
          shellJoin(["zfs", "create", "-p", src]),
          `for c in ${children.join(" ")}; do zfs create ${src}/$c && head -c 200000 /dev/urandom > /${src}/$c/f || exit 1; done`,
          shellJoin(["zfs", "snapshot", "-r", `${src}@${day(1)}`]),
        ].join(" && "),
      );
      const config = await configFor("p", "transfer:\n  parallel: 4\n");
      // ~100 zfs processes and their ssh sessions under TCG: minutes, not seconds
      const run = await env.cli(["backup", config, "--yes", "--json"], PARALLEL_MS - 60_000);
      expect(run.code).toBe(0);
      let running = 0;
      let most = 0;
      for (const event of jsonEvents(run.stdout)) {
        const action = String(event.action ?? "");
        if (!action.includes(" send ")) continue;
        if (event.event === "action-start") most = Math.max(most, ++running);
        if (event.event === "action-done") running--;
      }
      expect(most).toBeGreaterThan(1);
      expect(most).toBeLessThanOrEqual(4);
      const tree = await listTree(vm, dst);
      for (const child of children) expect(tree.has(`${dst}/${child}@${day(1)}`)).toBe(true);
      await expectSameSnapshots(`${src}/c48`, `${dst}/c48`, [day(1)]);
    },
    PARALLEL_MS,
  );
});
