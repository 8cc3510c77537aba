#!/usr/bin/env bun
// abgleich's command line: one subcommand per file in ./commands.

import { Command, CommanderError, InvalidArgumentError } from "commander";
import pkg from "../../package.json" with { type: "json" };
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "../engine/exit.ts";
import { redact } from "../engine/redact.ts";
import { parseWaitDuration } from "../engine/wait.ts";
import type { Side } from "../zfs/model.ts";
import type { StatusFlags } from "./commands/status.ts";
import type { GlobalFlags } from "./io.ts";
import { lostOutput, outputLost } from "./lost.ts";

// Each command's module is loaded when that command runs: `--help`, `--version` and the
// simulator (which the demo and the tests start for every zfs call) load none of the others.

/** `status` follows the monitoring plugin convention: a usage error is UNKNOWN, not 2 */
const EXIT_UNKNOWN = 3;

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command("abgleich")
    .description(
      "ZFS snapshots, backups and cleanup: snapshot what changed, send what the target lacks, free what is safe",
    )
    .version(pkg.version, "-V, --version")
    .option("--json", "machine-readable output: one JSON document or newline-delimited events")
    .option("--no-color", "no colours (also NO_COLOR=1 or TERM=dumb)")
    .option(
      "-q, --quiet",
      "errors, warnings and one summary line only, nothing at all when there was nothing to do (tree and compare print what they show, status its first line)",
    )
    .option("-v, --verbose", "more detail: each command run on a host")
    .showHelpAfterError("(run with --help for usage)")
    // every command takes --json, -q, -v and --no-color: its help says so
    .configureHelp({ showGlobalOptions: true })
    .exitOverride();

  const flags = (command: Command): GlobalFlags => command.optsWithGlobals() as GlobalFlags;
  /** a refused argument says why (commander prints it, with the help hint) and exits 2 */
  const side = (value: string | undefined, command: Command): Side | undefined => {
    if (value === undefined || value === "source" || value === "target") return value;
    command.error(`error: side must be "source" or "target", not "${value}"`, {
      exitCode: EXIT_USAGE,
      code: "abgleich.side",
    });
  };

  program
    .command("tree")
    .description(
      "show a side's datasets with snapshots, space and compression (both sides by default)",
    )
    .argument("<config>", "configuration file (YAML)")
    .argument("[side]", "source or target")
    .action(async (config: string, which: string | undefined, _opts, command: Command) => {
      const { treeCommand } = await import("./commands/tree.ts");
      setExit(await treeCommand(config, side(which, command), flags(command)));
    });

  program
    .command("compare")
    .description("show source and target side by side: what exists where, and conflicts")
    .argument("<config>", "configuration file (YAML)")
    .action(async (config: string, _opts, command: Command) => {
      const { compareCommand } = await import("./commands/compare.ts");
      setExit(await compareCommand(config, flags(command)));
    });

  const changing = (command: Command) =>
    command
      .option("-y, --yes", "answer yes to the confirmation")
      .option("-n, --dry-run", "print the plan and stop")
      .option(
        "--wait [duration]",
        "when another run changes the same pool/prefix, wait for it (at most DURATION: 90s, 30m, 2h) instead of refusing",
        (value: string) => {
          // checked here, so a bad duration is a usage error (exit 2) before anything is read
          try {
            parseWaitDuration(value);
          } catch (error) {
            throw new InvalidArgumentError((error as Error).message);
          }
          return value;
        },
      );

  changing(
    program
      .command("snap")
      .description("snapshot the source datasets that changed since their last snapshot")
      .argument("<config>", "configuration file (YAML)"),
  ).action(async (config: string, _opts, command: Command) => {
    const { snapCommand } = await import("./commands/change.ts");
    setExit(await snapCommand(config, flags(command)));
  });

  changing(
    program
      .command("backup")
      .description("send what the target lacks: full or incremental, resuming cut transfers")
      .argument("<config>", "configuration file (YAML)"),
  ).action(async (config: string, _opts, command: Command) => {
    const { backupCommand } = await import("./commands/change.ts");
    setExit(await backupCommand(config, flags(command)));
  });

  changing(
    program
      .command("cleanup")
      .description(
        "destroy old snapshots: on the source (default) those the target holds, on the target those beyond its keep rules",
      )
      .argument("<config>", "configuration file (YAML)")
      .argument("[side]", "source (default) or target"),
  )
    .option(
      "--yes-destroy-target",
      "for `cleanup target` without a terminal: confirm the danger question too",
    )
    .action(async (config: string, which: string | undefined, _opts, command: Command) => {
      const { cleanupCommand } = await import("./commands/change.ts");
      setExit(await cleanupCommand(config, side(which, command), flags(command)));
    });

  changing(
    program
      .command("wizard")
      .description(
        "snap, backup and cleanup one after another, each plan shown and confirmed: in the browser on a desktop, in the terminal otherwise",
      )
      .argument("<config>", "configuration file (YAML)"),
  )
    .option("--gui", "serve the wizard to a browser (opened when one can be)")
    .option("--tui", "the wizard in the terminal, even where a browser could be opened")
    .option("--no-open", "serve the wizard to a browser but open none: open the printed URL")
    .option("--listen <address>", "serve on ADDRESS[:PORT] instead of 127.0.0.1 at a free port")
    .action(async (config: string, _opts, command: Command) => {
      const { wizardCommand } = await import("./commands/wizard.ts");
      setExit(await wizardCommand(config, flags(command)));
    });

  changing(
    program
      .command("run")
      .description("run a workflow script: a bundled one (nightly) or your own .ts/.js file")
      .argument("<workflow>", "bundled workflow name or path to a workflow file")
      .argument("<config>", "configuration file (YAML)"),
  )
    .option("--yes-destroy-target", "let the workflow's `cleanup target` run without a terminal")
    .action(async (workflow: string, config: string, _opts, command: Command) => {
      const { runCommand } = await import("./commands/run.ts");
      setExit(await runCommand(workflow, config, flags(command)));
    });

  program
    .command("status")
    .description(
      "is the backup fresh? per dataset the newest snapshots, the lag, conflicts and the last run; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, as monitoring plugins do",
    )
    .argument("<config>", "configuration file (YAML)")
    .option(
      "--warn <duration>",
      "WARNING from this age on (26h, 90m, 2d; default status.warn or 26h)",
    )
    .option("--crit <duration>", "CRITICAL from this age on (default status.crit or 50h)")
    .option("--prometheus <file>", "also write a node_exporter textfile (atomically) to FILE")
    .exitOverride((error) => {
      if (error.exitCode === 0 || isHelp(error)) throw error;
      // unknown options and missing arguments: UNKNOWN (3) with the plugin's first line, so a
      // monitor never reads a usage error as CRITICAL
      process.stdout.write(`ABGLEICH UNKNOWN - ${error.message.replace(/^error: /, "")}\n`);
      throw new CommanderError(EXIT_UNKNOWN, error.code, error.message);
    })
    .action(async (config: string, _opts, command: Command) => {
      const { statusCommand } = await import("./commands/status.ts");
      setExit(await statusCommand(config, flags(command) as StatusFlags));
    });

  program
    .command("types")
    .description("print the plugin API's TypeScript declarations: abgleich types > abgleich.d.ts")
    .action(async () => {
      const { typesCommand } = await import("./commands/types.ts");
      setExit(typesCommand());
    });

  program
    .command("demo")
    .description("run the whole cycle on the built-in ZFS simulator in a temporary directory")
    .option("--keep", "keep the temporary directory")
    .action(async (_opts, command: Command) => {
      const { demoCommand } = await import("./commands/demo.ts");
      setExit(await demoCommand(flags(command) as GlobalFlags & { keep?: boolean }));
    });

  program
    .command("sim", { hidden: true })
    .description("the built-in ZFS simulator: abgleich sim zfs|zpool …")
    .allowUnknownOption()
    .helpOption(false)
    .argument("[args...]")
    .action(async (args: string[]) => {
      const { simMain } = await import("../sim/main.ts");
      setExit(await simMain(args));
    });

  return program;
}

/**
 * Help was shown. `help COMMAND` ends with process.exitCode as its code, which is a failure
 * until a run says otherwise (see the end of this file): help is never a failure.
 */
function isHelp(error: CommanderError): boolean {
  return error.code === "commander.help" || error.code === "commander.helpDisplayed";
}

export async function main(argv: readonly string[]): Promise<number> {
  let code = 0;
  const program = buildProgram((c) => {
    code = c;
  });
  // commander shows the help on stderr when it stands for an error: no command given, or
  // `help` of a command there is none of
  let helpForAnError = false;
  program.configureOutput({
    writeErr: (text) => {
      helpForAnError = true;
      process.stderr.write(text);
    },
  });
  try {
    await program.parseAsync([...argv], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help, `help COMMAND` and --version end with code 0; usage errors are exit 2 (README:
      // Exit codes)
      if (isHelp(error)) return helpForAnError ? EXIT_USAGE : 0;
      return error.exitCode === 0 || error.exitCode === EXIT_UNKNOWN ? error.exitCode : EXIT_USAGE;
    }
    throw error;
  }
  return code;
}

/** say one line on stderr, whatever state it is in */
function sayOnStderr(text: string): void {
  try {
    process.stderr.write(`${redact(text)}\n`);
  } catch {
    // stderr is gone: the exit code is all there is
  }
}

/** wait for what is still being written: a write error (a full disk) shows once it is done */
async function flushOutput(): Promise<void> {
  const flushed = (stream: NodeJS.WriteStream) =>
    new Promise<void>((resolve) => {
      try {
        stream.write("", () => resolve());
      } catch {
        resolve();
      }
    });
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  // the error of a write the stream took comes a turn of the event loop later
  await new Promise<void>((resolve) => setImmediate(resolve));
}

if (import.meta.main) {
  // until the run says otherwise, an exit is a failure: a plugin that calls process.exit()
  // in a hook must not turn a failed run into exit 0
  process.exitCode = EXIT_FAILED;
  // help and --version write before the output code is loaded: their write errors too
  process.stdout.on("error", (error) => outputLost("stdout", error));
  process.stderr.on("error", (error) => outputLost("stderr", error));
  // an error nothing awaited or caught (a plugin's promise left rejected, a throw in its
  // timer): one line naming it, the run goes on, and cannot end as a success
  let unhandled = 0;
  const stray = (error: unknown) => {
    unhandled++;
    const text = error instanceof Error ? error.message : String(error);
    sayOnStderr(
      `abgleich: error nothing handled (a plugin's or workflow's promise or timer, or abgleich's own mistake): ${text}`,
    );
  };
  process.on("unhandledRejection", stray);
  process.on("uncaughtException", stray);
  const code = await main(process.argv.slice(2));
  await flushOutput();
  const lost = lostOutput();
  // the run itself went as its code says; its output did not arrive, which is a failure
  if (lost.length > 0)
    sayOnStderr(
      `abgleich: output could not be written (${lost.join("; ")}); the run ended with exit ${code}`,
    );
  process.exitCode = (lost.length > 0 || unhandled > 0) && code === EXIT_OK ? EXIT_FAILED : code;
}
