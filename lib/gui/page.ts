// The page's files as strings, made at build time (see assets.ts): nothing is read from disk
// or the network when the wizard serves them.

import { pageAssets } from "./assets.ts" with { type: "macro" };
import type { PageAssets } from "./server.ts";

export const PAGE: PageAssets = pageAssets();
