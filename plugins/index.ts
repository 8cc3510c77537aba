// The bundled plugins by the name a config uses. A static map, so `bun build --compile`
// bundles every one of them into the binary.

import type { Plugin } from "../lib/engine/api.ts";
import hooks from "./hooks.ts";
import naming from "./naming.ts";
import notify from "./notify.ts";

export const BUNDLED_PLUGINS: Readonly<Record<string, Plugin<never>>> = {
  notify: notify as Plugin<never>,
  hooks: hooks as Plugin<never>,
  naming: naming as Plugin<never>,
};
