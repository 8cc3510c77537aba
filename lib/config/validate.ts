// Checks a parsed YAML value against schema.json (the single source of truth
// for the file format) and turns the first ajv error into a plain-language
// problem: which key, what is wrong, what was found.

import type { ErrorObject } from "ajv";
import { checkPoolName, checkRelativeName } from "../zfs/names.ts";
import schema from "./schema.json";
// compiled ahead of time from schema.json (bun scripts/schema-validator.ts): ajv's code
// generation at startup cost every command a few hundred ms
import validate from "./schema-validator.generated.js";
import type { PathSegment } from "./yaml.ts";

export interface SchemaProblem {
  /** where the problem is, e.g. ["source", "port"] */
  path: PathSegment[];
  /** true when the problem is the key itself (unknown key), not its value */
  atKey: boolean;
  /** true when the key is missing: point at the mapping that lacks it */
  missing: boolean;
  reason: string;
}

/**
 * Name rules in the schema that names.ts can explain better than a regex can, keyed by the
 * rule's pattern (the generated validator's schema objects are copies, so not keyed by object).
 */
const PRECISE_NAME_CHECKS = new Map<string, (name: string) => string | null>([
  [schema.definitions.poolName.pattern, checkPoolName],
  [schema.definitions.relativeName.pattern, checkRelativeName],
  [schema.definitions.side.properties.prefix.pattern, checkRelativeName],
]);

/** null when `value` matches the schema, else the first problem found. */
export function checkAgainstSchema(value: unknown): SchemaProblem | null {
  if (validate(value)) return null;
  const errors = validate.errors ?? [];
  // A failed oneOf also lists why each of its branches failed; the oneOf error itself says it best.
  const error = errors.find((e) => !e.schemaPath.includes("/oneOf/")) ?? errors[0];
  if (error === undefined) return { path: [], atKey: false, missing: false, reason: "invalid" };
  return describe(error);
}

/** True when `value` matches the schema; for tests that compare the schema with the loader. */
export function matchesSchema(value: unknown): boolean {
  return validate(value) === true;
}

function describe(error: ErrorObject): SchemaProblem {
  const path = parsePointer(error.instancePath);
  const params = error.params as Record<string, unknown>;
  const parent = (error.parentSchema ?? {}) as Record<string, unknown>;
  const problem = (reason: string): SchemaProblem => ({
    path,
    atKey: false,
    missing: false,
    reason,
  });

  switch (error.keyword) {
    case "required":
      return {
        path: [...path, String(params.missingProperty)],
        atKey: false,
        missing: true,
        reason: "required key is missing",
      };
    case "additionalProperties": {
      const key = String(params.additionalProperty);
      const known = Object.keys((parent.properties ?? {}) as object);
      return {
        path: [...path, key],
        atKey: true,
        missing: false,
        reason: unknownKeyReason(key, known),
      };
    }
    case "type": {
      // a key that takes words, sizes and off (`buffer: 1.5`): its own words say what fits
      if (typeof parent.patternErrorMessage === "string" && typeWords(params.type).includes("yes"))
        return problem(`invalid value ${describeValue(error.data)}: ${parent.patternErrorMessage}`);
      // `prefix: 2024` or `user: no` is read as a number or boolean; quoting keeps it text.
      const quoteHint =
        String(params.type).includes("string") && ["number", "boolean"].includes(typeof error.data)
          ? "; put it in quotes if you mean it as text"
          : "";
      return problem(
        `must be ${typeWords(params.type)}, got ${describeValue(error.data)}${quoteHint}`,
      );
    }
    case "minimum":
    case "maximum":
      return problem(`${rangeWords(parent)}, got ${describeValue(error.data)}`);
    case "pattern":
    case "maxLength":
      return problem(nameReason(error, parent));
    case "minLength":
      return problem("must not be empty");
    case "enum": {
      // `false` is how YAML reads `off`; null is an empty value (the default)
      const allowed = (params.allowedValues as unknown[])
        .filter((value) => value !== null && value !== false)
        .map(String);
      return problem(`must be one of ${allowed.join(", ")}, got ${describeValue(error.data)}`);
    }
    case "not":
      // `buffer: yes`: on is no size; the key's own words say what fits
      return problem(
        `invalid value ${describeValue(error.data)}: ${String(parent.patternErrorMessage ?? "not allowed here")}`,
      );
    case "oneOf":
      // ajv checks oneOf before the type, so a plain `- notify` lands here.
      if (typeof error.data !== "object" || error.data === null || Array.isArray(error.data)) {
        return problem(`must be a mapping of keys, got ${describeValue(error.data)}`);
      }
      return problem(
        params.passingSchemas === null
          ? "needs `name` (a bundled plugin) or `path` (a plugin file)"
          : "has both `name` and `path`; give exactly one",
      );
    default:
      return problem(error.message ?? "is invalid");
  }
}

function nameReason(error: ErrorObject, parent: Record<string, unknown>): string {
  const value = String(error.data);
  const precise = PRECISE_NAME_CHECKS.get(String(parent.pattern))?.(value) ?? null;
  const hint =
    error.keyword === "maxLength" || typeof parent.patternErrorMessage !== "string"
      ? `must be at most ${String(parent.maxLength)} characters`
      : parent.patternErrorMessage;
  const shown = quoteShort(value);
  return precise === null
    ? `invalid value ${shown}: ${hint}`
    : `invalid value ${shown}: ${precise}; ${hint}`;
}

function rangeWords(parent: Record<string, unknown>): string {
  const { minimum, maximum } = parent;
  if (typeof minimum === "number" && typeof maximum === "number") {
    return `must be between ${minimum} and ${maximum}`;
  }
  if (typeof minimum === "number") return `must be at least ${minimum}`;
  return `must be at most ${String(maximum)}`;
}

const TYPE_WORDS: Record<string, string> = {
  boolean: "yes or no",
  integer: "a whole number",
  number: "a number",
  string: "a text value",
  array: "a list",
  object: "a mapping of keys",
};

function typeWords(type: unknown): string {
  const types = (Array.isArray(type) ? type : [type]).map(String).filter((t) => t !== "null");
  return types.map((t) => TYPE_WORDS[t] ?? t).join(" or ");
}

function describeValue(value: unknown): string {
  if (value === null) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (ArrayBuffer.isView(value)) return "binary data";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "boolean") return value ? "yes (a boolean)" : "no (a boolean)";
  if (typeof value === "string") return `the text ${quoteShort(value)}`;
  return String(value);
}

/** JSON-quoted (so control characters show), cut short so a huge value cannot flood the message. */
export function quoteShort(value: string, max = 60): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}...` : value);
}

/** `unknown key (did you mean `keep_snapshots`?); allowed here: …` (a plugin's: "option") */
export function unknownKeyReason(key: string, known: string[], noun = "key"): string {
  const close = known.filter((candidate) => editDistance(key, candidate) <= 2);
  const suggestion =
    close.length > 0 ? ` (did you mean ${close.map((k) => `\`${k}\``).join(" or ")}?)` : "";
  return `unknown ${noun}${suggestion}; allowed here: ${known.join(", ")}`;
}

/** Levenshtein distance, for "did you mean" on typos such as `keep_snapshot`. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** `/plugins/0/name` → ["plugins", 0, "name"] */
function parsePointer(pointer: string): PathSegment[] {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((raw) => raw.replaceAll("~1", "/").replaceAll("~0", "~"))
    .map((segment) => (/^(0|[1-9][0-9]*)$/.test(segment) ? Number(segment) : segment));
}
