// The console's StageUi: the plan as tables and the y/N question on a terminal, progress while
// sending, and in --json mode newline-delimited events on stdout and nothing else.

import { rootOf, type SideConfig } from "../config/types.ts";
import {
  type ActionOutcome,
  type StageInfo,
  type StageOutcome,
  stageTitle,
} from "../engine/hooks.ts";
import { PlanTroubles, type StageUi, silentUi } from "../engine/ui.ts";
import type { Action, Plan } from "../plan/types.ts";
import { isNotRun } from "../zfs/outcome.ts";
import { eventUi } from "./events.ts";
import { type CommandIo, reportError } from "./io.ts";
import { canRedraw, createProgress, type Progress } from "./progress.ts";
import { CONTINUE_QUESTION, confirm, confirmDanger } from "./prompt.ts";
import { subnameLabel } from "./render/labels.ts";
import { renderPlan } from "./render/plan.ts";

export interface ConsoleUiOptions {
  yes: boolean;
  /** the separate, explicit flag that lets `cleanup target` run without a terminal */
  yesDestroyTarget: boolean;
}

/** the machine a side is on, as ssh is told: `nas`, `admin@nas:2222` */
export function machineOf(side: SideConfig): string {
  const login = side.user === "" ? "" : `${side.user}@`;
  const port = side.port === null ? "" : `:${side.port}`;
  return `${login}${side.host}${port}`;
}

/** a side's root and the machine it is on: `backup/host on nas`, `tank on admin@nas:2222` */
export function placeOf(side: SideConfig): string {
  return `${rootOf(side)} on ${machineOf(side)}`;
}

/** the sides a stage changes or sends between, as its plan is shown: which machine, which pool */
export function stagePlace(info: StageInfo): string {
  const { source, target } = info.config;
  if (info.stage === "backup") return `source ${placeOf(source)} → target ${placeOf(target)}`;
  if (info.stage === "cleanup" && info.side === "target") return `target ${placeOf(target)}`;
  return `source ${placeOf(source)}`;
}

export function describeAction(action: Action): string {
  switch (action.kind) {
    case "snapshot":
      return `snapshot ${action.snapshots.length} dataset(s) of pool ${action.pool}`;
    case "send":
      return `${action.mode}${action.raw ? " raw" : ""} send ${action.sourceDataset}${action.from ? `${action.fromBookmark ? "#" : "@"}${action.from}` : ""} → ${action.targetDataset}@${action.to}`;
    case "abort-resume":
      return `abort partial receive on ${action.targetDataset}`;
    case "destroy":
      return `destroy ${action.side} ${action.dataset}@${action.snapshots.join(",")}`;
    case "chain":
      return `protect the incremental chain of ${action.entries.length} dataset(s): hold the newest common snapshot on both sides, bookmark it, release older holds, destroy abgleich's older bookmarks`;
  }
}

const title = (info: StageInfo) => stageTitle(info.stage, info.side);

/** the console's ui; it counts the conflicts its plans showed whole, so they are not repeated */
export interface ConsoleUi extends StageUi {
  conflictsShown?: () => number;
}

export function consoleUi(io: CommandIo, options: ConsoleUiOptions): ConsoleUi {
  const { style } = io;
  /** the stages whose plan, conflicts and errors included, this ui printed */
  const planShown = new WeakSet<StageInfo>();
  let conflictsShown = 0;
  let progress: Progress | null = null;
  /** the transfers the progress display shows; a send that never started has no line to end */
  const sending = new Set<Action>();
  /** the stage whose `── title ──` is printed: before its first line, a note or the plan */
  let headed: string | null = null;
  const heading = (info: StageInfo) => {
    if (headed === title(info)) return;
    headed = title(info);
    io.print(style.paint("bold", `── ${headed} ──`));
  };

  // the events of --json (docs/events.schema.json); the question, if one is asked, on stderr
  if (io.json)
    return eventUi(io, (info, plan, danger) => askConfirmation(io, options, info, plan, danger));

  return {
    conflictsShown: () => conflictsShown,
    showPlan(info, plan, estimates) {
      heading(info);
      io.print(style.paint("dim", stagePlace(info)));
      // -v: a cleanup with retention lists every kept snapshot with its rules, not only counts
      io.print(
        renderPlan(plan, style, {
          ...(estimates.size > 0 ? { estimates } : {}),
          verbose: io.verbose,
        }),
      );
      planShown.add(info);
      conflictsShown += plan.conflicts.length;
      const total = [...estimates.values()].reduce((sum, n) => sum + n, 0);
      progress = createProgress({
        stream: io.out,
        // TERM=dumb: plain lines, no cursor codes
        isTTY: canRedraw(io.out),
        totalBytes: estimates.size > 0 ? total : null,
        style,
        columns: io.out.columns,
      });
    },
    confirm: (info, plan, danger) => askConfirmation(io, options, info, plan, danger),
    actionStarted(action, expectedBytes) {
      if (action.kind === "send" && progress) {
        // keyed by the action: with transfer.parallel several run at once
        progress.start(`${subnameLabel(action.subname)} (${action.mode})`, expectedBytes, action);
        sending.add(action);
      } else {
        const line = `${style.paint("cyan", "→")} ${describeAction(action)}`;
        if (progress) progress.log(line);
        else io.print(line);
      }
    },
    actionProgress(action, bytesDone) {
      if (sending.has(action)) progress?.update(bytesDone, action);
    },
    actionFinished(action, outcome: ActionOutcome) {
      if (sending.delete(action)) progress?.finish(outcome.ok, action);
      if (!outcome.ok) {
        // held back by an earlier failure: not a failure of its own
        const held = isNotRun(outcome);
        io.print(
          `${held ? style.paint("yellow", "– not run:") : style.paint("red", "✗ failed:")} ${describeAction(action)}\n${indent(outcome.error ?? "")}`,
        );
      }
    },
    note(info, text) {
      heading(info);
      io.print(text);
    },
    warn(text) {
      io.warn(`${io.errStyle.paint("yellow", "warning:")} ${text}`);
    },
    stageFinished(info, outcome: StageOutcome) {
      const colour =
        outcome.status === "ok" || outcome.status === "nothing-to-do"
          ? "green"
          : outcome.status === "dry-run"
            ? "cyan"
            : "red";
      io.print(`${style.paint(colour, `${title(info)}: ${outcome.status}`)}\n`);
      headed = null;
      // the reason goes where errors go, so a script reading stdout still sees it in the log;
      // conflicts the plan just showed whole are named only
      const error = outcome.error;
      const brief = error instanceof PlanTroubles && planShown.has(info);
      if (error)
        io.warn(`${io.errStyle.paint("red", "error:")} ${brief ? error.brief : error.message}`);
    },
  };
}

/**
 * The ui of tree and compare: their output is one document (a table, or one JSON document on
 * stdout), so warnings go to stderr, and a failed read is reported as an error once.
 */
export function readOnlyUi(io: CommandIo): StageUi {
  return {
    ...silentUi,
    warn: (text) => io.warn(`${io.errStyle.paint("yellow", "warning:")} ${text}`),
    stageFinished: (_info, outcome) => {
      if (outcome.error) reportError(io, outcome.error);
    },
  };
}

const indent = (text: string) =>
  text
    .split("\n")
    .map((line) => `    ${line}`)
    .join("\n");

/** how the console asks: on stdin, into stdout (stderr in JSON mode), ended by Ctrl-C */
export function promptOptions(io: CommandIo, info: StageInfo) {
  return {
    input: process.stdin,
    // in JSON mode the question goes to stderr so stdout stays machine-readable
    output: io.json ? io.err : io.out,
    isTTY: process.stdin.isTTY === true,
    style: io.style,
    signal: info.signal,
  };
}

/** the second, typed question before destroying snapshots on the target */
export function confirmTargetDanger(
  io: CommandIo,
  info: StageInfo,
  yesDestroyTarget: boolean,
): Promise<boolean> {
  const pool = info.config.target.zpool;
  return confirmDanger(
    `DANGER: this destroys snapshots on the TARGET ${placeOf(info.config.target)}: history that exists nowhere else.`,
    pool,
    // without a terminal only this flag answers; say so rather than "--yes", which was given
    {
      ...promptOptions(io, info),
      assumeYes: yesDestroyTarget,
      yesFlag: "--yes-destroy-target",
    },
  );
}

async function askConfirmation(
  io: CommandIo,
  options: ConsoleUiOptions,
  info: StageInfo,
  _plan: Plan,
  danger: boolean,
): Promise<boolean> {
  const prompt = promptOptions(io, info);
  if (!(await confirm(CONTINUE_QUESTION, { ...prompt, assumeYes: options.yes }))) return false;
  if (!danger) return true;
  return confirmTargetDanger(io, info, options.yesDestroyTarget);
}
