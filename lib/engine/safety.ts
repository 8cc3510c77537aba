// The safety rules of SPEC section 6 as a check on a finished plan. The planners keep them by
// construction; this runs again after every plugin that touched a plan, so no plugin can add a
// forbidden destroy or sneak a destroy into a backup.

import { compareSnapshots } from "../plan/pairs.ts";
import type { Action, Plan } from "../plan/types.ts";
import type { Dataset, Inventory } from "../zfs/model.ts";
import type { Hooks, PlanInfo, StageName } from "./hooks.ts";

export class SafetyError extends Error {
  constructor(
    readonly violations: string[],
    readonly by: string,
  ) {
    super(`${by} produced an unsafe plan, nothing was done: ${violations.join("; ")}`);
    this.name = "SafetyError";
  }
}

const ALLOWED: Record<StageName, readonly Action["kind"][]> = {
  inventory: [],
  compare: [],
  snap: ["snapshot"],
  backup: ["send", "abort-resume"],
  cleanup: ["destroy"],
};

/** every rule the plan breaks, in words; empty when it is safe */
export function planViolations(
  stage: StageName,
  plan: Plan,
  source: Inventory,
  target: Inventory,
): string[] {
  const violations: string[] = [];
  const allowed = ALLOWED[stage];
  const byName = (inv: Inventory) => new Map(inv.datasets.map((d) => [d.name, d]));
  const sources = byName(source);
  const targets = byName(target);
  const sourcesBySub = new Map(source.datasets.map((d) => [d.subname, d]));
  const targetsBySub = new Map(target.datasets.map((d) => [d.subname, d]));

  for (const action of plan.actions) {
    if (!allowed.includes(action.kind)) {
      violations.push(`a ${action.kind} action has no place in ${stage}`);
      continue;
    }
    if (action.kind !== "destroy") continue;
    const own =
      action.side === "source" ? sources.get(action.dataset) : targets.get(action.dataset);
    if (!own) {
      violations.push(
        `destroy on ${action.dataset}, which is not a ${action.side} dataset in the tree`,
      );
      continue;
    }
    const other: Dataset | undefined =
      action.side === "source" ? targetsBySub.get(own.subname) : sourcesBySub.get(own.subname);
    if (action.snapshots.length === 0) violations.push(`an empty destroy on ${action.dataset}`);
    const overlap = other
      ? action.side === "source"
        ? compareSnapshots(own, other)
        : compareSnapshots(other, own)
      : undefined;
    const newestCommon = overlap?.newestCommon?.source.name;
    if (action.side === "target" && newestCommon === undefined) {
      violations.push(
        `${action.dataset} shares no snapshot with the source: its snapshots may be the only copy`,
      );
    }
    const common = new Set(overlap?.common.map((pair) => pair.source.name));
    for (const name of action.snapshots) {
      if (!own.snapshots.some((s) => s.name === name)) {
        violations.push(`${action.dataset}@${name} does not exist`);
      }
      // rule 1: a source snapshot goes only when the target holds it (same name and guid)
      if (action.side === "source" && !common.has(name)) {
        violations.push(`${action.dataset}@${name} is not on the target (rule 1)`);
      }
      // rule 2: the newest common snapshot stays on both sides
      if (name === newestCommon) {
        violations.push(`${action.dataset}@${name} is the newest common snapshot (rule 2)`);
      }
    }
  }
  return violations;
}

/** the plan hook's taps, wrapped so each plugin's result is checked before the next one runs */
export function guardPlanHook(hook: Hooks["plan"]): void {
  // a hook is guarded once, however many runs share it
  if (hook.interceptors.some((interceptor) => interceptor.name === "abgleich-safety")) return;
  hook.intercept({
    name: "abgleich-safety",
    register(tap) {
      const fn = tap.fn as (...args: unknown[]) => unknown;
      const check = (plan: Plan, info: PlanInfo): Plan => {
        if (!plan || !Array.isArray(plan.actions)) {
          throw new SafetyError(["the plan hook must return the plan"], `plugin "${tap.name}"`);
        }
        const violations = planViolations(info.stage, plan, info.source, info.target);
        if (violations.length > 0) throw new SafetyError(violations, `plugin "${tap.name}"`);
        return plan;
      };
      if (tap.type === "sync") {
        tap.fn = (plan: Plan, info: PlanInfo) => check(fn(plan, info) as Plan, info);
      } else if (tap.type === "promise") {
        tap.fn = async (plan: Plan, info: PlanInfo) => check((await fn(plan, info)) as Plan, info);
      } else {
        tap.fn = (plan: Plan, info: PlanInfo, callback: (error: unknown, result?: Plan) => void) =>
          fn(plan, info, (error: unknown, result?: Plan) => {
            if (error) return callback(error);
            try {
              callback(null, check(result as Plan, info));
            } catch (thrown) {
              callback(thrown);
            }
          });
      }
      return tap;
    },
  });
}
