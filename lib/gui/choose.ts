// Which wizard runs: the browser's or the terminal's. Kept apart from the server so the
// terminal wizard never loads the page.
//
// --tui: the terminal. --gui, --no-open or --listen: the browser's (served; opened when one
// can be). Otherwise the browser's only where a person sits at a desktop: stdin and stdout are
// terminals, a display is set (DISPLAY or WAYLAND_DISPLAY) and xdg-open is installed, and
// neither --json nor --yes asks for an unattended run. Everywhere else (ssh to a NAS, cron,
// scripts): the terminal, as before.

import { isIP } from "node:net";

export interface WizardFlags {
  gui?: boolean;
  tui?: boolean;
  /** false with --no-open */
  open?: boolean;
  listen?: string;
  json?: boolean;
  yes?: boolean;
}

/** the command that opens a URL in the user's browser, or null when none can be opened */
export function browserOpener(
  env: Record<string, string | undefined> = process.env,
  which: (command: string) => string | null = Bun.which,
): string | null {
  if (process.platform === "darwin") return which("open");
  if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return null;
  return which("xdg-open");
}

export function chooseWizard(
  flags: WizardFlags,
  context: { interactive: boolean; opener: string | null },
): "gui" | "tui" {
  if (flags.tui) {
    if (flags.gui || flags.listen !== undefined || flags.open === false)
      throw new Error(
        "--tui runs the terminal wizard: it cannot be combined with --gui, --listen or --no-open",
      );
    return "tui";
  }
  if (flags.gui || flags.open === false || flags.listen !== undefined) return "gui";
  if (flags.json || flags.yes) return "tui";
  return context.interactive && context.opener !== null ? "gui" : "tui";
}

/** `--listen ADDR[:PORT]` (`[v6]:PORT` for IPv6); port 0 picks a free one */
export function parseListen(value: string | undefined): { hostname: string; port: number } {
  if (value === undefined || value === "") return { hostname: "127.0.0.1", port: 0 };
  let hostname = value;
  let port = 0;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  if (bracket) {
    hostname = bracket[1] as string;
    port = bracket[2] === undefined ? 0 : Number(bracket[2]);
  } else if (isIP(value) !== 6 && value.includes(":")) {
    hostname = value.slice(0, value.lastIndexOf(":"));
    port = Number(value.slice(value.lastIndexOf(":") + 1));
  }
  if (hostname === "" || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--listen ${value}: expected ADDRESS or ADDRESS:PORT, e.g. 0.0.0.0:8080`);
  return { hostname, port };
}
