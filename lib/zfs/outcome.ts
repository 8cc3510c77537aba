// What running one action gave. Defined here, below the engine, so the zfs port and the
// transfer runner can return it without importing the engine.

export interface ActionOutcome {
  ok: boolean;
  /** bytes moved by a send */
  bytes?: number;
  /** the failing command, exit code and stderr, when !ok */
  error?: string;
  durationMs: number;
}
