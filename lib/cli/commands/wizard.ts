// `abgleich wizard`: snap → backup → cleanup as a guided sequence, in the browser (lib/gui) or
// in the terminal (../terminal-wizard.ts); lib/gui/choose.ts decides which.

import { browserOpener, chooseWizard, type WizardFlags } from "../../gui/choose.ts";
import { EXIT_USAGE } from "../io.ts";
import { terminalWizard } from "../terminal-wizard.ts";
import type { ChangeFlags } from "./change.ts";

export async function wizardCommand(
  configPath: string,
  flags: ChangeFlags & WizardFlags,
): Promise<number> {
  let which: "gui" | "tui";
  try {
    which = chooseWizard(flags, {
      interactive: process.stdin.isTTY === true && process.stdout.isTTY === true,
      opener: browserOpener(),
    });
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n`);
    return EXIT_USAGE;
  }
  if (which === "tui") return terminalWizard(configPath, flags);
  // loaded only here: the page is bundled into that module
  const { guiWizard } = await import("../../gui/command.ts");
  return guiWizard(configPath, flags);
}
