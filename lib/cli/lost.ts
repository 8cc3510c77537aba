// Output that could not be written for another reason than a closed reader (a log on a full
// disk, an I/O error): the run goes on, and its end says so. A module of its own so the CLI's
// entry point can ask without loading the output code.

const lost = new Map<string, NodeJS.ErrnoException>();

/**
 * Keep the first write error of `name` (stdout, stderr). A closed reader (EPIPE: `| head`) is
 * none: it took what it wanted.
 */
export function outputLost(name: string, error: NodeJS.ErrnoException): void {
  if (error?.code !== "EPIPE" && !lost.has(name)) lost.set(name, error);
}

/** what could not be written, e.g. `stdout: ENOSPC` */
export function lostOutput(): string[] {
  return [...lost].map(([name, error]) => `${name}: ${error.code ?? error.message}`);
}
