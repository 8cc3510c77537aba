// Parser for the one `zfs list -t all -Hp -o LIST_COLUMNS -r ROOT` a side's inventory comes from.
// Output that does not have the expected shape is an error naming the host and line: a tree read
// wrongly could lead to wrong sends or destroys, so nothing is guessed.

import type { Dataset, DatasetType, Inventory, Side, Snapshot } from "./model.ts";

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

const DIGITS = /^[0-9]+$/;
const RATIO = /^[0-9]+(\.[0-9]+)?x?$/;
// ZFS allows letters, digits, `_ - : .` and space in components; `/` separates, `@` and `#` mark
// snapshots and bookmarks. Anything else in a name means the output is not what we think it is.
const NAME = /^[A-Za-z0-9_\-:. /]+$/;
const SNAPSHOT_NAME = /^[A-Za-z0-9_\-:. ]+$/;

/**
 * Parse `zfs list -t all -Hp -o LIST_COLUMNS -r root` output into an Inventory.
 * `where` names the source of the text in errors (e.g. "source (localhost)").
 * Scans the text in place (no per-line split): a side may list a million snapshots.
 */
export function parseList(text: string, side: Side, root: string, where: string): Inventory {
  const datasets: Dataset[] = [];
  const byName = new Map<string, Dataset>();
  const columnCount = LIST_COLUMNS.length;
  const rootSlash = `${root}/`;
  const tabs = new Int32Array(columnCount + 1);
  const length = text.length;
  let lineNo = 0;
  let start = 0;
  let current: Dataset | undefined; // the dataset whose snapshots follow

  // helpers read the current line through `tabs` and `lineNo`; defined once, not per line
  const fail = (detail: string): never => {
    throw new ListParseError(where, lineNo, detail);
  };
  const fieldIs = (i: number, value: string): boolean =>
    (tabs[i + 1] as number) - (tabs[i] as number) - 1 === value.length &&
    text.startsWith(value, (tabs[i] as number) + 1);
  const field = (i: number): string => text.slice((tabs[i] as number) + 1, tabs[i + 1]);
  const number = (i: number, name: string): number => {
    const from = (tabs[i] as number) + 1;
    const to = tabs[i + 1] as number;
    let value = 0;
    for (let k = from; k < to; k++) {
      const c = text.charCodeAt(k) - 48;
      if (c < 0 || c > 9)
        return fail(
          `column ${LIST_COLUMNS[i]} of ${name} is not a number: ${JSON.stringify(field(i))}`,
        );
      value = value * 10 + c;
    }
    if (from === to) fail(`column ${LIST_COLUMNS[i]} of ${name} is empty`);
    return value;
  };

  while (start < length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = length;
    lineNo++;
    const lineStart = start;
    start = end + 1;
    if (end === lineStart) continue;

    // field i spans tabs[i]+1 .. tabs[i+1]
    let count = 0;
    tabs[0] = lineStart - 1;
    let at = lineStart - 1;
    while (count < columnCount) {
      const next = text.indexOf("\t", at + 1);
      if (next === -1 || next > end) break;
      count++;
      if (count >= columnCount) {
        count++; // one tab too many
        break;
      }
      tabs[count] = next;
      at = next;
    }
    count++;
    if (count !== columnCount) {
      const got = text.slice(lineStart, end).split("\t").length;
      fail(
        `expected ${columnCount} tab-separated columns, got ${got}: ${preview(text.slice(lineStart, end))}`,
      );
    }
    tabs[columnCount] = end;
    const type = fieldIs(1, "snapshot")
      ? "snapshot"
      : fieldIs(1, "filesystem")
        ? "filesystem"
        : fieldIs(1, "volume")
          ? "volume"
          : fieldIs(1, "bookmark")
            ? "bookmark"
            : field(1);
    if (type === "bookmark") continue; // bookmarks are not used (yet)
    const guid = field(3);
    if (!DIGITS.test(guid)) fail(`guid of ${field(0)} is not a number: ${JSON.stringify(guid)}`);
    const ratioText = field(8);
    if (!RATIO.test(ratioText))
      fail(`compressratio of ${field(0)} is not a ratio: ${JSON.stringify(ratioText)}`);
    const compressratio = Number.parseFloat(ratioText);

    if (type === "snapshot") {
      // the common case: a snapshot of the dataset listed just before; compare in place
      const nameEnd = tabs[1] as number;
      let parent: Dataset | undefined;
      let shortStart: number;
      if (
        current !== undefined &&
        text.charCodeAt(lineStart + current.name.length) === 64 /* @ */ &&
        text.startsWith(current.name, lineStart)
      ) {
        parent = current;
        shortStart = lineStart + current.name.length + 1;
      } else {
        const full = field(0);
        const at = full.indexOf("@");
        parent = at > 0 ? byName.get(full.slice(0, at)) : undefined;
        if (!parent) return fail(`snapshot ${full} does not follow its dataset`);
        shortStart = lineStart + at + 1;
      }
      const short = text.slice(shortStart, nameEnd);
      if (!SNAPSHOT_NAME.test(short)) fail(`invalid snapshot name ${JSON.stringify(field(0))}`);
      parent.snapshots.push({
        name: short,
        guid,
        createtxg: number(4, short),
        creation: number(2, short),
        used: number(5, short),
        referenced: number(6, short),
        written: number(7, short),
        compressratio,
        userrefs: number(12, short),
      });
      continue;
    }

    const name = field(0);
    if (!NAME.test(name)) fail(`invalid dataset name ${JSON.stringify(name)}`);
    if (type !== "filesystem" && type !== "volume")
      fail(`unknown type ${JSON.stringify(type)} of ${name}`);
    if (name.includes("@") || name.includes("#")) fail(`${type} with a snapshot name: ${name}`);
    let subname: string;
    if (name === root) subname = "";
    else if (name.startsWith(rootSlash)) subname = name.slice(rootSlash.length);
    else subname = fail(`${name} is not inside ${root}`);
    if (byName.has(name)) fail(`${name} listed twice`);
    if (subname !== "") {
      const parentName = name.slice(0, name.lastIndexOf("/"));
      if (!byName.has(parentName)) fail(`${name} is listed before its parent ${parentName}`);
    }
    const mountedText = field(10);
    const token = field(11);
    current = {
      name,
      subname,
      type: type as DatasetType,
      guid,
      createtxg: number(4, name),
      creation: number(2, name),
      used: number(5, name),
      referenced: number(6, name),
      written: number(7, name),
      compressratio,
      mountpoint: field(9),
      mounted: mountedText === "yes" ? true : mountedText === "no" ? false : null,
      resumeToken: token === "-" || token === "" ? null : token,
      // read with the list's columns once the simulator knows them (encryption, keystatus)
      encryption: "off",
      keystatus: null,
      bookmarks: [],
      snapshots: [],
    };
    datasets.push(current);
    byName.set(name, current);
  }

  // zfs lists snapshots in createtxg order; keep that guaranteed for the planners
  for (const dataset of datasets) {
    const snaps = dataset.snapshots;
    for (let i = 1; i < snaps.length; i++) {
      if ((snaps[i] as Snapshot).createtxg < (snaps[i - 1] as Snapshot).createtxg) {
        snaps.sort((a, b) => a.createtxg - b.createtxg);
        break;
      }
    }
  }
  return { side, root, datasets };
}

function preview(line: string): string {
  const shown = line.length > 120 ? `${line.slice(0, 120)}…` : line;
  return JSON.stringify(shown);
}
