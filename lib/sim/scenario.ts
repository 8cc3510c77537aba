// Scenarios: a small YAML/JSON description of pools, datasets, snapshots and holds that
// `sim-seed` (or seedState in tests) turns into a fresh simulator state.
import { readFileSync } from "node:fs";
import { takeSnapshots } from "./cmd-admin.ts";
import { addDataset, addPool, writeData } from "./datasets.ts";
import { ZfsError } from "./errors.ts";
import { parseSize } from "./format.ts";
import { emptyState, nowSeconds, type SimState, saveState, withState } from "./state.ts";
import { DEFAULT_ZFS_VERSION, parseZfsVersion } from "./version.ts";

/** A size in bytes, or a text like "8M", "1.5G". */
export type ScenarioSize = number | string;

export interface ScenarioSnapshot {
  name: string;
  /** bytes written since the previous snapshot (before this one is taken) */
  written?: ScenarioSize;
  /** bytes of older data freed since the previous snapshot (deletes/overwrites) */
  freed?: ScenarioSize;
  /** changed paths since the previous snapshot: "/f", "M /d/", "- /f", "R /a -> /b" */
  changes?: string[];
  /** hold tags */
  holds?: string[];
  /** epoch seconds; default: the scenario clock, one second per snapshot */
  creation?: number;
}

export interface ScenarioDataset {
  /** name relative to the pool ("" = the pool's root dataset) or the full name */
  name: string;
  type?: "filesystem" | "volume";
  /** volumes: volsize */
  volsize?: ScenarioSize;
  mounted?: boolean;
  compressratio?: number;
  props?: Record<string, string>;
  snapshots?: ScenarioSnapshot[];
  /** bytes written after the newest snapshot */
  written?: ScenarioSize;
  freed?: ScenarioSize;
  changes?: string[];
}

export interface ScenarioPool {
  name: string;
  size: ScenarioSize;
  datasets?: ScenarioDataset[];
}

export interface Scenario {
  /** clock start (epoch seconds) for creation times; default ABGLEICH_SIM_NOW or now */
  now?: number;
  /** the OpenZFS release to answer as: "2.1" (2.1.11, the default) or "2.3" (2.3.2) */
  zfsVersion?: string;
  pools: ScenarioPool[];
}

function bytes(value: ScenarioSize | undefined, what: string): number {
  if (value === undefined) return 0;
  const n = typeof value === "number" ? value : parseSize(value);
  if (n === null || !Number.isFinite(n) || n < 0)
    throw new ZfsError(`scenario: bad size for ${what}: ${String(value)}`, 2);
  return n;
}

function fullName(pool: string, name: string): string {
  if (name === "" || name === pool) return pool;
  return name.startsWith(`${pool}/`) ? name : `${pool}/${name}`;
}

/** Builds a state from a scenario (pure apart from random GUIDs). */
export function buildState(
  scenario: Scenario,
  env: Record<string, string | undefined> = process.env,
): SimState {
  if (!scenario || !Array.isArray(scenario.pools))
    throw new ZfsError("scenario: 'pools' must be a list", 2);
  const state = emptyState();
  if (scenario.zfsVersion !== undefined) {
    const version = parseZfsVersion(String(scenario.zfsVersion));
    if (!version)
      throw new ZfsError(`scenario: not a modelled OpenZFS version: ${scenario.zfsVersion}`, 2);
    if (version !== DEFAULT_ZFS_VERSION) state.zfsVersion = version;
  }
  let clock = scenario.now ?? nowSeconds(env);
  for (const pool of scenario.pools) {
    if (typeof pool.name !== "string") throw new ZfsError("scenario: every pool needs a name", 2);
    addPool(state, pool.name, bytes(pool.size, `pool ${pool.name}`), clock);
    for (const spec of pool.datasets ?? []) {
      const name = fullName(pool.name, spec.name ?? "");
      let ds = state.datasets[name];
      if (!ds) {
        for (
          let p = name.slice(0, name.lastIndexOf("/"));
          p.includes("/") && !state.datasets[p];
          p = p.slice(0, p.lastIndexOf("/"))
        )
          addDataset(state, p, { creation: clock });
        ds = addDataset(state, name, {
          type: spec.type ?? "filesystem",
          volsize: bytes(spec.volsize, `${name} volsize`),
          mounted: spec.mounted ?? true,
          compressratio: spec.compressratio ?? 1,
          props: spec.props ?? {},
          creation: clock,
        });
      } else if (spec.mounted !== undefined) ds.mounted = spec.mounted;
      if (spec.compressratio !== undefined) ds.compressratio = spec.compressratio;
      for (const snap of spec.snapshots ?? []) {
        const written = bytes(snap.written, `${name}@${snap.name} written`);
        const freed = bytes(snap.freed, `${name}@${snap.name} freed`);
        if (written > 0 || freed > 0 || (snap.changes?.length ?? 0) > 0)
          writeData(state, ds, written, freed, snap.changes ?? []);
        clock = snap.creation ?? clock + 1;
        takeSnapshots(state, [`${name}@${snap.name}`], false, clock);
        const taken = ds.snapshots[ds.snapshots.length - 1];
        if (taken) taken.holds = (snap.holds ?? []).map((tag) => ({ tag, time: clock }));
      }
      const written = bytes(spec.written, `${name} written`);
      const freed = bytes(spec.freed, `${name} freed`);
      if (written > 0 || freed > 0 || (spec.changes?.length ?? 0) > 0)
        writeData(state, ds, written, freed, spec.changes ?? []);
    }
  }
  return state;
}

/** Replaces the state in `stateDir` with the scenario's. */
export function seedState(
  stateDir: string,
  scenario: Scenario,
  env: Record<string, string | undefined> = process.env,
): void {
  const state = buildState(scenario, env);
  withState(stateDir, () => ({ save: false, value: undefined }));
  saveState(stateDir, state);
}

/** Reads a scenario file: JSON when it parses as JSON, else YAML (loaded lazily). */
export async function loadScenario(path: string): Promise<Scenario> {
  const text = readFileSync(path, "utf8");
  if (/\.json$/i.test(path) || text.trimStart().startsWith("{"))
    return JSON.parse(text) as Scenario;
  const { parse } = await import("yaml");
  return parse(text) as Scenario;
}
