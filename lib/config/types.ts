// The validated, typed configuration. YAML keys are snake_case; these fields are camelCase.

export interface SideConfig {
  zpool: string;
  /** "" when empty */
  prefix: string;
  /** "localhost" runs commands directly; anything else is an ssh destination */
  host: string;
  /** "" = ssh's own default */
  user: string;
  port: number | null;
  /** every zfs command on this side runs as `sudo -n zfs …` (never asks for a password) */
  sudo: boolean;
}

export interface PluginEntry {
  /** bundled plugin name (e.g. "notify") or null when loaded from `path` */
  name: string | null;
  /** path of a user plugin, resolved against the config file's folder */
  path: string | null;
  /** plugin-specific options, validated by the plugin */
  options: Record<string, unknown>;
}

/** how transfers use the wire and the hosts (`transfer` in the config) */
export interface TransferConfig {
  /** stream compression on ssh hops; "auto": zstd, else lz4, where both ends have it */
  compression: "auto" | "off" | "zstd" | "lz4";
  /** mbuffer memory in bytes on the receiving end; "auto": 64 MiB where mbuffer is there; 0: none */
  buffer: number | "auto";
  /** bytes per second for each transfer; 0: no limit */
  bwlimit: number;
  /** run the pipeline on the source host, which reaches the target itself (remote→remote only) */
  direct: boolean;
  /** datasets sent at once (parents always before children) */
  parallel: number;
  /** a transfer cut by a network fault is resumed from its token up to this many times per run */
  retries: number;
  /** at most this many datasets' streams one after another through one ssh session per host */
  batch: number;
}

export const DEFAULT_TRANSFER: TransferConfig = Object.freeze({
  compression: "auto",
  buffer: "auto",
  bwlimit: 0,
  direct: false,
  parallel: 1,
  retries: 3,
  batch: 16,
});

/**
 * How many of abgleich's own snapshots one side keeps (`retention.source`, `retention.target`):
 * the newest `latest`, and the newest snapshot of each of the last `hourly` hours, `daily` days,
 * `weekly` ISO weeks, `monthly` months and `yearly` years that have one. 0 keeps none by that rule.
 */
export interface RetentionRules {
  latest: number;
  hourly: number;
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
}

/** the retention rules of each side; null: that side's cleanup works as without retention */
export interface RetentionConfig {
  source: RetentionRules | null;
  target: RetentionRules | null;
}

/** `status` thresholds in seconds: something this late is WARNING, CRITICAL (`abgleich status`) */
export interface StatusConfig {
  warn: number;
  crit: number;
}

/** a nightly run may be a day and a couple of hours late before anyone needs to hear of it */
export const DEFAULT_STATUS: StatusConfig = Object.freeze({ warn: 26 * 3600, crit: 50 * 3600 });

export interface Config {
  /** absolute path of the file this came from */
  file: string;
  source: SideConfig;
  target: SideConfig;
  includeRoot: boolean;
  keepSnapshots: number;
  /** -1 keeps all */
  keepBacklog: number;
  retention: RetentionConfig;
  alwaysChanged: boolean;
  /** null: no threshold, every dataset with written > 0 goes to `zfs diff` */
  writtenThreshold: number | null;
  checkDiff: boolean;
  /** seconds a single zfs command may take (not a transfer); `command_timeout` */
  commandTimeout: number;
  suffix: string;
  digits: number;
  ignore: string[];
  /** configFile: absolute path for `ssh -F`, "" for ssh's default */
  ssh: { compression: boolean; cipher: string; configFile: string };
  transfer: TransferConfig;
  status: StatusConfig;
  plugins: PluginEntry[];
}

/** seconds a single zfs command may take by default (`command_timeout`) */
export const DEFAULT_COMMAND_TIMEOUT = 900;

/** `zpool` or `zpool/prefix` */
export function rootOf(side: SideConfig): string {
  return side.prefix === "" ? side.zpool : `${side.zpool}/${side.prefix}`;
}

/** a Config with the README's defaults for everything not given: for tests, benchmarks, the API */
export function configWithDefaults(
  source: Partial<SideConfig> & Pick<SideConfig, "zpool">,
  target: Partial<SideConfig> & Pick<SideConfig, "zpool">,
  overrides: Partial<Omit<Config, "source" | "target">> = {},
): Config {
  const side = (s: Partial<SideConfig> & Pick<SideConfig, "zpool">): SideConfig => ({
    prefix: "",
    host: "localhost",
    user: "",
    port: null,
    sudo: false,
    ...s,
  });
  return {
    file: "abgleich.yaml",
    source: side(source),
    target: side(target),
    includeRoot: true,
    keepSnapshots: 1,
    keepBacklog: -1,
    retention: { source: null, target: null },
    alwaysChanged: false,
    writtenThreshold: 1048576,
    checkDiff: true,
    commandTimeout: DEFAULT_COMMAND_TIMEOUT,
    suffix: "",
    digits: 2,
    ignore: [],
    ssh: { compression: false, cipher: "", configFile: "" },
    transfer: { ...DEFAULT_TRANSFER },
    status: { ...DEFAULT_STATUS },
    plugins: [],
    ...overrides,
  };
}
