// Configuration file → validated, typed Config. Bad input throws ConfigError
// (exit code 2) naming the file, the key path and the line and column.

import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Node } from "yaml";
import { formatThreshold, parseDuration } from "../status/duration.ts";
import { checkDatasetName } from "../zfs/names.ts";
import { ConfigError } from "./errors.ts";
import {
  type Config,
  DEFAULT_COMMAND_TIMEOUT,
  DEFAULT_STATUS,
  DEFAULT_TRANSFER,
  type PluginEntry,
  type RetentionRules,
  rootOf,
  type SideConfig,
  type StatusConfig,
  type TransferConfig,
} from "./types.ts";
import { checkAgainstSchema, quoteShort } from "./validate.ts";
import {
  findCollectionKey,
  formatKeyPath,
  keyPathAtOffset,
  nodeAt,
  type ParsedYaml,
  type PathSegment,
  parseYaml,
  positionOf,
} from "./yaml.ts";

export { ConfigError } from "./errors.ts";

export const DEFAULT_WRITTEN_THRESHOLD = 1048576;

/** Reads and validates the configuration file at `path`, and that the files it names exist. */
export function loadConfig(path: string): Config {
  return parseConfig(readConfigFile(path), path, { fileExists: existsSync });
}

export interface ParseOptions {
  /** given: the files the config names (ssh.config_file) are checked to exist, as config errors */
  fileExists?: (path: string) => boolean;
}

/** Validates configuration text; `file` names it in errors and anchors relative plugin paths. */
export function parseConfig(text: string, file: string, options: ParseOptions = {}): Config {
  const parsed = parseYaml(text);
  throwOnYamlError(parsed, file);

  const value = toPlainValue(parsed, file);
  if (value === null || value === undefined) {
    throw fileProblem(file, "the file is empty; it needs at least source.zpool and target.zpool");
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    const found = Array.isArray(value) ? "a list" : `a single value (${quoteShort(String(value))})`;
    const at = positionOf(parsed.doc.contents, parsed.lines);
    throw new ConfigError({
      file,
      keyPath: "",
      line: at?.line ?? null,
      column: at?.column ?? null,
      reason: `the file must be a mapping of keys (source:, target:, ...), but it is ${found}`,
    });
  }

  const problem = checkAgainstSchema(value);
  if (problem !== null) {
    // A missing key has no node: point at the mapping that lacks it (none for the top level).
    const node = problem.missing
      ? problem.path.length > 1
        ? nodeAt(parsed.doc, problem.path.slice(0, -1))
        : null
      : nodeAt(parsed.doc, problem.path, problem.atKey);
    throw valueProblem(parsed, file, problem.path, problem.reason, node);
  }

  checkDurations(value as RawConfig, parsed, file);
  const config = toConfig(value as RawConfig, file);
  checkRoots(config, parsed, file);
  checkTransfer(config, parsed, file);
  checkStatus(config, parsed, file);
  checkRetention(config, value as RawConfig, parsed, file);
  if (options.fileExists) checkFiles(config, parsed, file, options.fileExists);
  return config;
}

/** a file the config names that is not there is the config's mistake, not a host's */
function checkFiles(
  config: Config,
  parsed: ParsedYaml,
  file: string,
  exists: (path: string) => boolean,
): void {
  const sshConfig = config.ssh.configFile;
  if (sshConfig === "" || exists(sshConfig)) return;
  const path = ["ssh", "config_file"];
  throw valueProblem(
    parsed,
    file,
    path,
    `no such file: ${sshConfig} (a relative path is read from the config file's folder); fix the path, or remove the key to use ssh's own config`,
    nodeAt(parsed.doc, path),
  );
}

/** the largest `transfer.buffer` and `bwlimit`: more is a typo (and past 1e21 not a number mbuffer or pv reads) */
const MAX_TRANSFER_SIZE = 1024 ** 4;

/** the smallest `transfer.buffer` mbuffer is given: it needs room for a few of its blocks */
export const MIN_BUFFER = 1024 * 1024;

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
};

/**
 * `64M`, `1.5G`, `512k`, `10MiB`, `10M/s` or a number of bytes → bytes (K, M, G, T are powers of
 * 1024); null for what is not a size. The schema's pattern lets only sizes through; this reads them.
 */
export function parseByteSize(value: string | number): number | null {
  if (typeof value === "number") return Number.isInteger(value) && value >= 0 ? value : null;
  const match = /^([0-9]+(?:\.[0-9]+)?) ?(?:([KkMmGgTt])(?:i?B)?|(B))?(?:\/s)?$/.exec(value);
  if (!match) return null;
  const unit = UNITS[(match[2] ?? match[3] ?? "").toLowerCase()] ?? 1;
  return Math.floor(Number(match[1]) * unit);
}

/** rules of the transfer section the schema cannot say: a buffer mbuffer can use, direct's hosts */
function checkTransfer(config: Config, parsed: ParsedYaml, file: string): void {
  const { buffer, direct } = config.transfer;
  if (typeof buffer === "number" && buffer > 0 && buffer < MIN_BUFFER) {
    const path = ["transfer", "buffer"];
    throw valueProblem(
      parsed,
      file,
      path,
      `a buffer of ${buffer} bytes is too small for mbuffer: give at least 1M, or off for none`,
      nodeAt(parsed.doc, path),
    );
  }
  for (const key of ["buffer", "bwlimit"] as const) {
    const value = config.transfer[key];
    if (typeof value !== "number" || value <= MAX_TRANSFER_SIZE) continue;
    const path = ["transfer", key];
    throw valueProblem(
      parsed,
      file,
      path,
      key === "buffer"
        ? "a buffer of more than 1T is memory no host has to spare: give a size such as 64M or 1G, or off"
        : "a limit of more than 1T per second limits nothing: give a rate such as 10M, or off",
      nodeAt(parsed.doc, path),
    );
  }
  const local = (["source", "target"] as const).filter((side) => config[side].host === "localhost");
  if (direct && local.length > 0) {
    const path = ["transfer", "direct"];
    throw valueProblem(
      parsed,
      file,
      path,
      `direct needs both sides remote: ${local.map((side) => `${side}.host`).join(" and ")} ${local.length > 1 ? "are" : "is"} localhost, so the stream goes from this machine anyway; set direct: no`,
      nodeAt(parsed.doc, path),
    );
  }
}

/** two keys that would both decide `cleanup target`: the user must pick one */
function checkRetention(config: Config, raw: RawConfig, parsed: ParsedYaml, file: string): void {
  if (config.retention.target === null || raw.keep_backlog == null) return;
  const path = ["keep_backlog"];
  throw valueProblem(
    parsed,
    file,
    path,
    "cannot be combined with retention.target, which decides what `cleanup target` keeps in its place; remove keep_backlog",
    nodeAt(parsed.doc, path),
  );
}

/** a bare number as a threshold: seconds or hours? The user says, with a unit */
function checkDurations(raw: RawConfig, parsed: ParsedYaml, file: string): void {
  for (const key of ["warn", "crit"] as const) {
    const value = raw.status?.[key];
    if (typeof value !== "number") continue;
    const path = ["status", key];
    const reason = `${value} has no unit: write e.g. ${value}h or ${value}m (units s, m, h, d, w)`;
    throw valueProblem(parsed, file, path, reason, nodeAt(parsed.doc, path));
  }
}

/** status thresholds: the critical one cannot come before the warning one */
function checkStatus(config: Config, parsed: ParsedYaml, file: string): void {
  const { warn, crit } = config.status;
  if (crit >= warn) return;
  const path = nodeAt(parsed.doc, ["status", "crit"]) ? ["status", "crit"] : ["status", "warn"];
  throw valueProblem(
    parsed,
    file,
    path,
    `crit (${formatThreshold(crit)}) is shorter than warn (${formatThreshold(warn)}): the critical threshold must be at least as long as the warning one (defaults: warn 26h, crit 50h)`,
    nodeAt(parsed.doc, path),
  );
}

/**
 * Why the two roots will not do, and the key to blame; null: fine. `zpool/prefix` must fit ZFS's
 * name length (a rule across two keys, so the schema cannot say it), and neither may lie inside
 * the other on one host.
 */
function rootsProblem(
  config: Pick<Config, "source" | "target">,
): { path: PathSegment[]; message: string } | null {
  for (const side of ["source", "target"] as const) {
    const root = rootOf(config[side]);
    const reason = checkDatasetName(root);
    if (reason === null) continue;
    return {
      path: [side, "prefix"],
      message: `the root ${quoteShort(root)} is not a valid dataset name: ${reason}`,
    };
  }
  // On one host, a target inside the source tree (or the reverse, or the same root) would back
  // the tree up into itself, and cleanup would free snapshots that exist nowhere else.
  const [source, target] = [rootOf(config.source), rootOf(config.target)];
  const within = (inner: string, outer: string) => inner === outer || inner.startsWith(`${outer}/`);
  if (
    config.source.host === config.target.host &&
    (within(target, source) || within(source, target))
  ) {
    return {
      path: ["target", "prefix"],
      message:
        source === target
          ? `source and target are the same dataset ${quoteShort(source)} on ${config.source.host}`
          : `source ${quoteShort(source)} and target ${quoteShort(target)} on ${config.source.host} lie inside each other: a backup must go to a separate tree`,
    };
  }
  return null;
}

function checkRoots(config: Config, parsed: ParsedYaml, file: string): void {
  const problem = rootsProblem(config);
  if (problem === null) return;
  const node =
    nodeAt(parsed.doc, problem.path) ??
    (problem.path[0] === "target" ? nodeAt(parsed.doc, ["target"]) : null);
  throw valueProblem(parsed, file, problem.path, problem.message, node);
}

/**
 * Sides given by code, not by a file (a workflow's `run.with()`): checked by the same schema and
 * root rules as a config file's, each problem a ConfigError naming `where` and the key.
 */
export function checkedSides(
  sides: { source: unknown; target: unknown },
  where: string,
): { source: SideConfig; target: SideConfig } {
  const fail = (path: PathSegment[], reason: string) =>
    new ConfigError({
      file: where,
      keyPath: formatKeyPath(path),
      line: null,
      column: null,
      reason,
    });
  const problem = checkAgainstSchema(sides);
  if (problem !== null) throw fail(problem.path, problem.reason);
  const checked = {
    source: toSide(sides.source as RawSide),
    target: toSide(sides.target as RawSide),
  };
  const roots = rootsProblem(checked);
  if (roots !== null) throw fail(roots.path, roots.message);
  return checked;
}

/** The document as plain JS data; refuses what has no faithful plain form. */
function toPlainValue(parsed: ParsedYaml, file: string): unknown {
  const { doc, lines } = parsed;
  const collectionKey = findCollectionKey(doc);
  if (collectionKey !== null) {
    const offset = collectionKey.range?.[0] ?? 0;
    const at = positionOf(collectionKey, lines);
    throw new ConfigError({
      file,
      keyPath: formatKeyPath(keyPathAtOffset(doc, offset)),
      line: at?.line ?? null,
      column: at?.column ?? null,
      reason: "a key must be a plain word, not a list or mapping",
    });
  }
  try {
    // Aliases are expanded here; the cap stops "billion laughs" files.
    return doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw fileProblem(file, `cannot be read as data: ${(error as Error).message}`);
  }
}

function readConfigFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT"
        ? "no such file"
        : code === "EISDIR"
          ? "is a directory, not a configuration file"
          : code === "EACCES"
            ? "permission denied"
            : `cannot be read: ${(error as Error).message}`;
    throw fileProblem(path, reason);
  }
}

function throwOnYamlError({ doc, lines }: ParsedYaml, file: string): void {
  const error = doc.errors[0];
  if (error === undefined) return;
  const offset = error.pos[0];
  const { line, col } = lines.linePos(offset);
  const what = error.code === "DUPLICATE_KEY" ? "duplicate key" : "YAML syntax error";
  // Strip yaml's own "at line L, column C" suffix and code excerpt: we give the position ourselves.
  const detail = error.message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "") ?? "";
  throw new ConfigError({
    file,
    keyPath: formatKeyPath(
      keyPathAtOffset(doc, offset, { keysBefore: error.code !== "DUPLICATE_KEY" }),
    ),
    line,
    column: col,
    reason: `${what}: ${detail}`,
  });
}

function fileProblem(file: string, reason: string): ConfigError {
  return new ConfigError({ file, keyPath: "", line: null, column: null, reason });
}

function valueProblem(
  { lines }: ParsedYaml,
  file: string,
  path: PathSegment[],
  reason: string,
  node: Node | null,
): ConfigError {
  const at = positionOf(node, lines);
  return new ConfigError({
    file,
    keyPath: formatKeyPath(path),
    line: at?.line ?? null,
    column: at?.column ?? null,
    reason,
  });
}

// The shape schema.json guarantees; null stands for a key left empty.
interface RawSide {
  zpool: string;
  prefix?: string | null;
  host?: string | null;
  user?: string | null;
  port?: number | null;
  sudo?: boolean | null;
}

type RawRetention = { [K in keyof RetentionRules]?: number | null };

interface RawPlugin {
  name?: string;
  path?: string;
  options?: Record<string, unknown> | null;
}

interface RawConfig {
  source: RawSide;
  target: RawSide;
  include_root?: boolean | null;
  keep_snapshots?: number | null;
  keep_backlog?: number | null;
  retention?: { source?: RawRetention | null; target?: RawRetention | null } | null;
  always_changed?: boolean | null;
  written_threshold?: number | null;
  check_diff?: boolean | null;
  command_timeout?: number | null;
  suffix?: string | null;
  digits?: number | null;
  ignore?: string[] | null;
  ssh?: {
    compression?: boolean | null;
    cipher?: string | null;
    config_file?: string | null;
  } | null;
  transfer?: {
    compression?: "auto" | "off" | "zstd" | "lz4" | false | null;
    buffer?: string | number | false | null;
    bwlimit?: string | number | false | null;
    direct?: boolean | null;
    parallel?: number | null;
    retries?: number | null;
    batch?: number | null;
  } | null;
  status?: { warn?: string | number | null; crit?: string | number | null } | null;
  plugins?: RawPlugin[] | null;
}

/** a `buffer` or `bwlimit` value as bytes: `off`, `false` and 0 are none, `auto` stays */
function toBytes<T extends string>(
  value: string | number | false | null | undefined,
  keep: readonly T[],
  fallback: number | T,
): number | T {
  if (value === null || value === undefined) return fallback;
  if (value === false || value === "off") return 0;
  const kept = keep.find((word) => word === value);
  if (kept !== undefined) return kept;
  return parseByteSize(value) ?? fallback;
}

function toTransfer(raw: RawConfig["transfer"]): TransferConfig {
  const compression = raw?.compression;
  return {
    compression: compression === false ? "off" : (compression ?? DEFAULT_TRANSFER.compression),
    buffer: toBytes(raw?.buffer, ["auto"] as const, DEFAULT_TRANSFER.buffer),
    bwlimit: toBytes(raw?.bwlimit, [] as const, DEFAULT_TRANSFER.bwlimit) as number,
    direct: raw?.direct ?? DEFAULT_TRANSFER.direct,
    parallel: raw?.parallel ?? DEFAULT_TRANSFER.parallel,
    retries: raw?.retries ?? DEFAULT_TRANSFER.retries,
    batch: raw?.batch ?? DEFAULT_TRANSFER.batch,
  };
}

/** Applies the defaults of the README's Configuration table; an empty value means the default. */
function toConfig(raw: RawConfig, file: string): Config {
  const absoluteFile = resolve(file);
  return {
    file: absoluteFile,
    source: toSide(raw.source),
    target: toSide(raw.target),
    includeRoot: raw.include_root ?? true,
    keepSnapshots: raw.keep_snapshots ?? 1,
    keepBacklog: raw.keep_backlog ?? -1,
    retention: {
      source: toRetention(raw.retention?.source),
      target: toRetention(raw.retention?.target),
    },
    alwaysChanged: raw.always_changed ?? false,
    // Absent: the default threshold. Present but empty: no threshold at all.
    writtenThreshold:
      "written_threshold" in raw ? (raw.written_threshold ?? null) : DEFAULT_WRITTEN_THRESHOLD,
    checkDiff: raw.check_diff ?? true,
    commandTimeout: raw.command_timeout ?? DEFAULT_COMMAND_TIMEOUT,
    suffix: raw.suffix ?? "",
    digits: raw.digits ?? 2,
    ignore: raw.ignore ?? [],
    ssh: {
      compression: raw.ssh?.compression ?? false,
      cipher: raw.ssh?.cipher ?? "",
      configFile: raw.ssh?.config_file ? resolve(dirname(absoluteFile), raw.ssh.config_file) : "",
    },
    transfer: toTransfer(raw.transfer),
    status: toStatus(raw.status),
    plugins: (raw.plugins ?? []).map((entry) => toPlugin(entry, dirname(absoluteFile))),
  };
}

/** a side's retention rules; a rule left out (or empty) keeps nothing by itself */
function toRetention(raw: RawRetention | null | undefined): RetentionRules | null {
  if (raw === null || raw === undefined) return null;
  return {
    latest: raw.latest ?? 0,
    hourly: raw.hourly ?? 0,
    daily: raw.daily ?? 0,
    weekly: raw.weekly ?? 0,
    monthly: raw.monthly ?? 0,
    yearly: raw.yearly ?? 0,
  };
}

/** the schema's pattern lets only durations through; empty means the default */
function toStatus(raw: RawConfig["status"]): StatusConfig {
  return {
    warn: typeof raw?.warn === "string" ? parseDuration(raw.warn) : DEFAULT_STATUS.warn,
    crit: typeof raw?.crit === "string" ? parseDuration(raw.crit) : DEFAULT_STATUS.crit,
  };
}

function toSide(raw: RawSide): SideConfig {
  return {
    zpool: raw.zpool,
    prefix: raw.prefix ?? "",
    host: raw.host ?? "localhost",
    user: raw.user ?? "",
    port: raw.port ?? null,
    sudo: raw.sudo ?? false,
  };
}

function toPlugin(raw: RawPlugin, folder: string): PluginEntry {
  return {
    name: raw.name ?? null,
    path: raw.path === undefined ? null : resolve(folder, raw.path),
    options: raw.options ?? {},
  };
}
