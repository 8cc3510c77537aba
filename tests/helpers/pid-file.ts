// The pid a test's command writes (`echo $$ >FILE`) before it runs on: the shell creates the
// file empty and writes the line after, so a file that exists may not hold the pid yet.

import { readFileSync } from "node:fs";

/** the pid in `file` once its line is complete; an error naming the file after `ms` */
export async function pidFrom(file: string, ms = 10_000): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      // not there yet
    }
    if (text.endsWith("\n")) return Number(text.trim());
    if (Date.now() > deadline) throw new Error(`no pid written to ${file} within ${ms} ms`);
    await Bun.sleep(10);
  }
}
