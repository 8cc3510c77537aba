// `abgleich wizard` in the terminal: snap → backup → cleanup source → cleanup target as a guided
// sequence. A step bar shows where the run is; each step shows its plan and asks whether to run
// it, skip it and go on, or quit; cleanup target is offered last, default no, behind the typed
// danger confirmation. While a step runs, every action is listed with its state and, for
// transfers, bytes, %, rate and ETA, with the step's total below.
//
// On a terminal the list is redrawn in place: each line is cut to the terminal's width, so one
// line is one screen row and moving the cursor up by the number of lines drawn lands on the
// list's first row. Anything printed meanwhile (a warning, a failure, the Ctrl-C message) goes
// above the list, which is drawn again below it. With TERM=dumb or off a terminal there is no
// cursor movement at all: one plain line per change.

import { type StageInfo, stageTitle } from "../engine/hooks.ts";
import type { Run, StageResult } from "../engine/runner.ts";
import { stages } from "../engine/stages/index.ts";
import type { StageUi } from "../engine/ui.ts";
import type { Action, SendAction } from "../plan/types.ts";
import type { ChangeFlags } from "./commands/change.ts";
import type { CommandIo } from "./io.ts";
import {
  canRedraw,
  createMeter,
  finishedFigures,
  PLAIN_INTERVAL_MS,
  type ProgressMeter,
  runFigures,
  type TransferState,
  transferFigures,
} from "./progress.ts";
import { askStep, type StepAnswer } from "./prompt.ts";
import { quietUi } from "./quiet.ts";
import { subnameLabel } from "./render/labels.ts";
import { plainStyle, type Style, truncateVisible, visibleWidth } from "./render/style.ts";
import { formatBytes } from "./render/units.ts";
import { runSession } from "./session.ts";
import { confirmTargetDanger, consoleUi, describeAction, promptOptions } from "./ui.ts";

export const STEP_TITLES = ["snap", "backup", "cleanup source", "cleanup target"] as const;
export type StepTitle = (typeof STEP_TITLES)[number];

const RUNS: Record<StepTitle, (run: Run) => Promise<StageResult>> = {
  snap: stages.snap,
  backup: stages.backup,
  "cleanup source": (run) => stages.cleanup(run, "source"),
  "cleanup target": (run) => stages.cleanup(run, "target"),
};

const stepTitle = (info: StageInfo): StepTitle => stageTitle(info.stage, info.side) as StepTitle;

type ActionState = "pending" | "running" | "done" | "failed" | "not-run" | "cancelled";

const MARKS: Record<ActionState, [string, Parameters<Style["paint"]>[0]]> = {
  pending: ["○ pending ", "dim"],
  running: ["◐ running ", "cyan"],
  done: ["● done    ", "green"],
  failed: ["✗ failed  ", "red"],
  "not-run": ["– not run ", "yellow"],
  cancelled: ["■ stopped ", "yellow"],
};

/** the step bar: finished steps ticked, skipped ones struck through, the current one inverted */
export function stepBar(
  style: Style,
  steps: readonly string[],
  current: string,
  finished: readonly string[],
  skipped: readonly string[],
): string {
  return steps
    .map((step) => {
      if (finished.includes(step)) return style.paint("green", `✔ ${step}`);
      if (skipped.includes(step)) return style.paint("yellow", `– ${step} (skipped)`);
      if (step === current) return style.paint(["bold", "inverse"], ` ${step} `);
      return style.paint("dim", `· ${step}`);
    })
    .join(style.paint("dim", "  ──  "));
}

/**
 * `head + body + tail` in at most `width` columns: the body gives way first (cut, with `…`), so
 * the figures at the end stay readable; only when even they do not fit is the whole line cut.
 */
export function fitLine(head: string, body: string, tail: string, width: number): string {
  const whole = `${head}${body}${tail}`;
  if (visibleWidth(whole) <= width) return whole;
  const room = width - visibleWidth(head) - visibleWidth(tail);
  if (room >= 8) return `${head}${truncateVisible(body, room - 1)}…${tail}`;
  return truncateVisible(whole, width);
}

/**
 * Which of `count` list entries to show in `room` rows, around `focus` (the first running or
 * pending one): all when they fit, else a window with a row each for how many are left out
 * above and below.
 */
export function listWindow(
  count: number,
  focus: number,
  room: number,
): { start: number; end: number } {
  if (count <= room) return { start: 0, end: count };
  const shown = Math.max(1, room - 2);
  // the one before the focus too, when there is room: it just finished
  const before = shown > 2 ? 1 : 0;
  const start = Math.min(Math.max(0, focus - before), count - shown);
  return { start, end: start + shown };
}

/**
 * Lines drawn in place at the bottom of the terminal. Each line must fit the width (one line,
 * one row), so the cursor goes up exactly as many rows as were drawn.
 */
class LiveArea {
  private rows = 0;
  private exitHook: (() => void) | null = null;

  constructor(private readonly out: { write(text: string): unknown }) {}

  get active(): boolean {
    return this.rows > 0;
  }

  draw(lines: readonly string[]): void {
    // hidden while drawing, so it does not flicker over the list; shown again at the end
    if (this.exitHook === null) {
      this.exitHook = () => this.out.write("\u001b[?25h");
      process.once("exit", this.exitHook);
      this.out.write("\u001b[?25l");
    }
    this.out.write(`${this.up()}${lines.map((line) => `${line}\n`).join("")}`);
    this.rows = lines.length;
  }

  /** erase the drawn lines and leave the cursor where the first one began */
  erase(): void {
    if (this.rows > 0) this.out.write(this.up());
    this.rows = 0;
  }

  /** keep the last drawing as it is, below it the terminal's own */
  end(): void {
    this.rows = 0;
    if (this.exitHook !== null) {
      process.off("exit", this.exitHook);
      this.exitHook = null;
      this.out.write("\u001b[?25h");
    }
  }

  private up(): string {
    return this.rows > 0 ? `\r\u001b[${this.rows}A\u001b[J` : "";
  }
}

interface Entry {
  action: Action;
  state: ActionState;
  /** what follows the description: figures, or why it did not run */
  detail: string;
}

export interface WizardUiOptions {
  yes: boolean;
  /** the steps this wizard goes through, in order */
  steps: readonly StepTitle[];
  /** draw in place (a terminal that understands cursor movement) */
  live: boolean;
  now?: () => number;
}

/**
 * The question before a step: run it, skip to the next, or quit (recorded in `answers`, so a
 * skipped step's `declined` is told from a quit). The typed confirmation stays: only the pool's
 * name, typed, destroys backups. True: run it.
 */
async function askWizardStep(
  io: CommandIo,
  info: StageInfo,
  danger: boolean,
  steps: readonly StepTitle[],
  yes: boolean,
  answers: Map<StepTitle, StepAnswer>,
): Promise<boolean> {
  const title = stepTitle(info);
  const next = steps[steps.indexOf(title) + 1] ?? null;
  let answer = await askStep(`Run ${title}?`, next, {
    ...promptOptions(io, info),
    assumeYes: yes,
  });
  if (answer === "run" && danger && !(await confirmTargetDanger(io, info, false)))
    answer = info.signal.aborted ? "quit" : "skip";
  answers.set(title, answer);
  return answer === "run";
}

/** the wizard's view: the console's plan tables, its own questions, the live action list */
export function wizardUi(
  io: CommandIo,
  base: StageUi,
  options: WizardUiOptions,
): StageUi & { answers: Map<StepTitle, StepAnswer> } {
  const { style, out } = io;
  const { live, steps } = options;
  const now = options.now ?? Date.now;
  const answers = new Map<StepTitle, StepAnswer>();
  const finished: string[] = [];
  const skipped: string[] = [];
  const area = new LiveArea(out);
  let entries: Entry[] = [];
  let meter: ProgressMeter | null = null;
  let estimates: ReadonlyMap<SendAction, number> = new Map();
  let listing = false;
  let signal: AbortSignal | null = null;
  let lastDrawAt = 0;
  const lastPlainAt = new Map<Action, number>();
  /** each started transfer's figures, kept up to date by the meter */
  const transfers = new Map<Action, TransferState>();

  // while the list is on screen, whatever else is printed goes above it
  const { print, warn } = io;
  const above = (write: () => void) => {
    if (!area.active) return write();
    area.erase();
    write();
    draw();
  };
  io.print = (text) => above(() => print(text));
  io.warn = (text) => above(() => warn(text));
  // a plugin's lines, and with -v each command run on a host
  const { log, debug } = io;
  io.log = (text) => above(() => log(text));
  if (io.verbose) io.debug = (text, fields) => above(() => debug(text, fields));

  /**
   * An action's line in two parts: a transfer named as backup's progress names it, a destroy
   * by its dataset; when the line is too long, the first part gives way, the second stays.
   */
  const name = (action: Action) => {
    if (action.kind === "send") return subnameLabel(action.subname);
    if (action.kind === "destroy") return `destroy ${action.side} ${action.dataset}`;
    return describeAction(action);
  };
  const mode = (action: Action) => {
    if (action.kind === "send") return ` (${action.mode})`;
    if (action.kind === "destroy") return `@${action.snapshots.join(",")}`;
    return "";
  };
  const label = (action: Action) => `${name(action)}${mode(action)}`;

  const lines = (): string[] => {
    const width = Math.max(20, (out.columns || 80) - 1);
    const room = Math.max(3, (out.rows || 24) - 3);
    const focus = entries.findIndex((e) => e.state === "running" || e.state === "pending");
    const { start, end } = listWindow(entries.length, focus < 0 ? entries.length - 1 : focus, room);
    const shown = entries.slice(start, end).map((entry) => {
      const [mark, colour] = MARKS[entry.state];
      const tail = `${mode(entry.action)}${entry.detail === "" ? "" : `  ${entry.detail}`}`;
      return fitLine(`  ${style.paint(colour, mark)}  `, name(entry.action), tail, width);
    });
    if (start > 0) shown.unshift(style.paint("dim", `  … ${start} more above`));
    if (end < entries.length)
      shown.push(style.paint("dim", `  … ${entries.length - end} more below`));
    const run = meter?.run();
    if (run) shown.push(truncateVisible(style.paint("bold", `  ${runFigures(run)}`), width));
    return shown;
  };
  const draw = () => {
    lastDrawAt = now();
    area.draw(lines());
  };

  const entryOf = (action: Action) => entries.find((e) => e.action === action);
  /** off a live terminal: one line per change; a start has no figures worth a line yet */
  const plainLine = (entry: Entry) => {
    const detail = entry.state === "running" || entry.detail === "" ? "" : `: ${entry.detail}`;
    print(`  ${entry.state.replace("-", " ")}: ${describeAction(entry.action)}${detail}`);
  };
  const set = (entry: Entry, state: ActionState, detail: string) => {
    entry.state = state;
    entry.detail = detail;
    if (!listing) return;
    if (live) draw();
    else plainLine(entry);
  };

  return {
    answers,
    showPlan(info, plan, planEstimates) {
      print(
        `\n${truncateVisible(stepBar(style, steps, stepTitle(info), finished, skipped), (out.columns || 80) - 1)}\n`,
      );
      base.showPlan(info, plan, planEstimates);
      entries = plan.actions.map((action) => ({ action, state: "pending", detail: "" }));
      estimates = planEstimates;
      transfers.clear();
      const total = [...planEstimates.values()].reduce((sum, n) => sum + n, 0);
      meter = createMeter({ totalBytes: planEstimates.size > 0 ? total : null, now });
      listing = false;
      signal = info.signal;
    },

    async confirm(info, _plan, danger) {
      if (!(await askWizardStep(io, info, danger, steps, options.yes, answers))) return false;
      print(style.paint("bold", "Actions:"));
      listing = true;
      if (live) draw();
      return true;
    },

    actionStarted(action, expectedBytes) {
      const entry = entryOf(action);
      if (!entry) return;
      let detail = "";
      if (action.kind === "send" && meter) {
        const expected = expectedBytes ?? estimates.get(action) ?? null;
        const transfer = meter.start(label(action), expected, action);
        transfers.set(action, transfer);
        detail = transferFigures(transfer, style);
        lastPlainAt.set(action, now());
      }
      set(entry, "running", detail);
    },

    actionProgress(action, bytesDone) {
      const entry = entryOf(action);
      if (!entry || !meter || action.kind !== "send" || entry.state !== "running") return;
      const transfer = meter.update(bytesDone, action);
      entry.detail = transferFigures(transfer, style);
      const at = now();
      if (live) {
        // redrawn at most ten times a second
        if (at - lastDrawAt >= 100) draw();
        return;
      }
      if (at - (lastPlainAt.get(action) ?? 0) < PLAIN_INTERVAL_MS) return;
      lastPlainAt.set(action, at);
      const run = meter.run();
      print(
        `  running: ${label(action)}: ${transferFigures(transfer, plainStyle)}${run ? `; ${runFigures(run)}` : ""}`,
      );
    },

    actionFinished(action, outcome) {
      const entry = entryOf(action);
      if (!entry) return;
      const started = entry.state === "running";
      let figures = "";
      if (action.kind === "send" && meter && started) {
        const transfer: TransferState = meter.finish(action);
        const done = { ...transfer, done: Math.max(transfer.done, outcome.bytes ?? 0) };
        figures = finishedFigures(done, outcome.ok, now());
      } else if (outcome.ok && outcome.bytes) figures = formatBytes(outcome.bytes);
      if (outcome.ok) return set(entry, "done", figures);
      // an action held back by an earlier failure says why in its own line
      if (!started) return set(entry, "not-run", (outcome.error ?? "").replace(/^not run: /, ""));
      // a transfer cut by Ctrl-C is stopped, not failed: the next run resumes it
      const state = signal?.aborted ? "cancelled" : "failed";
      set(entry, state, figures === "" ? "see above" : `after ${figures}, see above`);
      if (outcome.error) io.print(style.paint("red", outcome.error));
    },

    note: (info, text) => base.note(info, text),
    warn: (text) => base.warn(text),

    stageFinished(info, outcome) {
      const title = stepTitle(info);
      if (listing) {
        // cut by Ctrl-C: what ran stops there, and the list says so before it is left behind
        if (outcome.status === "cancelled")
          for (const entry of entries)
            if (entry.state === "running") {
              const transfer = transfers.get(entry.action);
              set(entry, "cancelled", transfer ? `after ${formatBytes(transfer.done)}` : "");
            }
        if (live) draw();
        area.end();
        listing = false;
      }
      if (outcome.status === "ok" || outcome.status === "nothing-to-do") finished.push(title);
      if (outcome.status === "declined" && answers.get(title) === "skip") {
        skipped.push(title);
        print(`${style.paint("yellow", `${title}: skipped`)}\n`);
        return;
      }
      base.stageFinished(info, outcome);
    },
  };
}

/**
 * snap → backup → cleanup source → cleanup target. A skipped step goes on with the next one;
 * a failed or cancelled step, or quit, ends the wizard. Cleanup target is offered only where
 * its typed confirmation can be asked (stdin a terminal) or in a dry run, which only shows it.
 */
export function terminalWizard(configPath: string, flags: ChangeFlags): Promise<number> {
  const interactive = process.stdin.isTTY === true || flags.dryRun === true;
  // machine-readable: the same events as the single commands, the three everyday steps
  const steps: StepTitle[] = flags.json
    ? ["snap", "backup", "cleanup source"]
    : STEP_TITLES.filter((step) => step !== "cleanup target" || interactive);
  let answers: Map<StepTitle, StepAnswer> = new Map();
  return runSession(
    configPath,
    flags,
    {
      readOnly: false,
      summary: "always",
      command: "wizard",
      makeUi: flags.json
        ? undefined
        : (io) => {
            const options = { yes: flags.yes === true, yesDestroyTarget: false };
            // --quiet: failures, warnings and the summary line, as for every command; a question
            // that must be asked is the wizard's (n skips the step), on stderr
            if (io.quiet) {
              const quiet = quietUi(io, options);
              const asked = new Map<StepTitle, StepAnswer>();
              answers = asked;
              const onStderr = { ...io, out: io.err, style: io.errStyle };
              return {
                ...quiet,
                confirm: (info, _plan, danger) => {
                  if (options.yes && !danger) {
                    asked.set(stepTitle(info), "run");
                    return Promise.resolve(true);
                  }
                  return askWizardStep(onStderr, info, danger, steps, options.yes, asked);
                },
              };
            }
            const ui = wizardUi(io, consoleUi(io, options), {
              yes: flags.yes === true,
              steps,
              live: canRedraw(io.out),
            });
            answers = ui.answers;
            return ui;
          },
    },
    async (run, io) => {
      let ended = false;
      for (const step of steps) {
        const { outcome } = await RUNS[step](run);
        if (outcome.status === "declined" && answers.get(step) === "skip") continue;
        if (!GOOD.has(outcome.status)) {
          ended = true;
          break;
        }
      }
      if (!ended && !io.json && !io.quiet && !steps.includes("cleanup target"))
        io.print(
          "cleanup target: not offered without a terminal (it asks for the pool's name typed); run `abgleich cleanup CONFIG target` where one is",
        );
      // skipped steps are a choice, not a failure: the wizard ends well when the rest did
      return ended ? null : 0;
    },
  );
}

const GOOD = new Set(["ok", "nothing-to-do", "dry-run"]);
