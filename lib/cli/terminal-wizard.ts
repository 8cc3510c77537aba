// `abgleich wizard`: snap → backup → cleanup as a guided sequence. A step bar shows where the
// run is; each step shows its plan and waits for the go; every action is listed with its state
// (pending, running, done, failed), redrawn in place on a terminal; the wizard stops on failure.

import type { StageInfo } from "../engine/hooks.ts";
import type { Run } from "../engine/runner.ts";
import { stages } from "../engine/stages/index.ts";
import type { StageUi } from "../engine/ui.ts";
import type { Action } from "../plan/types.ts";
import type { ChangeFlags } from "./commands/change.ts";
import type { CommandIo } from "./io.ts";
import type { Style } from "./render/style.ts";
import { formatBytes } from "./render/units.ts";
import { runSession } from "./session.ts";
import { consoleUi, describeAction } from "./ui.ts";

const STEPS = ["snap", "backup", "cleanup"] as const;
type ActionState = "pending" | "running" | "done" | "failed";

const MARKS: Record<ActionState, [string, Parameters<Style["paint"]>[0]]> = {
  pending: ["○ pending", "dim"],
  running: ["◐ running", "cyan"],
  done: ["● done   ", "green"],
  failed: ["✗ failed ", "red"],
};

export function stepBar(style: Style, current: string, finished: readonly string[]): string {
  return STEPS.map((step) => {
    if (finished.includes(step)) return style.paint("green", `✔ ${step}`);
    if (step === current) return style.paint(["bold", "inverse"], ` ${step} `);
    return style.paint("dim", `· ${step}`);
  }).join(style.paint("dim", "  ──  "));
}

/** the wizard's view: the console's plan and questions, plus the step bar and action states */
export function wizardUi(io: CommandIo, base: StageUi): StageUi {
  const { style } = io;
  const live = io.out.isTTY === true;
  const finished: string[] = [];
  let actions: Action[] = [];
  const states = new Map<Action, { state: ActionState; detail: string }>();
  let drawnLines = 0;

  const draw = () => {
    if (live && drawnLines > 0) io.out.write(`\u001b[${drawnLines}A\u001b[J`);
    const lines = actions.map((action) => {
      const { state, detail } = states.get(action) ?? { state: "pending", detail: "" };
      const [mark, colour] = MARKS[state];
      return `  ${style.paint(colour, mark)}  ${describeAction(action)}${detail ? style.paint("dim", `  ${detail}`) : ""}`;
    });
    io.out.write(`${lines.join("\n")}\n`);
    drawnLines = lines.length;
  };
  const set = (action: Action, state: ActionState, detail = "") => {
    states.set(action, { state, detail });
    if (live) draw();
    else
      io.print(
        `  ${MARKS[state][0].trim()}: ${describeAction(action)}${detail ? ` (${detail})` : ""}`,
      );
  };

  return {
    showPlan(info: StageInfo, plan, estimates) {
      io.print(`\n${stepBar(style, info.stage, finished)}\n`);
      base.showPlan(info, plan, estimates);
      actions = plan.actions;
      states.clear();
    },
    async confirm(info, plan, danger) {
      const yes = await base.confirm(info, plan, danger);
      if (yes && plan.actions.length > 0) {
        io.print(style.paint("bold", "Actions:"));
        drawnLines = 0;
        if (live) draw();
      }
      return yes;
    },
    actionStarted: (action) => set(action, "running"),
    actionProgress(action, bytesDone) {
      if (live) set(action, "running", formatBytes(bytesDone));
    },
    actionFinished(action, outcome) {
      set(
        action,
        outcome.ok ? "done" : "failed",
        outcome.ok ? (outcome.bytes ? formatBytes(outcome.bytes) : "") : "see below",
      );
      if (!outcome.ok && outcome.error) {
        io.print(style.paint("red", outcome.error));
        drawnLines = 0;
      }
    },
    note: (info, text) => {
      base.note(info, text);
      drawnLines = 0;
    },
    warn: (text) => {
      base.warn(text);
      drawnLines = 0;
    },
    stageFinished(info, outcome) {
      if (outcome.status === "ok" || outcome.status === "nothing-to-do") finished.push(info.stage);
      drawnLines = 0;
      base.stageFinished(info, outcome);
    },
  };
}

/** snap → backup → cleanup source, stopping at the first step that does not end well */
export function terminalWizard(configPath: string, flags: ChangeFlags): Promise<number> {
  const steps = [stages.snap, stages.backup, (run: Run) => stages.cleanup(run, "source")];
  return runSession(
    configPath,
    flags,
    {
      readOnly: false,
      summary: "always",
      // machine-readable: the same events as the single commands, one stage after another
      makeUi: flags.json
        ? undefined
        : (io) => wizardUi(io, consoleUi(io, { yes: flags.yes === true, yesDestroyTarget: false })),
    },
    async (run) => {
      for (const step of steps) {
        await step(run);
        if (run.failed) break;
      }
      return null;
    },
  );
}
