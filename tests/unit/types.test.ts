// types/abgleich.d.ts, the declarations plugin authors get (`abgleich types`): it must match what
// scripts/types.ts generates from the current lib/, and in a folder with nothing installed it must
// pass a correct plugin and workflow and reject a misspelled hook and a wrong payload type.

import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateDeclarations, TYPES_FILE } from "../../scripts/types.ts";

const TSC = join(import.meta.dir, "..", "..", "node_modules", "typescript", "bin", "tsc");

const GOOD_PLUGIN = `import { definePlugin, formatBytes, type Plan } from "abgleich";

export default definePlugin<{ url: string }>({
  name: "good",
  options: (raw) => ({ url: String(raw.url ?? "") }),
  setup(hooks, { options, log }) {
    hooks.afterAction.tapPromise("good", async (action, outcome) => {
      if (action.kind === "send" && outcome.ok) {
        log(\`\${action.to}: \${formatBytes(outcome.bytes ?? 0)} to \${options.url}\`);
      }
    });
    hooks.plan.tap("good", (plan: Plan) => ({
      ...plan,
      actions: plan.actions.filter((a) => a.kind !== "destroy"),
    }));
    hooks.done.tapPromise("good", async (summary) => log(String(summary.exitCode)));
  },
});
`;

const GOOD_WORKFLOW = `import { defineWorkflow } from "abgleich";

export default defineWorkflow(async (run) => {
  const snap = await run.snap();
  if (snap.outcome.status === "failed") return 1;
  await run.backup();
  await run.with({ target: { host: "nas2" } }).backup();
  run.log(run.failed ? "failed" : "ok");
});
`;

const BAD_PLUGIN = `import { definePlugin } from "abgleich";

export default definePlugin({
  name: "bad",
  setup(hooks) {
    hooks.afterActoin.tap("bad", () => {});
    hooks.done.tap("bad", (summary: string) => {});
  },
});
`;

const dir = mkdtempSync(join(tmpdir(), "abgleich-types-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** tsc over the samples in a folder with no node_modules: only the committed declarations */
function startTypeCheck() {
  copyFileSync(TYPES_FILE, join(dir, "abgleich.d.ts"));
  writeFileSync(join(dir, "good-plugin.ts"), GOOD_PLUGIN);
  writeFileSync(join(dir, "good-workflow.ts"), GOOD_WORKFLOW);
  writeFileSync(join(dir, "bad-plugin.ts"), BAD_PLUGIN);
  const tsconfig = {
    compilerOptions: {
      target: "ES2022",
      module: "ESNext",
      moduleResolution: "bundler",
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      types: [],
    },
    files: ["abgleich.d.ts", "good-plugin.ts", "good-workflow.ts", "bad-plugin.ts"],
  };
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(tsconfig));
  const tsc = Bun.spawn([process.execPath, TSC, "-p", dir, "--pretty", "false"], {
    cwd: dir,
    stdout: "pipe",
    stderr: "pipe",
  });
  return Promise.all([tsc.exited, new Response(tsc.stdout).text()]);
}

// tsc runs while the other test regenerates the declarations (two cores)
const typeCheck = startTypeCheck();

describe("types/abgleich.d.ts", () => {
  test("is what scripts/types.ts generates from the current sources", () => {
    const generated = generateDeclarations();
    if (generated !== readFileSync(TYPES_FILE, "utf8")) {
      throw new Error("types/abgleich.d.ts is stale: run bun scripts/types.ts and commit it");
    }
    expect(generated).toContain('declare module "abgleich" {');
    // self-contained: no import of lib/ or of a package
    const code = generated.split("\n").filter((line) => !line.trimStart().startsWith("//"));
    expect(code.filter((line) => /\bimport\s*\(|\bfrom\s+"/.test(line))).toEqual([]);
  }, 60_000);

  test("passes a correct plugin and workflow, rejects a misspelled hook and a wrong payload", async () => {
    const [exitCode, output] = await typeCheck;
    const errors = output.split("\n").filter((line) => line.includes("error TS"));
    expect(exitCode).not.toBe(0);
    expect(errors.filter((line) => !line.startsWith("bad-plugin.ts"))).toEqual([]);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toContain("bad-plugin.ts(6,");
    expect(errors[0]).toContain("Property 'afterActoin' does not exist");
    expect(errors[0]).toContain("Did you mean 'afterAction'?");
    expect(errors[1]).toContain("bad-plugin.ts(7,");
    expect(errors[1]).toContain("TS2345: Argument of type '(summary: string) => void'");
    expect(errors[1]).toContain("'(args_0: RunSummary) => void'");
  }, 60_000);
});
