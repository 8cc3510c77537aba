// The plan as the user sees it before `Do you want to continue? [y/N]`: every action in a table
// by kind, then conflicts, errors and (dimmer) skipped datasets, then one summary line.
// Safety rule 4 rests on this: every snapshot that will be destroyed is listed by name.

import { keptCounts } from "../../plan/retention.ts";
import type {
  AbortResumeAction,
  Action,
  ChainAction,
  Conflict,
  DestroyAction,
  Plan,
  RetentionReport,
  SendAction,
  SnapshotAction,
} from "../../plan/types.ts";
import { conflictLines } from "./compare.ts";
import { KEPT_UNMOUNTED, plural, RELEASED_FIRST, subnameLabel } from "./labels.ts";
import type { Style, StyleFormat } from "./style.ts";
import { renderTable, type TableRow } from "./table.ts";
import { formatBytes, paintBytes } from "./units.ts";

export interface RenderPlanOptions {
  /** estimated stream sizes (`zfs send -nvP`), by action; the SIZE column appears only with it */
  estimates?: ReadonlyMap<SendAction, number>;
  /** list skipped datasets with their reasons (default true) */
  showSkipped?: boolean;
  /** with retention: every kept snapshot with its rules, not only a count per rule */
  verbose?: boolean;
}

const MODE_COLORS: Record<SendAction["mode"], StyleFormat> = {
  full: "yellow",
  incremental: "green",
  resume: "cyan",
};

function ofKind<K extends Action["kind"]>(plan: Plan, kind: K): Extract<Action, { kind: K }>[] {
  return plan.actions.filter(
    (action): action is Extract<Action, { kind: K }> => action.kind === kind,
  );
}

function snapshotSection(actions: SnapshotAction[], style: Style): string | null {
  const snapshots = actions.flatMap((action) => action.snapshots);
  if (snapshots.length === 0) return null;
  const title = `Snapshots to create (${snapshots.length}, one atomic zfs snapshot per pool):`;
  const rows: TableRow[] = snapshots.map((snapshot) => [
    snapshot.dataset,
    style.paint("green", snapshot.name),
    paintBytes(style, snapshot.written),
  ]);
  const table = renderTable(
    [{ header: "DATASET" }, { header: "NEW SNAPSHOT" }, { header: "WRITTEN", align: "right" }],
    rows,
    { style },
  );
  return `${style.paint("bold", title)}\n${table}`;
}

/** a dry run's mark on a snapshot only an earlier step's plan would make */
function marked(planned: ReadonlySet<string>, dataset: string, name: string): string {
  return planned.has(`${dataset}@${name}`) ? `${name} (planned)` : name;
}

function sendSection(
  actions: SendAction[],
  style: Style,
  estimates: ReadonlyMap<SendAction, number> | undefined,
  planned: ReadonlySet<string>,
): string | null {
  if (actions.length === 0) return null;
  const columns = [
    { header: "DATASET" },
    { header: "TARGET" },
    { header: "MODE" },
    { header: "FROM" },
    { header: "TO" },
    { header: "SNAPSHOTS", align: "right" as const },
    ...(estimates ? [{ header: "SIZE", align: "right" as const }] : []),
  ];
  const rows: TableRow[] = actions.map((action) => {
    const estimate = estimates?.get(action);
    return [
      action.sourceDataset,
      action.targetDataset,
      // "raw": an encrypted dataset travels as ciphertext; "#": the base is a bookmark
      `${style.paint(MODE_COLORS[action.mode], action.mode)}${action.raw ? " raw" : ""}`,
      action.from === null
        ? "-"
        : `${action.fromBookmark ? "#" : ""}${marked(planned, action.sourceDataset, action.from)}`,
      marked(planned, action.sourceDataset, action.to),
      String(action.snapshots.length),
      ...(estimates ? [estimate === undefined ? "?" : paintBytes(style, estimate)] : []),
    ];
  });
  const title = `Transfers (${actions.length}):`;
  const note = actions.some((action) => action.keepUnmounted)
    ? `\n${style.paint("dim", `  ${KEPT_UNMOUNTED}`)}`
    : "";
  return `${style.paint("bold", title)}\n${renderTable(columns, rows, { style })}${note}`;
}

function abortSection(actions: AbortResumeAction[], style: Style): string | null {
  if (actions.length === 0) return null;
  const rows: TableRow[] = actions.map((action) => [action.targetDataset, action.reason]);
  const table = renderTable([{ header: "TARGET" }, { header: "REASON" }], rows, { style });
  return `${style.paint("bold", `Partial receives to abort (${actions.length}):`)}\n${table}`;
}

/** the retention verdict of each dataset cleaned with retention rules, by side and dataset */
function retentionByDataset(plan: Plan): Map<string, RetentionReport> {
  return new Map(
    (plan.retention ?? []).map((report) => [`${report.side}:${report.dataset}`, report]),
  );
}

function destroySection(
  actions: DestroyAction[],
  style: Style,
  retention: ReadonlyMap<string, RetentionReport>,
  verbose: boolean,
  planned: ReadonlySet<string>,
): string | null {
  if (actions.length === 0) return null;
  const count = actions.reduce((sum, action) => sum + action.snapshots.length, 0);
  const used = actions.reduce((sum, action) => sum + action.used, 0);
  const rows: TableRow[] = [];
  for (const action of actions) {
    // destroying on the target removes backups: make that side stand out
    const side = action.side === "target" ? style.paint(["red", "bold"], action.side) : action.side;
    rows.push([
      side,
      style.paint("bold", action.dataset),
      String(action.snapshots.length),
      paintBytes(style, action.used),
    ]);
    const report = retention.get(`${action.side}:${action.dataset}`);
    // an old chain base abgleich still holds: its hold goes first, and the plan says so
    const released = new Set(action.release ?? []);
    const releasing = (name: string) => (released.has(name) ? `  ${RELEASED_FIRST}` : "");
    if (report === undefined) {
      for (const name of action.snapshots)
        rows.push([
          "",
          style.paint("dim", `- ${marked(planned, action.dataset, name)}${releasing(name)}`),
          "",
          "",
        ]);
      continue;
    }
    // with retention each line says which rule decided; kept ones only as a count unless -v.
    // The names destroyed are the action's own: the report only explains them.
    const kept = report.snapshots.filter((snapshot) => snapshot.kept);
    rows.push(["", style.paint("dim", `kept ${kept.length}: ${keptCounts(report)}`), "", ""]);
    const doomed = new Set(action.snapshots);
    for (const snapshot of report.snapshots) {
      const line = doomed.has(snapshot.name)
        ? `- ${snapshot.name}  destroyed: ${snapshot.kept ? "added by a plugin" : snapshot.reasons.join(", ")}${releasing(snapshot.name)}`
        : snapshot.kept && verbose
          ? `  ${snapshot.name}  kept: ${snapshot.reasons.join(", ")}`
          : null;
      if (line !== null) rows.push(["", style.paint("dim", line), "", ""]);
    }
  }
  const table = renderTable(
    [
      { header: "SIDE" },
      { header: "DATASET" },
      { header: "SNAPSHOTS", align: "right" },
      { header: "USED", align: "right" },
    ],
    rows,
    { style },
  );
  const title = `Snapshots to destroy (${count} in ${plural(actions.length, "dataset")}, ${formatBytes(used)} used):`;
  return `${style.paint("bold", title)}\n${table}`;
}

/** the holds and bookmarks that keep each incremental chain (backup's last action) */
function chainSection(
  actions: ChainAction[],
  style: Style,
  planned: ReadonlySet<string>,
): string | null {
  const entries = actions.flatMap((action) => action.entries);
  if (entries.length === 0) return null;
  const sides = (source: boolean, target: boolean) =>
    source && target ? "both" : source ? "source" : target ? "target" : "-";
  const rows: TableRow[] = entries.map((entry) => [
    entry.sourceDataset,
    marked(planned, entry.sourceDataset, entry.base),
    sides(entry.holdSource, entry.holdTarget),
    entry.bookmark ? "yes" : "-",
    String(entry.releaseSource.length + entry.releaseTarget.length),
    String(entry.destroyBookmarks.length),
  ]);
  const table = renderTable(
    [
      { header: "DATASET" },
      { header: "BASE" },
      { header: "HOLD" },
      { header: "BOOKMARK" },
      { header: "RELEASE", align: "right" },
      { header: "OLD BOOKMARKS", align: "right" },
    ],
    rows,
    { style },
  );
  const title = `Chains to protect (${entries.length}): hold the base on both sides, bookmark it, release older holds:`;
  return `${style.paint("bold", title)}\n${table}`;
}

function conflictSection(conflicts: Conflict[], style: Style): string | null {
  if (conflicts.length === 0) return null;
  const lines = [style.paint(["red", "bold"], `Conflicts (${conflicts.length}), skipped:`)];
  for (const conflict of conflicts) {
    const [first, ...rest] = conflictLines(conflict);
    lines.push(style.paint("red", `! ${subnameLabel(conflict.subname)}: ${first}`));
    for (const line of rest) lines.push(`    ${style.paint("red", line)}`);
  }
  return lines.join("\n");
}

function errorSection(errors: Plan["errors"], style: Style): string | null {
  if (errors.length === 0) return null;
  const lines = [style.paint(["red", "bold"], `Errors (${errors.length}):`)];
  for (const error of errors) {
    lines.push(style.paint("red", `! ${subnameLabel(error.subname)}: ${error.message}`));
  }
  return lines.join("\n");
}

function skippedSection(skipped: Plan["skipped"], style: Style): string | null {
  if (skipped.length === 0) return null;
  const lines = [`Skipped (${skipped.length}):`];
  for (const skip of skipped) lines.push(`  ${subnameLabel(skip.subname)}: ${skip.reason}`);
  return style.paint("dim", lines.join("\n"));
}

export interface PlanSummary {
  snapshots: number;
  transfers: number;
  /** sum of the known estimates; null when no transfer has one */
  estimatedBytes: number | null;
  /** transfers without an estimate */
  unestimated: number;
  abortResumes: number;
  destroyedSnapshots: number;
  destroyedUsed: number;
  conflicts: number;
  errors: number;
  skipped: number;
}

export function summarizePlan(
  plan: Plan,
  estimates?: ReadonlyMap<SendAction, number>,
): PlanSummary {
  const sends = ofKind(plan, "send");
  const known = sends.map((send) => estimates?.get(send)).filter((n) => n !== undefined);
  const destroys = ofKind(plan, "destroy");
  return {
    snapshots: ofKind(plan, "snapshot").reduce((sum, action) => sum + action.snapshots.length, 0),
    transfers: sends.length,
    estimatedBytes: known.length === 0 ? null : known.reduce((sum, n) => sum + n, 0),
    unestimated: sends.length - known.length,
    abortResumes: ofKind(plan, "abort-resume").length,
    destroyedSnapshots: destroys.reduce((sum, action) => sum + action.snapshots.length, 0),
    destroyedUsed: destroys.reduce((sum, action) => sum + action.used, 0),
    conflicts: plan.conflicts.length,
    errors: plan.errors.length,
    skipped: plan.skipped.length,
  };
}

function summaryLine(plan: Plan, summary: PlanSummary, style: Style): string {
  const parts: string[] = [];
  if (summary.snapshots > 0) parts.push(`${plural(summary.snapshots, "snapshot")} to create`);
  if (summary.transfers > 0) {
    let size = "";
    if (summary.estimatedBytes !== null) {
      const partial = summary.unestimated > 0 ? "at least " : "";
      size = ` (${partial}${formatBytes(summary.estimatedBytes)})`;
    }
    parts.push(`${plural(summary.transfers, "transfer")}${size}`);
  }
  if (summary.abortResumes > 0) {
    parts.push(`${plural(summary.abortResumes, "partial receive")} to abort`);
  }
  if (summary.destroyedSnapshots > 0) {
    parts.push(
      `${plural(summary.destroyedSnapshots, "snapshot")} to destroy (${formatBytes(summary.destroyedUsed)} used)`,
    );
  }
  const chains = ofKind(plan, "chain").reduce((sum, action) => sum + action.entries.length, 0);
  if (chains > 0) parts.push(`${plural(chains, "chain")} to protect`);
  const problems: string[] = [];
  if (summary.conflicts > 0) problems.push(plural(summary.conflicts, "conflict"));
  if (summary.errors > 0) problems.push(plural(summary.errors, "error"));
  const actions = plan.actions.length === 0 ? "Nothing to do" : `Plan: ${parts.join(", ")}`;
  const tail = problems.length > 0 ? `; ${style.paint("red", problems.join(", "))}` : "";
  return `${style.paint("bold", actions)}${tail}.`;
}

/** every section that has content, separated by blank lines, ending with the summary line */
export function renderPlan(plan: Plan, style: Style, options: RenderPlanOptions = {}): string {
  const planned = new Set(plan.planned ?? []);
  const sections = [
    // a dry run's later steps are planned as if the earlier ones had run
    planned.size > 0
      ? style.paint(
          "yellow",
          `Planned after the earlier steps of this dry run: ${plural(planned.size, "snapshot")} marked (planned) do not exist yet.`,
        )
      : null,
    snapshotSection(ofKind(plan, "snapshot"), style),
    abortSection(ofKind(plan, "abort-resume"), style),
    sendSection(ofKind(plan, "send"), style, options.estimates, planned),
    destroySection(
      ofKind(plan, "destroy"),
      style,
      retentionByDataset(plan),
      options.verbose === true,
      planned,
    ),
    chainSection(ofKind(plan, "chain"), style, planned),
    conflictSection(plan.conflicts, style),
    errorSection(plan.errors, style),
    options.showSkipped === false ? null : skippedSection(plan.skipped, style),
  ].filter((section): section is string => section !== null);
  sections.push(summaryLine(plan, summarizePlan(plan, options.estimates), style));
  return sections.join("\n\n");
}

/** `--json` for a plan: the Plan as it is, sends with `estimatedBytes` (null when unknown) */
export function planJson(plan: Plan, estimates?: ReadonlyMap<SendAction, number>) {
  return {
    actions: plan.actions.map((action) =>
      action.kind === "send"
        ? { ...action, estimatedBytes: estimates?.get(action) ?? null }
        : action,
    ),
    conflicts: plan.conflicts,
    errors: plan.errors,
    skipped: plan.skipped,
    // cleanup with retention rules: each snapshot kept or destroyed, with the rules that decided
    ...(plan.retention ? { retention: plan.retention } : {}),
    // dry run: snapshots named here that only an earlier step's plan would make
    ...(plan.planned ? { planned: plan.planned } : {}),
    summary: summarizePlan(plan, estimates),
  };
}
