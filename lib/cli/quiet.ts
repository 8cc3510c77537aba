// `--quiet`: what a timer's log should hold. No plans, no progress, no statuses: only what
// failed (on stderr), warnings, and the one summary line the session prints at the end — and
// nothing at all when there was nothing to do.

import type { ActionOutcome, StageOutcome } from "../engine/hooks.ts";
import { type StageUi, silentUi } from "../engine/ui.ts";
import { isNotRun } from "../zfs/outcome.ts";
import type { CommandIo } from "./io.ts";
import { type ConsoleUiOptions, consoleUi, describeAction } from "./ui.ts";

const indent = (text: string) =>
  text
    .split("\n")
    .map((line) => `    ${line}`)
    .join("\n");

export function quietUi(io: CommandIo, options: ConsoleUiOptions): StageUi {
  const paint = io.errStyle.paint;
  // a question that must really be asked (no --yes) is asked as always, on stderr
  const asking = consoleUi({ ...io, out: io.err, style: io.errStyle, print: io.warn }, options);
  return {
    ...silentUi,
    confirm: (info, plan, danger) =>
      options.yes && (!danger || options.yesDestroyTarget)
        ? Promise.resolve(true)
        : asking.confirm(info, plan, danger),
    actionFinished(action, outcome: ActionOutcome) {
      if (!outcome.ok)
        io.warn(
          `${isNotRun(outcome) ? paint("yellow", "not run:") : paint("red", "failed:")} ${describeAction(action)}\n${indent(outcome.error ?? "")}`,
        );
    },
    warn(text) {
      io.warn(`${paint("yellow", "warning:")} ${text}`);
    },
    stageFinished(_info, outcome: StageOutcome) {
      if (outcome.error) io.warn(`${paint("red", "error:")} ${outcome.error.message}`);
    },
  };
}
