// Bundled plugin `naming`: snapshot names from a template with strftime-like fields, a host
// name and a counter, plus the inverse parser (`isOwn`) so compare and cleanup recognise them.
//
//   %Y year  %m month  %d day  %H hour  %M minute  %S second   (UTC or local time)
//   %N counter of `digits` digits   %h host name   %% a literal %
//
// A name never repeats: with %N the counter goes one past the highest among snapshots that
// share every other field; without %N the template must hold %S, and a name that already
// exists is an error for that dataset, never a duplicate.

import { hostname } from "node:os";
import {
  checkSnapshotShortName,
  definePlugin,
  type Namer,
  PluginOptionError,
} from "../lib/engine/api.ts";

export interface NamingOptions {
  template: string;
  utc: boolean;
  /** counter width for %N, 1..6; the config's `digits` when not given */
  digits?: number;
  /** appended to every name, `[A-Za-z0-9_]*`; the config's `suffix` when not given */
  suffix?: string;
  /** the value of %h; this machine's name up to the first dot when not given */
  host?: string;
}

type Piece =
  | { kind: "text"; text: string }
  | { kind: "field"; field: "Y" | "m" | "d" | "H" | "M" | "S" }
  | { kind: "counter" }
  | { kind: "host" };

const FIELD_PATTERN: Record<string, string> = {
  Y: "\\d{4}",
  m: "(?:0[1-9]|1[0-2])",
  d: "(?:0[1-9]|[12]\\d|3[01])",
  H: "(?:[01]\\d|2[0-3])",
  M: "[0-5]\\d",
  S: "[0-5]\\d",
};

const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");

/** the template as pieces; throws PluginOptionError on an unknown field */
export function parseTemplate(template: string): Piece[] {
  const pieces: Piece[] = [];
  let text = "";
  for (let i = 0; i < template.length; i++) {
    const char = template[i];
    if (char !== "%") {
      text += char;
      continue;
    }
    const code = template[++i];
    if (code === "%") {
      text += "%";
      continue;
    }
    if (text !== "") pieces.push({ kind: "text", text });
    text = "";
    if (code === "N") pieces.push({ kind: "counter" });
    else if (code === "h") pieces.push({ kind: "host" });
    else if (code !== undefined && code in FIELD_PATTERN)
      pieces.push({ kind: "field", field: code as "Y" });
    else {
      throw new PluginOptionError(
        ["template"],
        code === undefined
          ? "the template ends with a lone '%' (write %% for a literal %)"
          : `unknown field %${code} (known: %Y %m %d %H %M %S %N %h %%)`,
      );
    }
  }
  if (text !== "") pieces.push({ kind: "text", text });
  return pieces;
}

function fieldValue(field: string, now: Date, utc: boolean): string {
  const two = (n: number) => String(n).padStart(2, "0");
  switch (field) {
    case "Y":
      return String(utc ? now.getUTCFullYear() : now.getFullYear()).padStart(4, "0");
    case "m":
      return two((utc ? now.getUTCMonth() : now.getMonth()) + 1);
    case "d":
      return two(utc ? now.getUTCDate() : now.getDate());
    case "H":
      return two(utc ? now.getUTCHours() : now.getHours());
    case "M":
      return two(utc ? now.getUTCMinutes() : now.getMinutes());
    default:
      return two(utc ? now.getUTCSeconds() : now.getSeconds());
  }
}

export interface TemplateNamerSettings {
  template: string;
  utc: boolean;
  digits: number;
  suffix: string;
  host: string;
}

/** a Namer for `template`; throws PluginOptionError when the template cannot give good names */
export function templateNamer(settings: TemplateNamerSettings): Namer {
  const { template, utc, digits, suffix, host } = settings;
  if (!Number.isInteger(digits) || digits < 1 || digits > 6) {
    throw new PluginOptionError(["digits"], `must be an integer from 1 to 6, got ${digits}`);
  }
  if (!/^[A-Za-z0-9_]*$/.test(suffix)) {
    throw new PluginOptionError(
      ["suffix"],
      `may hold only letters, digits and '_', got '${suffix}'`,
    );
  }
  const pieces = parseTemplate(template);
  const counters = pieces.filter((p) => p.kind === "counter").length;
  if (counters > 1) throw new PluginOptionError(["template"], "the template may hold %N only once");
  const hasSeconds = pieces.some((p) => p.kind === "field" && p.field === "S");
  if (counters === 0 && !hasSeconds) {
    throw new PluginOptionError(
      ["template"],
      `'${template}' cannot give unique names: add a counter (%N) or seconds (%S)`,
    );
  }
  if (pieces.some((p) => p.kind === "host") && checkSnapshotShortName(host) !== null) {
    throw new PluginOptionError(
      ["host"],
      `'${host}' cannot be part of a snapshot name: ${checkSnapshotShortName(host)}`,
    );
  }

  /** the name at `now`, with `counter` standing for %N (as text or as a regex) */
  const render = (now: Date | null, counter: string, asRegex: boolean): string => {
    const literal = (text: string) => (asRegex ? escapeRegex(text) : text);
    let out = "";
    for (const piece of pieces) {
      if (piece.kind === "text") out += literal(piece.text);
      else if (piece.kind === "host") out += literal(host);
      else if (piece.kind === "counter") out += counter;
      else
        out +=
          now === null ? FIELD_PATTERN[piece.field] : literal(fieldValue(piece.field, now, utc));
    }
    return out + literal(suffix);
  };

  const sample = render(new Date(2000, 0, 1), "1".padStart(digits, "0"), false);
  const invalid = checkSnapshotShortName(sample);
  if (invalid !== null) {
    throw new PluginOptionError(
      ["template"],
      `gives names like '${sample}', which ZFS refuses: ${invalid}`,
    );
  }

  const own = new RegExp(`^${render(null, `\\d{${digits}}`, true)}$`);
  const maxCounter = 10 ** digits - 1;

  return {
    isOwn: (name) => own.test(name),
    utc,
    next(existing, now) {
      let name: string;
      if (counters === 1) {
        const sameStamp = new RegExp(`^${render(now, `(\\d{${digits}})`, true)}$`);
        let highest = 0;
        for (const other of existing) {
          const match = sameStamp.exec(other);
          if (match?.[1] !== undefined) highest = Math.max(highest, Number(match[1]));
        }
        if (highest + 1 > maxCounter) {
          return {
            error: `no snapshot name left: the counter of '${render(now, "%N", false)}' is used up; raise 'digits' of the naming plugin or add a finer time field`,
          };
        }
        name = render(now, String(highest + 1).padStart(digits, "0"), false);
      } else {
        name = render(now, "", false);
        if (existing.includes(name)) {
          return {
            error: `snapshot name '${name}' exists already; the template has no counter (%N), so wait a second or add one`,
          };
        }
      }
      const problem = checkSnapshotShortName(name);
      if (problem !== null) return { error: `snapshot name '${name}' is not valid: ${problem}` };
      return { name };
    },
  };
}

const schema = {
  type: "object",
  additionalProperties: false,
  properties: {
    template: { type: "string", minLength: 1, default: "%Y%m%d%N" },
    utc: { type: "boolean", default: false },
    digits: { type: "integer", minimum: 1, maximum: 6 },
    suffix: { type: "string", pattern: "^[A-Za-z0-9_]*$" },
    host: { type: "string", minLength: 1 },
  },
} as const;

export default definePlugin<NamingOptions>({
  name: "naming",
  options: {
    schema: { ...schema },
    parse(raw) {
      const options = raw as unknown as NamingOptions;
      // checked now, so a bad template is a config error before anything runs
      templateNamer({
        template: options.template,
        utc: options.utc,
        digits: options.digits ?? 2,
        suffix: options.suffix ?? "",
        host: options.host ?? shortHostname(),
      });
      return options;
    },
  },
  setup(hooks, { options }) {
    hooks.namer.tap("naming", (_previous, config) =>
      templateNamer({
        template: options.template,
        utc: options.utc,
        digits: options.digits ?? config.digits,
        suffix: options.suffix ?? config.suffix,
        host: options.host ?? shortHostname(),
      }),
    );
  },
});

export function shortHostname(): string {
  return hostname().split(".")[0] || "localhost";
}
