// The read-only commands (tree, compare) run as the real CLI against the simulator: on
// localhost and through a loopback sshd, as text and as JSON; config errors, a host that is
// down, and hostile names from the configuration or from `zfs` output.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Scenario } from "../../lib/sim/main.ts";
import {
  ANSI,
  configYaml,
  createSimEnv,
  jsonEvents,
  must,
  type SimEnv,
} from "../helpers/sim-env.ts";
import { freePort, type SshdHandle, startSshd } from "../helpers/sshd.ts";

/** a timeout catches a hang only: ssh to a test server is slow on a loaded machine */
const SSH_TIMEOUT_MS = 60_000;

/** names ZFS allows that a shell would split or glob: space, ':', '.', '-' */
const ODD = "a b:c.d-e";

const scenario: Scenario = {
  now: 1_795_000_000,
  pools: [
    {
      name: "src",
      size: "1G",
      datasets: [
        {
          name: "data",
          snapshots: [
            { name: "s1", written: "1M" },
            { name: "s2", written: "64K" },
          ],
        },
        { name: `data/${ODD}`, snapshots: [{ name: "s1", written: "2M" }] },
        { name: "data/cache", written: "3M" },
      ],
    },
    { name: "dst", size: "1G", datasets: [] },
  ],
};

/** the target already holds data/ODD with a snapshot of the same name but its own guid */
const mismatchScenario: Scenario = {
  now: 1_795_000_000,
  pools: [
    must(scenario.pools[0], "source pool"),
    {
      name: "dst",
      size: "1G",
      datasets: [{ name: `backup/${ODD}`, snapshots: [{ name: "s1", written: "1M" }] }],
    },
  ],
};

const IGNORE_CACHE = "ignore:\n  - cache\n";

let env: SimEnv;
let sshd: SshdHandle;
let localConfig: string;
let sshConfigFile: string;
const markerName = `pwned-${crypto.randomUUID()}`;
const marker = join("/tmp", markerName);

function sshConfig(sourceAlias: string, targetAlias: string): string {
  return env.writeConfig(
    configYaml(
      { zpool: "src", prefix: "data", host: sourceAlias },
      { zpool: "dst", prefix: "backup", host: targetAlias },
      `${IGNORE_CACHE}ssh:\n  config_file: ${JSON.stringify(sshConfigFile)}\n`,
    ),
    `ssh-${sourceAlias}-${targetAlias}.yaml`,
  );
}

/** no command that changes anything was run */
function expectReadOnly(calls: string[]): void {
  for (const call of calls)
    expect(call).toMatch(/^(zfs (list|get|version|send -n)|zpool (list|get))/);
}

beforeAll(async () => {
  env = createSimEnv();
  sshd = await startSshd({ env: { PATH: env.path } });
  sshConfigFile = env.writeSshConfig([
    { alias: "src-host", port: sshd.port, identityFile: join(sshd.dir, "client_key") },
    { alias: "dst-host", port: sshd.port, identityFile: join(sshd.dir, "client_key") },
    // nothing listens here: the OS gave the port out and took it back
    { alias: "down-host", port: freePort(), identityFile: join(sshd.dir, "client_key") },
  ]);
  localConfig = env.writeConfig(
    configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" }, IGNORE_CACHE),
  );
}, SSH_TIMEOUT_MS);

afterAll(async () => {
  await sshd?.stop();
  env?.remove();
});

beforeEach(() => env.seed(scenario));

describe("tree", () => {
  test("localhost: both sides, snapshots below datasets, ignored marked, (empty) target, no ANSI on a pipe", async () => {
    const run = await env.cli(["tree", localConfig]);
    // a target root that does not exist yet (before the first backup) is just (empty)
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).not.toMatch(ANSI);
    const lines = run.stdout.split("\n");
    expect(lines[0]).toBe("SOURCE src/data on localhost");
    const names = lines.map((line) => line.split(/ {2,}/)[0]);
    expect(names).toContain("src/data");
    expect(names).toContain(`src/data/${ODD}`);
    expect(names).toContain("src/data/cache (ignored)");
    const dataRow = names.indexOf("src/data");
    expect(names.slice(dataRow + 1, dataRow + 3)).toEqual(["- s1", "- s2"]);
    expect(run.stdout).toContain("TARGET dst/backup on localhost\n(empty)");
    expectReadOnly(env.calls());
  });

  test("--json: one document, guids as strings equal to zfs's, ignored dataset not included", async () => {
    const run = await env.cli(["tree", localConfig, "source", "--json"]);
    expect(run.code).toBe(0);
    const [doc, ...rest] = jsonEvents(run.stdout);
    expect(rest).toEqual([]);
    const trees = (doc as { trees: { side: string; datasets: Record<string, unknown>[] }[] }).trees;
    expect(trees.map((t) => t.side)).toEqual(["source"]);
    const byName = new Map(
      must(trees[0], "source tree").datasets.map((d) => [d.name as string, d]),
    );
    expect([...byName.keys()].sort()).toEqual(["src/data", `src/data/${ODD}`, "src/data/cache"]);
    const odd = must(byName.get(`src/data/${ODD}`), ODD);
    expect(odd.guid).toBe(env.guid(`src/data/${ODD}`));
    const snaps = odd.snapshots as { name: string; guid: unknown }[];
    expect(snaps[0]?.guid).toBe(env.guid(`src/data/${ODD}@s1`));
    expect(typeof snaps[0]?.guid).toBe("string");
    expect(byName.get("src/data/cache")?.included).toBe(false);
    expect(byName.get("src/data")?.included).toBe(true);
  });

  test(
    "through sshd (ssh.config_file aliases): the same tree as on localhost",
    async () => {
      const local = await env.cli(["tree", localConfig, "--json"]);
      const remote = await env.cli(["tree", sshConfig("src-host", "dst-host"), "--json"]);
      expect(remote.stderr).toBe("");
      expect(remote.code).toBe(0);
      expect(remote.stdout).toBe(local.stdout);
      const text = await env.cli(["tree", sshConfig("src-host", "dst-host")]);
      expect(text.stdout).toContain("SOURCE src/data on src-host");
      expect(text.stdout).toContain(`src/data/${ODD}`);
      expect(text.stdout).toContain("TARGET dst/backup on dst-host\n(empty)");
      expect(sshd.log()).toContain("Accepted publickey");
      expectReadOnly(env.calls());
    },
    SSH_TIMEOUT_MS,
  );

  test("a source root that does not exist (a typo) is (empty) with a warning naming root and host", async () => {
    const typo = env.writeConfig(
      configYaml({ zpool: "src", prefix: "dta" }, { zpool: "dst", prefix: "backup" }),
      "typo.yaml",
    );
    const run = await env.cli(["tree", typo, "source"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("(empty)");
    expect(run.stderr).toBe(
      `warning: source root src/dta does not exist on localhost (shown as empty): check source.zpool and source.prefix in ${typo}\n`,
    );
  });
});

describe("compare", () => {
  test("--json -v: stdout is the one document; the commands traced go to stderr", async () => {
    env.seed(mismatchScenario);
    for (const command of [
      ["compare", localConfig],
      ["tree", localConfig, "source"],
      ["status", localConfig],
    ]) {
      const run = await env.cli([...command, "--json", "-v"]);
      // one JSON value, not a line of events before it
      const doc = JSON.parse(run.stdout) as Record<string, unknown>;
      expect(doc).not.toHaveProperty("event");
      expect(run.stderr).toContain("source (localhost) runs: zfs list");
    }
    // a plugin's log and warning lines, too: on stderr, beside the one document
    writeFileSync(
      join(env.dir, "chatty.ts"),
      'export default { name: "chatty", setup(_hooks, { log, warn }) { log("chatty log"); warn("chatty warning"); } };\n',
    );
    const plugged = env.writeConfig(
      configYaml(
        { zpool: "src", prefix: "data" },
        { zpool: "dst", prefix: "backup" },
        "plugins:\n  - path: ./chatty.ts\n",
      ),
      "chatty.yaml",
    );
    for (const command of [
      ["compare", plugged],
      ["status", plugged],
    ]) {
      const run = await env.cli([...command, "--json"]);
      expect(JSON.parse(run.stdout)).not.toHaveProperty("event");
      expect(run.stderr).toContain("[chatty] chatty log");
      expect(run.stderr).toContain("warning: [chatty] chatty warning");
    }
  });

  test("localhost: source-only rows, a guid mismatch called out as a conflict, exit 0, read-only", async () => {
    env.seed(mismatchScenario);
    const json = await env.cli(["compare", localConfig, "--json"]);
    expect(json.code).toBe(0);
    const [doc] = jsonEvents(json.stdout) as [
      {
        datasets: {
          subname: string;
          presence: string;
          ignored: boolean;
          snapshots: Record<string, unknown>[];
          conflicts: { kind: string }[];
        }[];
      },
    ];
    const rows = new Map(doc.datasets.map((d) => [d.subname, d]));
    // the target root exists (the parent of the received dataset) but has no snapshots
    expect(rows.get("")?.presence).toBe("both");
    expect(rows.get("")?.snapshots.map((r) => r.presence)).toEqual(["source", "source"]);
    expect(rows.get("cache")?.ignored).toBe(true);
    const odd = must(rows.get(ODD), ODD);
    expect(odd.presence).toBe("both");
    expect(odd.snapshots).toEqual([
      { name: "s1", presence: "both", guidMismatch: true, sourceHolds: 0, targetHolds: 0 },
    ]);
    // it is also a pair without a common snapshot
    expect(odd.conflicts.map((c) => c.kind)).toContain("guid-mismatch");

    const text = await env.cli(["compare", localConfig]);
    expect(text.code).toBe(0);
    expect(text.stdout).not.toMatch(ANSI);
    expect(text.stdout).toContain("source src/data  →  target dst/backup");
    expect(text.stdout).toContain("cache (ignored)");
    expect(text.stdout).toContain(
      `! guid-mismatch: dst/backup/${ODD}: snapshot(s) s1 exist on both sides`,
    );
    expect(text.stdout).toContain("3 datasets (1 ignored), 3 conflicts");
    expectReadOnly(env.calls());
  });

  test(
    "through sshd: the same comparison as on localhost",
    async () => {
      env.seed(mismatchScenario);
      const local = await env.cli(["compare", localConfig, "--json"]);
      const remote = await env.cli(["compare", sshConfig("src-host", "dst-host"), "--json"]);
      expect(remote.code).toBe(0);
      expect(remote.stdout).toBe(local.stdout);
    },
    SSH_TIMEOUT_MS,
  );

  test("colour: FORCE_COLOR turns it on even on a pipe, --no-color turns it off again", async () => {
    // shows that the ANSI checks above could fail
    const forced = await env.cli(["compare", localConfig], { env: { FORCE_COLOR: "1" } });
    const plain = await env.cli(["compare", localConfig, "--no-color"], {
      env: { FORCE_COLOR: "1" },
    });
    expect(forced.stdout).toMatch(ANSI);
    expect(plain.stdout).not.toMatch(ANSI);
    expect(
      forced.stdout.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g"), ""),
    ).toBe(plain.stdout);
  });
});

describe("bad configuration: exit 2 before any host is contacted", () => {
  const cases: [string, string, RegExp][] = [
    [
      "unknown key",
      configYaml({ zpool: "src" }, { zpool: "dst" }, "keep_snapshot: 2\n"),
      /keep_snapshot/,
    ],
    [
      "prefix with ;",
      configYaml({ zpool: "src", prefix: `data;touch ${marker}` }, { zpool: "dst" }),
      /prefix/,
    ],
    [
      "ignore entry with $( )",
      configYaml({ zpool: "src" }, { zpool: "dst" }, `ignore:\n  - "$(touch ${marker})"\n`),
      /ignore/,
    ],
    [
      "suffix with a quote",
      configYaml({ zpool: "src" }, { zpool: "dst" }, `suffix: "x'; touch ${marker}"\n`),
      /suffix/,
    ],
    [
      "host read as an ssh option",
      configYaml({ zpool: "src", host: `-oProxyCommand=touch ${marker}` }, { zpool: "dst" }),
      /host/,
    ],
    [
      "port out of range",
      configYaml({ zpool: "src" }, { zpool: "dst" }, "").replace(
        '  host: "localhost"\n',
        '  host: "localhost"\n  port: 70000\n',
      ),
      /port/,
    ],
    ["YAML syntax", "source: [zpool: src\n", /bad\.yaml:\d+:\d+: YAML syntax error/],
  ];
  cases.forEach(([what, yaml, expected], i) => {
    test(what, async () => {
      const file = env.writeConfig(yaml, "bad.yaml");
      // a read-only and a changing command in turn: each run costs ~0.3 s on two cores
      const command = i % 2 === 0 ? ["tree", file] : ["backup", file, "--yes"];
      const run = await env.cli(command);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain("bad.yaml");
      expect(run.stderr).toMatch(expected);
      expect(run.stdout).toBe("");
      expect(env.calls()).toEqual([]);
      expect(existsSync(marker)).toBe(false);
    });
  });

  test("--json: the error is a JSON event with kind config", async () => {
    const file = env.writeConfig(
      configYaml({ zpool: "src" }, { zpool: "dst" }, "digits: 9\n"),
      "bad.yaml",
    );
    const run = await env.cli(["compare", file, "--json"]);
    expect(run.code).toBe(2);
    const [event] = jsonEvents(run.stdout);
    expect(event).toMatchObject({ event: "error", kind: "config", exitCode: 2 });
    expect(String(event?.message)).toContain("digits");
    expect(env.calls()).toEqual([]);
  });
});

describe("host down", () => {
  test(
    "target alias on a closed port: `host is not up: target` with ssh's reason, exit 1",
    async () => {
      const file = sshConfig("src-host", "down-host");
      for (const command of [
        ["compare", file],
        ["backup", file, "--yes"],
      ]) {
        const run = await env.cli(command);
        expect(run.code).toBe(1);
        expect(run.stderr).toContain("host is not up: target");
        expect(run.stderr).toMatch(/Connection refused/);
        expect(run.stdout).not.toContain("Do you want to continue");
      }
      const json = await env.cli(["tree", file, "target", "--json"]);
      expect(json.code).toBe(1);
      expect(jsonEvents(json.stdout)[0]).toMatchObject({
        event: "error",
        kind: "host-down",
        exitCode: 1,
      });
      // a changing command says it with the same event, after its stage ended
      const backup = await env.cli(["backup", file, "--yes", "--json"]);
      expect(backup.code).toBe(1);
      const events = jsonEvents(backup.stdout).map((e) => e.event);
      expect(events.slice(-3)).toEqual(["stage-done", "error", "summary"]);
      expect(jsonEvents(backup.stdout).at(-2)).toMatchObject({
        kind: "host-down",
        problem: "connection-refused",
        exitCode: 1,
      });
      expectReadOnly(env.calls());
    },
    SSH_TIMEOUT_MS,
  );

  test(
    "snap needs only the source: it works while the target host is down",
    async () => {
      const file = sshConfig("src-host", "down-host");
      expect(env.zfs("sim-write", "src/data", "2M").code).toBe(0);
      const before = env.list().size;
      const run = await env.cli(["snap", file, "--yes"]);
      expect(run.stderr).not.toContain("host is not up");
      expect(run.code).toBe(0);
      expect(env.calls().some((call) => call.startsWith("zfs snapshot "))).toBe(true);
      expect(env.list().size).toBeGreaterThan(before);
    },
    SSH_TIMEOUT_MS,
  );
});

describe("hostile names", () => {
  test("the simulator, like zfs, refuses ; $ ' in names and accepts space : . -", () => {
    for (const bad of ["src/x;y", "src/$(id)", "src/it's"]) {
      const run = env.zfs("create", bad);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain("invalid character in name");
    }
    expect(env.zfs("create", "src/ok name:1.2-3").code).toBe(0);
    expect(env.list().has("src/ok name:1.2-3")).toBe(true);
  });

  test(
    "odd names in `zfs list` output are data: refused with a clear message, never run, locally or over ssh",
    async () => {
      // real zfs never lists these; a broken or hostile `zfs` might
      const hostile = [
        `x;touch ${markerName}`,
        `$(touch ${markerName})`,
        `it's \`touch ${markerName}\``,
      ];
      env.seed({
        now: 1_795_000_000,
        pools: [
          {
            name: "src",
            size: "1G",
            datasets: [
              { name: "data", snapshots: [{ name: "s1" }] },
              ...hostile.map((name) => ({ name: `data/${name}`, snapshots: [{ name: "s1" }] })),
            ],
          },
          { name: "dst", size: "1G" },
        ],
      });
      const remote = sshConfig("src-host", "dst-host");
      const commands = [
        ["tree", localConfig],
        ["snap", localConfig, "--yes"],
        ["compare", remote],
        ["backup", remote, "--yes"],
      ];
      for (const command of commands) {
        const run = await env.cli(command);
        expect(run.code).toBe(1);
        expect(run.stderr + run.stdout).toContain("invalid dataset name");
      }
      // the CLI runs in env.dir; ssh sessions start in the harness's HOME
      expect(existsSync(join(env.dir, markerName))).toBe(false);
      expect(existsSync(join(sshd.dir, "home", markerName))).toBe(false);
      expectReadOnly(env.calls());
    },
    SSH_TIMEOUT_MS,
  );
});
