// Output that could not be written for another reason than a closed reader (a log on a full
// disk, an I/O error): the run goes on, and its end says so. A module of its own so the CLI's
// entry point can ask without loading the output code.

const lost = new Map<string, NodeJS.ErrnoException>();

/** keep the first write error of `name` (stdout, stderr) */
export function outputLost(name: string, error: NodeJS.ErrnoException): void {
  if (!lost.has(name)) lost.set(name, error);
}

/** what could not be written, e.g. `stdout: ENOSPC` */
export function lostOutput(): string[] {
  return [...lost].map(([name, error]) => `${name}: ${error.code ?? error.message}`);
}
