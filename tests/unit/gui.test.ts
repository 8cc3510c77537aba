// The browser wizard's pure parts: the page's size budget and self-containment, the question
// protocol (the danger confirmation's typed pool name), which wizard runs, the Host rule.

import { describe, expect, test } from "bun:test";
import { configWithDefaults } from "../../lib/config/types.ts";
import type { StageInfo } from "../../lib/engine/hooks.ts";
import { pageAssets } from "../../lib/gui/assets.ts";
import { EventHub, guiUi } from "../../lib/gui/bridge.ts";
import { chooseWizard, parseListen } from "../../lib/gui/choose.ts";
import { PAGE } from "../../lib/gui/page.ts";
import type { GuiEvent } from "../../lib/gui/protocol.ts";
import { hostAllowed } from "../../lib/gui/server.ts";
import type { ChainAction, Plan, SendAction } from "../../lib/plan/types.ts";
import { newChainEntry } from "../helpers/chain.ts";

/** the whole page: HTML, CSS and script */
const BUDGET_BYTES = 60 * 1024;

describe("the page", () => {
  test(`is small: under ${BUDGET_BYTES / 1024} KiB in all`, () => {
    const size = [PAGE.html, PAGE.css, PAGE.js].reduce((sum, s) => sum + Buffer.byteLength(s), 0);
    expect(size).toBeGreaterThan(1000);
    expect(size).toBeLessThan(BUDGET_BYTES);
  });

  test("loads nothing from the network: only its own /app.js and /app.css", () => {
    for (const text of [PAGE.html, PAGE.css, PAGE.js])
      expect(text).not.toMatch(/(https?:)?\/\/[a-z]/i);
    const references = [...PAGE.html.matchAll(/(?:src|href)="([^"]*)"/g)].map((m) => m[1]);
    expect(references.sort()).toEqual(["#steps", "/app.css", "/app.js"]);
    // the client's modules are bundled in: no import left for the browser to fetch
    expect(PAGE.js).not.toMatch(/\bimport\s*[{("']/);
  });

  test("bundled at run time (where Bun runs no macros: under node_modules) it is the same page", () => {
    expect(pageAssets()).toEqual(PAGE);
  });

  test("follows the system's light or dark theme", () => {
    expect(PAGE.css).toContain("prefers-color-scheme: dark");
    expect(PAGE.html).toContain('name="color-scheme" content="light dark"');
  });
});

const plan: Plan = { actions: [], conflicts: [], skipped: [], errors: [] };

/** a backup of tank/data into backup that changes things */
function backupInfo(): StageInfo {
  return {
    stage: "backup",
    config: configWithDefaults({ zpool: "tank", prefix: "data" }, { zpool: "backup" }),
    dryRun: false,
    changes: true,
    signal: new AbortController().signal,
  };
}

function questions() {
  const hub = new EventHub();
  const events: GuiEvent[] = [];
  hub.subscribe((event) => events.push(event));
  const ui = guiUi(hub);
  const info = (side: "source" | "target"): StageInfo => ({
    stage: "cleanup",
    side,
    config: configWithDefaults({ zpool: "tank", prefix: "data" }, { zpool: "backup" }),
    dryRun: false,
    changes: true,
    signal: new AbortController().signal,
  });
  return { ui, events, info };
}

describe("questions", () => {
  test("the danger confirmation settles only with the target pool's exact name", async () => {
    const { ui, events, info } = questions();
    let answer: boolean | undefined;
    void ui.confirm(info("target"), plan, true).then((yes) => {
      answer = yes;
    });
    const ask = events.find((e) => e.type === "ask");
    expect(ask).toMatchObject({
      type: "ask",
      id: 1,
      step: "cleanup-target",
      danger: true,
      pool: "backup",
    });
    for (const wrong of [undefined, "", "Backup", "tank", "backup/x", "backu"]) {
      const result = ui.answer({
        id: 1,
        answer: "go",
        ...(wrong === undefined ? {} : { pool: wrong }),
      });
      expect(result.status).toBe(422);
      expect(result.error).toContain('"backup"');
    }
    await Bun.sleep(0);
    expect(answer).toBeUndefined();
    expect(events.filter((e) => e.type === "refused")).toHaveLength(6);
    expect(ui.answer({ id: 1, answer: "go", pool: "  backup " }).status).toBe(200);
    await Bun.sleep(0);
    expect(answer).toBe(true);
    // answered: the same question cannot be answered again
    expect(ui.answer({ id: 1, answer: "go", pool: "backup" }).status).toBe(409);
  });

  test("Skip answers no; a plain question needs no name; a stale id is refused", async () => {
    const { ui, info } = questions();
    const first = ui.confirm(info("source"), plan, false);
    expect(ui.answer({ id: 2, answer: "go" }).status).toBe(409);
    expect(ui.answer({ id: 1, answer: "skip" }).status).toBe(200);
    expect(await first).toBe(false);
    const second = ui.confirm(info("source"), plan, false);
    expect(ui.answer({ id: 2, answer: "go" }).status).toBe(200);
    expect(await second).toBe(true);
    const third = ui.confirm(info("target"), plan, true);
    ui.cancelQuestion();
    expect(await third).toBe(false);
  });
});

describe("which wizard", () => {
  const desktop = { interactive: true, opener: "/usr/bin/xdg-open" };
  const headless = { interactive: true, opener: null };
  test("the browser on a desktop, the terminal elsewhere, the flags decide first", () => {
    expect(chooseWizard({}, desktop)).toBe("gui");
    expect(chooseWizard({}, headless)).toBe("tui");
    expect(chooseWizard({}, { ...desktop, interactive: false })).toBe("tui");
    expect(chooseWizard({ yes: true }, desktop)).toBe("tui");
    expect(chooseWizard({ json: true }, desktop)).toBe("tui");
    expect(chooseWizard({ tui: true }, desktop)).toBe("tui");
    expect(chooseWizard({ gui: true }, headless)).toBe("gui");
    expect(chooseWizard({ open: false }, headless)).toBe("gui");
    expect(chooseWizard({ listen: "0.0.0.0" }, headless)).toBe("gui");
    expect(() => chooseWizard({ tui: true, gui: true }, desktop)).toThrow("--tui");
  });

  test("--listen ADDRESS[:PORT]", () => {
    expect(parseListen(undefined)).toEqual({ hostname: "127.0.0.1", port: 0 });
    expect(parseListen("0.0.0.0")).toEqual({ hostname: "0.0.0.0", port: 0 });
    expect(parseListen("192.168.1.5:8080")).toEqual({ hostname: "192.168.1.5", port: 8080 });
    expect(parseListen("::1")).toEqual({ hostname: "::1", port: 0 });
    expect(parseListen("[::1]:9000")).toEqual({ hostname: "::1", port: 9000 });
    expect(parseListen("nas.local:80")).toEqual({ hostname: "nas.local", port: 80 });
    expect(() => parseListen("host:99999")).toThrow("--listen");
    expect(() => parseListen("host:x")).toThrow("--listen");
  });

  test("Host: addresses, localhost and the --listen name; no other name", () => {
    expect(hostAllowed("127.0.0.1:4000", "127.0.0.1")).toBe(true);
    expect(hostAllowed("localhost:1", "127.0.0.1")).toBe(true);
    expect(hostAllowed("[::1]:4000", "127.0.0.1")).toBe(true);
    expect(hostAllowed("10.0.0.7:4000", "0.0.0.0")).toBe(true);
    expect(hostAllowed("nas.local:4000", "nas.local")).toBe(true);
    expect(hostAllowed("nas.local:4000", "0.0.0.0")).toBe(false);
    expect(hostAllowed("attacker.example:4000", "127.0.0.1")).toBe(false);
    expect(hostAllowed("127.0.0.1.attacker.example", "127.0.0.1")).toBe(false);
    expect(hostAllowed(null, "127.0.0.1")).toBe(false);
  });
});

describe("secrets", () => {
  test("a failed resume's token never reaches the page: not live, not replayed", () => {
    const hub = new EventHub();
    const events: GuiEvent[] = [];
    hub.subscribe((event) => events.push(event));
    const ui = guiUi(hub);
    const token = "1-11f46b41af-108-789c636064000310a500c4ec50360710e72765a526973030";
    const send: SendAction = {
      kind: "send",
      subname: "media",
      sourceDataset: "tank/data/media",
      targetDataset: "backup/media",
      mode: "resume",
      from: null,
      to: "s2",
      snapshots: ["s2"],
      token,
      raw: false,
      fromBookmark: false,
      keepUnmounted: false,
    };
    const info = backupInfo();
    ui.showPlan(info, { ...plan, actions: [send] }, new Map());
    ui.actionStarted(send, null);
    ui.actionFinished(send, {
      ok: false,
      error: `command failed on source (localhost): zfs send -v -P -t ${token}\nexit code: 1`,
      durationMs: 5,
    });
    const failed = events.find((event) => event.type === "action" && event.state === "failed");
    expect(failed).toMatchObject({
      error: expect.stringContaining("zfs send -v -P -t <resume token>"),
    });
    for (const event of [...events, ...hub.replay()])
      expect(JSON.stringify(event)).not.toContain(token);
  });
});

describe("a chain's protection narrowed by failed transfers", () => {
  test("its row is re-worded: the datasets it still covers, and which not", () => {
    const hub = new EventHub();
    const events: GuiEvent[] = [];
    hub.subscribe((event) => events.push(event));
    const ui = guiUi(hub);
    const roots = { source: "tank/data", target: "backup" };
    const planned: ChainAction = {
      kind: "chain",
      entries: ["", "big", "big/sub", "small"].map((subname) =>
        newChainEntry(subname, roots, "s1"),
      ),
    };
    const info = backupInfo();
    ui.showPlan(info, { ...plan, actions: [planned] }, new Map());
    // as the engine runs it after big's transfer failed: a new action without big and below
    const narrowed: ChainAction = {
      kind: "chain",
      entries: planned.entries.filter((entry) => !entry.subname.startsWith("big")),
    };
    ui.actionStarted(narrowed, null);
    ui.actionFinished(narrowed, { ok: true, durationMs: 3 });
    const actions = events.filter((event) => event.type === "action");
    expect(actions).toHaveLength(2);
    for (const event of actions) {
      expect(event).toMatchObject({
        step: "backup",
        index: 0,
        view: {
          kind: "chain",
          dataset: "(root), small",
          text: expect.stringMatching(
            /^protect the incremental chain of 2 dataset\(s\).*; not for big, big\/sub: their transfers did not arrive$/,
          ),
        },
      });
    }
    // the action as planned keeps its planned words
    events.length = 0;
    ui.showPlan(info, { ...plan, actions: [planned] }, new Map());
    ui.actionStarted(planned, null);
    expect(events.find((event) => event.type === "action")).not.toHaveProperty("view");
  });
});
