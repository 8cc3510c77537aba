// `abgleich types`: prints the declarations of the `abgleich` module (types/abgleich.d.ts), so a
// user with only the binary gets editor checking for plugins: `abgleich types > abgleich.d.ts`.
// The file is embedded at build time; scripts/types.ts generates it from lib/engine/api.ts.

// @ts-expect-error: tsc reads a .d.ts as declarations, not text; Bun embeds the text
import declarations from "../../../types/abgleich.d.ts" with { type: "text" };
import { EXIT_OK } from "../io.ts";

export function typesCommand(): number {
  process.stdout.write(declarations as string);
  return EXIT_OK;
}
