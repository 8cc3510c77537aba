// The browser wizard under test: `abgleich wizard CONFIG --no-open` on the simulator, and
// Debian's chromium driven by playwright-core (no browser download; .ci/run installs chromium).

import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { CLI_MAIN, type SimEnv } from "../helpers/sim-env.ts";

export const CHROMIUM = process.env.ABGLEICH_CHROMIUM ?? "/usr/bin/chromium";

/** headless chromium; playwright gives it a fresh temporary profile */
export async function launchBrowser(): Promise<{ browser: Browser; close(): Promise<void> }> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: apt-get install -y chromium (or set ABGLEICH_CHROMIUM)`,
    );
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close();
    },
  };
}

export interface Wizard {
  /** the URL with the token, as printed */
  url: string;
  child: ReturnType<typeof Bun.spawn>;
  /** everything printed so far */
  output(): string;
  /** the exit code once the process ended */
  exited: Promise<number>;
}

const started = new Set<ReturnType<typeof Bun.spawn>>();

/** end every wizard a failed test left running (each holds its pools' lock) */
export function killWizards(): void {
  for (const child of started) if (child.exitCode === null) child.kill("SIGKILL");
  started.clear();
}

/** start the wizard and wait for its URL */
export async function startWizard(
  env: SimEnv,
  args: readonly string[],
  extraEnv: Record<string, string> = {},
): Promise<Wizard> {
  const child = Bun.spawn([process.execPath, CLI_MAIN, "wizard", ...args, "--no-open"], {
    env: {
      ...process.env,
      PATH: env.path,
      TZ: "UTC",
      NO_COLOR: "1",
      // this test's own locks and run state, as SimEnv.cli has them
      ABGLEICH_LOCK_DIR: join(env.dir, "locks"),
      ABGLEICH_STATE_DIR: join(env.dir, "run-state"),
      ...extraEnv,
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  started.add(child);
  let text = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) text += decoder.decode(chunk);
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const deadline = Date.now() + 30_000;
  let url: string | undefined;
  while (url === undefined) {
    url = /(http:\/\/\S+\?token=\S+)/.exec(text)?.[1];
    if (url !== undefined) break;
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`the wizard printed no URL:\n${text}`);
    await Bun.sleep(50);
  }
  return {
    url,
    child,
    output: () => text,
    exited: child.exited.then(async (code) => {
      await pumped;
      return code;
    }),
  };
}

/** the step's section on the page */
export const step = (page: Page, key: string) => page.locator(`#step-${key}`);

/** wait until the step asks for the go */
export async function waitForQuestion(page: Page, key: string): Promise<void> {
  await step(page, key).locator(".question button.skip").waitFor({ timeout: 60_000 });
}

export async function stepStatus(page: Page, key: string): Promise<string> {
  return (await page.locator(`#status-${key}`).textContent()) ?? "";
}

/** wait for the step's status line to read `words` */
export async function waitForStatus(page: Page, key: string, words: string): Promise<void> {
  await page
    .locator(`#status-${key}`, { hasText: words })
    .waitFor({ timeout: 60_000 })
    .catch(async (error) => {
      throw new Error(
        `${key} never said "${words}" (it says "${await stepStatus(page, key)}"): ${error}`,
      );
    });
}
