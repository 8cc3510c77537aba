// The wizard's page: draws what the server's event stream says and posts the user's answers.
// It decides nothing: plans, checks and the danger confirmation's test live in the engine and
// the server. Every state is told in words and a mark, not by colour alone.

import { formatBytes } from "../../cli/render/units.ts";
import { NOT_RUN } from "../../zfs/outcome.ts";
import type {
  ActionView,
  CompareRowView,
  CompareView,
  GuiEvent,
  PlanView,
  StepKey,
  StepStatus,
} from "../protocol.ts";

const STEPS: { key: StepKey; title: string; about: string }[] = [
  { key: "snap", title: "Snap", about: "Snapshot the source datasets that changed." },
  { key: "backup", title: "Backup", about: "Send what the target lacks." },
  {
    key: "cleanup-source",
    title: "Cleanup source",
    about: "Destroy source snapshots the target holds safely.",
  },
  {
    key: "cleanup-target",
    title: "Cleanup target",
    about: "Destroy old backups on the target (asks you to type the pool's name).",
  },
];

type StepState =
  | "waiting"
  | "reading"
  | "planned"
  | "asking"
  | "running"
  | StepStatus
  /** still waiting when the run ended (a step before it failed or was cancelled) */
  | "not-run";

/** the mark and the words of each state: shape and text, colour only on top */
const STATE_TEXT: Record<StepState, [string, string]> = {
  waiting: ["○", "waiting"],
  reading: ["◌", "reading and planning"],
  planned: ["◇", "planned"],
  asking: ["?", "waiting for your go"],
  running: ["◐", "running"],
  ok: ["✔", "done"],
  "nothing-to-do": ["–", "nothing to do"],
  declined: ["⤼", "skipped"],
  "dry-run": ["◇", "dry run: shown only"],
  failed: ["✗", "failed"],
  cancelled: ["■", "cancelled"],
  "not-run": ["–", "not run: the run ended"],
};

const ACTION_TEXT: Record<string, [string, string]> = {
  pending: ["○", "pending"],
  running: ["◐", "running"],
  done: ["✔", "done"],
  failed: ["✗", "failed"],
};

const CONFLICT_WORDS: Record<string, string> = {
  "guid-mismatch": "same snapshot name, different data",
  "no-common": "no snapshot in common",
  "target-ahead": "the target has snapshots the source lacks, after the newest common one",
  "target-modified": "the target was changed since the newest common snapshot",
  "type-mismatch": "a filesystem on one side, a volume on the other",
};

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

type Child = Node | string | null | undefined | false;

function h(tag: string, attrs: Record<string, string | boolean> = {}, ...children: Child[]) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false) continue;
    element.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

const mark = (pair: [string, string]) =>
  h(
    "span",
    { class: "state" },
    h("span", { class: "mark", "aria-hidden": "true" }, pair[0]),
    ` ${pair[1]}`,
  );

function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

const percent = (done: number, total: number | null) =>
  total && total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : null;

// ---------------------------------------------------------------- state

let dryRun = false;
let finished = false;
const states = new Map<StepKey, StepState>();
let openQuestion: number | null = null;

function announce(text: string) {
  $("live").textContent = text;
}

function reset() {
  finished = false;
  openQuestion = null;
  states.clear();
  for (const step of STEPS) states.set(step.key, "waiting");
  $("steps").replaceChildren(
    ...STEPS.map((step, i) =>
      h(
        "section",
        {
          id: `step-${step.key}`,
          class: "step",
          "data-state": "waiting",
          "aria-labelledby": `title-${step.key}`,
        },
        h("h2", { id: `title-${step.key}` }, `${i + 1}. ${step.title}`),
        h("p", { class: "about" }, step.about),
        h("p", { class: "step-status", id: `status-${step.key}` }, mark(STATE_TEXT.waiting)),
        h("div", { class: "plan", id: `plan-${step.key}` }),
        h("div", { class: "question", id: `question-${step.key}` }),
        h("p", { class: "step-total", id: `total-${step.key}` }),
        h("ul", { class: "notes", id: `notes-${step.key}` }),
      ),
    ),
  );
  $("summary").hidden = true;
  $("warnings").hidden = true;
  $("warning-list").replaceChildren();
  $("cancel").hidden = false;
  $("cancel-note").hidden = false;
  drawStepBar();
}

function setStep(key: StepKey, state: StepState) {
  states.set(key, state);
  const section = $(`step-${key}`);
  section.dataset.state = state;
  $(`status-${key}`).replaceChildren(mark(STATE_TEXT[state]));
  drawStepBar();
}

function drawStepBar() {
  const current = STEPS.find((step) =>
    ["reading", "planned", "asking", "running"].includes(states.get(step.key) ?? ""),
  );
  $("stepbar").replaceChildren(
    ...STEPS.map((step) => {
      const state = states.get(step.key) ?? "waiting";
      return h(
        "li",
        { "data-state": state, "aria-current": current?.key === step.key ? "step" : false },
        h("a", { href: `#step-${step.key}` }, step.title),
        " ",
        mark(STATE_TEXT[state]),
      );
    }),
  );
}

// ---------------------------------------------------------------- compare

function sideCells(side: CompareRowView["source"]) {
  if (side === null) return [h("td", { class: "absent", colspan: "3" }, "— not there")];
  return [
    h("td", { class: "num" }, formatBytes(side.used)),
    h("td", { class: "num" }, `${side.ratio.toFixed(2)}×`),
    h(
      "td",
      { class: "num" },
      String(side.snapshots),
      ...(side.encrypted ? [h("span", { class: "detail" }, side.encrypted)] : []),
      ...(side.partialReceive ? [h("span", { class: "detail" }, side.partialReceive)] : []),
    ),
  ];
}

function rowWords(row: CompareRowView): { state: string; words: Child[] } {
  if (row.ignored) return { state: "ignored", words: ["– ignored by the configuration"] };
  if (row.conflicts.length > 0)
    return {
      state: "conflict",
      words: row.conflicts.map((conflict) =>
        h(
          "p",
          {},
          h("strong", {}, `✗ Conflict: ${CONFLICT_WORDS[conflict.kind] ?? conflict.kind}. `),
          conflict.message,
        ),
      ),
    };
  if (row.presence === "source")
    return { state: "missing", words: ["◐ only on the source: backup sends it in full"] };
  if (row.presence === "target")
    return { state: "extra", words: ["◑ only on the target: no longer on the source"] };
  if (row.sourceOnly > 0)
    return {
      state: "behind",
      words: [
        `◐ ${row.sourceOnly} ${row.sourceOnly === 1 ? "snapshot" : "snapshots"} to send${row.newestCommon ? ` after ${row.newestCommon}` : ""}`,
      ],
    };
  return {
    state: "in-sync",
    words: [`✔ in sync${row.newestCommon ? ` (newest common: ${row.newestCommon})` : ""}`],
  };
}

const PRESENCE_WORDS = { both: "● both sides", source: "◐ source only", target: "◑ target only" };

function drawCompare(view: CompareView | null, error: string | null) {
  const body = $("compare-body");
  if (view === null) {
    body.replaceChildren(
      h("p", { class: "error" }, `✗ Could not read both trees: ${error ?? "unknown error"}`),
    );
    return;
  }
  const rows = view.rows.flatMap((row) => {
    const { state, words } = rowWords(row);
    const snapshots = h(
      "details",
      {},
      h(
        "summary",
        {},
        `Snapshots (${row.common} common, ${row.sourceOnly} source only, ${row.targetOnly} target only)`,
      ),
      h(
        "ul",
        { class: "snapshots" },
        row.older > 0 ? h("li", {}, `… ${row.older} older`) : null,
        ...row.recent.map((s) =>
          h(
            "li",
            { "data-presence": s.mismatch ? "mismatch" : s.presence },
            `${s.name} — ${s.mismatch ? "✗ same name, different data" : PRESENCE_WORDS[s.presence]}`,
          ),
        ),
      ),
    );
    return [
      h(
        "tr",
        { "data-state": state },
        h("th", { scope: "row" }, row.subname),
        ...sideCells(row.source),
        ...sideCells(row.target),
        h("td", { class: "words" }, ...words, snapshots),
      ),
    ];
  });
  body.replaceChildren(
    h(
      "table",
      { class: "compare" },
      h("caption", {}, `${view.sourceRoot} → ${view.targetRoot}`),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { rowspan: "2", scope: "col" }, "Dataset"),
          h("th", { colspan: "3", scope: "colgroup" }, `Source ${view.sourceRoot}`),
          h("th", { colspan: "3", scope: "colgroup" }, `Target ${view.targetRoot}`),
          h("th", { rowspan: "2", scope: "col" }, "State"),
        ),
        h(
          "tr",
          {},
          ...["Used", "Ratio", "Snapshots", "Used", "Ratio", "Snapshots"].map((name) =>
            h("th", { scope: "col", class: "num" }, name),
          ),
        ),
      ),
      h("tbody", {}, ...rows),
    ),
  );
}

// ---------------------------------------------------------------- steps

function sizeText(action: ActionView): string {
  if (action.bytes === null) return "";
  if (action.measure === "sends") return `≈ ${formatBytes(action.bytes)} to send`;
  if (action.measure === "frees") return `≥ ${formatBytes(action.bytes)} freed`;
  return `${formatBytes(action.bytes)} written`;
}

function drawPlan(key: StepKey, plan: PlanView) {
  const parts: (Node | string)[] = [];
  const sends = plan.actions.some((a) => a.measure === "sends");
  const frees = plan.actions.some((a) => a.measure === "frees");
  parts.push(
    h(
      "p",
      { class: "totals" },
      plan.actions.length === 0
        ? "Nothing to do."
        : `${plan.actions.length} action(s)${sends ? `; about ${formatBytes(plan.totalBytes)} to send` : ""}${frees ? `; at least ${formatBytes(plan.totalBytes)} freed` : ""}.`,
    ),
  );
  if (plan.actions.length > 0)
    parts.push(
      h(
        "table",
        { class: "actions" },
        h("caption", {}, "Plan"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ...["State", "Dataset", "Action", "Size", "Progress"].map((name) =>
              h("th", { scope: "col" }, name),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          ...plan.actions.flatMap((action, index) => [
            h(
              "tr",
              { id: `action-${key}-${index}`, "data-state": "pending" },
              h("td", { class: "action-state" }, mark(ACTION_TEXT.pending as [string, string])),
              h("td", { class: "action-dataset" }, action.dataset),
              h("td", { class: "action-text" }, action.text),
              h("td", { class: "num" }, sizeText(action)),
              h(
                "td",
                { class: "progress" },
                // only a transfer moves bytes by degrees; a snapshot or a destroy just ends
                ...(action.kind === "send"
                  ? [
                      h("progress", {
                        max: "100",
                        value: "0",
                        "aria-label": `progress of ${action.dataset}`,
                      }),
                    ]
                  : []),
                h("span", { class: "detail" }),
              ),
            ),
          ]),
        ),
      ),
    );
  if (plan.conflicts.length > 0)
    parts.push(
      h(
        "div",
        { class: "conflicts", role: "note" },
        h("h3", {}, `✗ Conflicts: ${plan.conflicts.length} dataset(s) left alone`),
        h(
          "ul",
          {},
          ...plan.conflicts.map((c) =>
            h(
              "li",
              {},
              h("strong", {}, c.dataset),
              ` — ${CONFLICT_WORDS[c.kind] ?? c.kind}: ${c.message}`,
            ),
          ),
        ),
      ),
    );
  if (plan.errors.length > 0)
    parts.push(
      h(
        "div",
        { class: "conflicts" },
        h("h3", {}, "✗ Problems"),
        h(
          "ul",
          {},
          ...plan.errors.map((e) => h("li", {}, h("strong", {}, e.dataset), ` — ${e.message}`)),
        ),
      ),
    );
  if (plan.skipped.length > 0)
    parts.push(
      h(
        "details",
        { class: "skipped", open: plan.skipped.length <= 8 },
        h("summary", {}, `Skipped datasets (${plan.skipped.length}) and why`),
        h(
          "ul",
          {},
          ...plan.skipped.map((s) => h("li", {}, h("strong", {}, s.dataset), ` — ${s.reason}`)),
        ),
      ),
    );
  $(`plan-${key}`).replaceChildren(...parts);
}

async function post(path: string, body: unknown): Promise<{ ok: boolean; error?: string }> {
  try {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = (await response.json().catch(() => ({}))) as { error?: string };
    return { ok: response.ok, ...(data.error ? { error: data.error } : {}) };
  } catch (error) {
    return { ok: false, error: `the wizard did not answer: ${String(error)}` };
  }
}

function drawQuestion(key: StepKey, id: number, danger: boolean, pool: string | null) {
  openQuestion = id;
  const box = $(`question-${key}`);
  const refusal = h("p", { class: "refused", role: "alert", id: `refused-${key}` });
  const skip = h("button", { type: "button", class: "skip" }, "Skip step");
  skip.addEventListener("click", () => void post("/api/answer", { id, answer: "skip" }));
  if (!danger) {
    const go = h("button", { type: "button", class: "go" }, "Go");
    go.addEventListener("click", () => void post("/api/answer", { id, answer: "go" }));
    box.replaceChildren(
      h("p", {}, "Run this step's actions as listed above?"),
      h("div", { class: "buttons" }, go, skip),
      refusal,
    );
    go.focus();
  } else {
    const input = h("input", {
      id: `pool-${key}`,
      type: "text",
      autocomplete: "off",
      spellcheck: "false",
      autocapitalize: "off",
      "aria-describedby": `danger-${key}`,
    }) as HTMLInputElement;
    const go = h("button", { type: "submit", class: "go danger" }, "Destroy on the target");
    const form = h(
      "form",
      { class: "danger-form" },
      h(
        "p",
        { class: "danger-text", id: `danger-${key}` },
        h("strong", {}, "⚠ DANGER: "),
        "this destroys snapshots on the TARGET pool ",
        h("code", {}, pool ?? ""),
        ": history that exists nowhere else.",
      ),
      h("label", { for: `pool-${key}` }, `Type the target pool's name (${pool ?? ""}) to continue`),
      input,
      h("div", { class: "buttons" }, go, skip),
      refusal,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void post("/api/answer", { id, answer: "go", pool: input.value }).then((result) => {
        if (!result.ok && result.error) {
          refusal.textContent = `✗ ${result.error}`;
          input.focus();
          input.select();
        }
      });
    });
    box.replaceChildren(form);
    input.focus();
  }
  announce(`${STEPS.find((s) => s.key === key)?.title}: waiting for your go`);
}

/** a row whose action runs narrowed (a chain without datasets whose transfers failed) */
function setActionWords(key: StepKey, index: number, view: ActionView) {
  const row = $(`action-${key}-${index}`);
  if (!row) return;
  const dataset = row.querySelector(".action-dataset");
  const text = row.querySelector(".action-text");
  if (dataset) dataset.textContent = view.dataset;
  if (text) text.textContent = view.text;
}

function setAction(
  key: StepKey,
  index: number,
  state: "running" | "done" | "failed",
  bytes: number | null,
  expected: number | null,
  error: string | null,
) {
  const row = $(`action-${key}-${index}`);
  if (!row) return;
  // held back by an earlier failure of its dataset: it never ran, so it has no command;
  // cut by Cancel or Ctrl-C: stopped, not broken
  const notRun = state === "failed" && error?.startsWith(NOT_RUN) === true;
  const stopped = state === "failed" && error?.startsWith("cancelled") === true;
  row.dataset.state = notRun ? "not-run" : stopped ? "stopped" : state;
  row
    .querySelector(".action-state")
    ?.replaceChildren(
      mark(
        notRun
          ? ["–", "not run"]
          : stopped
            ? ["■", "stopped"]
            : (ACTION_TEXT[state] as [string, string]),
      ),
    );
  const bar = row.querySelector("progress");
  const detail = row.querySelector(".detail");
  if (state === "done" && bar) bar.value = 100;
  if (state === "running" && bar && expected === null) bar.removeAttribute("value");
  if (detail && state !== "running")
    detail.textContent = bytes !== null && bytes > 0 ? formatBytes(bytes) : "";
  if ((notRun || stopped) && error) row.querySelector(".detail")?.replaceChildren(error);
  else if (state === "failed" && error) {
    const failure = h(
      "tr",
      { class: "failure" },
      h(
        "td",
        { colspan: "5" },
        h("p", {}, "✗ This action failed. The command, its exit code and what it said:"),
        h("pre", {}, error),
      ),
    );
    row.after(failure);
  }
}

/** a stage that ended early: what never started did not run, what ran was stopped */
function endActions(key: StepKey) {
  for (const row of $(`step-${key}`).querySelectorAll<HTMLElement>("tr[data-state]")) {
    const state = row.dataset.state;
    if (state !== "pending" && state !== "running") continue;
    const [shape, words] = state === "pending" ? ["–", "not run"] : ["■", "stopped"];
    row.dataset.state = state === "pending" ? "not-run" : "stopped";
    row.querySelector(".action-state")?.replaceChildren(mark([shape, words]));
  }
}

function progress(event: Extract<GuiEvent, { type: "progress" }>) {
  const row = $(`action-${event.step}-${event.index}`);
  if (!row) return;
  const bar = row.querySelector("progress");
  const share = percent(event.bytes, event.expected);
  if (bar) {
    if (share === null) bar.removeAttribute("value");
    else bar.value = share;
  }
  const parts = [formatBytes(event.bytes)];
  if (event.expected !== null) parts[0] += ` of ${formatBytes(event.expected)}`;
  if (share !== null) parts.push(`${share}%`);
  if (event.rate !== null) parts.push(`${formatBytes(event.rate)}/s`);
  if (event.eta !== null) parts.push(`${duration(event.eta)} left`);
  const detail = row.querySelector(".detail");
  if (detail) detail.textContent = parts.join(" · ");
  const total = percent(event.stepDone, event.stepTotal);
  $(`total-${event.step}`).textContent =
    `Step total: ${formatBytes(event.stepDone)}${event.stepTotal !== null ? ` of ${formatBytes(event.stepTotal)}` : ""}${total !== null ? ` (${total}%)` : ""}`;
}

// ---------------------------------------------------------------- events

function handle(event: GuiEvent) {
  switch (event.type) {
    case "hello":
      reset();
      dryRun = event.dryRun;
      $("route").textContent =
        `${event.source} → ${event.target} (${event.configFile})${dryRun ? " — dry run: nothing is changed" : ""}`;
      document.title = `abgleich wizard: ${event.source} → ${event.target}`;
      break;
    case "compare":
      drawCompare(event.view, event.error);
      $("compare-title").textContent = event.after
        ? "Source and target side by side, after the run"
        : "Source and target side by side";
      break;
    case "step":
      setStep(event.step, "reading");
      break;
    case "plan":
      drawPlan(event.step, event.plan);
      setStep(event.step, "planned");
      break;
    case "ask":
      setStep(event.step, "asking");
      drawQuestion(event.step, event.id, event.danger, event.pool);
      break;
    case "answered": {
      if (openQuestion !== event.id) break;
      openQuestion = null;
      const key = STEPS.find((s) => states.get(s.key) === "asking")?.key;
      if (key) {
        $(`question-${key}`).replaceChildren(
          h(
            "p",
            { class: "answer" },
            event.answer === "go"
              ? "▶ Go given."
              : event.answer === "skip"
                ? "⤼ Skipped by you."
                : "■ Cancelled.",
          ),
        );
        if (event.answer === "go") setStep(key, "running");
        // keep keyboard focus on the page's flow: the step's status
        $(`status-${key}`).setAttribute("tabindex", "-1");
        $(`status-${key}`).focus();
      }
      break;
    }
    case "refused": {
      const key = STEPS.find((s) => states.get(s.key) === "asking")?.key;
      if (key) $(`refused-${key}`).textContent = `✗ ${event.text}`;
      break;
    }
    case "action":
      setAction(event.step, event.index, event.state, event.bytes, event.expected, event.error);
      if (event.view) setActionWords(event.step, event.index, event.view);
      break;
    case "progress":
      progress(event);
      break;
    case "note":
      if (event.step) $(`notes-${event.step}`).append(h("li", {}, event.text));
      break;
    case "warn":
      $("warnings").hidden = false;
      $("warning-list").append(h("li", {}, `⚠ ${event.text}`));
      break;
    case "stage":
      setStep(event.step, event.status);
      if (event.status === "failed" || event.status === "cancelled") endActions(event.step);
      $(`question-${event.step}`).replaceChildren();
      if (event.error)
        $(`notes-${event.step}`).append(h("li", { class: "error" }, `✗ ${event.error}`));
      announce(`${STEPS.find((s) => s.key === event.step)?.title}: ${STATE_TEXT[event.status][1]}`);
      break;
    case "cancelling":
      $("cancel").setAttribute("disabled", "");
      $("cancel-note").textContent =
        "Cancelling… a running transfer is cut so the next backup resumes it.";
      break;
    case "summary": {
      finished = true;
      for (const step of STEPS)
        if (states.get(step.key) === "waiting") setStep(step.key, "not-run");
      $("summary").hidden = false;
      $("summary-result").replaceChildren(
        mark(
          event.code === 0
            ? ["✔", `Finished (exit code 0).`]
            : event.code >= 128
              ? ["■", `Cancelled (exit code ${event.code}).`]
              : ["✗", `Finished with problems (exit code ${event.code}).`],
        ),
      );
      $("summary").dataset.state = event.code === 0 ? "ok" : "failed";
      $("summary-text").textContent = event.text;
      $("cancel").hidden = true;
      $("cancel-note").hidden = true;
      announce("The run has finished: see the summary.");
      break;
    }
    case "closed":
      $("close").hidden = true;
      $("closed-note").hidden = false;
      break;
  }
}

function connect() {
  const source = new EventSource("/events");
  source.onopen = () => {
    $("connection").textContent = "";
  };
  source.onmessage = (message) => handle(JSON.parse(message.data) as GuiEvent);
  source.onerror = () => {
    $("connection").textContent = finished
      ? "The wizard has ended."
      : "⚠ Lost the connection to abgleich; trying again…";
    if (finished) source.close();
  };
}

document.addEventListener("DOMContentLoaded", () => {
  $("cancel").addEventListener("click", () => void post("/api/cancel", {}));
  $("close").addEventListener("click", () => {
    void post("/api/close", {}).then(() => handle({ type: "closed" }));
  });
  reset();
  connect();
});
