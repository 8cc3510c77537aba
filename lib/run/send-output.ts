// Reading what `zfs send -v -P` / `-n -v -P` print on stderr: estimate lines first
// (`full\tDS@S\tSIZE`, `incremental\tFROM\tDS@S\tSIZE`, `size\tTOTAL`), then, while sending,
// one progress line per second: `HH:MM:SS\tBYTES\tDS@SNAP`. With -I the byte count starts
// again for every snapshot of the stream, so a total is kept across snapshots.

/** the `size` line of an estimate, or null when there is none */
export function estimatedSize(stderr: string): number | null {
  const match = /^size\t(\d+)$/m.exec(stderr);
  return match ? Number(match[1]) : null;
}

/** the `toname = …` line of a resume token's contents (`zfs send -nvP -t TOKEN`) */
export function tokenTarget(output: string): string | null {
  const match = /^\s*toname = (.+)$/m.exec(output);
  return match ? (match[1] as string).trim() : null;
}

const PROGRESS = /^\d\d:\d\d:\d\d\t(\d+)\t(.+)$/;

/** running total of bytes sent, fed line by line */
export function sendProgressCounter(): { feed(line: string): number | null; total(): number } {
  let finishedBytes = 0;
  let currentSnapshot = "";
  let currentBytes = 0;
  return {
    feed(line) {
      const match = PROGRESS.exec(line);
      if (!match) return null;
      const bytes = Number(match[1]);
      const snapshot = match[2] as string;
      if (snapshot !== currentSnapshot) {
        finishedBytes += currentBytes;
        currentSnapshot = snapshot;
        currentBytes = 0;
      }
      currentBytes = Math.max(currentBytes, bytes);
      return finishedBytes + currentBytes;
    },
    total: () => finishedBytes + currentBytes,
  };
}
