// A receive of what the target already has, and a receive while another one into the same
// target is in flight: the simulator answers as real OpenZFS 2.1.11 did in a VM (the same
// cases run against real ZFS in tests/e2e/differential.ts). Processes race through `zfs`
// shims; an in-flight receive is held mid-stream by a stalled pipe.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeShims } from "../../lib/sim/main.ts";
import { seedState } from "../../lib/sim/scenario.ts";

let dir: string;
let env: Record<string, string>;
let stateDir: string;

interface Run {
  out: string;
  err: string;
  code: number;
}

function sh(script: string): Run {
  const result = Bun.spawnSync(["bash", "-c", script], { env });
  return {
    out: result.stdout.toString(),
    err: result.stderr.toString(),
    code: result.exitCode ?? -1,
  };
}

/** receive's result in `send | receive` (the sender may die of SIGPIPE, as with real zfs) */
function pipe(send: string, receive: string): Run {
  return sh(`zfs ${send} | zfs ${receive}`);
}

const STALL = 1_000_000;
let stalls = 0;

/**
 * Starts `zfs receive ARGS < STREAM_FILE` whose input stops after STALL bytes until finish():
 * when this returns, the receive has read most of those bytes, so it is in flight.
 */
async function inFlight(streamFile: string, receive: string): Promise<() => Promise<Run>> {
  const n = ++stalls;
  const stalled = join(dir, `stalled.${n}`);
  const go = join(dir, `go.${n}`);
  const child = Bun.spawn(
    [
      "bash",
      "-c",
      `{ head -c ${STALL} "$S"; : > "$M"; while [ ! -e "$G" ]; do sleep 0.02; done; tail -c +${STALL + 1} "$S"; } | zfs ${receive}`,
    ],
    { env: { ...env, S: streamFile, M: stalled, G: go }, stdout: "pipe", stderr: "pipe" },
  );
  const deadline = Date.now() + 15_000;
  while (!existsSync(stalled)) {
    if (Date.now() > deadline) throw new Error("the in-flight receive never stalled");
    await Bun.sleep(20);
  }
  return async () => {
    writeFileSync(go, "");
    const [out, err, code] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    return { out, err, code };
  };
}

const busy = (what: string, name: string) =>
  `cannot receive ${what}: destination ${name} contains partially-complete state from "zfs receive -s".\n`;
const exists = (name: string) =>
  `cannot receive new filesystem stream: destination '${name}' exists\nmust specify -F to overwrite it\n`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "abgleich-sim-receive-"));
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
          name: "src",
          size: "1G",
          datasets: [
            {
              // a (data), b (empty), c (data), d (empty), e (data)
              name: "re",
              snapshots: [
                { name: "a", written: "1M", changes: ["/r1"] },
                { name: "b" },
                { name: "c", written: "1536K", changes: ["/r2"] },
                { name: "d" },
                { name: "e", written: "2M", changes: ["/r3"] },
              ],
            },
            { name: "vol", type: "volume", volsize: "16M", snapshots: [{ name: "a" }] },
          ],
        },
        { name: "dst", size: "1G" },
      ],
    },
    {},
  );
  expect(
    sh(`zfs send src/re@c > ${dir}/full.c && zfs send -i @c src/re@e > ${dir}/incr.ce`).code,
  ).toBe(0);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a second receive of what the target already has", () => {
  test("a full stream into an existing dataset is refused", () => {
    expect(pipe("send src/re@a", "receive -s -u dst/x").code).toBe(0);
    for (const flags of ["-s -u", "-s -u -v", "-u"])
      expect(pipe("send src/re@a", `receive ${flags} dst/x`)).toMatchObject({
        code: 1,
        err: exists("dst/x"),
        out: "",
      });
  });

  test("an incremental with data is skipped (zfs consumes it and succeeds)", () => {
    expect(pipe("send -I @a src/re@c", "receive -s -u dst/x").code).toBe(0);
    expect(pipe("send -i @b src/re@c", "receive -s -u dst/x")).toMatchObject({ code: 0, err: "" });
    expect(pipe("send -i @b src/re@c", "receive -s -u -v dst/x")).toEqual({
      code: 0,
      err: "",
      out: "receiving incremental stream of src/re@c into dst/x@c\nsnap dst/x@c already exists; ignoring\nreceived 0B stream in 1 seconds (0B/sec)\n",
    });
  });

  test("an empty incremental is refused: zfs loses its END record and reads past the stream", () => {
    expect(pipe("send -i @a src/re@b", "receive -s -u dst/x")).toMatchObject({
      code: 1,
      err: "cannot receive: failed to read from stream\ncannot restore to dst/x@b: destination already exists\n",
    });
    expect(pipe("send -i @a src/re@b", "receive -s -u -v dst/x").out).toBe(
      "receiving incremental stream of src/re@b into dst/x@b\nsnap dst/x@b already exists; ignoring\n",
    );
    // a -I package ending with it: the skip eats the package's END record
    expect(pipe("send -I @a src/re@b", "receive -s -u dst/x")).toMatchObject({
      code: 1,
      err: "cannot receive: failed to read from stream\n",
    });
  });

  test("in a -I package an empty one swallows the next snapshot", () => {
    // b (empty, there) swallows c: the package ends, nothing received, exit 0
    expect(pipe("send src/re@a", "receive -s -u dst/y").code).toBe(0);
    expect(pipe("send -i @a src/re@b", "receive -s -u dst/y").code).toBe(0);
    expect(pipe("send -I @a src/re@c", "receive -s -u -v dst/y")).toEqual({
      code: 0,
      err: "",
      out: "receiving incremental stream of src/re@b into dst/y@b\nsnap dst/y@b already exists; ignoring\nreceived 0B stream in 1 seconds (0B/sec)\n",
    });
    expect(sh("zfs list -t snapshot -H -o name -r dst/y").out).toBe("dst/y@a\ndst/y@b\n");
    // ... and then d, whose source c the target lacks, is refused
    const r = pipe("send -I @a src/re@d", "receive -s -u -v dst/y");
    expect(r).toMatchObject({
      code: 1,
      err: "cannot receive incremental stream: most recent snapshot of dst/y does not\nmatch incremental source\n",
    });
    expect(r.out).toEndWith("receiving incremental stream of src/re@d into dst/y@d\n");
    expect(sh("zfs list -t snapshot -H -o name -r dst/y").out).toBe("dst/y@a\ndst/y@b\n");
  });

  test("a snapshot of the same name but another guid: destination already exists", () => {
    expect(sh("zfs snapshot dst/y@c").code).toBe(0);
    for (const send of ["send -i @b src/re@c", "send -I @b src/re@e"])
      expect(pipe(send, "receive -s -u dst/y")).toMatchObject({
        code: 1,
        err: "cannot restore to dst/y@c: destination already exists\n",
      });
  });

  test("a cut full receive: a full stream again finds the dataset, -F its partial state", () => {
    const cut = sh(`head -c ${STALL} ${dir}/full.c | zfs receive -s -u dst/part`);
    expect(cut.err).toStartWith(
      "cannot receive new filesystem stream: checksum mismatch or incomplete stream.\nPartially received snapshot is saved.\n",
    );
    expect(pipe("send src/re@c", "receive -s -u dst/part")).toMatchObject({
      code: 1,
      err: exists("dst/part"),
    });
    expect(pipe("send src/re@c", "receive -s -u -F dst/part")).toMatchObject({
      code: 1,
      err: busy("new filesystem stream", "dst/part"),
    });
    expect(pipe("send -i @c src/re@e", "receive -s -u dst/part")).toMatchObject({
      code: 1,
      err: busy("incremental stream", "dst/part"),
    });
  });
});

describe("receive -o canmount=noauto (abgleich's first receive of a filesystem)", () => {
  const canmount = (name: string) => sh(`zfs get -H -o value,source canmount ${name}`).out;
  test("set locally, kept by later receives, skipped by mount -a, refused for a volume", () => {
    sh("zfs create dst/bk");
    expect(pipe("send src/re@c", "receive -s -u -o canmount=noauto dst/bk/re")).toMatchObject({
      code: 0,
    });
    expect(canmount("dst/bk/re")).toBe("noauto\tlocal\n");
    expect(pipe("send -i @c src/re@e", "receive -s -u dst/bk/re").code).toBe(0);
    expect(canmount("dst/bk/re")).toBe("noauto\tlocal\n");
    expect(sh("zfs mount -a").code).toBe(0);
    expect(sh("zfs get -H -o name,value mounted dst/bk dst/bk/re").out).toBe(
      "dst/bk\tyes\ndst/bk/re\tno\n",
    );
    // zfs mount by name still mounts it (noauto is only the automatic mount)
    expect(sh("zfs mount dst/bk/re").code).toBe(0);
    expect(pipe("send src/vol@a", "receive -s -u -o canmount=noauto dst/bk/vol")).toMatchObject({
      code: 1,
      err: "cannot receive new filesystem stream: property 'canmount' does not apply to datasets of this type\n",
    });
    expect(sh("zfs list dst/bk/vol").code).toBe(1);
  });

  test("a cut first receive shows it already, and its resume keeps it", () => {
    const cut = sh(`head -c ${STALL} ${dir}/full.c | zfs receive -s -u -o canmount=noauto dst/cut`);
    expect(cut.code).toBe(1);
    expect(canmount("dst/cut")).toBe("noauto\tlocal\n");
    const token = sh("zfs get -H -o value receive_resume_token dst/cut").out.trim();
    expect(pipe(`send -t ${token}`, "receive -s -u dst/cut").code).toBe(0);
    expect(canmount("dst/cut")).toBe("noauto\tlocal\n");
    expect(sh("zfs list -H -o name -t snapshot dst/cut").out).toBe("dst/cut@c\n");
  });
});

describe("a second receive while the first is in flight", () => {
  const resume = (name: string) =>
    sh(
      `zfs send -t "$(zfs get -H -o value receive_resume_token ${name})" | zfs receive -s -u ${name}`,
    );

  test("a full receive -s: the new dataset and its token show; every other receive is refused", async () => {
    const finish = await inFlight(`${dir}/full.c`, "receive -s -u dst/fl");
    const row = sh("zfs list -Hp -o name,receive_resume_token dst/fl").out.split("\t");
    expect(row[0]).toBe("dst/fl");
    expect(row[1]).toStartWith("1-");
    expect(pipe("send src/re@c", "receive -s -u dst/fl")).toMatchObject({
      code: 1,
      err: exists("dst/fl"),
    });
    expect(pipe("send src/re@c", "receive -s -u -F dst/fl")).toMatchObject({
      code: 1,
      err: busy("new filesystem stream", "dst/fl"),
    });
    expect(resume("dst/fl")).toMatchObject({ code: 1, err: busy("resume stream", "dst/fl") });
    expect(pipe("send -i @c src/re@e", "receive -s -u dst/fl")).toMatchObject({
      code: 1,
      err: busy("incremental stream", "dst/fl"),
    });
    expect(sh("zfs receive -A dst/fl")).toMatchObject({
      code: 1,
      err: "cannot destroy 'dst/fl': dataset is busy\n",
    });
    expect(await finish()).toMatchObject({ code: 0, err: "" });
    expect(sh("zfs list -t all -H -o name,receive_resume_token -r dst/fl").out).toBe(
      "dst/fl\t-\ndst/fl@c\t-\n",
    );
  });

  test("an incremental receive -s: its token shows; the others are refused", async () => {
    const finish = await inFlight(`${dir}/incr.ce`, "receive -s -u dst/fl");
    expect(sh("zfs get -H -o value receive_resume_token dst/fl").out).toStartWith("1-");
    for (const flags of ["-s -u", "-u"])
      expect(pipe("send -i @c src/re@e", `receive ${flags} dst/fl`)).toMatchObject({
        code: 1,
        err: busy("incremental stream", "dst/fl"),
      });
    expect(pipe("send src/re@c", "receive -s -u dst/fl")).toMatchObject({
      code: 1,
      err: exists("dst/fl"),
    });
    expect(resume("dst/fl")).toMatchObject({ code: 1, err: busy("resume stream", "dst/fl") });
    expect(sh("zfs receive -A dst/fl")).toMatchObject({
      code: 1,
      err: "cannot destroy 'dst/fl/%recv': dataset is busy\n",
    });
    expect(await finish()).toMatchObject({ code: 0, err: "" });
    expect(sh("zfs list -t all -H -o name,receive_resume_token -r dst/fl").out).toBe(
      "dst/fl\t-\ndst/fl@c\t-\ndst/fl@e\t-\n",
    );
  });

  test("without -s: no token; the dataset is busy", async () => {
    const full = await inFlight(`${dir}/full.c`, "receive -u dst/fl2");
    expect(sh("zfs list -H -o name,receive_resume_token dst/fl2").out).toBe("dst/fl2\t-\n");
    expect(pipe("send src/re@c", "receive -s -u dst/fl2")).toMatchObject({
      code: 1,
      err: exists("dst/fl2"),
    });
    expect(pipe("send -i @c src/re@e", "receive -s -u dst/fl2")).toMatchObject({
      code: 1,
      err: "cannot receive incremental stream: most recent snapshot of dst/fl2 does not\nmatch incremental source\n",
    });
    expect(sh("zfs receive -A dst/fl2")).toMatchObject({
      code: 1,
      err: "'dst/fl2' does not have any resumable receive state to abort\n",
    });
    expect(await full()).toMatchObject({ code: 0, err: "" });

    const incremental = await inFlight(`${dir}/incr.ce`, "receive -u dst/fl2");
    for (const flags of ["-s -u", "-u"])
      expect(pipe("send -i @c src/re@e", `receive ${flags} dst/fl2`)).toMatchObject({
        code: 1,
        err: "cannot receive incremental stream: dataset is busy\n",
      });
    expect(sh("zfs receive -A dst/fl2")).toMatchObject({
      code: 1,
      err: "cannot destroy 'dst/fl2/%recv': dataset is busy\n",
    });
    expect(await incremental()).toMatchObject({ code: 0, err: "" });
    expect(sh("zfs list -t snapshot -H -o name -r dst/fl2").out).toBe("dst/fl2@c\ndst/fl2@e\n");
  });

  test("processes racing for one new target: exactly one receives it", async () => {
    const racers = 6;
    const children = Array.from({ length: racers }, () =>
      Bun.spawn(["bash", "-c", `zfs receive -s -u dst/race < ${dir}/full.c`], {
        env,
        stdout: "pipe",
        stderr: "pipe",
      }),
    );
    const results = await Promise.all(
      children.map(async (child) => ({
        code: await child.exited,
        err: await new Response(child.stderr).text(),
      })),
    );
    expect(results.filter((r) => r.code === 0)).toHaveLength(1);
    for (const r of results.filter((r) => r.code !== 0))
      expect(r).toEqual({ code: 1, err: exists("dst/race") });
    expect(sh("zfs list -t all -H -o name,receive_resume_token -r dst/race").out).toBe(
      "dst/race\t-\ndst/race@c\t-\n",
    );
  });

  test("a receive killed in flight: -s keeps a resumable partial, without -s nothing stays", async () => {
    for (const [flags, name] of [
      ["-s -u", "dst/killed"],
      ["-u", "dst/killed2"],
    ] as const) {
      const n = ++stalls;
      const stalled = join(dir, `stalled.${n}`);
      const go = join(dir, `go.${n}`);
      // the receive execs in the pipeline's subshell: $BASHPID is its pid, to kill it alone
      const child = Bun.spawn(
        [
          "bash",
          "-c",
          `{ head -c ${STALL} "$S"; : > "$M"; while [ ! -e "$G" ]; do sleep 0.02; done; } | { echo $BASHPID > "$M.pid"; exec zfs receive ${flags} ${name}; }`,
        ],
        {
          env: { ...env, S: `${dir}/full.c`, M: stalled, G: go },
          stdout: "ignore",
          stderr: "ignore",
        },
      );
      while (!existsSync(stalled)) await Bun.sleep(20);
      const pid = Number(await Bun.file(`${stalled}.pid`).text());
      process.kill(pid, "SIGKILL");
      writeFileSync(go, "");
      await child.exited;
      const listed = sh(`zfs list -H -o name,receive_resume_token ${name}`);
      if (flags === "-s -u") {
        expect(listed.code).toBe(0);
        expect(listed.out).toMatch(new RegExp(`^${name}\\t1-[0-9a-f]+-`));
        expect(sh(`zfs receive -A ${name}`)).toMatchObject({ code: 0, err: "" });
      } else {
        expect(listed).toMatchObject({
          code: 1,
          err: `cannot open '${name}': dataset does not exist\n`,
        });
      }
    }
  });
});
