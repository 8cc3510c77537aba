// The bundled workflows by the name `abgleich run NAME CONFIG` uses. A static map, so
// `bun build --compile` bundles them.

import type { Workflow } from "../lib/engine/api.ts";
import nightly from "./nightly.ts";

export const BUNDLED_WORKFLOWS: Readonly<Record<string, Workflow>> = { nightly };
