// snap, backup and cleanup from the command line: one stage each, through the one runner.

import { stages } from "../../engine/stages/index.ts";
import type { Side } from "../../zfs/model.ts";
import { runSession, type SessionFlags } from "../session.ts";

export type ChangeFlags = SessionFlags;

export const snapCommand = (config: string, flags: ChangeFlags) =>
  runSession(config, flags, { readOnly: false }, async (run) => {
    await stages.snap(run);
    return null;
  });

export const backupCommand = (config: string, flags: ChangeFlags) =>
  runSession(config, flags, { readOnly: false }, async (run) => {
    await stages.backup(run);
    return null;
  });

export const cleanupCommand = (config: string, side: Side | undefined, flags: ChangeFlags) =>
  runSession(config, flags, { readOnly: false }, async (run) => {
    await stages.cleanup(run, side ?? "source");
    return null;
  });
