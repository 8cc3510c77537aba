// The simulator answers as the OpenZFS release it is told to be (`sim-version`, a scenario's
// zfsVersion): one case of each kind in which real 2.3.2 parts from 2.1.11 (as the e2e
// differential saw them in the VMs), the same commands on a state of each version.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildState, simMain } from "../../lib/sim/main.ts";
import { parseZfsVersion } from "../../lib/sim/version.ts";

let dir: string;
let n = 0;

/** runs `zfs ARGS` in process on the state STATE, stdin from a file; code, out, err */
async function zfs(state: string, args: string[], stdinFile?: string) {
  const id = n++;
  const out = join(dir, `out${id}`);
  const err = join(dir, `err${id}`);
  if (!stdinFile) {
    stdinFile = join(dir, `in${id}`);
    writeFileSync(stdinFile, "");
  }
  const fds = [openSync(stdinFile, "r"), openSync(out, "w"), openSync(err, "w")] as const;
  const code = await simMain(["--state", join(dir, state), "zfs", ...args], {
    env: { TZ: "UTC", ABGLEICH_SIM_NOW: "1795663146" },
    stdinFd: fds[0],
    stdoutFd: fds[1],
    stderrFd: fds[2],
  });
  for (const fd of fds) closeSync(fd);
  return { code, out: readFileSync(out, "utf8"), err: readFileSync(err, "utf8").trimEnd() };
}

/** `zfs send SEND > file; zfs receive RECEIVE < file` on one state */
async function pipe(state: string, send: string[], receive: string[]) {
  const sent = await zfs(state, send);
  expect(sent.code).toBe(0);
  const stream = join(dir, `stream${n}`);
  writeFileSync(stream, readFileSync(join(dir, `out${n - 1}`)));
  return zfs(state, receive, stream);
}

const VERSIONS = ["2.1", "2.3"] as const;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "sim-version-"));
  for (const v of VERSIONS) {
    if (v === "2.3") expect((await zfs(v, ["sim-version", "2.3"])).code).toBe(0);
    await zfs(v, ["sim-pool", "p", "512M"]);
    await zfs(v, ["create", "p/a"]);
    await zfs(v, ["sim-write", "p/a", "1M"]);
    await zfs(v, ["snapshot", "p/a@s1"]);
    // nothing written in between: s2 is an empty snapshot (BEGIN and END in a stream)
    await zfs(v, ["snapshot", "p/a@s2"]);
  }
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the version switch", () => {
  test("2.1.11 unless told; sim-version and zfs version name the release", async () => {
    expect((await zfs("2.1", ["sim-version"])).out).toBe("2.1.11\n");
    expect((await zfs("2.3", ["sim-version"])).out).toBe("2.3.2\n");
    expect((await zfs("2.1", ["version"])).out).toBe(
      "zfs-2.1.11-1+deb12u1\nzfs-kmod-2.1.11-1+deb12u1\n",
    );
    expect((await zfs("2.3", ["version"])).out).toBe(
      "zfs-2.3.2-2~bpo12+2\nzfs-kmod-2.3.2-2~bpo12+2\n",
    );
    const bad = await zfs("other", ["sim-version", "2.2"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("not a modelled OpenZFS version");
  });

  test("a scenario names its release; 2.1.11 states stay as they were", () => {
    expect(buildState({ zfsVersion: "2.3", pools: [] }).zfsVersion).toBe("2.3.2");
    expect(buildState({ zfsVersion: "2.1.11", pools: [] })).not.toHaveProperty("zfsVersion");
    expect(buildState({ pools: [] })).not.toHaveProperty("zfsVersion");
    expect(() => buildState({ zfsVersion: "0.8", pools: [] })).toThrow("not a modelled");
    expect(parseZfsVersion("zfs-2.3.2-2~bpo12+2")).toBe("2.3.2");
    expect(parseZfsVersion("2.1")).toBe("2.1.11");
    expect(parseZfsVersion("2.3.1")).toBeNull();
  });
});

describe("where 2.3.2 parts from 2.1.11", () => {
  test("destroying a held snapshot: 'dataset is busy' became a pointer to the holds", async () => {
    const results = [];
    for (const v of VERSIONS) {
      await zfs(v, ["hold", "keep", "p/a@s1"]);
      results.push(await zfs(v, ["destroy", "p/a@s1"]));
      await zfs(v, ["release", "keep", "p/a@s1"]);
    }
    expect(results).toEqual([
      { code: 1, out: "", err: "cannot destroy snapshot p/a@s1: dataset is busy" },
      {
        code: 1,
        out: "",
        err: "cannot destroy snapshot p/a@s1: it's being held. Run 'zfs holds -r p/a@s1' to see holders.",
      },
    ]);
  });

  test("holds -p: a usage error in 2.1, epoch seconds in 2.3", async () => {
    for (const v of VERSIONS) await zfs(v, ["hold", "mine", "p/a@s2"]);
    const [old, now] = [
      await zfs("2.1", ["holds", "-Hp", "p/a@s2"]),
      await zfs("2.3", ["holds", "-Hp", "p/a@s2"]),
    ];
    expect(old.code).toBe(2);
    expect(old.err.split("\n").slice(0, 3)).toEqual([
      "invalid option 'p'",
      "usage:",
      "\tholds [-rH] <snapshot> ...",
    ]);
    expect(now).toEqual({ code: 0, out: "p/a@s2\tmine\t1795663146\n", err: "" });
    for (const v of VERSIONS) await zfs(v, ["release", "mine", "p/a@s2"]);
  });

  test("usage texts end with a pointer to zfs help in 2.3", async () => {
    const [old, now] = [
      await zfs("2.1", ["bookmark", "p/a@s1"]),
      await zfs("2.3", ["bookmark", "p/a@s1"]),
    ];
    expect(old.code).toBe(2);
    expect(now.code).toBe(2);
    expect(old.err.endsWith("For the delegated permission list, run: zfs allow|unallow")).toBe(
      true,
    );
    expect(now.err).toBe(
      `${old.err}\n\nFor further help on a command or topic, run: zfs help [<topic>]`,
    );
    // and the lines of the verbs whose options grew
    expect((await zfs("2.3", ["holds"])).err).toContain("\tholds [-rHp] <snapshot> ...");
  });

  test("an empty snapshot received again: 2.1 loses its END record and fails, 2.3 skips it", async () => {
    const results = [];
    for (const v of VERSIONS) {
      expect((await pipe(v, ["send", "p/a@s1"], ["receive", "-u", "p/b"])).code).toBe(0);
      expect((await pipe(v, ["send", "-i", "@s1", "p/a@s2"], ["receive", "-u", "p/b"])).code).toBe(
        0,
      );
      results.push(await pipe(v, ["send", "-i", "@s1", "p/a@s2"], ["receive", "-u", "p/b"]));
    }
    expect(results).toEqual([
      {
        code: 1,
        out: "",
        err: "cannot receive: failed to read from stream\ncannot restore to p/b@s2: destination already exists",
      },
      { code: 0, out: "", err: "" },
    ]);
  });
});
