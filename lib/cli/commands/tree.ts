// `tree CONFIG [source|target]`: each side's datasets with their snapshots, space and ratio.
import type { RunContext } from "../../engine/context.ts";

import { inventoryStage } from "../../engine/stages/inventory.ts";
import type { Side } from "../../zfs/model.ts";
import { commandIo, EXIT_OK, type GlobalFlags, openRun, reportError } from "../io.ts";
import { renderTree, treeJson } from "../render/tree.ts";

export async function treeCommand(
  configPath: string,
  side: Side | undefined,
  flags: GlobalFlags,
): Promise<number> {
  const io = commandIo(flags);
  const controller = new AbortController();
  let ctx: RunContext | undefined;
  try {
    ctx = await openRun(configPath, flags, controller.signal, undefined, io);
    const sides: Side[] = side ? [side] : ["source", "target"];
    await inventoryStage(ctx, sides);
    const run = ctx;
    const trees = await Promise.all(sides.map((s) => run.inventory(s))); // read once, cached
    const options = { ignored: new Set(ctx.config.ignore), rootIncluded: ctx.config.includeRoot };
    if (io.json) {
      io.emit({ trees: trees.map((inv) => treeJson(inv, options)) });
      return EXIT_OK;
    }
    const blocks = trees.map((inv) => {
      const host = run.config[inv.side].host;
      const title = `${io.style.paint("bold", inv.side.toUpperCase())} ${inv.root} ${io.style.paint("dim", `on ${host}`)}`;
      return `${title}\n${renderTree(inv, { ...options, style: io.style })}`;
    });
    io.print(blocks.join("\n\n"));
    return EXIT_OK;
  } catch (error) {
    return reportError(io, error);
  } finally {
    await ctx?.close();
  }
}
