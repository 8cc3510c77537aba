// Preloaded by `bun test` (bunfig.toml): the run state and the run locks of everything the
// tests start go to a folder of this test process, never to the machine's /var/lib/abgleich
// or /run/lock/abgleich (the tests run as root in CI). Tests that are about those defaults
// pass their own environment.

import { afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const scratch = mkdtempSync(join(tmpdir(), "abg-test-state-"));
process.env.ABGLEICH_STATE_DIR ??= join(scratch, "state");
process.env.ABGLEICH_LOCK_DIR ??= join(scratch, "locks");
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
