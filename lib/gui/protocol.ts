// What the wizard's server tells the page over server-sent events, and what the page posts
// back. Plain data only: the page draws it; every decision stays in the engine.

/** the wizard's steps in order; cleanup target asks the typed danger confirmation */
export const STEP_KEYS = ["snap", "backup", "cleanup-source", "cleanup-target"] as const;
export type StepKey = (typeof STEP_KEYS)[number];

export type StepStatus = "ok" | "nothing-to-do" | "declined" | "dry-run" | "failed" | "cancelled";

export interface SideView {
  used: number;
  /** compressratio, e.g. 1.52 */
  ratio: number;
  snapshots: number;
  /** `encrypted`, `encrypted, key not loaded` (a raw-received copy), or null: as `compare` says */
  encrypted: string | null;
  /** a cut receive waits in it (a resume token), in words as `compare` says them; else null */
  partialReceive: string | null;
}

export interface CompareRowView {
  subname: string;
  presence: "both" | "source" | "target";
  ignored: boolean;
  source: SideView | null;
  target: SideView | null;
  common: number;
  sourceOnly: number;
  targetOnly: number;
  newestCommon: string | null;
  conflicts: { kind: string; message: string }[];
  /** the newest snapshots (at most a few dozen) with where they are */
  recent: { name: string; presence: "both" | "source" | "target"; mismatch: boolean }[];
  /** snapshots left out of `recent` */
  older: number;
}

export interface CompareView {
  sourceRoot: string;
  targetRoot: string;
  rows: CompareRowView[];
}

export interface ActionView {
  kind: "snapshot" | "send" | "abort-resume" | "destroy" | "chain";
  /** the dataset(s) it concerns, "(root)" for the root */
  dataset: string;
  /** what it does, in words */
  text: string;
  /** bytes a send is expected to move, or a destroy to free (at least) */
  bytes: number | null;
  /** "sends" or "frees": what `bytes` means */
  measure: "sends" | "frees" | null;
}

export interface PlanView {
  actions: ActionView[];
  skipped: { dataset: string; reason: string }[];
  conflicts: { dataset: string; kind: string; message: string }[];
  errors: { dataset: string; message: string }[];
  /** sum of the send estimates, or of the space destroys free */
  totalBytes: number;
}

export type GuiEvent =
  | {
      type: "hello";
      configFile: string;
      source: string;
      target: string;
      targetPool: string;
      dryRun: boolean;
    }
  | {
      type: "compare";
      view: CompareView | null;
      error: string | null;
      /** read again after the steps changed the pools */
      after?: boolean;
    }
  | { type: "step"; step: StepKey }
  | { type: "plan"; step: StepKey; plan: PlanView }
  | { type: "ask"; id: number; step: StepKey; danger: boolean; pool: string | null }
  | { type: "answered"; id: number; answer: "go" | "skip" | "cancel" }
  | { type: "refused"; id: number; text: string }
  | {
      type: "action";
      step: StepKey;
      index: number;
      state: "running" | "done" | "failed";
      bytes: number | null;
      expected: number | null;
      error: string | null;
      /**
       * the row's new words when what runs is less than what was planned: a chain's protection
       * without the datasets whose transfers did not arrive
       */
      view?: ActionView;
    }
  | {
      type: "progress";
      step: StepKey;
      index: number;
      bytes: number;
      expected: number | null;
      /** bytes per second over the last seconds, null until measured */
      rate: number | null;
      /** seconds left, null when unknown */
      eta: number | null;
      /** the step's bytes so far and expected in all */
      stepDone: number;
      stepTotal: number | null;
    }
  | { type: "note"; step: StepKey | null; text: string }
  | { type: "warn"; text: string }
  | { type: "stage"; step: StepKey; status: StepStatus; error: string | null }
  | { type: "cancelling" }
  | { type: "summary"; code: number; text: string }
  | { type: "closed" };

/** POST /api/answer */
export interface AnswerRequest {
  id: number;
  answer: "go" | "skip";
  /** the target pool's name, typed for the danger confirmation */
  pool?: string;
}
