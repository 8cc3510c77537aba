// The browser wizard end to end: the real CLI on the simulator, Debian's chromium clicking
// through the page. Each test checks the pools afterwards through `zfs list`, not the page.

import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { encryptedCreateArgs } from "../helpers/encryption.ts";
import { configYaml, createSimEnv, type SimEnv } from "../helpers/sim-env.ts";
import {
  killWizards,
  launchBrowser,
  startWizard,
  step,
  stepStatus,
  type Wizard,
  waitForQuestion,
  waitForStatus,
} from "./helpers.ts";

/** the page's own (the functions given to `evaluate` run there; this project has no DOM types) */
declare const getComputedStyle: (element: unknown) => { color: string; overflowWrap: string };

const LONG_MS = 120_000;
/** dated like abgleich's own snapshots, so cleanup counts them as its own */
const day = (n: number) => `202601010${n}`;

let env: SimEnv;
let browser: Browser;
let closeBrowser: () => Promise<void>;
/** keep_snapshots 1 and keep_backlog 0: cleanup leaves the newest common snapshot only */
let config: string;

beforeAll(async () => {
  env = createSimEnv();
  config = env.writeConfig(
    configYaml(
      { zpool: "src", prefix: "data" },
      { zpool: "dst", prefix: "backup" },
      "keep_snapshots: 1\nkeep_backlog: 0\n",
    ),
  );
  ({ browser, close: closeBrowser } = await launchBrowser());
});

afterEach(() => killWizards());

afterAll(async () => {
  await closeBrowser?.();
  env?.remove();
});

async function open(wizard: Wizard): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(wizard.url);
  return page;
}

/** the page's Close button ends the wizard once the run is over */
async function closeAndExit(page: Page, wizard: Wizard): Promise<number> {
  await page.locator("#summary").waitFor({ timeout: 60_000 });
  await page.locator("#close").click();
  await page.close();
  return wizard.exited;
}

test(
  "snap → backup → cleanup source → cleanup target clicked through; the pools show each step",
  async () => {
    env.seed({
      now: 1_767_225_600,
      pools: [
        {
          name: "src",
          size: "1G",
          datasets: [
            {
              name: "data",
              snapshots: [1, 2, 3].map((n) => ({ name: day(n), written: "1M" })),
            },
            { name: "data/home", snapshots: [{ name: day(1), written: "2M" }], written: "2M" },
          ],
        },
        { name: "dst", size: "1G" },
      ],
    });
    const wizard = await startWizard(env, [config]);
    const page = await open(wizard);

    // both trees: the source's datasets, missing on the target
    await page.locator("#compare table").waitFor();
    expect(await page.locator("#compare").textContent()).toContain("only on the source");

    await waitForQuestion(page, "snap");
    // home changed since its snapshot, the root did not
    const snapPlan = (await step(page, "snap").locator(".plan").textContent()) ?? "";
    expect(snapPlan).toContain("src/data/home@");
    expect(snapPlan).toContain("(root) — unchanged");
    // a bar only where bytes move: none for the snapshot, one per send below
    expect(await step(page, "snap").locator("progress").count()).toBe(0);
    await step(page, "snap").getByRole("button", { name: "Go" }).click();
    await waitForStatus(page, "snap", "done");
    const made = env.snapshots("src/data/home").at(-1) as string;
    expect(env.snapshots("src/data/home")).toEqual([day(1), made]);
    expect(env.snapshots("src/data")).toEqual([day(1), day(2), day(3)]);

    await waitForQuestion(page, "backup");
    const backupPlan = (await step(page, "backup").locator(".plan").textContent()) ?? "";
    expect(backupPlan).toContain("full send src/data");
    expect(backupPlan).toContain("to send");
    expect(await step(page, "backup").locator("progress").count()).toBe(
      await step(page, "backup").locator("tr", { hasText: "send src/data" }).count(),
    );
    await step(page, "backup").getByRole("button", { name: "Go" }).click();
    await waitForStatus(page, "backup", "done");
    expect(env.snapshots("dst/backup")).toEqual([day(1), day(2), day(3)]);
    expect(env.snapshots("dst/backup/home")).toEqual([day(1), made]);
    // every action of the plan done: the sends and the chain's protection
    const rows = step(page, "backup").locator("table.actions tbody tr");
    expect(await rows.count()).toBeGreaterThanOrEqual(3);
    expect(await step(page, "backup").locator("tr[data-state=done]").count()).toBe(
      await rows.count(),
    );

    await waitForQuestion(page, "cleanup-source");
    expect(await step(page, "cleanup-source").locator(".plan").textContent()).toContain("freed");
    await step(page, "cleanup-source").getByRole("button", { name: "Go" }).click();
    await waitForStatus(page, "cleanup-source", "done");
    expect(env.snapshots("src/data")).toEqual([day(3)]);
    expect(env.snapshots("src/data/home")).toEqual([made]);

    // cleanup target: the pool's name typed, wrong first
    await waitForQuestion(page, "cleanup-target");
    const target = step(page, "cleanup-target");
    expect(await target.locator(".danger-text").textContent()).toContain("DANGER");
    await target.getByLabel("Type the target pool's name").fill("src");
    await target.getByRole("button", { name: "Destroy on the target" }).click();
    await target.locator(".refused", { hasText: "Not confirmed" }).waitFor();
    expect(env.snapshots("dst/backup")).toEqual([day(1), day(2), day(3)]);
    await target.getByLabel("Type the target pool's name").fill("dst");
    await target.getByRole("button", { name: "Destroy on the target" }).click();
    await waitForStatus(page, "cleanup-target", "done");
    expect(env.snapshots("dst/backup")).toEqual([day(3)]);
    expect(env.snapshots("dst/backup/home")).toEqual([made]);

    // the summary comes after the last step's status: the trees are read again in between
    await page.locator("#summary").waitFor({ timeout: 60_000 });
    expect(await page.locator("#summary-result").textContent()).toContain("exit code 0");
    // both trees read again: every dataset in sync now
    expect(await page.locator("#compare-title").textContent()).toContain("after the run");
    expect(await page.locator("#compare tbody > tr[data-state=in-sync]").count()).toBe(2);
    expect(await closeAndExit(page, wizard)).toBe(0);
  },
  LONG_MS,
);

test(
  "Cancel mid-transfer: exit 130, the partial receive kept; the next wizard resumes it",
  async () => {
    env.seed({
      now: 1_767_225_600,
      pools: [
        {
          name: "src",
          size: "64G",
          // big enough that the simulator streams it for seconds
          datasets: [{ name: "data", snapshots: [{ name: day(1), written: "6G" }] }],
        },
        { name: "dst", size: "64G" },
      ],
    });
    const first = await startWizard(env, [config]);
    const page = await open(first);
    await waitForQuestion(page, "backup");
    expect(await stepStatus(page, "snap")).toContain("nothing to do");
    await step(page, "backup").getByRole("button", { name: "Go" }).click();
    // live progress: bytes of the expected size, a share, then a rate
    const detail = step(page, "backup").locator("tr[data-state=running] .detail");
    await detail.filter({ hasText: /of .*%/ }).waitFor({ timeout: 60_000 });
    await page.getByRole("button", { name: "Cancel the run" }).click();
    await waitForStatus(page, "backup", "cancelled");
    // the cut transfer says so; the chain's protection after it never ran
    const stopped = step(page, "backup").locator("tr[data-state=stopped]");
    expect(await stopped.count()).toBe(1);
    expect(await stopped.textContent()).toContain("the next backup resumes");
    expect(await step(page, "backup").locator("tr[data-state=not-run]").count()).toBe(1);
    await page.locator("#summary").waitFor({ timeout: 60_000 });
    expect(await page.locator("#summary-result").textContent()).toContain("exit code 130");
    expect(await closeAndExit(page, first)).toBe(130);
    expect(env.list().get("dst/backup")?.token).toEqual(expect.any(String));
    expect(env.snapshots("dst/backup")).toEqual([]);

    const second = await startWizard(env, [config]);
    const again = await open(second);
    await waitForQuestion(again, "backup");
    // the trees say what waits on the target, as compare does
    expect(await again.locator("tr", { hasText: "(root)" }).first().textContent()).toContain(
      "a cut transfer waits here: the next backup resumes it",
    );
    expect(await step(again, "backup").locator(".plan").textContent()).toContain("resume send");
    await step(again, "backup").getByRole("button", { name: "Go" }).click();
    await waitForStatus(again, "backup", "done");
    expect(env.snapshots("dst/backup")).toEqual([day(1)]);
    expect(env.list().get("dst/backup")?.token).toBeNull();
    // the cleanup steps find nothing to do (one snapshot, the newest common): the run ends well
    // on its own (clicking Cancel here raced the run's end)
    expect(await closeAndExit(again, second)).toBe(0);
  },
  LONG_MS,
);

test(
  "a conflict is shown with its explanation in both trees and in the backup plan; nothing is sent",
  async () => {
    // the same snapshot name on both sides, made apart: different guids
    env.seed({
      now: 1_767_225_600,
      pools: [
        {
          name: "src",
          size: "1G",
          datasets: [{ name: "data", snapshots: [{ name: day(1), written: "1M" }] }],
        },
        {
          name: "dst",
          size: "1G",
          datasets: [{ name: "backup", snapshots: [{ name: day(1), written: "1M" }] }],
        },
      ],
    });
    const before = env.list();
    const wizard = await startWizard(env, [config]);
    const page = await open(wizard);
    const row = page.locator("#compare tr[data-state=conflict]");
    await row.waitFor({ timeout: 30_000 });
    const words = (await row.textContent()) ?? "";
    expect(words).toContain("Conflict: same snapshot name, different data");
    expect(words).toContain(day(1));
    await waitForStatus(page, "backup", "failed");
    const conflicts = (await step(page, "backup").locator(".conflicts").textContent()) ?? "";
    expect(conflicts).toContain("same snapshot name, different data");
    expect(conflicts).toContain("(root)");
    // the step's error names the conflict the plan shows whole
    expect(await page.locator("#notes-backup li.error").textContent()).toBe(
      "✗ backup: 2 conflicts in (root), shown in the plan above with what to do",
    );
    // the wizard stops at the failed step: once the run is over, the rest say so
    await page.locator("#summary:not([hidden])").waitFor({ timeout: 60_000 });
    expect(await stepStatus(page, "cleanup-source")).toContain("not run: the run ended");
    // closing the tab (no button) ends the wizard
    await page.close();
    expect(await wizard.exited).toBe(1);
    expect(env.list()).toEqual(before);
  },
  LONG_MS,
);

test(
  "keyboard only: Enter on the focused Go runs snap, Tab and Enter skip backup",
  async () => {
    env.seed({
      now: 1_767_225_600,
      pools: [
        {
          name: "src",
          size: "1G",
          datasets: [
            { name: "data", snapshots: [{ name: day(1), written: "1M" }] },
            { name: "data/home", snapshots: [{ name: day(1), written: "2M" }], written: "2M" },
          ],
        },
        { name: "dst", size: "1G" },
      ],
    });
    const wizard = await startWizard(env, [config]);
    const page = await open(wizard);
    await waitForQuestion(page, "snap");
    // the question takes the focus: no mouse needed
    expect(await page.locator(":focus").textContent()).toBe("Go");
    await page.keyboard.press("Enter");
    await waitForStatus(page, "snap", "done");
    expect(env.snapshots("src/data/home")).toHaveLength(2);

    await waitForQuestion(page, "backup");
    expect(await page.locator(":focus").textContent()).toBe("Go");
    await page.keyboard.press("Tab");
    expect(await page.locator(":focus").textContent()).toBe("Skip step");
    await page.keyboard.press("Enter");
    await waitForStatus(page, "backup", "skipped");
    expect(env.snapshots("dst/backup")).toEqual([]);
    await page.locator("#summary").waitFor({ timeout: 60_000 });
    await page.locator("#close").focus();
    await page.keyboard.press("Enter");
    await page.locator("#closed-note").waitFor();
    await page.close();
    await wizard.exited;
  },
  LONG_MS,
);

test(
  "the danger confirmation: a wrong pool name is refused and destroys nothing; Skip leaves the target",
  async () => {
    env.seed({
      now: 1_767_225_600,
      pools: [
        {
          name: "src",
          size: "1G",
          datasets: [
            { name: "data", snapshots: [1, 2, 3].map((n) => ({ name: day(n), written: "1M" })) },
          ],
        },
        { name: "dst", size: "1G" },
      ],
    });
    // a backed-up history whose older snapshots only the target still has
    expect((await env.cli(["backup", config, "--yes"])).code).toBe(0);
    expect((await env.cli(["cleanup", config, "--yes"])).code).toBe(0);
    expect(env.snapshots("src/data")).toEqual([day(3)]);

    const wizard = await startWizard(env, [config]);
    const page = await open(wizard);
    await waitForQuestion(page, "cleanup-target");
    const target = step(page, "cleanup-target");
    expect(await target.locator(".plan").textContent()).toContain(`dst/backup@${day(1)}`);
    const input = target.getByLabel("Type the target pool's name");
    expect(await page.locator(":focus").getAttribute("id")).toBe("pool-cleanup-target");
    for (const wrong of ["", "DST", "dst/backup", "src"]) {
      await input.fill(wrong);
      await input.press("Enter");
      await target.locator(".refused", { hasText: "Not confirmed" }).waitFor();
      await target.locator(".refused").evaluate((element) => {
        element.textContent = "";
      });
    }
    expect(await stepStatus(page, "cleanup-target")).toContain("waiting for your go");
    expect(env.snapshots("dst/backup")).toEqual([day(1), day(2), day(3)]);
    await target.getByRole("button", { name: "Skip step" }).click();
    await waitForStatus(page, "cleanup-target", "skipped");
    expect(await closeAndExit(page, wizard)).toBe(0);
    expect(env.snapshots("dst/backup")).toEqual([day(1), day(2), day(3)]);
  },
  LONG_MS,
);

test(
  "a failed transfer shows its command, exit code and what it printed; the wizard stops there",
  async () => {
    env.seed({
      now: 1_767_225_600,
      pools: [
        {
          name: "src",
          size: "1G",
          datasets: [
            // the root arrives; its child's stream is cut, which holds back the grandchild
            { name: "data", snapshots: [{ name: day(1), written: "4K" }] },
            { name: "data/big", snapshots: [{ name: day(1), written: "4M" }] },
            { name: "data/big/sub", snapshots: [{ name: day(1), written: "4K" }] },
          ],
        },
        { name: "dst", size: "1G" },
      ],
    });
    const noRetries = env.writeConfig(
      configYaml(
        { zpool: "src", prefix: "data" },
        { zpool: "dst", prefix: "backup" },
        "transfer:\n  retries: 0\n",
      ),
      "no-retries.yaml",
    );
    // the simulated link breaks after 2 MB
    const wizard = await startWizard(env, [noRetries], { ABGLEICH_SIM_CUT_AFTER: "2000000" });
    const page = await open(wizard);
    await waitForQuestion(page, "backup");
    await step(page, "backup").getByRole("button", { name: "Go" }).click();
    await waitForStatus(page, "backup", "failed");
    const failure = (await step(page, "backup").locator("tr.failure").textContent()) ?? "";
    expect(failure).toContain("command, its exit code and what it said");
    expect(failure).toMatch(/zfs (send|receive)/);
    expect(failure).toContain("exit code: 1");
    expect(failure).toContain("stderr:");
    expect(failure).toContain("incomplete stream");
    expect(failure).toContain("the next backup resumes");
    expect(await step(page, "backup").locator("tr[data-state=failed]").count()).toBe(1);
    expect(await step(page, "backup").locator("tr[data-state=not-run]").count()).toBe(1);
    // each mark in its own row's colour, not the failed step's
    const colour = (state: string) =>
      step(page, "backup")
        .locator(`tr[data-state=${state}] .state`)
        .first()
        .evaluate((element) => getComputedStyle(element).color);
    // the root's send and the chain's protection of it
    expect(await step(page, "backup").locator("tr[data-state=done]").count()).toBe(2);
    // the chain's row names what it protected, and what not
    const chain = step(page, "backup").locator("tr", { hasText: "protect the incremental chain" });
    expect(await chain.locator(".action-dataset").textContent()).toBe("(root)");
    expect(await chain.locator(".action-text").textContent()).toEndWith(
      "; not for big, big/sub: their transfers did not arrive",
    );
    expect(await colour("done")).not.toBe(await colour("failed"));
    // a long word in a failure (a command line, a resume token) wraps inside its box
    expect(
      await step(page, "backup")
        .locator("tr.failure pre")
        .evaluate((element) => getComputedStyle(element).overflowWrap),
    ).toBe("anywhere");
    // the steps after it say they were not run, once the run has ended
    await page.locator("#summary:not([hidden])").waitFor();
    expect(await stepStatus(page, "cleanup-source")).toContain("not run: the run ended");
    expect(await closeAndExit(page, wizard)).toBe(1);
    expect(env.list().get("dst/backup/big")?.token).toEqual(expect.any(String));
  },
  LONG_MS,
);

test(
  "--dry-run shows each step's plan, asks nothing and changes nothing",
  async () => {
    env.seed({
      now: 1_767_225_600,
      pools: [
        {
          name: "src",
          size: "1G",
          datasets: [
            { name: "data", snapshots: [1, 2, 3].map((n) => ({ name: day(n), written: "1M" })) },
            { name: "data/home", snapshots: [{ name: day(1), written: "2M" }], written: "2M" },
          ],
        },
        { name: "dst", size: "1G" },
      ],
    });
    // an encrypted dataset, sent raw: the target's copy has no key
    const key = env.writeFile("vault.key", "passphrase1");
    expect(env.zfs(...encryptedCreateArgs("src/data/vault", key)).code).toBe(0);
    expect(env.zfs("snapshot", `src/data/vault@${day(1)}`).code).toBe(0);
    expect((await env.cli(["backup", config, "--yes"])).code).toBe(0);
    const before = env.list();
    const wizard = await startWizard(env, [config, "--dry-run"]);
    const page = await open(wizard);
    await page.locator("#summary").waitFor({ timeout: 60_000 });
    expect(await page.locator("#route").textContent()).toContain("dry run");
    // both trees say what compare says of encryption
    const vault = (await page.locator("tr", { hasText: "vault" }).first().textContent()) ?? "";
    expect(vault).toContain("encrypted");
    expect(vault).toContain("encrypted, key not loaded");
    expect(await stepStatus(page, "snap")).toContain("dry run");
    expect(await step(page, "snap").locator(".plan").textContent()).toContain("src/data/home@");
    expect(await stepStatus(page, "cleanup-source")).toContain("dry run");
    expect(await step(page, "cleanup-source").locator(".plan").textContent()).toContain(
      `src/data@${day(1)}, src/data@${day(2)}`,
    );
    expect(await page.locator(".question button").count()).toBe(0);
    expect(await closeAndExit(page, wizard)).toBe(0);
    expect(env.list()).toEqual(before);
  },
  LONG_MS,
);
