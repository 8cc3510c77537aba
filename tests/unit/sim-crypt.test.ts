// The simulator's encryption, holds and bookmarks, in process (simMain): the behaviour
// checked against real OpenZFS 2.1.11 by the e2e differential, kept here without a VM.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { simMain } from "../../lib/sim/main.ts";
import { BOOKMARK_PROGRAM } from "../../lib/zfs/programs.ts";

let dir: string;
let n = 0;

/** runs `zfs ARGS` in process; stdin from a file when given; returns code, out, err */
async function zfs(args: string[], stdin?: string) {
  const id = n++;
  const out = join(dir, `out${id}`);
  const err = join(dir, `err${id}`);
  const inFile = join(dir, `in${id}`);
  writeFileSync(inFile, stdin ?? "");
  const fds = [openSync(inFile, "r"), openSync(out, "w"), openSync(err, "w")] as const;
  const code = await simMain(["--state", join(dir, "state"), "zfs", ...args], {
    env: { TZ: "UTC" },
    stdinFd: fds[0],
    stdoutFd: fds[1],
    stderrFd: fds[2],
  });
  for (const fd of fds) closeSync(fd);
  return { code, out: readFileSync(out, "utf8"), err: readFileSync(err, "utf8").trim() };
}

/** `zfs send SEND > file; zfs receive RECEIVE < file` */
async function pipe(send: string[], receive: string[]) {
  const sent = await zfs(send);
  const stream = join(dir, `stream${n}`);
  writeFileSync(stream, readFileSync(join(dir, `out${n - 1}`)));
  const id = n++;
  const err = join(dir, `err${id}`);
  const fds = [openSync(stream, "r"), openSync("/dev/null", "w"), openSync(err, "w")] as const;
  const code = await simMain(["--state", join(dir, "state"), "zfs", ...receive], {
    env: { TZ: "UTC" },
    stdinFd: fds[0],
    stdoutFd: fds[1],
    stderrFd: fds[2],
  });
  for (const fd of fds) closeSync(fd);
  return { sent, code, err: readFileSync(err, "utf8").trim() };
}

const crypt = async (name: string) =>
  (
    await zfs([
      "list",
      "-Hp",
      "-o",
      "encryption,keystatus,encryptionroot,keyformat,keylocation",
      name,
    ])
  ).out.trim();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "sim-crypt-"));
  writeFileSync(join(dir, "key"), "passphrase1");
  writeFileSync(join(dir, "wrong"), "wrongpass1");
  await zfs(["sim-pool", "p", "512M"]);
  await zfs(["create", "p/plain"]);
  await zfs(["sim-write", "p/plain", "1M"]);
  await zfs(["snapshot", "p/plain@s"]);
  const opts = ["-o", "encryption=on", "-o", "keyformat=passphrase"];
  await zfs(["create", ...opts, "-o", `keylocation=file://${join(dir, "key")}`, "p/enc"]);
  await zfs(["create", "p/enc/child"]);
  await zfs(["sim-write", "p/enc", "2M"]);
  await zfs(["snapshot", "-r", "p/enc@a"]);
  await zfs(["sim-write", "p/enc", "1M"]);
  await zfs(["snapshot", "p/enc@b"]);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("encryption", () => {
  test("properties of plain and encrypted datasets, snapshots and bookmarks", async () => {
    expect(await crypt("p/plain")).toBe("off\t-\t-\tnone\tnone");
    expect(await crypt("p/enc")).toBe(
      `aes-256-gcm\tavailable\tp/enc\tpassphrase\tfile://${join(dir, "key")}`,
    );
    expect(await crypt("p/enc/child")).toBe("aes-256-gcm\tavailable\tp/enc\tpassphrase\tnone");
    expect(await crypt("p/enc@a")).toBe("aes-256-gcm\tavailable\tp/enc\t-\t-");
    await zfs(["bookmark", "p/enc@a", "#a"]);
    expect(
      (await zfs(["list", "-t", "bookmark", "-Hp", "-o", "name,encryption,keystatus", "p/enc#a"]))
        .out,
    ).toBe("p/enc#a\t-\t-\n");
  });

  test("a passphrase prompt reads standard input", async () => {
    const opts = ["-o", "encryption=aes-128-ccm", "-o", "keyformat=passphrase"];
    expect((await zfs(["create", ...opts, "p/prompted"], "passphrase1\n")).code).toBe(0);
    expect(await crypt("p/prompted")).toBe(
      "aes-128-ccm\tavailable\tp/prompted\tpassphrase\tprompt",
    );
    expect((await zfs(["create", ...opts, "p/short"], "short\n")).err).toBe(
      "cannot create 'p/short': Passphrase too short (min 8).",
    );
  });

  test("a raw stream makes a root without key; the right key opens it", async () => {
    const full = await pipe(["send", "-w", "p/enc@a"], ["receive", "-u", "p/raw"]);
    expect(full.code).toBe(0);
    expect(await crypt("p/raw")).toBe("aes-256-gcm\tunavailable\tp/raw\tpassphrase\tprompt");
    expect((await zfs(["mount", "p/raw"])).err).toBe(
      "cannot mount 'p/raw': encryption key not loaded",
    );
    expect((await zfs(["sim-write", "p/raw", "1K"])).code).toBe(1);
    const inc = await pipe(["send", "-w", "-i", "@a", "p/enc@b"], ["receive", "-u", "p/raw"]);
    expect(inc.code).toBe(0);
    const wrong = await zfs(["load-key", "-L", `file://${join(dir, "wrong")}`, "p/raw"]);
    expect(wrong).toMatchObject({
      code: 255,
      err: "Key load error: Incorrect key provided for 'p/raw'.",
    });
    expect((await zfs(["load-key", "-L", "prompt", "p/raw"], "passphrase1")).code).toBe(0);
    expect(await crypt("p/raw")).toBe("aes-256-gcm\tavailable\tp/raw\tpassphrase\tprompt");
  });

  test("raw and decrypted streams do not mix on one target", async () => {
    await pipe(["send", "p/enc@a"], ["receive", "-u", "p/dec"]);
    expect(await crypt("p/dec")).toBe("off\t-\t-\tnone\tnone");
    const raw = await pipe(["send", "-w", "-i", "@a", "p/enc@b"], ["receive", "-u", "p/dec"]);
    expect(raw.err).toBe(
      "cannot receive incremental stream: cannot perform raw receive on top of existing unencrypted dataset",
    );
  });

  test("a plain stream below an encrypted parent takes the parent's key", async () => {
    await pipe(["send", "p/plain@s"], ["receive", "-u", "p/enc/inner"]);
    expect(await crypt("p/enc/inner")).toBe("aes-256-gcm\tavailable\tp/enc\tpassphrase\tnone");
  });

  test("without its key a dataset sends only raw", async () => {
    await zfs(["unmount", "p/enc/child"]);
    expect((await zfs(["unload-key", "p/enc"])).err).toBe("Key unload error: 'p/enc' is busy.");
    await zfs(["unmount", "p/enc"]);
    expect((await zfs(["unload-key", "p/enc"])).code).toBe(0);
    expect((await zfs(["send", "p/enc@a"])).err).toBe(
      "warning: cannot send 'p/enc@a': dataset key must be loaded",
    );
    expect((await zfs(["send", "-nvP", "p/enc@a"])).code).toBe(0);
    expect((await zfs(["send", "-w", "p/enc@a"])).code).toBe(0);
    expect((await zfs(["create", "p/enc/new"])).err).toBe(
      "cannot create 'p/enc/new': encryption root's key is not loaded or provided",
    );
    expect((await zfs(["load-key", "p/enc"])).code).toBe(0);
  });
});

describe("holds in bulk", () => {
  test("each operand stands alone; -r holds all or none", async () => {
    await zfs(["create", "p/h"]);
    await zfs(["create", "p/h/c"]);
    await zfs(["snapshot", "-r", "p/h@a"]);
    expect((await zfs(["hold", "t", "p/h@a", "p/h/c@a"])).code).toBe(0);
    const again = await zfs(["hold", "t", "p/h@nope", "p/h/c@a", "p/nope@a", "p/h"]);
    expect(again.code).toBe(1);
    expect(again.err.split("\n")).toEqual([
      "cannot hold snapshot 'p/h@nope': dataset does not exist",
      "cannot hold snapshot 'p/h/c@a': tag already exists on this dataset",
      "cannot open 'p/nope': dataset does not exist",
      "'p/h' is not a snapshot",
    ]);
    await zfs(["release", "t", "p/h@a"]);
    // p/h/c@a still has the tag: -r takes none
    expect((await zfs(["hold", "-r", "t", "p/h@a"])).code).toBe(1);
    const refs = await zfs(["list", "-t", "snapshot", "-Hp", "-o", "name,userrefs", "-r", "p/h"]);
    expect(refs.out).toBe("p/h@a\t0\np/h/c@a\t1\n");
    // release -r where the tag is
    expect((await zfs(["release", "-r", "t", "p/h@a"])).code).toBe(0);
    expect((await zfs(["release", "-r", "t", "p/h@a"])).err).toBe(
      "cannot release hold from snapshot 'p/h@a': no such tag on this dataset",
    );
  });
});

describe("bookmarks", () => {
  test("an incremental source after its snapshot is gone", async () => {
    await zfs(["create", "p/b"]);
    await zfs(["sim-write", "p/b", "1M"]);
    await zfs(["snapshot", "p/b@a"]);
    await pipe(["send", "p/b@a"], ["receive", "-u", "p/bdst"]);
    await zfs(["bookmark", "p/b@a", "#a"]);
    expect((await zfs(["bookmark", "p/b@a", "p/b#a"])).err).toBe(
      "cannot create bookmark 'p/b#a': bookmark exists",
    );
    await zfs(["sim-write", "p/b", "1M"]);
    await zfs(["snapshot", "p/b@b"]);
    await zfs(["destroy", "p/b@a"]);
    expect((await zfs(["send", "-I", "#a", "p/b@b"])).err).toBe(
      "Error: multiple snapshots cannot be sent from a bookmark.",
    );
    expect(
      (await pipe(["send", "-c", "-i", "#a", "p/b@b"], ["receive", "-u", "p/bdst"])).code,
    ).toBe(0);
    expect((await zfs(["destroy", "-n", "p/b#a"])).code).toBe(255);
    expect((await zfs(["destroy", "p/b#a"])).code).toBe(0);
    expect((await zfs(["destroy", "p/b#a"])).err).toBe("bookmark 'p/b#a' does not exist.");
  });
});

describe("the bookmark program", () => {
  const bookmarksOf = async (dataset: string) =>
    (await zfs(["list", "-t", "bookmark", "-H", "-o", "name", "-r", dataset])).out;

  test("abgleich's program from stdin makes its bookmarks and says so", async () => {
    await zfs(["create", "p/prog"]);
    await zfs(["snapshot", "p/prog@a"]);
    const run = await zfs(["program", "p", "-", "p/prog@a", "p/prog#a"], BOOKMARK_PROGRAM);
    expect(run).toEqual({
      code: 0,
      out: "Channel program fully executed and did not produce output.\n",
      err: "",
    });
    expect(await bookmarksOf("p/prog")).toBe("p/prog#a\n");
  });

  test("what it does not model is refused by name, and nothing is made", async () => {
    await zfs(["create", "p/prog2"]);
    await zfs(["snapshot", "p/prog2@a"]);
    await zfs(["sim-pool", "q", "256M"]);
    await zfs(["create", "q/other"]);
    await zfs(["snapshot", "q/other@a"]);
    const pair = ["p/prog2@a", "p/prog2#a"];
    // another program
    const other = await zfs(["program", "p", "-", ...pair], "return 1");
    expect(other.code).toBe(1);
    expect(other.err).toContain("the simulator runs no channel program but abgleich's");
    // open context (-n), where real ZFS refuses every zfs.sync call
    const open = await zfs(["program", "-n", "p", "-", ...pair], BOOKMARK_PROGRAM);
    expect(open.err).toContain("syncing context only");
    // a pair in another pool, even after one in the program's own
    const away = await zfs(
      ["program", "p", "-", ...pair, "q/other@a", "q/other#a"],
      BOOKMARK_PROGRAM,
    );
    expect(away.err).toBe("the simulator runs a program on names in its pool p only");
    // a program file that is not there
    const missing = await zfs(["program", "p", join(dir, "nope.lua"), ...pair]);
    expect(missing.err).toBe(`cannot open '${join(dir, "nope.lua")}': No such file or directory`);
    expect(await bookmarksOf("p/prog2")).toBe("");
    expect(await bookmarksOf("q/other")).toBe("");
  });
});
