// Synthetic `zfs list -t all -Hp -o LIST_COLUMNS` text for benchmarks and parser tests:
// `datasets` filesystems under `root`, each with `snapshots` snapshots.

export interface SyntheticOptions {
  root: string;
  datasets: number;
  snapshots: number;
  /** guid offset so two sides can share or differ in guids */
  guidSeed?: bigint;
  /** only the first `keep` snapshots of each dataset (a target behind its source) */
  keep?: number;
  /**
   * as a backup chain leaves the side: the newest kept snapshot of each dataset held
   * (userrefs 1), on the source also bookmarked (`ds#name`, after the snapshots, as zfs lists it)
   */
  chain?: "source" | "target";
  /** index of that snapshot (the newest common one of both sides); default the newest kept */
  chainBase?: number;
  /** every 10th dataset encrypted (aes-256-gcm) with this key status */
  encrypted?: "available" | "unavailable";
}

export function syntheticList(o: SyntheticOptions): string {
  const parts: string[] = [];
  const seed = o.guidSeed ?? 10_000_000_000_000_000_000n;
  const keep = o.keep ?? o.snapshots;
  const base = o.chainBase ?? keep - 1;
  let txg = 1;
  for (let d = 0; d < o.datasets; d++) {
    // a two-level tree: root, then groups of 100 children each
    const name =
      d === 0
        ? o.root
        : d % 100 === 1
          ? `${o.root}/g${d}`
          : `${o.root}/g${d - ((d - 1) % 100)}/d${d}`;
    const crypt =
      o.encrypted !== undefined && d % 10 === 5 ? `aes-256-gcm\t${o.encrypted}` : "off\t-";
    // a target's dataset was made by its receive: a guid of its own (its snapshots keep the
    // source's), as on real ZFS, where equal dataset guids mean one dataset
    const datasetGuid = seed + BigInt(d) * 1000n + (o.chain === "target" ? 999n : 0n);
    parts.push(
      `${name}\tfilesystem\t1795663151\t${datasetGuid}\t${txg++}\t13000704\t4308992\t0\t1.00\t/${name}\tyes\t-\t-\t${crypt}\n`,
    );
    const snapName = (s: number) =>
      `2026${String(1 + (s % 12)).padStart(2, "0")}${String(1 + (s % 28)).padStart(2, "0")}${String(s).padStart(2, "0")}_backup`;
    const guid = (s: number) => seed + BigInt(d) * 1000n + BigInt(s + 1);
    for (let s = 0; s < keep; s++) {
      const userrefs = o.chain && s === base ? 1 : 0;
      parts.push(
        `${name}@${snapName(s)}\tsnapshot\t${1795663151 + s}\t${guid(s)}\t${txg + s}\t65536\t4308992\t65536\t1.00\t-\t-\t-\t${userrefs}\t${crypt}\n`,
      );
    }
    if (o.chain === "source" && base >= 0 && base < keep) {
      const s = base;
      parts.push(
        `${name}#${snapName(s)}\tbookmark\t${1795663151 + s}\t${guid(s)}\t${txg + s}\t-\t4308992\t-\t-\t-\t-\t-\t-\t-\t-\n`,
      );
    }
    txg += o.snapshots;
  }
  return parts.join("");
}
