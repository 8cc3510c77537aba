// Reading what `zfs send -v -P` prints on stderr while sending (estimates are read by the zfs
// port): one progress line per second: `HH:MM:SS\tBYTES\tDS@SNAP`. With -I the byte count starts
// again for every snapshot of the stream, so a total is kept across snapshots.

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
