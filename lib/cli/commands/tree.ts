// `tree CONFIG [source|target]`: each side's datasets with their snapshots, space and ratio.

import { stages } from "../../engine/stages/index.ts";
import type { Side } from "../../zfs/model.ts";
import type { GlobalFlags } from "../io.ts";
import { renderTree, treeJson } from "../render/tree.ts";
import { runSession } from "../session.ts";
import { machineOf } from "../ui.ts";

export function treeCommand(
  configPath: string,
  side: Side | undefined,
  flags: GlobalFlags,
): Promise<number> {
  return runSession(configPath, flags, { readOnly: true, summary: "never" }, async (run, io) => {
    const sides: Side[] = side ? [side] : ["source", "target"];
    const { outcome, inventories } = await stages.tree(run, sides);
    if (outcome.status !== "ok") return null;
    const trees = sides.flatMap((s) => inventories[s] ?? []);
    const options = { ignored: new Set(run.config.ignore), rootIncluded: run.config.includeRoot };
    if (io.json) {
      io.emit({ trees: trees.map((inv) => treeJson(inv, options)) });
      return null;
    }
    const blocks = trees.map((inv) => {
      const machine = machineOf(run.config[inv.side]);
      const title = `${io.style.paint("bold", inv.side.toUpperCase())} ${inv.root} ${io.style.paint("dim", `on ${machine}`)}`;
      return `${title}\n${renderTree(inv, { ...options, style: io.style })}`;
    });
    io.print(blocks.join("\n\n"));
    return null;
  });
}
