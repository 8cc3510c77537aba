// How a stage talks to whoever runs it: the console (lib/cli/ui.ts), JSON events, the wizard,
// the GUI, or a test. Stages never print or prompt by themselves.

import { plural } from "../cli/render/labels.ts";
import type { Action, Plan, SendAction } from "../plan/types.ts";
import type { ActionOutcome, StageInfo, StageOutcome } from "./hooks.ts";

export interface StageUi {
  /** the full plan, before anything changes */
  showPlan(info: StageInfo, plan: Plan, estimates: ReadonlyMap<SendAction, number>): void;
  /** the user's go; `danger` asks for the explicit second confirmation of cleanup target */
  confirm(info: StageInfo, plan: Plan, danger: boolean): Promise<boolean>;
  actionStarted(action: Action, expectedBytes: number | null): void;
  actionProgress(action: Action, bytesDone: number): void;
  actionFinished(action: Action, outcome: ActionOutcome): void;
  /** a note for the user, e.g. space freed */
  note(info: StageInfo, text: string): void;
  /** something the user should know that does not stop the run (a plugin's warning, an
   * `ignore` entry that matches nothing, a root shown as empty) */
  warn(text: string): void;
  stageFinished(info: StageInfo, outcome: StageOutcome): void;
}

/** says nothing and answers no: for library use without a user */
export const silentUi: StageUi = {
  showPlan() {},
  confirm: async () => false,
  actionStarted() {},
  actionProgress() {},
  actionFinished() {},
  note() {},
  warn() {},
  stageFinished() {},
};

/**
 * A stage failed by its plan's conflicts and errors. The message holds each of them whole (for
 * logs, notifications and the state record); `brief` names them only, for a ui that has just
 * shown the plan with them.
 */
export class PlanTroubles extends Error {
  readonly brief: string;
  constructor(stage: string, plan: Pick<Plan, "conflicts" | "errors">) {
    const named = (list: readonly { subname: string }[]) =>
      [...new Set(list.map((entry) => entry.subname || "(root)"))].join(", ");
    const whole = [...plan.conflicts, ...plan.errors].map(
      (entry) => `${entry.subname || "(root)"}: ${entry.message}`,
    );
    super(`${stage}: ${whole.join("; ")}`);
    this.name = "PlanTroubles";
    const parts: string[] = [];
    const { conflicts, errors } = plan;
    if (conflicts.length > 0)
      parts.push(`${plural(conflicts.length, "conflict")} in ${named(conflicts)}`);
    if (errors.length > 0) parts.push(`${plural(errors.length, "error")} in ${named(errors)}`);
    this.brief = `${stage}: ${parts.join(" and ")}, shown in the plan above with what to do`;
  }
}
