// Reads one side's whole tree with a single `zfs list`, whatever its size.

import type { Host } from "../hosts/host.ts";
import { zfsList } from "./commands.ts";
import { parseList } from "./list.ts";
import type { Inventory } from "./model.ts";

export class ZfsCommandError extends Error {
  constructor(
    readonly where: string,
    readonly argv: readonly string[],
    readonly code: number,
    readonly stderr: string,
  ) {
    super(`${argv.join(" ")} failed on ${where} (exit ${code}): ${stderr.trim() || "no message"}`);
    this.name = "ZfsCommandError";
  }
}

/** where a host's output came from, for messages: `source (localhost)` */
export const describeHost = (host: Host): string => `${host.side} (${host.name})`;

/** the side's tree; a root that does not exist is an empty tree */
export async function readInventory(host: Host, root: string): Promise<Inventory> {
  const argv = zfsList(root);
  const result = await host.run(argv);
  if (result.code !== 0) {
    if (
      result.code === 1 &&
      result.stderr.includes(`cannot open '${root}': dataset does not exist`)
    ) {
      return { side: host.side, root, datasets: [] };
    }
    throw new ZfsCommandError(describeHost(host), argv, result.code, result.stderr);
  }
  return parseList(result.stdout, host.side, root, describeHost(host));
}
