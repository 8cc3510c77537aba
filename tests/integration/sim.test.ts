// Runs the simulator as a process through `zfs`/`zpool` shims, in real shell pipelines.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeShims } from "../../lib/sim/main.ts";
import { seedState } from "../../lib/sim/scenario.ts";
import { STATE_FILE, withState } from "../../lib/sim/state.ts";

let dir: string;
let env: Record<string, string>;
let stateDir: string;

function sh(
  script: string,
  extraEnv: Record<string, string> = {},
): { out: string; err: string; code: number } {
  const result = Bun.spawnSync(["bash", "-c", script], { env: { ...env, ...extraEnv } });
  return {
    out: result.stdout.toString(),
    err: result.stderr.toString(),
    code: result.exitCode ?? -1,
  };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "abgleich-sim-"));
  stateDir = join(dir, "state");
  writeShims(join(dir, "bin"), stateDir);
  env = {
    PATH: `${join(dir, "bin")}:${process.env.PATH}`,
    TZ: "UTC",
    ABGLEICH_SIM_NOW: "1795663146",
    HOME: dir,
  };
  seedState(
    stateDir,
    {
      now: 1795663146,
      pools: [
        {
          name: "srcpool",
          size: "480M",
          datasets: [
            {
              name: "data",
              props: { compression: "lz4" },
              snapshots: [
                { name: "s1", written: "8M", changes: ["/f1"] },
                { name: "s2", written: "4M", freed: "8M", changes: ["/f2", "- /f1"] },
                { name: "s3", written: "64K", changes: ["/f3"] },
              ],
            },
            {
              name: "data/child",
              snapshots: [{ name: "s1", written: "2K", changes: ["/hello.txt"] }],
            },
          ],
        },
        { name: "dstpool", size: "480M" },
        { name: "smallpool", size: "100M" },
      ],
    },
    {},
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("zfs sim as a process", () => {
  test("the state lock holds while its holder lives, whatever its lock file says", async () => {
    // A holder that just ended leaves its pid in the lock file for a moment; a process that
    // read it then once took the lock from the next holder and lost that one's update.
    const ended = Bun.spawnSync(["true"]).pid;
    let held = true;
    const child = Bun.spawn(["bash", "-c", "zfs hold racer srcpool/data@s1"], {
      env,
      stdout: "pipe",
      stderr: "pipe",
    });
    const exited = child.exited.then((code) => {
      held = false;
      return code;
    });
    withState(stateDir, () => {
      writeFileSync(join(stateDir, "state.lock"), String(ended));
      Bun.sleepSync(1500);
      // the other process waited: it neither ended nor wrote the state
      expect(held).toBe(true);
      expect(readFileSync(join(stateDir, STATE_FILE), "utf8")).not.toContain('"racer"');
      return { save: false, value: null };
    });
    expect(await exited).toBe(0);
    expect(sh("zfs holds -H srcpool/data@s1").out).toContain("racer");
    expect(sh("zfs release racer srcpool/data@s1").code).toBe(0);
  });

  // bun:ffi needs the JIT: with BUN_JSC_useJIT=0 no libc loads and the exclusive-file lock is
  // used; under qemu-user whether libc loads varies from process to process, so both meet
  test("a sim process without libc waits for a holder with flock, then goes on", async () => {
    const child = Bun.spawn(["bash", "-c", "zfs hold nojit srcpool/data@s1"], {
      env: { ...env, BUN_JSC_useJIT: "0" },
      stdout: "pipe",
      stderr: "pipe",
    });
    // as a flock holder leaves it between holds: there, not naming anyone
    writeFileSync(join(stateDir, "state.lock"), "");
    withState(stateDir, () => {
      Bun.sleepSync(1500);
      // the other process waited: it did not write the state meanwhile
      expect(readFileSync(join(stateDir, STATE_FILE), "utf8")).not.toContain('"nojit"');
      return { save: false, value: null };
    });
    expect(await child.exited).toBe(0);
    expect(sh("zfs holds -H srcpool/data@s1").out).toContain("nojit");
    expect(sh("zfs release nojit srcpool/data@s1").code).toBe(0);
  });

  test("a sim process with flock waits for a holder without libc", async () => {
    const stateModule = join(import.meta.dir, "../../lib/sim/state.ts");
    const script = `import { withState } from ${JSON.stringify(stateModule)};
withState(${JSON.stringify(stateDir)}, () => {
  console.log("held");
  Bun.sleepSync(1500);
  return { save: false, value: null };
});
console.log("released " + Date.now());`;
    const holder = Bun.spawn([process.execPath, "-e", script], {
      env: { ...env, BUN_JSC_useJIT: "0" },
      stdout: "pipe",
      stderr: "inherit",
    });
    const reader = holder.stdout.getReader();
    let out = "";
    while (!out.includes("held\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    expect(out).toBe("held\n");
    const taker = sh("zfs hold withjit srcpool/data@s1 && date +%s%3N");
    expect(await holder.exited).toBe(0);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    const released = Number(/released (\d+)/.exec(out)?.[1]);
    expect(taker.code).toBe(0);
    // the hold was made after the holder let go, not beside it
    expect(Number(taker.out.trim())).toBeGreaterThanOrEqual(released);
    expect(sh("zfs release withjit srcpool/data@s1").code).toBe(0);
  });

  test("holds -r: a missing dataset fails, a name found nowhere below is said but no failure", () => {
    // as OpenZFS 2.1.11 and 2.3.2 answer (tests/e2e/differential.ts checks it on both)
    const missing = sh("zfs holds -rH srcpool/nope@s1 srcpool/data@s1");
    expect(missing).toMatchObject({
      code: 1,
      err: "cannot open 'srcpool/nope': dataset does not exist\n",
    });
    const nowhere = sh("zfs holds -rH srcpool/data@nowhere");
    expect(nowhere).toEqual({ out: "", err: "no datasets available\n", code: 0 });
  });

  test("list -Hp shows each dataset, its snapshots, then children", () => {
    const r = sh("zfs list -t all -Hp -o name,type,used,written -r srcpool");
    expect(r.code).toBe(0);
    expect(r.out.split("\n").map((l) => l.split("\t").slice(0, 2).join(" "))).toEqual([
      "srcpool filesystem",
      "srcpool/data filesystem",
      "srcpool/data@s1 snapshot",
      "srcpool/data@s2 snapshot",
      "srcpool/data@s3 snapshot",
      "srcpool/data/child filesystem",
      "srcpool/data/child@s1 snapshot",
      "",
    ]);
    expect(r.out).toContain(`srcpool/data@s1\tsnapshot\t${8 * 1048576}\t${8 * 1048576 + 98304}\n`);
  });

  test("errors carry zfs's messages and exit codes", () => {
    expect(sh("zfs list nopool/none")).toMatchObject({
      code: 1,
      err: "cannot open 'nopool/none': dataset does not exist\n",
    });
    const bad = sh("zfs list -Hp -o name,bogusprop srcpool");
    expect(bad.code).toBe(2);
    expect(bad.err).toStartWith("bad property list: invalid property 'bogusprop'\nusage:\n");
    const snap = sh("zfs snapshot srcpool/none@x");
    expect(snap.code).toBe(2);
    expect(snap.err).toStartWith(
      "cannot open 'srcpool/none': dataset does not exist\nusage:\n\tsnapshot [-r]",
    );
    expect(sh("zfs snapshot srcpool/data@s3")).toMatchObject({
      code: 1,
      err: "cannot create snapshot 'srcpool/data@s3': dataset already exists\n",
    });
    expect(sh("zfs get -Hp -o value guid srcpool/data@s1 srcpool/data@nosuch")).toMatchObject({
      code: 1,
    });
  });

  test("create, snapshot several atomically, human table", () => {
    expect(sh("zfs create srcpool/x && zfs snapshot srcpool/x@a srcpool/data/child@a").code).toBe(
      0,
    );
    const txgs = sh(
      "zfs list -t snapshot -Hp -o name,createtxg srcpool/x@a srcpool/data/child@a",
    ).out.split("\n");
    expect(txgs[0]?.split("\t")[1]).toBe(txgs[1]?.split("\t")[1]);
    expect(sh("zfs snapshot srcpool/x@b srcpool/x@a").code).toBe(1);
    expect(sh("zfs list -H -o name srcpool/x@b").code).toBe(1);
    expect(sh("zfs create srcpool/a/b/c")).toMatchObject({
      code: 1,
      err: "cannot create 'srcpool/a/b/c': parent does not exist\n",
    });
    // an existing dataset: refused, except with -p, which zfs takes as done
    expect(sh("zfs create srcpool/x")).toMatchObject({
      code: 1,
      err: "cannot create 'srcpool/x': dataset already exists\n",
    });
    expect(sh("zfs create -p srcpool/x")).toMatchObject({ code: 0, out: "", err: "" });
    const table = sh("zfs list -o name,used,refer,mountpoint srcpool/x").out;
    expect(table).toBe(
      "NAME        USED     REFER  MOUNTPOINT\nsrcpool/x    96K       96K  /srcpool/x\n",
    );
  });

  test("diff lists the changes between snapshots with the mountpoint", () => {
    expect(sh("zfs diff srcpool/data@s1 srcpool/data@s2").out).toBe(
      "+\t/srcpool/data/f2\nM\t/srcpool/data/\n-\t/srcpool/data/f1\n",
    );
    expect(sh("zfs diff srcpool/data@s3").out).toBe("");
    expect(sh("zfs diff srcpool/data@s3 srcpool/data@s1").err).toBe(
      "Unable to obtain diffs: \n   Not an earlier snapshot from the same fs\n",
    );
  });

  test("send estimates match the transcript layout", () => {
    const full = sh("zfs send -nvP srcpool/data@s1").out.split("\n");
    expect(full[0]).toMatch(/^full\tsrcpool\/data@s1\t\d+$/);
    expect(full[1]).toMatch(/^size\t\d+$/);
    const inc = sh("zfs send -nvP -I @s1 srcpool/data@s3").out.split("\n");
    expect(inc[0]).toMatch(/^incremental\ts1\tsrcpool\/data@s2\t\d+$/);
    expect(inc[1]).toMatch(/^incremental\ts2\tsrcpool\/data@s3\t\d+$/);
    expect(sh("zfs send -nvP -i @s1 srcpool/data@s2").out).toMatch(
      /^incremental\tsrcpool\/data@s1\tsrcpool\/data@s2\t\d+\n/,
    );
  });

  test("full and -I through a pipeline keep guids and creation", () => {
    const r = sh(
      "set -o pipefail; zfs send srcpool/data@s1 | zfs receive -s -u dstpool/data && zfs send -I @s1 srcpool/data@s3 | zfs receive -s -u dstpool/data",
    );
    expect(r).toMatchObject({ code: 0, err: "" });
    const src = sh(
      "zfs list -t snapshot -Hp -o name,guid,creation,written -r srcpool/data -d 1",
    ).out;
    const dst = sh("zfs list -t snapshot -Hp -o name,guid,creation,written -r dstpool/data").out;
    expect(dst.replaceAll("dstpool/", "srcpool/")).toBe(src);
    expect(sh("zfs get -Hp -o value mounted,written dstpool/data").out).toBe("no\n0\n");
  });

  test("cut stream, resume with -t, abort with -A", () => {
    sh("zfs sim-write srcpool/data 3M /big && zfs snapshot srcpool/data@s4");
    const cut = sh(
      "set -o pipefail; zfs send -i @s3 srcpool/data@s4 | head -c 1000000 | zfs receive -s -u dstpool/data",
    );
    expect(cut.code).toBe(1);
    expect(cut.err).toMatch(
      /^cannot receive incremental stream: checksum mismatch or incomplete stream\.\nPartially received snapshot is saved\.\nA resuming stream can be generated on the sending system by running:\n {4}zfs send -t 1-[0-9a-f]+-e0-789c[0-9a-f]+\n$/,
    );
    const token = sh("zfs get -H -o value receive_resume_token dstpool/data").out.trim();
    expect(token).toStartWith("1-");
    expect(sh("zfs send -i @s3 srcpool/data@s4 | zfs receive -s dstpool/data").err).toBe(
      'cannot receive incremental stream: destination dstpool/data contains partially-complete state from "zfs receive -s".\n',
    );
    const dry = sh(`zfs send -nvP -t ${token}`).out;
    expect(dry).toStartWith("resume token contents:\nnvlist version: 0\n\tfromguid = 0x");
    expect(dry).toMatch(/\nincremental\tsrcpool\/data@s3\tsrcpool\/data@s4\t\d+\nsize\t\d+\n$/);
    expect(
      sh(`set -o pipefail; zfs send -t ${token} | zfs receive -s -u dstpool/data`),
    ).toMatchObject({ code: 0, err: "" });
    expect(sh("zfs get -H -o value receive_resume_token dstpool/data").out).toBe("-\n");
    expect(sh("zfs list -H -o guid srcpool/data@s4").out).toBe(
      sh("zfs list -H -o guid dstpool/data@s4").out,
    );

    sh("zfs sim-write srcpool/data 2M /big2 && zfs snapshot srcpool/data@s5");
    const cut2 = sh("zfs send -i @s4 srcpool/data@s5 | zfs receive -s -u dstpool/data", {
      ABGLEICH_SIM_CUT_AFTER: "5000",
    });
    expect(cut2.code).toBe(1);
    expect(sh("zfs receive -A dstpool/data")).toMatchObject({ code: 0, err: "" });
    expect(sh("zfs receive -A dstpool/data")).toMatchObject({
      code: 1,
      err: "'dstpool/data' does not have any resumable receive state to abort\n",
    });
    expect(
      sh("zfs send -t 1-deadbeef-e0-789c0000 | cat >/dev/null; exit $PIPESTATUS"),
    ).toMatchObject({
      code: 255,
      err: "cannot resume send: resume token is corrupt (incorrect checksum)\n",
    });
  });

  test("a cut pipe shows as 141 from send", () => {
    const r = sh(
      "set -o pipefail; zfs send srcpool/data@s1 | head -c 100 >/dev/null; echo $PIPESTATUS",
    );
    expect(r.out.trim()).toBe("141");
  });

  test("conflicts give the transcript messages", () => {
    sh("zfs sim-write dstpool/data 4K /newfile");
    expect(sh("zfs send -i @s4 srcpool/data@s5 | zfs receive dstpool/data")).toMatchObject({
      code: 1,
      err: "cannot receive incremental stream: destination dstpool/data has been modified\nsince most recent snapshot\n",
    });
    expect(sh("zfs send srcpool/data@s5 | zfs receive dstpool/data")).toMatchObject({
      code: 1,
      err: "cannot receive new filesystem stream: destination 'dstpool/data' exists\nmust specify -F to overwrite it\n",
    });
    expect(sh("zfs send -i @a srcpool/x@a 2>&1 >/dev/null | head -1").out).toContain(
      "not an earlier snapshot",
    );
    sh(
      "zfs snapshot srcpool/x@b && zfs send srcpool/x@a | zfs receive -u dstpool/x && zfs destroy dstpool/x@a && zfs snapshot dstpool/x@other",
    );
    expect(sh("zfs send -i @a srcpool/x@b | zfs receive -u dstpool/x")).toMatchObject({
      code: 1,
      err: "cannot receive incremental stream: most recent snapshot of dstpool/x does not\nmatch incremental source\n",
    });
    expect(sh("zfs send -i @a srcpool/x@b | zfs receive -u dstpool/y")).toMatchObject({
      code: 1,
      err: "cannot receive incremental stream: destination 'dstpool/y' does not exist\n",
    });
    // a target with extra, newer snapshots but no changes accepts the increment (ex5)
    sh(
      "zfs destroy -r dstpool/x && zfs send srcpool/x@a | zfs receive -u dstpool/x && zfs snapshot dstpool/x@newer",
    );
    expect(sh("zfs send -i @a srcpool/x@b | zfs receive -u dstpool/x").code).toBe(0);
    expect(sh("zfs list -t snapshot -H -o name -r dstpool/x").out).toBe(
      "dstpool/x@a\ndstpool/x@newer\ndstpool/x@b\n",
    );
  });

  test("out of space keeps partial state with -s", () => {
    sh("zfs sim-write srcpool/data 60M /huge && zfs snapshot srcpool/data@big");
    const r = sh("zfs send srcpool/data@big | zfs receive -s -u smallpool/big");
    expect(r).toMatchObject({
      code: 1,
      err: "cannot receive new filesystem stream: out of space\n",
    });
    const row = sh("zfs list -Hp -o name,available,receive_resume_token -r smallpool")
      .out.split("\n")[1]
      ?.split("\t");
    expect(row?.[0]).toBe("smallpool/big");
    expect(row?.[1]).toBe("0");
    expect(row?.[2]).toStartWith("1-");
    expect(sh("zfs receive -A smallpool/big").code).toBe(0);
    expect(sh("zfs list -H -o name -r smallpool").out).toBe("smallpool\n");
  });

  test("destroy lists, ranges, holds", () => {
    expect(sh("zfs destroy -nv srcpool/data@s1%s2").out).toBe(
      "would destroy srcpool/data@s1\nwould destroy srcpool/data@s2\nwould reclaim 8M\n",
    );
    sh("zfs hold keepme srcpool/data@s3");
    expect(sh("zfs holds -H srcpool/data@s3").out).toBe(
      "srcpool/data@s3\tkeepme\tThu Nov 26 03:19 2026\n",
    );
    expect(sh("zfs get -Hp userrefs srcpool/data@s3").out).toBe(
      "srcpool/data@s3\tuserrefs\t1\t-\n",
    );
    expect(sh("zfs destroy srcpool/data@s3")).toMatchObject({
      code: 1,
      err: "cannot destroy snapshot srcpool/data@s3: dataset is busy\n",
    });
    expect(sh("zfs release nottag srcpool/data@s3").err).toBe(
      "cannot release hold from snapshot 'srcpool/data@s3': no such tag on this dataset\n",
    );
    expect(sh("zfs release keepme srcpool/data@s3 && zfs destroy srcpool/data@s1,s3").code).toBe(0);
    expect(sh("zfs list -t snapshot -H -o name -d 1 srcpool/data").out).not.toContain("@s1\n");
    expect(sh("zfs destroy srcpool/data@nosuch")).toMatchObject({
      code: 1,
      err: "could not find any snapshots to destroy; check snapshot names.\n",
    });
    const children = sh("zfs destroy srcpool/data");
    expect(children.code).toBe(1);
    expect(children.err).toStartWith(
      "cannot destroy 'srcpool/data': filesystem has children\nuse '-r' to destroy the following datasets:\n",
    );
  });

  test("zpool list and get", () => {
    const line = sh("zpool list -Hp srcpool").out.split("\t");
    expect(line[0]).toBe("srcpool");
    expect(Number(line[1])).toBe(Number(line[2]) + Number(line[3]));
    expect(sh("zpool get -Hp freeing srcpool").out).toBe("srcpool\tfreeing\t0\t-\n");
    expect(sh("zfs version").out).toBe("zfs-2.1.11-1+deb12u1\nzfs-kmod-2.1.11-1+deb12u1\n");
  });
});
