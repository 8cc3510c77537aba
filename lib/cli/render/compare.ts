// `abgleich compare`: source and target side by side, one row per subname and per snapshot,
// a mark in the column of each side that has it. Problems are spelled out under their dataset.

import { NAMES_SHOWN, situationText } from "../../plan/conflicts.ts";
import type {
  CompareDatasetRow,
  CompareSide,
  CompareSnapshotRow,
  Comparison,
  Conflict,
  Presence,
} from "../../plan/types.ts";
import { joinSubname } from "../../zfs/model.ts";
import { encryptionWords, partialReceiveWords, plural, subnameLabel } from "./labels.ts";
import { painter, type Style, type StyleFormat, truncateVisible, visibleWidth } from "./style.ts";
import { spaces } from "./table.ts";

export const MARK = "●";
/**
 * The mark of each presence: its shape says it without colour (NO_COLOR, a printout), the
 * filled half pointing at the column of the side that has it
 */
export const PRESENCE_MARKS: Readonly<Record<Presence, string>> = {
  both: MARK,
  source: "◐",
  target: "◑",
};
/** same name on both sides but a different guid: not the same snapshot */
export const MISMATCH_MARK = "x";
/** after a side's mark: the snapshot is held there (`zfs hold`), so it cannot be destroyed */
export const HOLD_MARK = "h";

const PRESENCE_INDEX: Readonly<Record<Presence, number>> = { both: 0, source: 1, target: 2 };

const PRESENCE_COLORS: Record<Presence, StyleFormat> = {
  both: "green",
  source: "yellow",
  target: "blue",
};

// columns NAME, SOURCE, TARGET, then notes on a dataset (encryption, bookmarks): words, no header
const HEADERS = ["NAME", "SOURCE", "TARGET"] as const;
/** snapshot lines kept for reuse at most (a tree's distinct snapshot rows are far fewer) */
const MAX_CACHED_LINES = 10_000;
const GAP = "  ";

function marks(
  style: Style,
  presence: Presence,
  guidMismatch: boolean,
  sourceHeld = false,
  targetHeld = false,
): [source: string, target: string] {
  const held = (mark: string, isHeld: boolean) => (isHeld ? mark + HOLD_MARK : mark);
  if (guidMismatch) {
    return [
      style.paint(["red", "bold"], held(MISMATCH_MARK, sourceHeld)),
      style.paint(["red", "bold"], held(MISMATCH_MARK, targetHeld)),
    ];
  }
  const color = PRESENCE_COLORS[presence];
  const mark = PRESENCE_MARKS[presence];
  return [
    presence === "target" ? "" : style.paint(color, held(mark, sourceHeld)),
    presence === "source" ? "" : style.paint(color, held(mark, targetHeld)),
  ];
}

/**
 * `kind: message`, then which snapshots are where, so the reader knows what to do; that second
 * line only when the message does not already say it whole (a planner's shortens long lists, a
 * plugin's may not say it at all)
 */
export function conflictLines(conflict: Conflict): string[] {
  const lines = [`${conflict.kind}: ${conflict.message}`];
  const listedWhole =
    conflict.sourceOnly.length <= NAMES_SHOWN && conflict.targetOnly.length <= NAMES_SHOWN;
  if (listedWhole && conflict.message.includes(situationText(conflict))) return lines;
  const facts: string[] = [];
  if (conflict.common !== null) facts.push(`newest common: ${conflict.common}`);
  if (conflict.sourceOnly.length > 0)
    facts.push(`only on source: ${conflict.sourceOnly.join(", ")}`);
  if (conflict.targetOnly.length > 0)
    facts.push(`only on target: ${conflict.targetOnly.join(", ")}`);
  if (facts.length > 0) lines.push(facts.join("; "));
  return lines;
}

/** what to say of a dataset besides its snapshots: encryption and bookmarks, per side */
export function datasetNotes(row: CompareDatasetRow): string {
  const notes: string[] = [];
  const { source, target } = row;
  if (target?.partialReceive) notes.push(`on target: ${partialReceiveWords("target")}`);
  if (source?.partialReceive) notes.push(`on source: ${partialReceiveWords("source")}`);
  const sourceWords = source && encryptionWords(source);
  const targetWords = target && encryptionWords(target);
  if (source && target && sourceWords !== targetWords) {
    notes.push(
      `source ${sourceWords ?? "not encrypted"}`,
      `target ${targetWords ?? "not encrypted"}`,
    );
  } else if (sourceWords || targetWords) notes.push((sourceWords ?? targetWords) as string);
  for (const [name, side] of [
    ["source", source],
    ["target", target],
  ] as const) {
    if (!side || side.bookmarks === 0) continue;
    const count = plural(side.bookmarks, "bookmark");
    notes.push(source && target ? `${count} on ${name}` : count);
  }
  return notes.join("; ");
}

/** the legend line, in the same colours and shapes as the marks; the hold mark only when one is shown */
export function compareLegend(style: Style, holds = false): string {
  const entry = (presence: Presence, words: string) =>
    `${style.paint(PRESENCE_COLORS[presence], PRESENCE_MARKS[presence])} ${words}`;
  const entries = [
    entry("both", "on both sides"),
    entry("source", "source only"),
    entry("target", "target only"),
    `${style.paint(["red", "bold"], MISMATCH_MARK)} same name, different guid`,
  ];
  if (holds) entries.push(`${HOLD_MARK} held (zfs hold: cannot be destroyed)`);
  return entries.join("   ");
}

/**
 * Header naming both roots, the table, then the legend; lines joined by "\n".
 * The same table renderTable would make (columns padded to the widest cell, lines trimmed).
 */
export function renderComparison(cmp: Comparison, style: Style): string {
  return [...comparisonPieces(cmp, style)].join("").slice(0, -1);
}

/**
 * renderComparison's text, each line ending in "\n", in pieces of a few thousand lines made as
 * they are written: a comparison of a large tree has a million snapshot rows, and its whole
 * text need never exist at once.
 */
export function* comparisonPieces(cmp: Comparison, style: Style): Generator<string> {
  const title = `source ${style.paint("bold", cmp.sourceRoot)}  →  target ${style.paint("bold", cmp.targetRoot)}`;
  if (cmp.rows.length === 0) {
    yield `${title}\n${style.paint("dim", "(empty)")}\n`;
    return;
  }
  const bold = painter(style, "bold");
  const dim = painter(style, "dim");
  const red = painter(style, "red");

  // pass 1: the widths (marks are at most two columns wide, under 6-column headers)
  let nameWidth = HEADERS[0].length;
  const markWidth = Math.max(HEADERS[1].length, HEADERS[2].length, 2);
  let holds = false;
  const notes: string[] = [];
  for (const row of cmp.rows) {
    const width = visibleWidth(subnameLabel(row.subname)) + (row.ignored ? " (ignored)".length : 0);
    if (width > nameWidth) nameWidth = width;
    notes.push(datasetNotes(row));
    for (const snapshot of row.snapshots) {
      const snapshotWidth = 2 + visibleWidth(snapshot.name);
      if (snapshotWidth > nameWidth) nameWidth = snapshotWidth;
      if (snapshot.sourceHolds > 0 || snapshot.targetHolds > 0) holds = true;
    }
  }

  // on a terminal the notes (free words after the marks) are cut to its width, so a row stays
  // one line; names and marks are never cut
  const noteRoom =
    style.columns === undefined
      ? Infinity
      : style.columns - nameWidth - 3 * GAP.length - 2 * markWidth;
  const fitNote = (note: string) =>
    visibleWidth(note) <= noteRoom ? note : `${truncateVisible(note, Math.max(noteRoom - 1, 0))}…`;

  // what follows the name cell, by the row's marks: one string per kind of row, made once and
  // found by a small number (a million rows: no key string per row)
  const tails: (string | undefined)[] = [];
  const tail = (
    presence: Presence,
    mismatch: boolean,
    sourceHeld: boolean,
    targetHeld: boolean,
    note: string,
  ): string => {
    const key =
      PRESENCE_INDEX[presence] * 8 +
      (mismatch ? 4 : 0) +
      (sourceHeld ? 2 : 0) +
      (targetHeld ? 1 : 0);
    let text = note === "" ? tails[key] : undefined;
    if (text === undefined) {
      const [source, target] = marks(style, presence, mismatch, sourceHeld, targetHeld);
      text = GAP + pad(source, markWidth) + GAP + pad(target, markWidth);
      text = note === "" ? text.trimEnd() : text + GAP + dim(fitNote(note));
      if (note === "") tails[key] = text;
    }
    return text;
  };

  // A snapshot row without holds is one object shared by every dataset that has the same
  // snapshot alike (SnapshotRows): its line is made once. Rows made elsewhere may not be
  // shared, so the cache stops growing at a bound.
  const snapshotLines = new Map<CompareSnapshotRow, string>();
  const snapshotLine = (snapshot: CompareSnapshotRow): string => {
    const shared = snapshot.sourceHolds === 0 && snapshot.targetHolds === 0;
    let line = shared ? snapshotLines.get(snapshot) : undefined;
    if (line === undefined) {
      line =
        dim(`- ${snapshot.name}`) +
        spaces(nameWidth - 2 - visibleWidth(snapshot.name)) +
        tail(
          snapshot.presence,
          snapshot.guidMismatch,
          snapshot.sourceHolds > 0,
          snapshot.targetHolds > 0,
          "",
        );
      if (shared && snapshotLines.size < MAX_CACHED_LINES) snapshotLines.set(snapshot, line);
    }
    return line;
  };

  // lines are joined a few thousand at a time into a piece, handed out when full (the empty
  // last element gives the piece its final newline: one join, no concatenation to flatten)
  const full: string[] = [];
  const lines: string[] = [];
  const piece = () => {
    lines.push("");
    const text = lines.join("\n");
    lines.length = 0;
    return text;
  };
  const push = (line: string) => {
    if (lines.push(line) >= 4096) full.push(piece());
  };
  const header = HEADERS.map((h, i) => pad(h, i === 0 ? nameWidth : markWidth));
  push(title);
  push(style.paint("bold", header.join(GAP).trimEnd()));
  for (const [index, row] of cmp.rows.entries()) {
    const label = subnameLabel(row.subname);
    const name = bold(label) + (row.ignored ? ` ${dim("(ignored)")}` : "");
    const width = visibleWidth(label) + (row.ignored ? " (ignored)".length : 0);
    push(
      name +
        spaces(nameWidth - width) +
        tail(row.presence, false, false, false, notes[index] as string),
    );
    for (const conflict of row.conflicts) {
      const [first, ...rest] = conflictLines(conflict);
      push(`  ${red(`! ${first}`)}`);
      for (const line of rest) push(`    ${red(line)}`);
    }
    const mismatches: string[] = [];
    for (const snapshot of row.snapshots) if (snapshot.guidMismatch) mismatches.push(snapshot.name);
    if (mismatches.length > 0 && !row.conflicts.some((c) => c.kind === "guid-mismatch")) {
      push(`  ${red(`! same name, different guid on the two sides: ${mismatches.join(", ")}`)}`);
    }
    for (const snapshot of row.snapshots) push(snapshotLine(snapshot));
    yield* full.splice(0);
  }
  push("");
  push(comparisonSummary(cmp));
  push(compareLegend(style, holds));
  yield* full;
  yield piece();
}

function pad(cell: string, width: number): string {
  return cell + spaces(width - visibleWidth(cell));
}

/** `compare --json` */
export interface ComparisonJson {
  sourceRoot: string;
  targetRoot: string;
  datasets: {
    subname: string;
    /** full names; null on a side where the dataset does not exist */
    sourceName: string | null;
    targetName: string | null;
    presence: Presence;
    ignored: boolean;
    /** encryption, key status, bookmark count and newest bookmark; null where it does not exist */
    source: CompareSide | null;
    target: CompareSide | null;
    /** with `sourceHolds`/`targetHolds`: the user holds on each side */
    snapshots: CompareSnapshotRow[];
    conflicts: Conflict[];
  }[];
  summary: { datasets: number; conflicts: number; guidMismatches: number };
}

/** the comparison as one JSON document; snapshot rows are the comparison's own (only serialized) */
export function comparisonJson(cmp: Comparison): ComparisonJson {
  let conflicts = 0;
  let guidMismatches = 0;
  const datasets = cmp.rows.map((row) => {
    conflicts += row.conflicts.length;
    for (const snapshot of row.snapshots) if (snapshot.guidMismatch) guidMismatches++;
    return {
      subname: row.subname,
      sourceName: row.presence === "target" ? null : joinSubname(cmp.sourceRoot, row.subname),
      targetName: row.presence === "source" ? null : joinSubname(cmp.targetRoot, row.subname),
      presence: row.presence,
      ignored: row.ignored,
      source: row.source && { ...row.source },
      target: row.target && { ...row.target },
      snapshots: row.snapshots,
      conflicts: row.conflicts.map((conflict) => ({
        ...conflict,
        sourceOnly: [...conflict.sourceOnly],
        targetOnly: [...conflict.targetOnly],
      })),
    };
  });
  return {
    sourceRoot: cmp.sourceRoot,
    targetRoot: cmp.targetRoot,
    datasets,
    summary: { datasets: datasets.length, conflicts, guidMismatches },
  };
}

/** a one-line count for the end of the human output, e.g. "3 datasets (1 ignored), 1 conflict" */
export function comparisonSummary(cmp: Comparison): string {
  const conflicts = cmp.rows.reduce((sum, row) => sum + row.conflicts.length, 0);
  const ignored = cmp.rows.filter((row) => row.ignored).length;
  const datasets = `${plural(cmp.rows.length, "dataset")}${ignored > 0 ? ` (${ignored} ignored)` : ""}`;
  return `${datasets}, ${plural(conflicts, "conflict")}`;
}
