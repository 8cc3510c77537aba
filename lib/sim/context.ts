// What every simulated command gets: where the state lives, its environment, and output.

export interface SimContext {
  stateDir: string;
  env: Record<string, string | undefined>;
  /** buffered standard output (flushed at exit, like C stdio on a pipe) */
  out(text: string): void;
  /** standard error, written at once */
  err(text: string): void;
  stdinFd: number;
  stdoutFd: number;
}
