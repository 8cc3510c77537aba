// Whether a process lives, from kill(0) and Linux's /proc: the run locks and the simulator's state
// lock use it to tell a live holder from a dead one, or from a later process under its pid.

import { readFileSync } from "node:fs";

interface ProcStat {
  /** R, S, D, Z (zombie), X (dead), … */
  state: string;
  /** clock ticks after boot (field 22 of stat) */
  start: string;
}

/**
 * What /proc says of `pid`, or null without such a process (or without /proc). Read through
 * task/PID/stat: qemu-user answers a process's own /proc/PID/stat (and /proc/self/stat) itself,
 * with the time qemu started rather than the kernel's, so what a process wrote about itself and
 * what another read about it would differ and a live holder would look like a reused pid.
 */
function procStat(pid: number): ProcStat | null {
  for (const path of [`/proc/${pid}/task/${pid}/stat`, `/proc/${pid}/stat`]) {
    let stat: string;
    try {
      stat = readFileSync(path, "utf8");
    } catch {
      continue;
    }
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ")"
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const [state, start] = [fields[0], fields[19]];
    return state && start ? { state, start } : null;
  }
  return null;
}

/** a process's start time (clock ticks after boot), to tell it from a later one with its pid */
export function processStart(pid: number): string | null {
  return procStat(pid)?.start ?? null;
}

/**
 * False only when sure: no such process, a zombie (it has exited, its parent has not reaped it
 * yet), or, given its start time, a later process that got the same pid.
 */
export function processAlive(pid: number, start?: string | null): boolean {
  if (!(pid > 0)) return true; // kill(0) or kill(-n) would mean process groups: never guess
  try {
    process.kill(pid, 0);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | null)?.code;
    if (code === "ESRCH") return false;
    if (code !== "EPERM") return true;
  }
  const now = procStat(pid);
  if (!now) return true;
  if (now.state === "Z" || now.state === "X") return false;
  return !start || now.start === start;
}
