// An in-memory Host for engine tests: it answers the zfs commands of snap and cleanup from a
// small model of one side's datasets, changes the model as zfs would, and logs every argv, so
// a test can assert which commands ran and that no forbidden one did. Transfers need real
// processes and are tested on the simulator instead.

import type { Host, RunResult } from "../../lib/hosts/host.ts";
import type { Dataset, Inventory, Side } from "../../lib/zfs/model.ts";

export interface MemoryHost extends Host {
  /** every argv run, in order */
  readonly calls: string[][];
  /** the model: change it to stage a scene, read it to check the result */
  datasets: Dataset[];
  /** argv (joined with spaces) matching this fails with exit 1 and the given stderr */
  failWhen(pattern: RegExp, stderr: string): void;
  /** argv matching this never answers (until the signal of the call aborts, if any) */
  hangWhen(pattern: RegExp): void;
  down: boolean;
  /** what `zpool get guid` says of its pool (each memory host is a machine of its own) */
  poolGuid: string;
}

const row = (cells: (string | number)[]) => cells.join("\t");

/** zfs guids are numbers: the fixtures' readable guids ("g-a") map to stable numbers */
const numericGuid = (guid: string) => (/^\d+$/.test(guid) ? guid : String(Bun.hash.wyhash(guid)));

export function listRows(datasets: readonly Dataset[], root: string): string {
  const lines: string[] = [];
  for (const d of datasets) {
    if (d.name !== root && !d.name.startsWith(`${root}/`)) continue;
    lines.push(
      row([
        d.name,
        d.type,
        d.creation,
        numericGuid(d.guid),
        d.createtxg,
        d.used,
        d.referenced,
        d.written,
        `${d.compressratio.toFixed(2)}x`,
        d.mountpoint,
        d.mounted === null ? "-" : d.mounted ? "yes" : "no",
        d.resumeToken ?? "-",
        "-",
        d.encryption,
        d.keystatus ?? "-",
      ]),
    );
    for (const s of d.snapshots) {
      lines.push(
        row([
          `${d.name}@${s.name}`,
          "snapshot",
          s.creation,
          numericGuid(s.guid),
          s.createtxg,
          s.used,
          s.referenced,
          s.written,
          `${s.compressratio.toFixed(2)}x`,
          "-",
          "-",
          "-",
          s.userrefs,
          d.encryption,
          d.keystatus ?? "-",
        ]),
      );
    }
    for (const b of d.bookmarks) {
      const dashes = Array.from({ length: 10 }, () => "-");
      dashes[1] = "0"; // referenced
      lines.push(
        row([
          `${d.name}#${b.name}`,
          "bookmark",
          b.creation,
          numericGuid(b.guid),
          b.createtxg,
          ...dashes,
        ]),
      );
    }
  }
  return lines.length > 0 ? `${lines.join("\n")}\n` : "";
}

export function memoryHost(side: Side, inventory: Inventory): MemoryHost {
  const failures: { pattern: RegExp; stderr: string }[] = [];
  const hangs: RegExp[] = [];
  let txg = 1000;
  const ok = (stdout = ""): RunResult => ({ code: 0, stdout, stderr: "" });
  const missing = (name: string): RunResult => ({
    code: 1,
    stdout: "",
    stderr: `cannot open '${name}': dataset does not exist\n`,
  });
  const host: MemoryHost = {
    side,
    name: "memory",
    isLocal: true,
    calls: [],
    datasets: structuredClone(inventory.datasets),
    down: false,
    poolGuid: String(Bun.hash.wyhash(`${side}:${inventory.root}`)),
    failWhen(pattern, stderr) {
      failures.push({ pattern, stderr });
    },
    hangWhen(pattern) {
      hangs.push(pattern);
    },
    async run(argv, options) {
      host.calls.push([...argv]);
      const text = argv.join(" ");
      if (hangs.some((p) => p.test(text))) {
        const signal = (options as { signal?: AbortSignal } | undefined)?.signal;
        await new Promise((_resolve, reject) =>
          signal?.addEventListener("abort", () => reject(signal.reason), { once: true }),
        );
      }
      const failure = failures.find((f) => f.pattern.test(text));
      if (failure) return { code: 1, stdout: "", stderr: failure.stderr };
      const [zfs, verb, ...rest] = argv;
      const byName = (name: string) => host.datasets.find((d) => d.name === name);
      if (zfs === "zpool" && verb === "get")
        return ok(
          rest.includes("guid")
            ? `${rest.at(-1)}\tguid\t${host.poolGuid}\t-\n`
            : `${rest.at(-1)}\tfreeing\t0\t-\n`,
        );
      if (zfs !== "zfs") return ok();
      switch (verb) {
        case "list": {
          const target = rest.at(-1) as string;
          if (rest.includes("-r")) {
            const root = byName(target);
            return root ? ok(listRows(host.datasets, target)) : missing(target);
          }
          const dataset = byName(target);
          if (!dataset) return missing(target);
          return ok(rest.includes("used") ? `${dataset.used}\n` : `${dataset.name}\n`);
        }
        case "snapshot": {
          for (const full of rest) {
            const [name, snap] = full.split("@") as [string, string];
            const dataset = byName(name);
            if (!dataset) return missing(name);
            txg++;
            dataset.snapshots.push({
              name: snap,
              guid: `g-${snap}`,
              createtxg: txg,
              creation: 1_800_000_000 + txg,
              used: 0,
              referenced: dataset.referenced,
              written: dataset.written,
              compressratio: 1,
              userrefs: 0,
            });
            dataset.written = 0;
          }
          return ok();
        }
        case "destroy": {
          const [name, list] = (rest.at(-1) as string).split("@") as [string, string];
          const dataset = byName(name);
          if (!dataset) return missing(name);
          const names = new Set(list.split(","));
          dataset.snapshots = dataset.snapshots.filter((s) => !names.has(s.name));
          return ok();
        }
        case "diff":
          return ok("");
        default:
          return ok();
      }
    },
    wrap: (argv) => [...argv],
    async ping() {
      if (host.down) {
        const { HostDownError } = await import("../../lib/hosts/host.ts");
        throw new HostDownError(side, "ssh: connect to host memory port 22: Connection refused");
      }
    },
    async close() {},
  };
  // as a real host does: a large stdout is handed over in pieces, not returned
  const answer = host.run.bind(host);
  host.run = async (argv, options) => {
    const result = await answer(argv, options);
    if (!options?.readStdout) return result;
    const bytes = Buffer.from(result.stdout);
    for (let at = 0; at < bytes.length; at += 4096)
      options.readStdout(bytes.subarray(at, at + 4096));
    return { ...result, stdout: "" };
  };
  return host;
}
