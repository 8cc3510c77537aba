// Snapshot naming. The default scheme (README: Snapshot names): YYYYMMDD (local date) + a
// counter of `digits` digits + `suffix`. A plugin may supply another Namer; cleanup and the guard
// only ever ask `isOwn`, so they keep working with any scheme.

import { checkSnapshotShortName } from "../zfs/names.ts";

export interface Namer {
  /** the next name for a dataset that already has `existing` snapshots (short names) */
  next(existing: readonly string[], now: Date): { name: string } | { error: string };
  /** whether `name` was made by this scheme (only those are ever cleaned up) */
  isOwn(name: string): boolean;
  /** names carry UTC time: retention then counts hours, days, weeks, … in UTC too (else local) */
  utc?: boolean;
}

export interface DefaultNamerOptions {
  /** counter width, 1..6 */
  digits: number;
  /** `[A-Za-z0-9_]*`, may be empty */
  suffix: string;
}

const SUFFIX_SHAPE = /^[A-Za-z0-9_]*$/;

/** local calendar date as YYYYMMDD */
export function localDateStamp(now: Date): string {
  const year = String(now.getFullYear()).padStart(4, "0");
  const month = String(now.getMonth() + 1).padStart(2, "0");
  const day = String(now.getDate()).padStart(2, "0");
  return `${year}${month}${day}`;
}

export function defaultNamer({ digits, suffix }: DefaultNamerOptions): Namer {
  if (!Number.isInteger(digits) || digits < 1 || digits > 6) {
    throw new RangeError(`naming: digits must be an integer from 1 to 6, got ${digits}`);
  }
  if (!SUFFIX_SHAPE.test(suffix)) {
    throw new RangeError(`naming: suffix may hold only letters, digits and '_', got '${suffix}'`);
  }
  // the suffix holds no regex metacharacters (checked above), so it can go in as is
  const own = new RegExp(`^\\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\\d|3[01])\\d{${digits}}${suffix}$`);
  const maxCounter = 10 ** digits - 1;

  return {
    isOwn: (name) => own.test(name),
    next(existing, now) {
      const date = localDateStamp(now);
      const today = new RegExp(`^${date}(\\d{${digits}})${suffix}$`);
      let highest = 0;
      for (const name of existing) {
        const match = today.exec(name);
        if (match?.[1] !== undefined) highest = Math.max(highest, Number(match[1]));
      }
      const counter = highest + 1;
      if (counter > maxCounter) {
        const last = `${date}${String(highest).padStart(digits, "0")}${suffix}`;
        return {
          error:
            `no snapshot name left for ${date}: ${last} already uses the highest counter ` +
            `that ${digits} digit(s) allow; wait until tomorrow, or raise 'digits' in the configuration ` +
            `(names with the old width are then not abgleich's own: cleanup leaves them to you)`,
        };
      }
      const name = `${date}${String(counter).padStart(digits, "0")}${suffix}`;
      const invalid = checkSnapshotShortName(name);
      if (invalid !== null) return { error: `snapshot name '${name}' is not valid: ${invalid}` };
      return { name };
    },
  };
}
