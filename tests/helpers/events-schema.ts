// docs/events.schema.json as a validator, strict, with the formats the README promises.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";

const schema = JSON.parse(
  readFileSync(join(import.meta.dir, "../../docs/events.schema.json"), "utf8"),
) as Record<string, unknown>;
const ajv = new Ajv2020({ allErrors: true, strict: true });
ajv.addFormat("uuid", /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
// what the README promises: ISO 8601 local time with its offset
ajv.addFormat("date-time", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?[+-]\d\d:\d\d$/);

/** true when `event` matches the schema */
export const validateEvent = ajv.compile(schema);

/** why the last validateEvent call failed */
export const eventErrors = () => ajv.errorsText(validateEvent.errors);

/** throws naming the event and the schema's complaint when it does not match */
export function expectValidEvent(event: unknown): void {
  if (!validateEvent(event))
    throw new Error(
      `event does not match docs/events.schema.json: ${JSON.stringify(event)}\n${eventErrors()}`,
    );
}
