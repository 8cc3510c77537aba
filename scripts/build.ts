// `bun run build`: the standalone executable dist/abgleich (minified bytecode ESM;
// no bunfig.toml or .env autoloading from wherever the binary is started; never stripped).

import { mkdirSync } from "node:fs";
import { join } from "node:path";

/** `bun build` flags for every abgleich binary (tests build theirs with the same) */
export const COMPILE_FLAGS = [
  "--compile",
  "--minify",
  "--bytecode",
  "--format=esm",
  "--no-compile-autoload-bunfig",
  "--no-compile-autoload-dotenv",
] as const;

if (import.meta.main) {
  const root = join(import.meta.dir, "..");
  const outfile = join(root, "dist", "abgleich");
  mkdirSync(join(root, "dist"), { recursive: true });
  const argv = [
    process.execPath,
    "build",
    ...COMPILE_FLAGS,
    join(root, "lib", "cli", "main.ts"),
    "--outfile",
    outfile,
  ];
  const build = Bun.spawnSync(argv, { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (build.exitCode !== 0) process.exit(build.exitCode ?? 1);
  console.log(`built ${outfile}`);
}
