// A process's state and start time from Linux's /proc, which the run locks and the simulator's
// state lock use to tell a live holder from a dead one, or from a later process under its pid.

import { readFileSync } from "node:fs";

export interface ProcStat {
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
export function procStat(pid: number): ProcStat | null {
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
