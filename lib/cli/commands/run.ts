// `abgleich run WORKFLOW CONFIG`: WORKFLOW is a bundled name (workflows/index.ts) or a user's
// .ts/.js file exporting `defineWorkflow(async (run) => …)`. Loading the file is the CLI's
// part; the workflow runs through the engine's one runner like every other command.

import { resolve } from "node:path";
import { BUNDLED_WORKFLOWS } from "../../../workflows/index.ts";
import { ConfigError } from "../../config/errors.ts";
import { isWorkflow, type Workflow } from "../../engine/api.ts";
import { importUserFile } from "../../engine/plugins.ts";
import { runWorkflow } from "../../engine/workflow.ts";
import { commandIo, reportError } from "../io.ts";
import { runSession, type SessionEnvironment, type SessionFlags } from "../session.ts";

/** a bundled workflow by name, or the user's file; a bad reference is a ConfigError (exit 2) */
export async function resolveWorkflow(ref: string): Promise<Workflow> {
  const bundled = BUNDLED_WORKFLOWS[ref];
  if (bundled) return bundled;
  const looksLikeFile = ref.includes("/") || /\.[cm]?[jt]s$/.test(ref);
  if (!looksLikeFile) {
    const known = Object.keys(BUNDLED_WORKFLOWS).join(", ");
    throw new ConfigError({
      file: ref,
      keyPath: "",
      line: null,
      column: null,
      reason: `no bundled workflow of this name (bundled: ${known}); give a path like ./${ref}.ts for a file of your own`,
    });
  }
  const file = resolve(ref);
  const value = await importUserFile(file, "the workflow of `abgleich run`");
  if (!isWorkflow(value)) {
    throw new ConfigError({
      file,
      keyPath: "",
      line: null,
      column: null,
      reason:
        "does not export a workflow: expected `export default defineWorkflow(async (run) => { … })`",
    });
  }
  return value;
}

/** `abgleich run WORKFLOW CONFIG`: the exit code */
export async function runCommand(
  workflowRef: string,
  configPath: string,
  flags: SessionFlags,
  environment: SessionEnvironment = {},
): Promise<number> {
  let workflow: Workflow;
  try {
    workflow = await resolveWorkflow(workflowRef);
  } catch (error) {
    // nothing ran: no config read, no plugin loaded
    return reportError(commandIo(flags), error);
  }
  return runSession(
    configPath,
    flags,
    { readOnly: false, command: `run ${workflowRef}` },
    (run, io) => runWorkflow(workflow, run, environment.pluginIo?.log ?? ((text) => io.log(text))),
    environment,
  );
}
