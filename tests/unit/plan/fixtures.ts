// Small builders for inventories and configs, so planner tests read like the trees they describe.

import { type Config, configWithDefaults } from "../../../lib/config/types.ts";
import type { Dataset, Inventory, Side, Snapshot } from "../../../lib/zfs/model.ts";
import { joinSubname } from "../../../lib/zfs/model.ts";

export const SOURCE_ROOT = "tank/data";
export const TARGET_ROOT = "backup/host";

export function config(overrides: Partial<Config> = {}): Config {
  return {
    ...configWithDefaults({ zpool: "tank", prefix: "data" }, { zpool: "backup", prefix: "host" }),
    file: "/etc/abgleich.yaml",
    ...overrides,
  };
}

/** a snapshot; its guid defaults to `g-NAME`, so equal names match unless told otherwise */
export function snap(name: string, overrides: Partial<Snapshot> = {}): Snapshot {
  return {
    name,
    guid: `g-${name}`,
    createtxg: 0,
    creation: 0,
    used: 100,
    referenced: 1000,
    written: 100,
    compressratio: 1,
    userrefs: 0,
    ...overrides,
  };
}

/** snapshots with increasing createtxg and creation, in the order given */
export function history(...names: (string | Snapshot)[]): Snapshot[] {
  return names.map((item, index) => {
    const base = typeof item === "string" ? snap(item) : item;
    return {
      ...base,
      createtxg: 10 + index,
      creation: base.creation || 1_700_000_000 + index * 60,
    };
  });
}

export function dataset(
  root: string,
  subname: string,
  snapshots: Snapshot[],
  overrides: Partial<Dataset> = {},
): Dataset {
  const name = joinSubname(root, subname);
  return {
    name,
    subname,
    type: "filesystem",
    guid: `ds-${name}`,
    createtxg: 1,
    creation: 1_600_000_000,
    used: 1000,
    referenced: 1000,
    written: 0,
    compressratio: 1,
    mountpoint: `/${name}`,
    mounted: true,
    resumeToken: null,
    encryption: "off",
    keystatus: null,
    bookmarks: [],
    snapshots,
    ...overrides,
  };
}

export function inventory(side: Side, datasets: Dataset[]): Inventory {
  return { side, root: side === "source" ? SOURCE_ROOT : TARGET_ROOT, datasets };
}

export const src = (subname: string, snapshots: Snapshot[], overrides: Partial<Dataset> = {}) =>
  dataset(SOURCE_ROOT, subname, snapshots, overrides);
export const dst = (subname: string, snapshots: Snapshot[], overrides: Partial<Dataset> = {}) =>
  dataset(TARGET_ROOT, subname, snapshots, overrides);
