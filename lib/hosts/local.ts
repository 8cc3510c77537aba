// The machine abgleich runs on: argv goes straight to the kernel, no shell in between.

import type { Side } from "../zfs/model.ts";
import type { Host, RunOptions, RunResult } from "./host.ts";

/** exit code a shell reports for a command it cannot find or start */
export const SPAWN_FAILED = 127;

/** run argv on this machine, collect its output; a command that cannot start gives code 127 */
export async function runLocal(
  argv: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  if (argv.length === 0) throw new Error("cannot run an empty command");
  let child: Bun.Subprocess<"pipe", "pipe", "pipe">;
  try {
    // env given explicitly: Bun resolves argv[0] against the PATH it was started with otherwise
    child = Bun.spawn([...argv], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      env: process.env,
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { code: SPAWN_FAILED, stdout: "", stderr: `cannot run ${argv[0]}: ${reason}\n` };
  }
  // Write and close stdin before reading, so a command waiting for EOF ends.
  if (options.stdin !== undefined) child.stdin.write(options.stdin);
  await child.stdin.end();
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr };
}

export class LocalHost implements Host {
  readonly name = "localhost";
  readonly isLocal = true;

  constructor(readonly side: Side) {}

  run(argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    return runLocal(argv, options);
  }

  wrap(argv: readonly string[]): string[] {
    return [...argv];
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}
