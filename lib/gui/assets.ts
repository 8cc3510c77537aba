// The page, bundled when abgleich is built: a Bun macro (imported `with { type: "macro" }` in
// page.ts), so the compiled binary carries the finished HTML, CSS and script as strings and
// reads no file at run time. Bun.build cannot run inside a macro, hence the `bun build` child.

import { readFileSync } from "node:fs";
import { join } from "node:path";

export function pageAssets(): { html: string; css: string; js: string } {
  const dir = join(import.meta.dir, "page");
  const build = Bun.spawnSync(
    [
      process.execPath,
      "build",
      join(dir, "client.ts"),
      "--target=browser",
      "--format=esm",
      "--minify",
    ],
    { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } },
  );
  if (build.exitCode !== 0)
    throw new Error(`bundling the wizard's page failed:\n${build.stderr.toString()}`);
  return {
    html: readFileSync(join(dir, "index.html"), "utf8"),
    css: readFileSync(join(dir, "style.css"), "utf8"),
    js: build.stdout.toString(),
  };
}
