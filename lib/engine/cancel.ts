// The one Ctrl-C path. SIGINT or SIGTERM aborts the run's signal with the signal's name as the
// reason; everything that waits (a zfs command, a transfer, a hook, a plugin's promise) listens
// to that signal, the after-hooks still run, and the run exits 130 or 143. A second signal
// ends the process at once.

import { CancelledError as CommandCancelledError } from "../hosts/host.ts";

export const EXIT_SIGINT = 130;
export const EXIT_SIGTERM = 143;

export class CancelledError extends Error {
  constructor(readonly reason: string = "cancelled") {
    super(`cancelled (${reason})`);
    this.name = "CancelledError";
  }
}

/** a cancel, wherever it was noticed: the engine's own, or a zfs command stopped by the signal */
export function isCancelError(error: unknown): boolean {
  return error instanceof CancelledError || error instanceof CommandCancelledError;
}

/** the signal's reason as a CancelledError */
export function cancelledBy(signal: AbortSignal): CancelledError {
  const reason = signal.reason;
  return new CancelledError(typeof reason === "string" ? reason : "cancelled");
}

/** the exit code of a cancelled run: 130 for SIGINT (and anything else), 143 for SIGTERM */
export function cancelExitCode(signal: AbortSignal): number {
  return signal.reason === "SIGTERM" ? EXIT_SIGTERM : EXIT_SIGINT;
}

/**
 * `work`, or a CancelledError as soon as `signal` aborts: a plugin promise that never settles
 * cannot hold a cancelled run. The work itself is not stopped (it cannot be), only no longer
 * awaited.
 */
export function untilCancelled<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(cancelledBy(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelledBy(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** `work`, or undefined once `ms` have passed: for after-hooks that run after a cancel */
export function withinGrace<T>(
  work: Promise<T>,
  ms: number,
  onLate: () => void,
): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => {
      onLate();
      resolve(undefined);
    }, ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** a signal repeated within this is the first one delivered twice (to the process and its group) */
export const SAME_SIGNAL_MS = 200;

/**
 * Listen for SIGINT and SIGTERM for the length of a run. The first aborts the signal (reason
 * "SIGINT"/"SIGTERM") and tells the user what happens next; a second exits at once.
 */
export function cancelOnSignals(say: (text: string) => void): {
  signal: AbortSignal;
  dispose(): void;
} {
  const controller = new AbortController();
  let first = 0;
  const handlers = (["SIGINT", "SIGTERM"] as const).map((name) => {
    const handler = () => {
      if (controller.signal.aborted) {
        // the same signal again within moments is one sender's, not a second wish: `timeout`
        // and `kill -- -PGID` signal the process and its group, so it arrives twice at once
        if (name === controller.signal.reason && performance.now() - first < SAME_SIGNAL_MS) return;
        process.exit(cancelExitCode(controller.signal));
      }
      first = performance.now();
      say(
        `\n${name === "SIGINT" ? "interrupted" : "terminated"}: cancelling (a running transfer stays resumable; ${name === "SIGINT" ? "Ctrl-C" : "the signal"} again to quit at once)`,
      );
      controller.abort(name);
    };
    process.on(name, handler);
    return [name, handler] as const;
  });
  return {
    signal: controller.signal,
    dispose: () => {
      for (const [name, handler] of handlers) process.off(name, handler);
    },
  };
}
