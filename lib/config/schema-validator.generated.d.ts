// The declaration of the generated validator (scripts/schema-validator.ts writes the code).
import type { ValidateFunction } from "ajv";

declare const validate: ValidateFunction;
export default validate;
