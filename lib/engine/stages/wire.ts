// The backup stage's wire, chosen once per stage in its preflight: which tools each host has
// (one command per host), what the config asks for, and for `direct`, whether the source host
// reaches the target on its own. A choice that cannot be honoured stops the stage before any
// transfer; the choice and its reasons are shown with the plan.

import type { Host } from "../../hosts/host.ts";
import {
  chooseWire,
  type DirectTarget,
  detectTools,
  directProbeArgv,
  PLAIN_WIRE,
  type Wire,
  type WireCapability,
  type WireEnd,
} from "../../run/wire.ts";
import type { Run } from "../runner.ts";
import { PreflightError } from "./preflight.ts";

export interface StageWire {
  wire: Wire;
  /** set for a direct wire: the target as the source host reaches it */
  direct?: DirectTarget;
}

/** how long the source host may take to reach the target for the direct check */
const DIRECT_PROBE_TIMEOUT_MS = 40_000;

/** the machine a side's commands run on, as WireEnd.address says it */
function addressOf(run: Run, host: Host): string {
  const { host: destination, user, port } = run.config[host.side];
  return host.isLocal ? "localhost" : `${user}@${destination}:${port ?? ""}`;
}

/** whether any choice depends on the hosts' tools (a plain local pipe asks nothing) */
function needsTools(run: Run): boolean {
  const { compression, buffer, bwlimit } = run.config.transfer;
  const { source, target } = run.hosts;
  // both here, or both on one remote host: a pipe on that host, no wire to choose tools for
  const local = addressOf(run, source) === addressOf(run, target);
  if (bwlimit > 0 || (typeof buffer === "number" && buffer > 0)) return true;
  return !local && (compression !== "off" || buffer === "auto");
}

/** detect, choose, check; throws PreflightError naming host, tool and fix */
export async function prepareWire(run: Run): Promise<StageWire> {
  const { source, target } = run.hosts;
  const options = { timeoutMs: run.config.commandTimeout * 1000, signal: run.signal };
  const none = new Set<WireCapability>();
  const [sourceTools, targetTools] = needsTools(run)
    ? await Promise.all([detectTools(source, options), detectTools(target, options)])
    : [none, none];
  const end = (host: Host, tools: ReadonlySet<WireCapability>): WireEnd => ({
    side: host.side,
    name: host.name,
    isLocal: host.isLocal,
    address: addressOf(run, host),
    tools,
  });
  const choice = chooseWire(
    run.config.transfer,
    end(source, sourceTools),
    end(target, targetTools),
  );
  if (!choice.ok) throw new PreflightError(choice.problems.join("\n"));
  const { wire } = choice;
  // a local pipe with nothing on it is not worth a line; anything else is shown with the plan
  if (!(source.isLocal && target.isLocal && wire.buffer === 0 && wire.bwlimit === 0))
    run.ui.note(run.stageInfo("backup"), wire.text);
  if (!wire.direct) return { wire };

  const direct: DirectTarget = { sideConfig: run.config.target, ssh: run.config.ssh };
  const probe = directProbeArgv(direct);
  const result = await source.run(probe, {
    timeoutMs: DIRECT_PROBE_TIMEOUT_MS,
    signal: run.signal,
  });
  if (result.code !== 0) {
    const { host, user, port } = run.config.target;
    const destination = `${user === "" ? "" : `${user}@`}${host}${port === null ? "" : ` port ${port}`}`;
    const reason = result.stderr.trim() || `ssh exited ${result.code}`;
    throw new PreflightError(
      `transfer.direct: the source (${source.name}) cannot reach the target as ${destination} on its own (ssh -o BatchMode=yes, its own keys): ${reason}; give the source host a key the target accepts and the target's host key in its known_hosts, or set \`direct: no\` in ${run.config.file}`,
    );
  }
  return { wire, direct };
}

/** the wire when the stage ran no preflight (a library caller): a plain `send | receive` */
export const NO_WIRE: StageWire = Object.freeze({ wire: PLAIN_WIRE });
