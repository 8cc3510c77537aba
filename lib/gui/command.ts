// `abgleich wizard` in the browser: the same engine Run as every command, with the GUI's
// StageUi. The server starts once the configuration is loaded, prints its URL with the run's
// token, and ends when the run is over and the page closed (or the page's Close), or at once
// after Ctrl-C.

import { randomBytes } from "node:crypto";
import { EXIT_USAGE } from "../cli/io.ts";
import { runSession, type SessionFlags } from "../cli/session.ts";
import { rootOf, type SideConfig } from "../config/types.ts";
import { summaryText } from "../engine/api.ts";
import { cancelOnSignals } from "../engine/cancel.ts";
import { createHooks } from "../engine/hooks.ts";
import type { Run, StageResult } from "../engine/runner.ts";
import { stages } from "../engine/stages/index.ts";
import { compareTrees } from "../plan/compare.ts";
import { GuidSharing } from "../zfs/list.ts";
import { EventHub, guiUi } from "./bridge.ts";
import { browserOpener, parseListen, type WizardFlags } from "./choose.ts";
import type { StepKey } from "./protocol.ts";
import { type GuiServer, type PageAssets, startGuiServer } from "./server.ts";
import { compareView } from "./view.ts";

export type GuiWizardFlags = SessionFlags & WizardFlags;

/** after the last page went away: a reload comes back within this */
const PAGE_GONE_MS = 2000;

const STEPS: [StepKey, (run: Run) => Promise<StageResult>][] = [
  ["snap", stages.snap],
  ["backup", stages.backup],
  ["cleanup-source", (run) => stages.cleanup(run, "source")],
  ["cleanup-target", (run) => stages.cleanup(run, "target")],
];

/** the server, or an error that names the address and what to give instead */
function listenOrSay(
  listen: { hostname: string; port: number },
  options: Parameters<typeof startGuiServer>[0],
): ReturnType<typeof startGuiServer> {
  try {
    return startGuiServer(options);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === "EADDRINUSE"
        ? "the port is taken"
        : code === "EADDRNOTAVAIL"
          ? "no address of this machine"
          : code === "EACCES"
            ? "a port below 1024 needs root"
            : (error as Error).message;
    throw new Error(
      `--listen ${listen.hostname}:${listen.port}: cannot listen there (${why}); give an address of this machine (127.0.0.1, 0.0.0.0 or one of its own) and a free port, or leave --listen out`,
    );
  }
}

export async function guiWizard(configPath: string, flags: GuiWizardFlags): Promise<number> {
  let listen: { hostname: string; port: number };
  try {
    listen = parseListen(flags.listen);
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n`);
    return EXIT_USAGE;
  }
  const hub = new EventHub();
  const token = randomBytes(24).toString("base64url");
  const cancelling = new AbortController();
  const signals = cancelOnSignals((text) => process.stderr.write(`${text}\n`));
  const ui = guiUi(hub, { warn: (text) => process.stderr.write(`warning: ${text}\n`) });
  const cancel = (reason: unknown) => {
    if (cancelling.signal.aborted) return;
    hub.publish({ type: "cancelling" });
    cancelling.abort(reason);
    ui.cancelQuestion();
  };
  signals.signal.addEventListener("abort", () => cancel(signals.signal.reason), { once: true });

  let server: GuiServer | null = null;
  let runOver = false;
  let everConnected = false;
  let pages = 0;
  let goneTimer: ReturnType<typeof setTimeout> | undefined;
  const over = Promise.withResolvers<void>();
  const checkEnd = () => {
    clearTimeout(goneTimer);
    if (!runOver || !everConnected || pages > 0) return;
    goneTimer = setTimeout(() => {
      if (pages === 0) over.resolve();
    }, PAGE_GONE_MS);
  };
  signals.signal.addEventListener("abort", () => runOver && over.resolve(), { once: true });

  // the terminal keeps a short log of the steps, for whoever started it
  hub.subscribe((event) => {
    if (event.type === "stage")
      say(flags, `${event.step}: ${event.status}${event.error ? ` (${event.error})` : ""}`);
  });

  const hooks = createHooks();
  hooks.done.tap("gui", (summary) => {
    hub.publish({ type: "summary", code: summary.exitCode, text: summaryText(summary) });
  });

  try {
    const code = await runSession(
      configPath,
      flags,
      { readOnly: false, summary: "always", command: "wizard", makeUi: () => ui },
      async (run, io) => {
        server = listenOrSay(listen, {
          ...listen,
          token,
          assets: await loadPage(),
          hub,
          handlers: {
            answer: (request) => ui.answer(request),
            cancel: () => cancel("cancelled"),
            close: () => {
              if (!runOver) return cancel("cancelled");
              hub.publish({ type: "closed" });
              over.resolve();
            },
          },
          onClients: (count) => {
            pages = count;
            if (count > 0) everConnected = true;
            checkEnd();
          },
        });
        io.print(`abgleich wizard: open ${server.tokenUrl}`);
        if (
          listen.hostname !== "127.0.0.1" &&
          listen.hostname !== "::1" &&
          listen.hostname !== "localhost"
        )
          io.warn(
            `warning: listening on ${listen.hostname}: the token travels unencrypted over the network; prefer ssh -L ${server.port}:127.0.0.1:${server.port}`,
          );
        else
          io.print(
            `  from another machine: ssh -L ${server.port}:127.0.0.1:${server.port} HOST, then open the same URL there`,
          );
        openBrowser(flags, server.tokenUrl, (text) => io.print(text));
        hub.publish({
          type: "hello",
          configFile: run.config.file,
          source: rootName(run.config.source),
          target: rootName(run.config.target),
          targetPool: run.config.target.zpool,
          dryRun: run.options.dryRun,
        });
        const read = await stages.compare(run);
        hub.publish({
          type: "compare",
          view: read.comparison ? compareView(read.comparison, read.inventories) : null,
          error: read.outcome.error?.message ?? null,
        });
        if (read.outcome.status !== "ok") return null;
        let code: number | null = 0;
        let changed = false;
        for (const [step, stage] of STEPS) {
          hub.publish({ type: "step", step });
          const result = await stage(run);
          const status = result.outcome.status;
          if (result.results.length > 0) changed = true;
          if (status === "failed" || status === "cancelled") {
            code = null;
            break;
          }
          // a step skipped by the user is no failure; its conflicts still are
          if (result.plan.conflicts.length + result.plan.errors.length > 0) code = 1;
        }
        if (changed && !run.signal.aborted) await compareAfter(run, hub);
        return code;
      },
      { signal: cancelling.signal, hooks },
    );
    runOver = true;
    if (server === null) return code;
    if (signals.signal.aborted) return code;
    checkEnd();
    say(
      flags,
      everConnected
        ? "the run is over: close the page to end the wizard (or Ctrl-C)"
        : `the run is over: open ${(server as GuiServer).tokenUrl} for its summary, or Ctrl-C to end`,
    );
    await over.promise;
    return code;
  } finally {
    clearTimeout(goneTimer);
    (server as GuiServer | null)?.stop();
    signals.dispose();
  }
}

/** both trees once more after the steps changed them, read as the engine reads them */
async function compareAfter(run: Run, hub: EventHub): Promise<void> {
  try {
    const sharing = new GuidSharing();
    const [source, target] = await Promise.all([
      run.inventory("source", sharing),
      run.inventory("target", sharing),
    ]);
    hub.publish({
      type: "compare",
      view: compareView(compareTrees(source, target, run.config), { source, target }),
      error: null,
      after: true,
    });
  } catch {
    // the steps' own outcomes already said what went wrong; the old view stays
  }
}

/**
 * The page as built into abgleich. Installed under node_modules (npm i -g), Bun runs no macros,
 * so the page is bundled now instead, from the same files.
 */
async function loadPage(): Promise<PageAssets> {
  try {
    return (await import("./page.ts")).PAGE;
  } catch {
    return (await import("./assets.ts")).pageAssets();
  }
}

const say = (flags: SessionFlags, text: string) => {
  if (!flags.json) process.stdout.write(`${text}\n`);
};

const rootName = (side: SideConfig) =>
  `${side.host === "localhost" ? "" : `${side.host}:`}${rootOf(side)}`;

function openBrowser(flags: WizardFlags, url: string, say: (text: string) => void): void {
  if (flags.open === false) return;
  const opener = browserOpener();
  if (opener === null) {
    say("  (no browser to open here: open the URL yourself)");
    return;
  }
  try {
    const child = Bun.spawn([opener, url], { stdio: ["ignore", "ignore", "ignore"] });
    child.unref();
  } catch (error) {
    say(`  (could not start ${opener}: ${(error as Error).message}; open the URL yourself)`);
  }
}
