// Parser for the one `zfs list -t all -Hp -o LIST_COLUMNS -r ROOT` a side's inventory comes from.
// Output that does not have the expected shape is an error naming the host and line: a tree read
// wrongly could lead to wrong sends or destroys, so nothing is guessed.
//
// A side may list a million snapshots (~120 MB), so the parser reads bytes as they come, piece
// by piece (ListParser.push), in one pass per line, and keeps only what the model holds: no
// text of the whole listing is ever made, and every string kept is made fresh from its bytes.
// Snapshot names repeat from dataset to dataset (one `zfs snapshot -r` names them all alike), so
// they are shared, not made again per row. Guids repeat from side to side (a target's snapshots
// are its source's): when both sides are read together (GuidSharing), a guid the other side
// already made is shared too — a third of a large compare's memory was the two sides' guids.

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
const COLUMNS = LIST_COLUMNS.length;
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

/** names kept for sharing at most; beyond that (every name unique) each is made per row */
const MAX_INTERNED = 100_000;

/**
 * Buffer's own slicers (Node's and Bun's, undocumented in the types): a fresh string from the
 * bytes, several times faster than `toString(encoding, start, end)`, which a million guids feel
 */
type Bytes = Buffer & {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
};

const TAB = 9;
const NEWLINE = 10;
const AT = 64;
const HASH = 35;

const bytes = (word: string): Uint8Array => new TextEncoder().encode(word);
const SNAPSHOT = bytes("snapshot");
const BOOKMARK = bytes("bookmark");
const FILESYSTEM = bytes("filesystem");
const VOLUME = bytes("volume");
const OFF = bytes("off");
const DASH = bytes("-");
const YES = bytes("yes");
const NO = bytes("no");
const AVAILABLE = bytes("available");
const UNAVAILABLE = bytes("unavailable");

/**
 * Both sides' parsers of one read: each dataset's snapshots, by subname, as the first side to
 * reach it has them so far, for the other side to share their guid strings. Sharing changes
 * which string object holds a guid, never its text: a guid is shared only when its bytes spell
 * the other side's exactly.
 */
export class GuidSharing {
  private readonly waiting = new Map<string, Snapshot[]>();

  /** the other side's snapshots of `subname`, or undefined when this side is there first */
  meet(subname: string, mine: Snapshot[]): Snapshot[] | undefined {
    const other = this.waiting.get(subname);
    if (other === undefined) {
      this.waiting.set(subname, mine);
      return undefined;
    }
    this.waiting.delete(subname);
    return other;
  }
}

/**
 * Parse `zfs list -t all -Hp -o LIST_COLUMNS -r root` output, pushed in pieces of any size as
 * it is read; `end()` gives the Inventory. `where` names the source of the text in errors (e.g.
 * "source (localhost)"). A piece is only read during `push`: its buffer may be reused after.
 */
export class ListParser {
  private readonly datasets: Dataset[] = [];
  private readonly byName = new Map<string, Dataset>();
  private readonly interned = new Map<string, string>();
  private readonly rootSlash: string;
  /** the dataset whose snapshots and bookmarks follow */
  private current: Dataset | undefined;
  /** the snapshots of the dataset before `current`: their names are most likely its too */
  private previousSnapshots: Snapshot[] = [];
  private lineNo = 0;
  /** the start of a line the last piece ended inside (a copy) */
  private carry: Buffer | null = null;
  /** the line being parsed: its bytes, and field i spans tabs[i]+1 .. tabs[i+1] */
  private b = Buffer.alloc(0) as Bytes;
  private readonly tabs = new Int32Array(COLUMNS + 1);
  /** where the short name of the row parentOf looked at starts (no pair allocated per row) */
  private shortStart = 0;
  /** the other side's snapshots of the current dataset (GuidSharing), and where they match */
  private peer: Snapshot[] | undefined;
  private peerAt = 0;
  /** the peer's place was looked up by name once for this dataset (a pruned older part) */
  private peerResynced = false;
  /** guids taken from the other side's strings (GuidSharing) */
  sharedGuids = 0;

  constructor(
    readonly side: Side,
    readonly root: string,
    readonly where: string,
    private readonly sharing?: GuidSharing,
  ) {
    this.rootSlash = `${root}/`;
  }

  push(piece: Uint8Array): void {
    const b = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength) as Bytes;
    let start = 0;
    if (this.carry !== null) {
      const newline = b.indexOf(NEWLINE);
      if (newline === -1) {
        this.carry = Buffer.concat([this.carry, b]);
        return;
      }
      const line = Buffer.concat([this.carry, b.subarray(0, newline + 1)]) as Bytes;
      this.carry = null;
      this.lines(line, 0, line.length);
      start = newline + 1;
    }
    const last = b.lastIndexOf(NEWLINE);
    if (last >= start) this.lines(b, start, last + 1);
    const rest = Math.max(last + 1, start);
    // a copy: the piece's buffer is the reader's to reuse
    if (rest < b.length) this.carry = Buffer.from(b.subarray(rest));
  }

  end(): Inventory {
    if (this.carry !== null) {
      const line = this.carry as Bytes;
      this.carry = null;
      this.lines(line, 0, line.length);
    }
    // zfs lists snapshots in createtxg order; keep that guaranteed for the planners (and the
    // same for bookmarks, which zfs lists by name)
    const byTxg = (a: { createtxg: number }, b: { createtxg: number }) => a.createtxg - b.createtxg;
    for (const dataset of this.datasets) {
      if (!inOrder(dataset.snapshots)) dataset.snapshots.sort(byTxg);
      if (!inOrder(dataset.bookmarks)) dataset.bookmarks.sort(byTxg);
    }
    return { side: this.side, root: this.root, datasets: this.datasets };
  }

  /** every line in b[start, end): one pass over the bytes finds the tabs and the line's end */
  private lines(b: Bytes, start: number, end: number): void {
    this.b = b;
    const tabs = this.tabs;
    let lineStart = start;
    let count = 1; // fields found so far in this line
    tabs[0] = lineStart - 1;
    for (let k = start; k <= end; k++) {
      const c = k === end ? NEWLINE : b[k];
      if (c === TAB) {
        if (count < COLUMNS) tabs[count] = k;
        count++;
      } else if (c === NEWLINE) {
        if (k === end && k === lineStart) break; // nothing after the last newline
        this.lineNo++;
        if (k > lineStart) {
          if (count !== COLUMNS)
            this.fail(
              `expected ${COLUMNS} tab-separated columns, got ${count}: ${preview(b.toString("utf8", lineStart, k))}`,
            );
          tabs[COLUMNS] = k;
          this.line(lineStart);
        }
        lineStart = k + 1;
        tabs[0] = k;
        count = 1;
      }
    }
  }

  private fail(detail: string): never {
    throw new ListParseError(this.where, this.lineNo, detail);
  }
  private from(i: number): number {
    return (this.tabs[i] as number) + 1;
  }
  private to(i: number): number {
    return this.tabs[i + 1] as number;
  }
  private fieldIs(i: number, word: Uint8Array): boolean {
    const a = this.from(i);
    if (this.to(i) - a !== word.length) return false;
    const b = this.b;
    for (let k = 0; k < word.length; k++) if (b[a + k] !== word[k]) return false;
    return true;
  }
  /** field i as text (for messages and the few free-text columns) */
  private field(i: number): string {
    return this.b.utf8Slice(this.from(i), this.to(i));
  }
  private number(i: number, name: string): number {
    const b = this.b;
    const a = this.from(i);
    const z = this.to(i);
    let value = 0;
    for (let k = a; k < z; k++) {
      const c = (b[k] as number) - 48;
      if (c < 0 || c > 9)
        return this.fail(
          `column ${LIST_COLUMNS[i]} of ${name} is not a number: ${JSON.stringify(this.field(i))}`,
        );
      value = value * 10 + c;
    }
    if (a === z) this.fail(`column ${LIST_COLUMNS[i]} of ${name} is empty`);
    return value;
  }
  /** guids exceed 2^53: checked to be digits, kept as text */
  private guid(name: string): string {
    const b = this.b;
    const a = this.from(GUID);
    const z = this.to(GUID);
    for (let k = a; k < z; k++) {
      const c = b[k] as number;
      if (c < 48 || c > 57)
        this.fail(`guid of ${name} is not a number: ${JSON.stringify(this.field(GUID))}`);
    }
    if (a === z) this.fail(`guid of ${name} is not a number: ""`);
    return b.latin1Slice(a, z);
  }
  /**
   * The guid of a snapshot of the current dataset: the other side's string when its bytes
   * spell it (the same snapshot there, usually at the same place, or from a place found once
   * by name when older snapshots were pruned on one side), else a new one
   */
  private sharedGuid(name: string): string {
    const peer = this.peer;
    if (peer !== undefined) {
      let candidate = peer[this.peerAt];
      if (candidate !== undefined && candidate.name !== name && !this.peerResynced) {
        this.peerResynced = true;
        const at = peer.findIndex((snapshot) => snapshot.name === name);
        if (at >= 0) {
          this.peerAt = at;
          candidate = peer[at];
        }
      }
      if (candidate !== undefined && candidate.name === name) {
        this.peerAt++;
        const a = this.from(GUID);
        const guid = candidate.guid;
        if (guid.length === this.to(GUID) - a && this.spells(a, guid)) {
          this.sharedGuids++;
          return guid;
        }
      }
    }
    return this.guid(name);
  }

  /** `1.00`, `1.37x`: digits, an optional fraction, an optional `x` */
  private ratio(name: string): number {
    const b = this.b;
    const a = this.from(RATIO);
    let z = this.to(RATIO);
    if (z > a && b[z - 1] === 120 /* x */) z--;
    let whole = 0;
    let k = a;
    for (; k < z; k++) {
      const c = (b[k] as number) - 48;
      if (c < 0 || c > 9) break;
      whole = whole * 10 + c;
    }
    let ok = k > a;
    let fraction = 0;
    let scale = 1;
    if (ok && k < z) {
      ok = b[k] === 46 /* . */ && k + 1 < z;
      for (k++; ok && k < z; k++) {
        const c = (b[k] as number) - 48;
        if (c < 0 || c > 9) ok = false;
        fraction = fraction * 10 + c;
        scale *= 10;
      }
    }
    if (!ok)
      this.fail(`compressratio of ${name} is not a ratio: ${JSON.stringify(this.field(RATIO))}`);
    // exact integers over a power of ten: the same double as parseFloat of the text
    if (whole < 1e6 && scale <= 1e6) return (whole * scale + fraction) / scale;
    return Number.parseFloat(b.latin1Slice(a, z));
  }
  /** do the bytes at `at` spell the (ASCII) `word`? */
  private spells(at: number, word: string): boolean {
    const b = this.b;
    for (let k = 0; k < word.length; k++) if (b[at + k] !== word.charCodeAt(k)) return false;
    return true;
  }
  /** the short name after `@` or `#` at [a, z): shared with an equal earlier one when possible */
  private shortName(a: number, z: number, guess: string | undefined): string {
    if (guess !== undefined && guess.length === z - a && this.spells(a, guess)) return guess;
    const name = this.b.latin1Slice(a, z);
    const known = this.interned.get(name);
    if (known !== undefined) return known;
    // latin1 makes a non-ASCII byte a character the pattern refuses
    if (!SHORT_NAME.test(name))
      this.fail(`invalid snapshot name ${JSON.stringify(this.field(NAME))}`);
    if (this.interned.size < MAX_INTERNED) this.interned.set(name, name);
    return name;
  }
  /** the dataset a `ds@snap` or `ds#bookmark` row belongs to; sets shortStart */
  private parentOf(lineStart: number, mark: number, kind: string): Dataset {
    const current = this.current;
    if (
      current !== undefined &&
      lineStart + current.name.length < this.to(NAME) &&
      this.b[lineStart + current.name.length] === mark &&
      this.spells(lineStart, current.name)
    ) {
      this.shortStart = lineStart + current.name.length + 1;
      return current;
    }
    const full = this.field(NAME);
    const at = full.indexOf(String.fromCharCode(mark));
    const parent = at > 0 ? this.byName.get(full.slice(0, at)) : undefined;
    if (!parent) return this.fail(`${kind} ${full} does not follow its dataset`);
    this.shortStart = lineStart + Buffer.byteLength(full.slice(0, at)) + 1;
    return parent;
  }

  private line(lineStart: number): void {
    const kind = this.b[this.from(TYPE)];

    if (kind === 115 /* s */ && this.fieldIs(TYPE, SNAPSHOT)) {
      const parent = this.parentOf(lineStart, AT, "snapshot");
      const short = this.shortName(
        this.shortStart,
        this.to(NAME),
        this.previousSnapshots[parent.snapshots.length]?.name,
      );
      parent.snapshots.push({
        name: short,
        guid: parent === this.current ? this.sharedGuid(short) : this.guid(short),
        createtxg: this.number(CREATETXG, short),
        creation: this.number(CREATION, short),
        used: this.number(USED, short),
        referenced: this.number(REFERENCED, short),
        written: this.number(WRITTEN, short),
        compressratio: this.ratio(short),
        userrefs: this.number(USERREFS, short),
      });
      return;
    }

    if (kind === 98 /* b */ && this.fieldIs(TYPE, BOOKMARK)) {
      // a bookmark has a name, guid, createtxg and creation; its other columns are `-`
      const parent = this.parentOf(lineStart, HASH, "bookmark");
      const short = this.shortName(this.shortStart, this.to(NAME), undefined);
      const bookmark: Bookmark = {
        name: short,
        guid: this.guid(short),
        createtxg: this.number(CREATETXG, short),
        creation: this.number(CREATION, short),
      };
      parent.bookmarks.push(bookmark);
      return;
    }

    const type: DatasetType | null = this.fieldIs(TYPE, FILESYSTEM)
      ? "filesystem"
      : this.fieldIs(TYPE, VOLUME)
        ? "volume"
        : null;
    const name = this.field(NAME);
    if (type === null) this.fail(`unknown type ${JSON.stringify(this.field(TYPE))} of ${name}`);
    if (!DATASET_NAME.test(name)) this.fail(`invalid dataset name ${JSON.stringify(name)}`);
    const { root, rootSlash, byName } = this;
    let subname: string;
    if (name === root) subname = "";
    else if (name.startsWith(rootSlash)) subname = name.slice(rootSlash.length);
    else subname = this.fail(`${name} is not inside ${root}`);
    if (byName.has(name)) this.fail(`${name} listed twice`);
    if (subname !== "") {
      const parentName = name.slice(0, name.lastIndexOf("/"));
      if (!byName.has(parentName)) this.fail(`${name} is listed before its parent ${parentName}`);
    }
    const encryption = this.fieldIs(ENCRYPTION, OFF) ? "off" : this.field(ENCRYPTION);
    if (!CIPHER.test(encryption))
      this.fail(`encryption of ${name} is not a cipher: ${JSON.stringify(encryption)}`);
    const keystatus = this.fieldIs(KEYSTATUS, DASH)
      ? null
      : this.fieldIs(KEYSTATUS, AVAILABLE)
        ? "available"
        : this.fieldIs(KEYSTATUS, UNAVAILABLE)
          ? "unavailable"
          : this.fail(
              `keystatus of ${name} is not a key status: ${JSON.stringify(this.field(KEYSTATUS))}`,
            );
    const current = this.current;
    if (current !== undefined && current.snapshots.length > 0)
      this.previousSnapshots = current.snapshots;
    const dataset: Dataset = {
      name,
      subname,
      type,
      guid: this.guid(name),
      createtxg: this.number(CREATETXG, name),
      creation: this.number(CREATION, name),
      used: this.number(USED, name),
      referenced: this.number(REFERENCED, name),
      written: this.number(WRITTEN, name),
      compressratio: this.ratio(name),
      mountpoint: this.field(MOUNTPOINT),
      mounted: this.fieldIs(MOUNTED, YES) ? true : this.fieldIs(MOUNTED, NO) ? false : null,
      resumeToken:
        this.fieldIs(TOKEN, DASH) || this.from(TOKEN) === this.to(TOKEN) ? null : this.field(TOKEN),
      encryption,
      keystatus,
      bookmarks: [],
      snapshots: [],
    };
    this.current = dataset;
    this.datasets.push(dataset);
    byName.set(name, dataset);
    this.peer = this.sharing?.meet(subname, dataset.snapshots);
    this.peerAt = 0;
    this.peerResynced = false;
  }
}

/** parse a whole listing held as text (tests, small outputs); see ListParser */
export function parseList(text: string, side: Side, root: string, where: string): Inventory {
  const parser = new ListParser(side, root, where);
  parser.push(Buffer.from(text, "utf8"));
  return parser.end();
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
