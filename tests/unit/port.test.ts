// The zfs port: argv built and output parsed in one place. Outputs are OpenZFS 2.1.11's, as the
// transcripts of real runs show them (test/list.test.ts has the `zfs list` rows).

import { describe, expect, test } from "bun:test";
import {
  CommandTimeoutError,
  type Host,
  HostDownError,
  type RunOptions,
  type RunResult,
} from "../../lib/hosts/host.ts";
import { shellJoin } from "../../lib/hosts/quote.ts";
import {
  DESTROY_ARG_BUDGET,
  destroyBatches,
  NO_PROGRAMS,
  zfsBookmarkProgram,
  zfsDestroySnapshots,
} from "../../lib/zfs/commands.ts";
import { ZfsCommandError } from "../../lib/zfs/errors.ts";
import { ListParseError } from "../../lib/zfs/list.ts";
import {
  CHAIN_LANES,
  parseBytes,
  parseEstimate,
  parseFreeing,
  parseToname,
  ZfsPort,
} from "../../lib/zfs/port.ts";

/** the kernel's limit for one argument or environment string (32 pages) */
const MAX_ARG_STRLEN = 128 * 1024;

type Answer = Partial<RunResult> | ((argv: readonly string[]) => Partial<RunResult>);

/** a host answering each command with the next answer (the last one repeats) */
function fakeHost(answers: Answer[], remote = false) {
  const calls: { argv: string[]; options: RunOptions | undefined }[] = [];
  const host: Host = {
    side: remote ? "target" : "source",
    name: remote ? "backup.example" : "localhost",
    isLocal: !remote,
    run: async (argv, options) => {
      calls.push({ argv: [...argv], options });
      const answer = answers[Math.min(calls.length - 1, answers.length - 1)] as Answer;
      const result = {
        code: 0,
        stdout: "",
        stderr: "",
        ...(typeof answer === "function" ? answer(argv) : answer),
      };
      // as a real host does: a large stdout is handed over in pieces, not returned
      if (options?.readStdout) {
        const bytes = Buffer.from(result.stdout);
        for (let at = 0; at < bytes.length; at += 64)
          options.readStdout(bytes.subarray(at, at + 64));
        return { ...result, stdout: "" };
      }
      return result;
    },
    wrap: (argv) => [...argv],
    ping: async () => {},
    close: async () => {},
  };
  return { host, calls };
}

/** default snapshot names (`YYYYMMDD` + 2-digit counter), oldest first, 99 a day */
function defaultNames(count: number): string[] {
  const start = Date.UTC(2020, 0, 1);
  return Array.from({ length: count }, (_, i) => {
    const day = new Date(start + Math.floor(i / 99) * 86_400_000);
    const date = day.toISOString().slice(0, 10).replaceAll("-", "");
    return `${date}${String((i % 99) + 1).padStart(2, "0")}`;
  });
}

describe("destroy lists within the argument limit", () => {
  test("~12,000 default-named snapshots in one command would exceed the kernel's limit", () => {
    const argv = zfsDestroySnapshots("tank/data", defaultNames(12_000));
    expect(Buffer.byteLength(argv[2] as string)).toBeGreaterThan(MAX_ARG_STRLEN);
  });

  test("20,000 names: few commands, each under budget, every name once, in order", () => {
    for (const dataset of ["tank/data", "tank/home dir/a:b.c-d_e"]) {
      const names = defaultNames(20_000);
      const batches = destroyBatches(dataset, names);
      expect(batches.length).toBe(3);
      for (const batch of batches) {
        // as ssh sends it: the whole remote command is one argument
        const line = shellJoin(zfsDestroySnapshots(dataset, batch));
        expect(Buffer.byteLength(line)).toBeLessThanOrEqual(DESTROY_ARG_BUDGET);
        expect(DESTROY_ARG_BUDGET).toBeLessThan(MAX_ARG_STRLEN);
      }
      expect(batches.flat()).toEqual(names);
    }
  });

  test("batches are as full as the budget allows", () => {
    const names = defaultNames(1000);
    const budget = 2000;
    const batches = destroyBatches("tank/data", names, budget);
    for (const batch of batches.slice(0, -1)) {
      const line = shellJoin(zfsDestroySnapshots("tank/data", batch));
      // one more name (a comma and 10 digits) and a pair of quotes would not have fit
      expect(Buffer.byteLength(line) + 1 + 10 + 2).toBeGreaterThan(budget);
    }
    expect(batches.flat()).toEqual(names);
  });

  test("a short list is one command; no names is none", () => {
    expect(destroyBatches("tank/data", ["a", "b"])).toEqual([["a", "b"]]);
    expect(destroyBatches("tank/data", [])).toEqual([]);
  });

  test("names that would change what the list means are refused", () => {
    // `%` is a range in `zfs destroy`, `,` separates: a name with them would destroy others
    for (const bad of ["a%b", "a,b", "", "x@y", "a/b"]) {
      expect(() => zfsDestroySnapshots("tank/data", ["ok", bad])).toThrow(/not a snapshot name/);
    }
  });
});

describe("parsers on real output", () => {
  test("send -nvP estimates: full, -I with several snapshots, none", () => {
    expect(parseEstimate("full\tsrcpool/data@s1\t8452208\nsize\t8452208\n")).toBe(8452208);
    const incremental = [
      "incremental\ts1\tsrcpool/data@s2\t4237680",
      "incremental\ts2\tsrcpool/data@s3\t33392",
      "size\t4271072",
      "",
    ].join("\n");
    expect(parseEstimate(incremental)).toBe(4271072);
    expect(parseEstimate("")).toBeNull();
  });

  test("a resume token's contents name the snapshot it resumes", () => {
    expect(parseToname(TOKEN_OUTPUT)).toBe("srcpool/data@s4");
    expect(parseToname("cannot resume send: resume token is corrupt")).toBeNull();
  });

  test("zpool get -Hp freeing, zfs list -Hp -o used", () => {
    expect(parseFreeing("srcpool\tfreeing\t0\t-\n", "srcpool")).toBe(0);
    expect(parseFreeing("srcpool\tfreeing\t8388608\t-\n", "srcpool")).toBe(8388608);
    expect(parseFreeing("srcpool\tfreeing\t-\t-\n", "srcpool")).toBeNull();
    expect(parseFreeing("other\tfreeing\t0\t-\n", "srcpool")).toBeNull();
    expect(parseFreeing("garbage", "srcpool")).toBeNull();
    expect(parseBytes("13000704\n")).toBe(13000704);
    expect(parseBytes("13M\n")).toBeNull();
    expect(parseBytes("")).toBeNull();
  });
});

// `zfs send -nvP -t TOKEN` (transcript ex2): the token's contents, then the estimate
const TOKEN_OUTPUT = [
  "resume token contents:",
  "nvlist version: 0",
  "\tfromguid = 0xe2f4f311e67201d4",
  "\tobject = 0x82",
  "\toffset = 0x960000",
  "\tbytes = 0x987a48",
  "\ttoguid = 0x6c95b77f1972c82e",
  "\ttoname = srcpool/data@s4",
  "incremental\tsrcpool/data@s3\tsrcpool/data@s4\t32058920",
  "size\t32058920",
  "",
].join("\n");

const LIST_ROWS = [
  "srcpool/data\tfilesystem\t1795663151\t11510736035239985695\t8\t13000704\t4308992\t0\t1.00\t/srcpool/data\tyes\t-\t-\toff\t-",
  "srcpool/data@s1\tsnapshot\t1795663151\t18204870599707721633\t11\t8470528\t8503296\t8503296\t1.00\t-\t-\t-\t0\toff\t-",
  "",
].join("\n");

const MISSING = (name: string) => ({
  code: 1,
  stderr: `cannot open '${name}': dataset does not exist\n`,
});

describe("chain steps run side by side", () => {
  test("a hold of ten snapshots: lanes of at most CHAIN_LANES commands at once, each name once, in order", async () => {
    let running = 0;
    let most = 0;
    const calls: string[][] = [];
    const host: Host = {
      side: "source",
      name: "localhost",
      isLocal: true,
      run: async (argv) => {
        calls.push([...argv]);
        running++;
        most = Math.max(most, running);
        await Bun.sleep(20);
        running--;
        return { code: 0, stdout: "", stderr: "" };
      },
      wrap: (argv) => [...argv],
      ping: async () => {},
      close: async () => {},
    };
    const names = Array.from({ length: 10 }, (_, i) => `tank/d${i}@s`);
    const outcome = await new ZfsPort(host).hold("abgleich", names);
    expect(outcome.ok).toBe(true);
    expect(calls).toHaveLength(CHAIN_LANES);
    expect(most).toBe(CHAIN_LANES);
    expect(calls.flatMap((argv) => argv.slice(3))).toEqual(names);
    expect(calls.every((argv) => argv.slice(0, 3).join(" ") === "zfs hold abgleich")).toBe(true);
  });

  test("a lane that fails is the outcome, with its command's words", async () => {
    const { host } = fakeHost([
      (argv) =>
        argv.includes("tank/d2@s")
          ? { code: 1, stderr: "cannot hold snapshot 'tank/d2@s': dataset does not exist\n" }
          : {},
    ]);
    const names = Array.from({ length: 8 }, (_, i) => `tank/d${i}@s`);
    const outcome = await new ZfsPort(host).hold("abgleich", names);
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toContain("tank/d2@s");
  });
});

describe("the chain's bookmark program", () => {
  /** `count` pairs with long names, as a deep tree has them */
  const pairs = (count: number) =>
    Array.from({ length: count }, (_, i) => {
      const dataset = `tank/data/group-${String(i % 50).padStart(4, "0")}/a-long-dataset-name-${i}`;
      return { snapshot: `${dataset}@2026113001_backup`, bookmark: `${dataset}#2026113001_backup` };
    });

  test("names beyond the argument limit: several programs, each within it, every pair once, in order", async () => {
    const { host, calls } = fakeHost([{}]);
    const all = pairs(3000);
    expect(await new ZfsPort(host).bookmark(all)).toMatchObject({ ok: true });
    expect(calls.length).toBeGreaterThan(2);
    for (const { argv } of calls) {
      expect(argv.slice(0, 6)).toEqual(zfsBookmarkProgram("tank", []));
      expect(Buffer.byteLength(shellJoin(argv))).toBeLessThan(DESTROY_ARG_BUDGET);
    }
    expect(calls.flatMap(({ argv }) => argv.slice(6))).toEqual(
      all.flatMap((pair) => [pair.snapshot, pair.bookmark]),
    );
  });

  test("a refusal after a program ran is a failure, not a reason to start over one by one", async () => {
    const { host, calls } = fakeHost([
      {},
      { code: 1, stderr: `Channel program execution failed:\n${NO_PROGRAMS[0]}\n` },
    ]);
    const outcome = await new ZfsPort(host).bookmark(pairs(3000));
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toContain(NO_PROGRAMS[0]);
    expect(calls).toHaveLength(2);
    expect(calls.some(({ argv }) => argv[2]?.includes("zfs bookmark"))).toBe(false);
  });
});

describe("ZfsPort queries", () => {
  test("inventory: one zfs list, parsed; a missing root is an empty tree", async () => {
    const { host, calls } = fakeHost([{ stdout: LIST_ROWS }, MISSING("srcpool/none")]);
    const port = new ZfsPort(host);
    const tree = await port.inventory("srcpool/data");
    expect(calls[0]?.argv).toEqual([
      "zfs",
      "list",
      "-t",
      "all",
      "-H",
      "-p",
      "-o",
      "name,type,creation,guid,createtxg,used,referenced,written,compressratio,mountpoint,mounted,receive_resume_token,userrefs,encryption,keystatus",
      "-r",
      "srcpool/data",
    ]);
    expect(tree.datasets[0]?.snapshots[0]?.guid).toBe("18204870599707721633");
    expect(await port.inventory("srcpool/none")).toEqual({
      side: "source",
      root: "srcpool/none",
      datasets: [],
    });
  });

  test("inventory: another failure throws with command, exit code and stderr", async () => {
    const { host } = fakeHost([{ code: 1, stderr: "internal error: Invalid argument\n" }]);
    const error = await new ZfsPort(host).inventory("tank").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ZfsCommandError);
    expect((error as Error).message).toContain("failed on source (localhost) (exit 1)");
    expect((error as Error).message).toContain("internal error: Invalid argument");
  });

  test("zfs not found (exit 127): the message says PATH, and what to set it to, here or on the host", async () => {
    const notFound = { code: 127, stderr: "/bin/sh: 1: exec: zfs: not found\n" };
    const local = await new ZfsPort(fakeHost([notFound]).host)
      .inventory("tank")
      .catch((caught: unknown) => caught);
    expect((local as Error).message).toContain(
      "zfs is not on this PATH (" +
        (process.env.PATH ?? "") +
        "): cron and other minimal environments lack /usr/sbin and /sbin",
    );
    const remote = await new ZfsPort(fakeHost([notFound], true).host)
      .inventory("tank")
      .catch((caught: unknown) => caught);
    expect((remote as Error).message).toContain(
      "zfs is not on the PATH commands over ssh get on backup.example",
    );
    // another command's 127, or another failure, gets no such words
    const other = await new ZfsPort(fakeHost([{ code: 1, stderr: "zfs: not found\n" }]).host)
      .inventory("tank")
      .catch((caught: unknown) => caught);
    expect((other as Error).message).not.toContain("PATH");
  });

  test("inventory: zfs's failure is reported, not what its partial output looked like", async () => {
    const partial = {
      code: 1,
      stdout: "tank\tfilesys",
      stderr: "cannot iterate filesystems: I/O error\n",
    };
    const failed = await new ZfsPort(fakeHost([partial]).host)
      .inventory("tank")
      .catch((caught: unknown) => caught);
    expect(failed).toBeInstanceOf(ZfsCommandError);
    expect((failed as Error).message).toContain("I/O error");
    // the same output with exit 0 is output we cannot trust
    const garbled = await new ZfsPort(fakeHost([{ ...partial, code: 0 }]).host)
      .inventory("tank")
      .catch((caught: unknown) => caught);
    expect(garbled).toBeInstanceOf(ListParseError);
  });

  test("a query over a failed connection throws HostDownError", async () => {
    const refused = { code: 255, stderr: "ssh: connect to host b port 22: Connection refused\n" };
    const { host } = fakeHost([refused], true);
    const port = new ZfsPort(host);
    for (const ask of [
      () => port.inventory("tank"),
      () => port.exists("tank"),
      () => port.changedSince("tank@s1"),
      () => port.resumeTarget("1-abc"),
      () => port.freeing("tank"),
      () => port.used("tank"),
    ]) {
      const error = await ask().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(HostDownError);
      expect((error as Error).message).toStartWith(
        "host is not up: target (ssh: connect to host b port 22: Connection refused): ",
      );
    }
  });

  test("exists: a dataset, a missing one, a missing pool, and a real error", async () => {
    const { host, calls } = fakeHost([
      { stdout: "srcpool/data\n" },
      MISSING("srcpool/none"),
      MISSING("nopool"),
      { code: 2, stderr: "usage: …\n" },
    ]);
    const port = new ZfsPort(host);
    expect(await port.exists("srcpool/data")).toBe(true);
    expect(calls[0]?.argv).toEqual(["zfs", "list", "-H", "-o", "name", "srcpool/data"]);
    expect(await port.exists("srcpool/none")).toBe(false);
    expect(await port.exists("nopool")).toBe(false);
    await expect(port.exists("x")).rejects.toBeInstanceOf(ZfsCommandError);
  });

  test("changedSince: any output of zfs diff is a change", async () => {
    const { host, calls } = fakeHost([
      { stdout: "M\t/srcpool/data/\n+\t/srcpool/data/f2\n" },
      { stdout: "" },
      { code: 1, stderr: "Unable to obtain diffs: No such file or directory\n" },
    ]);
    const port = new ZfsPort(host);
    expect(await port.changedSince("srcpool/data@s2")).toBe(true);
    expect(calls[0]?.argv).toEqual(["zfs", "diff", "-H", "srcpool/data@s2"]);
    expect(await port.changedSince("srcpool/data@s3")).toBe(false);
    await expect(port.changedSince("srcpool/data@nosuch")).rejects.toThrow(
      /Unable to obtain diffs/,
    );
  });

  test("resumeTarget: the token's snapshot and size; zfs's own 255 is an answer", async () => {
    const corrupt = "cannot resume send: resume token is corrupt (incorrect checksum)\n";
    const { host, calls } = fakeHost(
      [{ stdout: TOKEN_OUTPUT }, { code: 255, stderr: corrupt }],
      true,
    );
    const port = new ZfsPort(host);
    expect(await port.resumeTarget("1-e8c5cb21a-e0-789c63")).toEqual({
      ok: true,
      toname: "srcpool/data@s4",
      size: 32058920,
    });
    expect(calls[0]?.argv).toEqual([
      "zfs",
      "send",
      "-n",
      "-v",
      "-P",
      "-t",
      "1-e8c5cb21a-e0-789c63",
    ]);
    expect(await port.resumeTarget("1-deadbeef-e0-789c0000")).toEqual({
      ok: false,
      reason: "cannot resume send: resume token is corrupt (incorrect checksum)",
    });
  });

  test("freeing and used", async () => {
    const { host, calls } = fakeHost([
      { stdout: "srcpool\tfreeing\t4096\t-\n" },
      { stdout: "13000704\n" },
      { code: 1, stderr: "cannot open 'nopool': no such pool\n" },
    ]);
    const port = new ZfsPort(host);
    expect(await port.freeing("srcpool")).toBe(4096);
    expect(calls[0]?.argv).toEqual(["zpool", "get", "-H", "-p", "freeing", "srcpool"]);
    expect(await port.used("srcpool/data")).toBe(13000704);
    expect(calls[1]?.argv).toEqual(["zfs", "list", "-H", "-p", "-o", "used", "srcpool/data"]);
    expect(await port.freeing("nopool")).toBeNull();
  });
});

describe("ZfsPort actions", () => {
  test("snapshot: one atomic call; a failure names command, exit code and stderr", async () => {
    const { host, calls } = fakeHost([
      {},
      { code: 1, stderr: "cannot create snapshot 'srcpool/data@s5': dataset already exists\n" },
    ]);
    const port = new ZfsPort(host);
    const done = await port.snapshot(["srcpool/data@s5", "srcpool/data/child@s5"]);
    expect(done).toMatchObject({ ok: true });
    expect(calls[0]?.argv).toEqual(["zfs", "snapshot", "srcpool/data@s5", "srcpool/data/child@s5"]);
    const failed = await port.snapshot(["srcpool/data@s5"]);
    expect(failed.ok).toBe(false);
    expect(failed.error).toBe(
      [
        "command failed on source (localhost): zfs snapshot srcpool/data@s5",
        "exit code: 1",
        "stderr: cannot create snapshot 'srcpool/data@s5': dataset already exists",
      ].join("\n"),
    );
    expect(typeof failed.durationMs).toBe("number");
  });

  test("abortReceive, and an action over a lost connection says so", async () => {
    const { host, calls } = fakeHost(
      [
        { code: 1, stderr: "'dstpool/x' does not have any resumable receive state to abort\n" },
        { code: 255, stderr: "" },
      ],
      true,
    );
    const port = new ZfsPort(host);
    const outcome = await port.abortReceive("dstpool/x");
    expect(calls[0]?.argv).toEqual(["zfs", "receive", "-A", "dstpool/x"]);
    expect(outcome.error).toContain("does not have any resumable receive state");
    const lost = await port.abortReceive("dstpool/x");
    expect(lost.error).toBe(
      [
        "command failed on target (backup.example): zfs receive -A dstpool/x",
        "exit code: 255",
        "stderr: (no message)",
        "the ssh connection to the target (backup.example) was lost",
      ].join("\n"),
    );
  });

  test("destroy: batches in order, oldest first", async () => {
    const names = defaultNames(20_000);
    const { host, calls } = fakeHost([{}]);
    expect(await new ZfsPort(host).destroy("tank/data", names)).toMatchObject({ ok: true });
    expect(calls).toHaveLength(3);
    const sent = calls.flatMap(({ argv }) => {
      expect(argv.slice(0, 2)).toEqual(["zfs", "destroy"]);
      return (argv[2] as string).replace("tank/data@", "").split(",");
    });
    expect(sent).toEqual(names);
  });

  test("destroy: the first failing batch ends it, and is reported with what was done", async () => {
    const names = defaultNames(20_000);
    const busy = "cannot destroy snapshot tank/data@2020070101: dataset is busy\n";
    const { host, calls } = fakeHost([{}, { code: 1, stderr: busy }, {}]);
    const outcome = await new ZfsPort(host).destroy("tank/data", names);
    expect(calls).toHaveLength(2);
    expect(outcome.ok).toBe(false);
    const count = (i: number) => (calls[i]?.argv[2] ?? "").split(",").length;
    const [first, second] = [count(0), count(1)];
    const error = outcome.error ?? "";
    expect(error).toContain("command failed on source (localhost): zfs destroy tank/data@");
    expect(error).toContain(`(${second} snapshots)`);
    expect(error).toContain("exit code: 1");
    expect(error).toContain("dataset is busy");
    expect(error).toContain(
      `batch 2 of 3: ${first} older snapshot(s) were destroyed before it, ${20_000 - first - second} newer one(s) were not tried`,
    );
    // the message stays readable: not 100 KiB of names
    expect(error.length).toBeLessThan(1000);
  });

  test("the port's timeout and signal go with every command", async () => {
    const signal = new AbortController().signal;
    const { host, calls } = fakeHost([{ stdout: "srcpool/data\n" }]);
    const port = new ZfsPort(host, { timeoutMs: 900_000, signal });
    await port.exists("srcpool/data");
    await port.snapshot(["srcpool/data@a"]);
    await port.destroy("srcpool/data", ["a"]);
    await port.freeing("srcpool");
    expect(calls).toHaveLength(4);
    for (const call of calls) expect(call.options).toEqual({ timeoutMs: 900_000, signal });
  });

  test("a timeout rejects, from a query and from an action", async () => {
    const host: Host = {
      ...fakeHost([]).host,
      run: async (argv) => {
        throw new CommandTimeoutError({ argv, side: "source", host: "localhost" }, "zfs", 5);
      },
    };
    const port = new ZfsPort(host, { timeoutMs: 5 });
    await expect(port.inventory("tank")).rejects.toBeInstanceOf(CommandTimeoutError);
    await expect(port.destroy("tank", ["a"])).rejects.toBeInstanceOf(CommandTimeoutError);
  });
});
