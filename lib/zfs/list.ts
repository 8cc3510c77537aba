// Parser for the one `zfs list -t all -Hp -o LIST_COLUMNS -r ROOT` a side's inventory comes from.
// Output that does not have the expected shape is an error naming the host and line: a tree read
// wrongly could lead to wrong sends or destroys, so nothing is guessed.
//
// A side may list a million snapshots (~110 MB of text), so the parser scans the text in place
// (no per-line split), and every string it keeps is a fresh copy: a slice would share, and so
// keep alive, the whole text for as long as the tree lives. Snapshot names repeat from dataset
// to dataset (one `zfs snapshot` names them all alike), so they are shared, not copied per row.

import type { Bookmark, Dataset, DatasetType, Inventory, Side, Snapshot } from "./model.ts";

/** the columns read, in order; what every later stage needs comes from this one call */
export const LIST_COLUMNS = [
  "name",
  "type",
  "creation",
  "guid",
  "createtxg",
  "used",
  "referenced",
  "written",
  "compressratio",
  "mountpoint",
  "mounted",
  "receive_resume_token",
  "userrefs",
  "encryption",
  "keystatus",
] as const;

export class ListParseError extends Error {
  constructor(
    readonly where: string,
    readonly line: number,
    detail: string,
  ) {
    super(`unexpected \`zfs list\` output from ${where}, line ${line}: ${detail}`);
    this.name = "ListParseError";
  }
}

type Column = (typeof LIST_COLUMNS)[number];
const col = (name: Column): number => LIST_COLUMNS.indexOf(name);
const NAME = col("name");
const TYPE = col("type");
const CREATION = col("creation");
const GUID = col("guid");
const CREATETXG = col("createtxg");
const USED = col("used");
const REFERENCED = col("referenced");
const WRITTEN = col("written");
const RATIO = col("compressratio");
const MOUNTPOINT = col("mountpoint");
const MOUNTED = col("mounted");
const TOKEN = col("receive_resume_token");
const USERREFS = col("userrefs");
const ENCRYPTION = col("encryption");
const KEYSTATUS = col("keystatus");

// ZFS allows letters, digits, `_ - : .` and space in components; `/` separates, `@` and `#` mark
// snapshots and bookmarks. Anything else in a name means the output is not what we think it is.
const DATASET_NAME = /^[A-Za-z0-9_\-:. /]+$/;
const SHORT_NAME = /^[A-Za-z0-9_\-:. ]+$/;
const CIPHER = /^(off|on|aes-(128|192|256)-(ccm|gcm))$/;

/** names kept for sharing at most; beyond that (every name unique) each is copied */
const MAX_INTERNED = 100_000;

/**
 * Parse `zfs list -t all -Hp -o LIST_COLUMNS -r root` output into an Inventory.
 * `where` names the source of the text in errors (e.g. "source (localhost)").
 */
export function parseList(text: string, side: Side, root: string, where: string): Inventory {
  const datasets: Dataset[] = [];
  const byName = new Map<string, Dataset>();
  const columnCount = LIST_COLUMNS.length;
  const rootSlash = `${root}/`;
  // field i spans tabs[i]+1 .. tabs[i+1]
  const tabs = new Int32Array(columnCount + 1);
  const length = text.length;
  let lineNo = 0;
  let start = 0;
  let current: Dataset | undefined; // the dataset whose snapshots and bookmarks follow
  // the snapshots of the dataset before `current`: their names are most likely this one's too
  let previousSnapshots: Snapshot[] = [];
  const interned = new Map<string, string>();
  const codes: number[][] = [];

  const fail = (detail: string): never => {
    throw new ListParseError(where, lineNo, detail);
  };
  const from = (i: number): number => (tabs[i] as number) + 1;
  const to = (i: number): number => tabs[i + 1] as number;
  const fieldIs = (i: number, value: string): boolean =>
    to(i) - from(i) === value.length && text.startsWith(value, from(i));
  const field = (i: number): string => text.slice(from(i), to(i));

  /** text[a, b) as a string of its own (see the top: a slice would pin the whole text) */
  const copy = (a: number, b: number): string => {
    const n = b - a;
    if (n > 4096) return copy(a, a + 4096) + copy(a + 4096, b);
    let buffer = codes[n];
    if (buffer === undefined) {
      buffer = new Array<number>(n).fill(0);
      codes[n] = buffer;
    }
    for (let k = 0; k < n; k++) buffer[k] = text.charCodeAt(a + k);
    return String.fromCharCode.apply(null, buffer);
  };
  const copyField = (i: number): string => copy(from(i), to(i));

  const number = (i: number, name: string): number => {
    const a = from(i);
    const b = to(i);
    let value = 0;
    for (let k = a; k < b; k++) {
      const c = text.charCodeAt(k) - 48;
      if (c < 0 || c > 9)
        return fail(
          `column ${LIST_COLUMNS[i]} of ${name} is not a number: ${JSON.stringify(field(i))}`,
        );
      value = value * 10 + c;
    }
    if (a === b) fail(`column ${LIST_COLUMNS[i]} of ${name} is empty`);
    return value;
  };
  /** guids exceed 2^53: checked to be digits, kept as text */
  const guid = (name: string): string => {
    const a = from(GUID);
    const b = to(GUID);
    for (let k = a; k < b; k++) {
      const c = text.charCodeAt(k);
      if (c < 48 || c > 57) fail(`guid of ${name} is not a number: ${JSON.stringify(field(GUID))}`);
    }
    if (a === b) fail(`guid of ${name} is not a number: ""`);
    return copy(a, b);
  };
  /** `1.00`, `1.37x`: digits, an optional fraction, an optional `x` */
  const ratio = (name: string): number => {
    const a = from(RATIO);
    let b = to(RATIO);
    if (b > a && text.charCodeAt(b - 1) === 120 /* x */) b--;
    let whole = 0;
    let k = a;
    for (; k < b; k++) {
      const c = text.charCodeAt(k) - 48;
      if (c < 0 || c > 9) break;
      whole = whole * 10 + c;
    }
    let ok = k > a;
    let fraction = 0;
    let scale = 1;
    if (ok && k < b) {
      ok = text.charCodeAt(k) === 46 /* . */ && k + 1 < b;
      for (k++; ok && k < b; k++) {
        const c = text.charCodeAt(k) - 48;
        if (c < 0 || c > 9) ok = false;
        fraction = fraction * 10 + c;
        scale *= 10;
      }
    }
    if (!ok) fail(`compressratio of ${name} is not a ratio: ${JSON.stringify(field(RATIO))}`);
    // exact integers over a power of ten: the same double as parseFloat of the text
    if (whole < 1e6 && scale <= 1e6) return (whole * scale + fraction) / scale;
    return Number.parseFloat(text.slice(a, b));
  };
  /** the short name after `@` or `#` at [a, b): shared with an equal earlier one when possible */
  const shortName = (a: number, b: number, guess: string | undefined): string => {
    if (guess !== undefined && guess.length === b - a && text.startsWith(guess, a)) return guess;
    const slice = text.slice(a, b);
    const known = interned.get(slice);
    if (known !== undefined) return known;
    if (!SHORT_NAME.test(slice)) fail(`invalid snapshot name ${JSON.stringify(field(NAME))}`);
    const name = copy(a, b);
    if (interned.size < MAX_INTERNED) interned.set(name, name);
    return name;
  };
  // where the short name of the row parentOf looked at starts (a variable, not a returned
  // pair: no allocation per row)
  let shortStart = 0;
  /** the dataset a `ds@snap` or `ds#bookmark` row belongs to; sets shortStart */
  const parentOf = (lineStart: number, mark: number, kind: string): Dataset => {
    if (
      current !== undefined &&
      text.charCodeAt(lineStart + current.name.length) === mark &&
      text.startsWith(current.name, lineStart)
    ) {
      shortStart = lineStart + current.name.length + 1;
      return current;
    }
    const full = field(NAME);
    const at = full.indexOf(String.fromCharCode(mark));
    const parent = at > 0 ? byName.get(full.slice(0, at)) : undefined;
    if (!parent) return fail(`${kind} ${full} does not follow its dataset`);
    shortStart = lineStart + at + 1;
    return parent;
  };

  while (start < length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = length;
    lineNo++;
    const lineStart = start;
    start = end + 1;
    if (end === lineStart) continue;

    tabs[0] = lineStart - 1;
    let count = 1;
    for (; count < columnCount; count++) {
      const tab = text.indexOf("\t", (tabs[count - 1] as number) + 1);
      if (tab === -1 || tab > end) break;
      tabs[count] = tab;
    }
    if (count === columnCount) {
      const extra = text.indexOf("\t", (tabs[count - 1] as number) + 1);
      if (extra !== -1 && extra < end) count++;
    }
    if (count !== columnCount) {
      const line = text.slice(lineStart, end);
      fail(
        `expected ${columnCount} tab-separated columns, got ${line.split("\t").length}: ${preview(line)}`,
      );
    }
    tabs[columnCount] = end;
    const kind = text.charCodeAt(from(TYPE));

    if (kind === 115 /* s */ && fieldIs(TYPE, "snapshot")) {
      const parent = parentOf(lineStart, 64 /* @ */, "snapshot");
      const short = shortName(
        shortStart,
        to(NAME),
        previousSnapshots[parent.snapshots.length]?.name,
      );
      parent.snapshots.push({
        name: short,
        guid: guid(short),
        createtxg: number(CREATETXG, short),
        creation: number(CREATION, short),
        used: number(USED, short),
        referenced: number(REFERENCED, short),
        written: number(WRITTEN, short),
        compressratio: ratio(short),
        userrefs: number(USERREFS, short),
      });
      continue;
    }

    if (kind === 98 /* b */ && fieldIs(TYPE, "bookmark")) {
      // a bookmark has a name, guid, createtxg and creation; its other columns are `-`
      const parent = parentOf(lineStart, 35 /* # */, "bookmark");
      const short = shortName(shortStart, to(NAME), undefined);
      const bookmark: Bookmark = {
        name: short,
        guid: guid(short),
        createtxg: number(CREATETXG, short),
        creation: number(CREATION, short),
      };
      parent.bookmarks.push(bookmark);
      continue;
    }

    const type: DatasetType | null = fieldIs(TYPE, "filesystem")
      ? "filesystem"
      : fieldIs(TYPE, "volume")
        ? "volume"
        : null;
    const nameText = field(NAME);
    if (type === null) return fail(`unknown type ${JSON.stringify(field(TYPE))} of ${nameText}`);
    if (!DATASET_NAME.test(nameText)) fail(`invalid dataset name ${JSON.stringify(nameText)}`);
    let subnameStart: number;
    if (nameText === root) subnameStart = to(NAME);
    else if (nameText.startsWith(rootSlash)) subnameStart = from(NAME) + rootSlash.length;
    else subnameStart = fail(`${nameText} is not inside ${root}`);
    if (byName.has(nameText)) fail(`${nameText} listed twice`);
    if (subnameStart !== to(NAME)) {
      const parentName = nameText.slice(0, nameText.lastIndexOf("/"));
      if (!byName.has(parentName)) fail(`${nameText} is listed before its parent ${parentName}`);
    }
    const name = copyField(NAME);
    const encryption = fieldIs(ENCRYPTION, "off") ? "off" : copyField(ENCRYPTION);
    if (!CIPHER.test(encryption))
      fail(`encryption of ${name} is not a cipher: ${JSON.stringify(encryption)}`);
    const keystatus = fieldIs(KEYSTATUS, "-")
      ? null
      : fieldIs(KEYSTATUS, "available")
        ? "available"
        : fieldIs(KEYSTATUS, "unavailable")
          ? "unavailable"
          : fail(`keystatus of ${name} is not a key status: ${JSON.stringify(field(KEYSTATUS))}`);
    if (current !== undefined && current.snapshots.length > 0)
      previousSnapshots = current.snapshots;
    current = {
      name,
      subname: name.slice(subnameStart - from(NAME)),
      type,
      guid: guid(name),
      createtxg: number(CREATETXG, name),
      creation: number(CREATION, name),
      used: number(USED, name),
      referenced: number(REFERENCED, name),
      written: number(WRITTEN, name),
      compressratio: ratio(name),
      mountpoint: copyField(MOUNTPOINT),
      mounted: fieldIs(MOUNTED, "yes") ? true : fieldIs(MOUNTED, "no") ? false : null,
      resumeToken: fieldIs(TOKEN, "-") || from(TOKEN) === to(TOKEN) ? null : copyField(TOKEN),
      encryption,
      keystatus,
      bookmarks: [],
      snapshots: [],
    };
    datasets.push(current);
    byName.set(name, current);
  }

  // zfs lists snapshots in createtxg order; keep that guaranteed for the planners (and the
  // same for bookmarks, which zfs lists by name)
  const byTxg = (a: { createtxg: number }, b: { createtxg: number }) => a.createtxg - b.createtxg;
  for (const dataset of datasets) {
    if (!inOrder(dataset.snapshots)) dataset.snapshots.sort(byTxg);
    if (!inOrder(dataset.bookmarks)) dataset.bookmarks.sort(byTxg);
  }
  return { side, root, datasets };
}

function inOrder(list: readonly { createtxg: number }[]): boolean {
  for (let i = 1; i < list.length; i++) {
    if (
      (list[i] as { createtxg: number }).createtxg <
      (list[i - 1] as { createtxg: number }).createtxg
    )
      return false;
  }
  return true;
}

function preview(line: string): string {
  const shown = line.length > 120 ? `${line.slice(0, 120)}…` : line;
  return JSON.stringify(shown);
}
