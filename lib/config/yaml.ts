// YAML text → yaml Document, read the way the seed's PyYAML read it:
// the YAML 1.2 core schema (so `12:30` stays a string, not base-60) plus the
// YAML 1.1 booleans yes/no/on/off. Also maps positions back to key paths.

import {
  type Document,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  Scalar,
  type ScalarTag,
  visit,
} from "yaml";

/**
 * YAML 1.1 booleans as PyYAML resolves them (it leaves `y` and `n` strings,
 * and so do we, so `host: y` is not a boolean).
 */
const YAML11_BOOL =
  /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/;
const TRUE_WORDS = new Set(["yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"]);

const yaml11BoolTag: ScalarTag = {
  identify: (value) => typeof value === "boolean",
  default: true,
  tag: "tag:yaml.org,2002:bool",
  test: YAML11_BOOL,
  resolve: (text) => new Scalar(TRUE_WORDS.has(text)),
};

export interface ParsedYaml {
  doc: Document.Parsed;
  lines: LineCounter;
}

export function parseYaml(text: string): ParsedYaml {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lines,
    schema: "core",
    version: "1.2",
    merge: false,
    uniqueKeys: true,
    prettyErrors: false,
    // Replace the core boolean tag; keep every other core tag.
    customTags: (tags) => [
      yaml11BoolTag,
      ...tags.filter((tag) => typeof tag === "string" || tag.tag !== "tag:yaml.org,2002:bool"),
    ],
  });
  return { doc, lines };
}

export type PathSegment = string | number;

/** `source.port`, `ignore[1]`, `plugins[0].name` */
export function formatKeyPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out === "" ? segment : `.${segment}`;
  }
  return out;
}

/** The value node at `path` (or, with `keyNode`, the node of its key), else the deepest node found on the way. */
export function nodeAt(doc: Document, path: readonly PathSegment[], keyNode = false): Node | null {
  let node: Node | null = doc.contents;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isScalar(item.key) && String(item.key.value) === String(segment),
      );
      if (pair === undefined) return node;
      if (last && keyNode && isScalar(pair.key)) return pair.key;
      // `key:` with nothing after it has no value node: point at the key.
      const next: unknown = pair.value ?? pair.key;
      if (!isNodeLike(next)) return node;
      node = next;
    } else if (isSeq(node) && typeof segment === "number") {
      const item: unknown = node.items[segment];
      if (!isNodeLike(item)) return node;
      node = item;
    } else {
      return node;
    }
  }
  return node;
}

function isNodeLike(value: unknown): value is Node {
  return isScalar(value) || isMap(value) || isSeq(value);
}

/** The key path of the deepest map key or sequence item whose range holds `offset`. */
export function keyPathAtOffset(
  doc: Document,
  offset: number,
  { keysBefore = false } = {},
): PathSegment[] {
  const path: PathSegment[] = [];
  let node: unknown = doc.contents;
  for (;;) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && pairContains(item, offset));
      if (pair === undefined || !isScalar(pair.key)) return path;
      // at a syntax error the parser's guesses begin: a key made from the bad text is not one
      if (keysBefore && (pair.key.range?.[0] ?? offset) >= offset) return path;
      path.push(String(pair.key.value));
      node = pair.value;
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => isNodeLike(item) && contains(item, offset));
      if (index < 0) return path;
      path.push(index);
      node = node.items[index];
    } else {
      return path;
    }
  }
}

function contains(node: Node, offset: number): boolean {
  const range = node.range;
  return range != null && offset >= range[0] && offset < range[2];
}

function pairContains(pair: { key: unknown; value: unknown }, offset: number): boolean {
  const keyRange = isNodeLike(pair.key) ? pair.key.range : null;
  if (keyRange == null) return false;
  const valueRange = isNodeLike(pair.value) ? pair.value.range : null;
  const end = valueRange?.[2] ?? keyRange[2];
  return offset >= keyRange[0] && offset < Math.max(end, keyRange[2]);
}

/** 1-based line and column of a node's start. */
export function positionOf(
  node: Node | null,
  lines: LineCounter,
): { line: number; column: number } | null {
  const start = node?.range?.[0];
  if (start === undefined) return null;
  const { line, col } = lines.linePos(start);
  return { line, column: col };
}

/** The first mapping key that is a list or mapping (`? [a]: b`): JS objects cannot hold it faithfully. */
export function findCollectionKey(doc: Document): Node | null {
  let found: Node | null = null;
  visit(doc, {
    Pair(_, pair) {
      if (isMap(pair.key) || isSeq(pair.key)) {
        found = pair.key;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return found;
}
