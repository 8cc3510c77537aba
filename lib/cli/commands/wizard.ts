// `abgleich wizard`: snap → backup → cleanup as a guided sequence. The terminal wizard lives in
// ../terminal-wizard.ts.

import { terminalWizard } from "../terminal-wizard.ts";
import type { ChangeFlags } from "./change.ts";

export function wizardCommand(configPath: string, flags: ChangeFlags): Promise<number> {
  return terminalWizard(configPath, flags);
}
