// Loading the plugins of a config: bundled ones by name from a static map (so
// `bun build --compile` bundles them), user files by path through a dynamic import. User files
// `import … from "abgleich"`; a runtime Bun plugin serves that module from lib/engine/api.ts,
// which works in `bun run` and in the compiled binary alike.

import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { default as Ajv, ErrorObject } from "ajv";
import { BUNDLED_PLUGINS } from "../../plugins/index.ts";
import { ConfigError } from "../config/errors.ts";
import type { Config } from "../config/types.ts";
import { unknownKeyReason } from "../config/validate.ts";
import { formatKeyPath, nodeAt, type PathSegment, parseYaml, positionOf } from "../config/yaml.ts";
import type { OptionsParser, OptionsSchema, Plugin, PluginContext } from "./api.ts";
import * as api from "./api.ts";
import { type EngineHooks, PluginError, pluginHooks } from "./hooks.ts";

export { PluginError, pluginHooks } from "./hooks.ts";

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** where a plugin's lines go; the CLI passes its own, the default is stderr */
export interface PluginIo {
  log(text: string): void;
  warn(text: string): void;
}

export const stderrIo: PluginIo = {
  log: (text) => process.stderr.write(`${text}\n`),
  warn: (text) => process.stderr.write(`warning: ${text}\n`),
};

let virtualModuleRegistered = false;

/** make `import … from "abgleich"` resolve to the public API, once per process */
export function registerApiModule(): void {
  if (virtualModuleRegistered) return;
  virtualModuleRegistered = true;
  Bun.plugin({
    name: "abgleich-api",
    setup(build) {
      build.module("abgleich", () => ({ exports: { ...api }, loader: "object" }));
    },
  });
}

/**
 * import a user's .ts/.js file and return its default export (or `export const plugin`/`workflow`).
 * A missing file or a syntax error is a ConfigError naming the file, line and column.
 */
export async function importUserFile(file: string, loadedBy: string): Promise<unknown> {
  registerApiModule();
  if (!existsSync(file)) {
    throw new ConfigError({
      file,
      keyPath: "",
      line: null,
      column: null,
      reason: `no such file (${loadedBy})`,
    });
  }
  try {
    const module = (await import(file)) as Record<string, unknown>;
    return module.default ?? module.plugin ?? module.workflow;
  } catch (error) {
    throw importProblem(error, file, loadedBy);
  }
}

interface BuildMessageLike {
  message: string;
  position?: { file?: string; line?: number; column?: number } | null;
}

/** Bun reports a bad file as a BuildMessage, or an AggregateError of them; take the first */
function importProblem(error: unknown, file: string, loadedBy: string): Error {
  const first = (error instanceof AggregateError ? error.errors[0] : error) as
    | BuildMessageLike
    | undefined;
  const position = first?.position;
  if (position && typeof position.line === "number") {
    const count =
      error instanceof AggregateError && error.errors.length > 1
        ? ` (and ${error.errors.length - 1} more)`
        : "";
    return new ConfigError({
      file: position.file || file,
      keyPath: "",
      line: position.line,
      column: typeof position.column === "number" ? position.column : null,
      reason: `cannot be loaded: ${first?.message ?? messageOf(error)}${count} (${loadedBy})`,
    });
  }
  // a runtime error while the module's top level ran, or a failed import inside it
  return new ConfigError({
    file,
    keyPath: "",
    line: null,
    column: null,
    reason: `cannot be loaded: ${messageOf(error)} (${loadedBy})`,
  });
}

/** load every plugin of `config.plugins`, in order, and let each tap `hooks` */
export async function loadPlugins(
  config: Config,
  hooks: EngineHooks,
  io: PluginIo = stderrIo,
): Promise<Plugin<unknown>[]> {
  const loaded: Plugin<unknown>[] = [];
  for (const [index, entry] of config.plugins.entries()) {
    const plugin = await resolvePlugin(config, index);
    const options = checkOptions(plugin, entry.options ?? {}, config, index);
    const context: PluginContext<unknown> = {
      name: plugin.name,
      config,
      options,
      log: (text) => io.log(`[${plugin.name}] ${text}`),
      warn: (text) => io.warn(`[${plugin.name}] ${text}`),
    };
    try {
      await plugin.setup(pluginHooks(hooks, plugin.name), context);
    } catch (error) {
      const failure =
        error instanceof PluginError ? error : new PluginError(plugin.name, "setup", error);
      throw configProblem(config, ["plugins", index], failure.message);
    }
    loaded.push(plugin);
  }
  return loaded;
}

async function resolvePlugin(config: Config, index: number): Promise<Plugin<unknown>> {
  const entry = config.plugins[index];
  if (!entry) throw new RangeError(`no plugin entry ${index}`);
  if (entry.name !== null) {
    const bundled = BUNDLED_PLUGINS[entry.name];
    if (!bundled) {
      const known = Object.keys(BUNDLED_PLUGINS).join(", ");
      throw configProblem(
        config,
        ["plugins", index, "name"],
        `unknown plugin "${entry.name}" (bundled plugins: ${known}; a file of your own goes under path:)`,
      );
    }
    return bundled as Plugin<unknown>;
  }
  const file = resolve(entry.path ?? "");
  const value = await importUserFile(file, `plugins[${index}].path in ${config.file}`);
  if (!isPlugin(value)) {
    throw new ConfigError({
      file,
      keyPath: "",
      line: null,
      column: null,
      reason: `does not export a plugin: expected \`export default definePlugin({ name, setup })\` (plugins[${index}].path in ${config.file})`,
    });
  }
  return value;
}

function isPlugin(value: unknown): value is Plugin<unknown> {
  const candidate = value as Plugin<unknown> | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.name === "string" &&
    candidate.name !== "" &&
    typeof candidate.setup === "function"
  );
}

let ajv: Ajv | undefined;
/** loaded for the first plugin with a schema: most runs have none, and loading costs ~35 ms */
function schemaCompiler(): Ajv {
  if (ajv === undefined) {
    const { default: AjvClass } = require("ajv") as typeof import("ajv");
    // verbose: an error carries its schema, whose keys name what an unknown option could be
    ajv = new AjvClass({ allErrors: false, useDefaults: true, strict: false, verbose: true });
  }
  return ajv;
}
const compiled = new WeakMap<object, ReturnType<Ajv["compile"]>>();

/** the plugin's options, checked; a problem is a ConfigError at `plugins[N].options.…` */
export function checkOptions<O>(
  plugin: Plugin<O>,
  raw: Record<string, unknown>,
  config: Config,
  index: number,
): O {
  const spec = plugin.options;
  const base = ["plugins", index, "options"] as PathSegment[];
  // the schema fills in defaults, so it works on a copy
  const value: Record<string, unknown> = structuredClone(raw ?? {});
  const schema: OptionsSchema | undefined =
    spec === undefined || typeof spec === "function"
      ? undefined
      : "schema" in spec && typeof spec.parse === "function"
        ? (spec.schema as OptionsSchema)
        : (spec as OptionsSchema);
  const parse: OptionsParser<O> | undefined =
    typeof spec === "function"
      ? spec
      : spec && "parse" in spec && typeof spec.parse === "function"
        ? (spec.parse as OptionsParser<O>)
        : undefined;
  if (schema) {
    let validate = compiled.get(schema);
    if (!validate) {
      validate = schemaCompiler().compile(schema);
      compiled.set(schema, validate);
    }
    if (!validate(value)) {
      const problem = describeSchemaError(validate.errors?.[0]);
      throw configProblem(config, [...base, ...problem.path], problem.reason);
    }
  }
  if (!parse) return value as O;
  try {
    return parse(value);
  } catch (error) {
    if (error instanceof api.PluginOptionError)
      throw configProblem(config, [...base, ...error.path], error.reason);
    throw configProblem(
      config,
      base,
      `plugin "${plugin.name}" refused its options: ${messageOf(error)}`,
    );
  }
}

function describeSchemaError(error: ErrorObject | undefined): {
  path: PathSegment[];
  reason: string;
} {
  if (!error) return { path: [], reason: "invalid options" };
  const path: PathSegment[] = error.instancePath
    .split("/")
    .slice(1)
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "additionalProperties": {
      const key = String(params.additionalProperty);
      const known = Object.keys((error.parentSchema?.properties ?? {}) as object);
      return {
        path: [...path, key],
        reason: known.length > 0 ? unknownKeyReason(key, known, "option") : "unknown option",
      };
    }
    case "required":
      return { path, reason: `missing required option "${String(params.missingProperty)}"` };
    case "enum":
      return {
        path,
        reason: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`,
      };
    default:
      return { path, reason: error.message ?? "invalid" };
  }
}

/** a ConfigError at `path` of the config file, with the line and column when the file says */
function configProblem(config: Config, path: PathSegment[], reason: string): ConfigError {
  let at: { line: number; column: number } | null = null;
  try {
    const parsed = parseYaml(readFileSync(config.file, "utf8"));
    // the deepest node that exists: a missing option points at its mapping
    for (let depth = path.length; depth > 0 && at === null; depth--) {
      at = positionOf(nodeAt(parsed.doc, path.slice(0, depth)), parsed.lines);
    }
  } catch {
    // a config built in memory (tests, workflows) has no file to point into
  }
  return new ConfigError({
    file: config.file,
    keyPath: formatKeyPath(path),
    line: at?.line ?? null,
    column: at?.column ?? null,
    reason,
  });
}
