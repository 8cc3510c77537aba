// The question before any change (`Do you want to continue? [y/N]`) and the second, typed
// confirmation before destroying backups on the target. Streams are passed in, so tests use
// fake ones; nothing here touches process.stdin by itself.

import type { Style } from "./render/style.ts";

export const CONTINUE_QUESTION = "Do you want to continue?";

export interface PromptOptions {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** `--yes`: answer yes without reading */
  assumeYes?: boolean;
  /** whether `input` is a terminal; without one (and without assumeYes) nothing is asked */
  isTTY: boolean;
  /** paints the danger message; plain without it */
  style?: Style;
  /** the flag that sets assumeYes, named when refusing without a terminal (default `--yes`) */
  yesFlag?: string;
  /**
   * the run's cancel signal: Ctrl-C ends the question at once (as no answer) and stops
   * reading, so the process can exit without waiting for Enter
   */
  signal?: AbortSignal;
}

/** only `y` or `yes` (any case, surrounding blanks ignored) is yes; EOF (null) is no */
export function isYes(answer: string | null): boolean {
  if (answer === null) return false;
  const word = answer.trim().toLowerCase();
  return word === "y" || word === "yes";
}

/**
 * One line from `input` without its line end, or null at end of input (or on a read error, or
 * once `signal` aborts). Bytes after the line are pushed back, so a second question reads the
 * next line.
 */
export function readLine(
  input: NodeJS.ReadableStream,
  signal?: AbortSignal,
): Promise<string | null> {
  // 'end' is emitted only once: a second question after EOF must not wait for it
  if ((input as { readableEnded?: boolean }).readableEnded) return Promise.resolve(null);
  if (signal?.aborted) return Promise.resolve(null);
  return new Promise((resolve) => {
    let buffered = "";
    const finish = (line: string | null, rest: string) => {
      input.off("data", onData);
      input.off("end", onEnd);
      input.off("error", onEnd);
      signal?.removeEventListener("abort", onAbort);
      // paused, a terminal's stdin no longer holds the process open
      input.pause();
      if (rest !== "") input.unshift(Buffer.from(rest));
      resolve(line);
    };
    const onData = (chunk: Buffer | string) => {
      buffered += typeof chunk === "string" ? chunk : chunk.toString("utf8");
      const newline = buffered.indexOf("\n");
      if (newline >= 0) {
        finish(buffered.slice(0, newline).replace(/\r$/, ""), buffered.slice(newline + 1));
      }
    };
    // a last line without "\n" still counts; nothing at all is EOF
    const onEnd = () => finish(buffered === "" ? null : buffered, "");
    const onAbort = () => finish(null, "");
    signal?.addEventListener("abort", onAbort, { once: true });
    input.on("data", onData);
    input.once("end", onEnd);
    input.once("error", onEnd);
    input.resume();
  });
}

function refuseWithoutTerminal(options: PromptOptions): false {
  const flag = options.yesFlag ?? "--yes";
  options.output.write(
    `Not asking: standard input is not a terminal. Use ${flag} to continue anyway.\n`,
  );
  return false;
}

/** asks `question [y/N]`; true only for y/yes, or when assumeYes */
export async function confirm(question: string, options: PromptOptions): Promise<boolean> {
  const prompt = `${question} [y/N] `;
  if (options.assumeYes) {
    options.output.write(`${prompt}yes (--yes)\n`);
    return true;
  }
  if (!options.isTTY) return refuseWithoutTerminal(options);
  options.output.write(prompt);
  const answer = await readLine(options.input, options.signal);
  // after Ctrl-C the cancel message has ended the line already
  if (answer === null && !options.signal?.aborted) options.output.write("\n");
  return isYes(answer);
}

/** the wizard's answer before a step */
export type StepAnswer = "run" | "skip" | "quit";

/** y/yes runs, n/no/s/skip or just Enter skips, q/quit quits; null for anything else */
export function stepAnswer(answer: string): StepAnswer | null {
  const word = answer.trim().toLowerCase();
  if (word === "y" || word === "yes") return "run";
  if (word === "" || word === "n" || word === "no" || word === "s" || word === "skip")
    return "skip";
  if (word === "q" || word === "quit") return "quit";
  return null;
}

/**
 * The wizard's question before a step: `Run backup? y = yes, n = skip to cleanup, q = quit
 * [y/N/q]`. No (the default) skips the step and goes on with `next`; the last step has no
 * next, so there no and quit are the same and only `[y/N]` is offered. End of input, Ctrl-C
 * or no terminal quit; an unknown answer is asked again.
 */
export async function askStep(
  question: string,
  next: string | null,
  options: PromptOptions,
): Promise<StepAnswer> {
  const prompt =
    next === null
      ? `${question} [y/N] `
      : `${question} y = yes, n = skip to ${next}, q = quit [y/N/q] `;
  if (options.assumeYes) {
    options.output.write(`${prompt}yes (${options.yesFlag ?? "--yes"})\n`);
    return "run";
  }
  if (!options.isTTY) {
    refuseWithoutTerminal(options);
    return "quit";
  }
  for (;;) {
    options.output.write(prompt);
    const line = await readLine(options.input, options.signal);
    if (line === null) {
      if (!options.signal?.aborted) options.output.write("\n");
      return "quit";
    }
    const answer = stepAnswer(line);
    if (answer !== null) return next === null && answer === "quit" ? "skip" : answer;
    options.output.write(next === null ? "Answer y or n.\n" : "Answer y, n or q.\n");
  }
}

/**
 * The danger confirmation (e.g. `cleanup target`): prints `message`, then the user must type
 * `expectedWord` exactly (blanks around it ignored, case kept). assumeYes skips it; the caller
 * should set that only from an explicit flag, not from a plain `--yes` unless it means to.
 */
export async function confirmDanger(
  message: string,
  expectedWord: string,
  options: PromptOptions,
): Promise<boolean> {
  if (expectedWord.trim() === "") throw new Error("confirmDanger needs a non-empty word to type");
  const paint = (text: string) => options.style?.paint(["red", "bold"], text) ?? text;
  options.output.write(`${paint(message)}\n`);
  const prompt = `Type "${expectedWord}" to continue: `;
  if (options.assumeYes) {
    options.output.write(`${prompt}${expectedWord} (${options.yesFlag ?? "--yes"})\n`);
    return true;
  }
  if (!options.isTTY) return refuseWithoutTerminal(options);
  options.output.write(prompt);
  const answer = await readLine(options.input, options.signal);
  if (options.signal?.aborted) return false;
  if (answer === null) options.output.write("\n");
  const confirmed = answer !== null && answer.trim() === expectedWord;
  if (!confirmed) options.output.write(`Not confirmed: expected "${expectedWord}".\n`);
  return confirmed;
}
