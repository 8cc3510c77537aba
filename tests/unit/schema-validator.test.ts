// The config validator is compiled ahead of time (scripts/schema-validator.ts); a schema change
// without regenerating it would validate configs against the old schema.

import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { generateValidator, VALIDATOR_FILE } from "../../scripts/schema-validator.ts";

test("lib/config/schema-validator.generated.js is what scripts/schema-validator.ts generates from schema.json", () => {
  const current = readFileSync(VALIDATOR_FILE, "utf8");
  // on a mismatch: bun scripts/schema-validator.ts
  expect(current === generateValidator()).toBe(true);
});
