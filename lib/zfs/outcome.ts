// What running one action gave. Defined here, below the engine, so the zfs port and the
// transfer runner can return it without importing the engine.

export interface ActionOutcome {
  ok: boolean;
  /** bytes moved by a send */
  bytes?: number;
  /** the failing command, exit code and stderr, when !ok */
  error?: string;
  durationMs: number;
  /** a transfer cut mid-stream (a lost connection, a stream that ended early) whose partial
   * receive was saved: a retry or the next run resumes it */
  resumable?: boolean;
}

/**
 * How the error of an action held back by an earlier failure (it never ran) begins: the
 * runner writes it, its failure message and the wizard's page read it. No imports here, so
 * the page's bundle can take it too.
 */
export const NOT_RUN = "not run";

/** an action held back by an earlier failure (its error starts with NOT_RUN): it never ran */
export const isNotRun = (outcome: ActionOutcome): boolean =>
  outcome.ok === false && outcome.error?.startsWith(NOT_RUN) === true;
