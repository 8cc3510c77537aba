// `abgleich backup --json | head`: the reader goes away early; the run must not crash halfway
// through its plan but finish it, quietly.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { CLI_MAIN, configYaml, createSimEnv, type SimEnv } from "../helpers/sim-env.ts";

let env: SimEnv;
let config: string;

beforeAll(() => {
  env = createSimEnv();
  config = env.writeConfig(
    configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" }),
  );
  env.seed({
    now: 1_767_225_600,
    pools: [
      {
        name: "src",
        size: "8G",
        datasets: ["data", "data/a", "data/b", "data/c"].map((name) => ({
          name,
          snapshots: [{ name: "2026010101", written: "1G" }],
        })),
      },
      { name: "dst", size: "8G" },
    ],
  });
});

afterAll(() => env?.remove());

test("a closed stdout does not stop the backup: exit 0, every dataset sent, no stack trace", async () => {
  const script = `"$@" | head -c 80 >/dev/null; echo "status=\${PIPESTATUS[0]}" >&2`;
  const child = Bun.spawn(
    ["bash", "-c", script, "bash", process.execPath, CLI_MAIN, "backup", config, "--yes", "--json"],
    { env: { ...process.env, PATH: env.path, TZ: "UTC" }, stdout: "pipe", stderr: "pipe" },
  );
  await child.exited;
  const stderr = await new Response(child.stderr).text();
  expect(stderr).toContain("status=0");
  expect(stderr).not.toContain("EPIPE");
  for (const name of ["", "/a", "/b", "/c"]) {
    expect(env.snapshots(`dst/backup${name}`)).toEqual(["2026010101"]);
  }
}, 60_000);
