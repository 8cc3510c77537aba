// Reads one side's whole tree with a single `zfs list`, whatever its size (through the port).

import type { Host } from "../hosts/host.ts";
import type { Inventory } from "./model.ts";
import { type PortOptions, ZfsPort } from "./port.ts";

export { describeHost, ZfsCommandError } from "./errors.ts";

/** the side's tree; a root that does not exist is an empty tree (ZfsPort.inventory) */
export function readInventory(
  host: Host,
  root: string,
  options: PortOptions = {},
): Promise<Inventory> {
  return new ZfsPort(host, options).inventory(root);
}
