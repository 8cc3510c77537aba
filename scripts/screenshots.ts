// `bun scripts/screenshots.ts`: refresh the browser wizard's screenshots in docs/gui/ (README's
// wizard section shows them). Runs the real CLI on the simulator and Debian's chromium through
// playwright-core, as tests/browser does; ABGLEICH_CHROMIUM names another chromium.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Page } from "playwright-core";
import { killWizards, startWizard, step, waitForQuestion } from "../tests/browser/helpers.ts";
import { configYaml, createSimEnv } from "../tests/helpers/sim-env.ts";

const out = join(import.meta.dir, "..", "docs", "gui");
mkdirSync(out, { recursive: true });
const day = (n: number) => `202601010${n}`;

const env = createSimEnv();
const config = env.writeConfig(
  configYaml(
    { zpool: "tank", prefix: "data" },
    { zpool: "backup", prefix: "tank" },
    "keep_snapshots: 1\nkeep_backlog: 0\n",
  ),
);
env.seed({
  now: 1_767_225_600,
  pools: [
    {
      name: "tank",
      size: "64G",
      datasets: [
        { name: "data", snapshots: [1, 2, 3].map((n) => ({ name: day(n), written: "20M" })) },
        { name: "data/home", snapshots: [{ name: day(1), written: "12G" }], written: "40M" },
        { name: "data/photos", snapshots: [{ name: day(2), written: "900M" }] },
      ],
    },
    {
      name: "backup",
      size: "64G",
      // made by hand, without snapshots: a conflict to explain (backup never overwrites it)
      datasets: [{ name: "tank" }],
    },
  ],
});

const browser = await chromium.launch({
  executablePath: process.env.ABGLEICH_CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
});
const shot = async (page: Page, name: string) => {
  await page.screenshot({ path: join(out, name), fullPage: false });
  console.log(`docs/gui/${name}`);
};

try {
  // 1: both trees, with a conflict explained; cancelled at the first question
  const first = await startWizard(env, [config]);
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  await page.goto(first.url);
  await waitForQuestion(page, "snap");
  await page.evaluate("scrollTo(0, 0)");
  await shot(page, "1-compare.png");
  await page.getByRole("button", { name: "Cancel the run" }).click();
  await page.locator("#close").click();
  await first.exited;

  // 2: without the hand-made target, every step clicked through, every step clicked through
  env.zfs("destroy", "-r", "backup/tank");
  const second = await startWizard(env, [config]);
  await page.goto(second.url);
  await waitForQuestion(page, "snap");
  await step(page, "snap").evaluate((element) => element.scrollIntoView());
  await shot(page, "2-snap.png");
  await step(page, "snap").getByRole("button", { name: "Go" }).click();
  await waitForQuestion(page, "backup");
  await step(page, "backup").getByRole("button", { name: "Go" }).click();
  await step(page, "backup")
    .locator("tr[data-state=running] .detail")
    .filter({ hasText: /%.*\/s/ })
    .waitFor({ timeout: 60_000 })
    .catch(async (error) => {
      console.log(await page.locator("main").textContent());
      throw error;
    });
  await step(page, "backup").evaluate((element) => element.scrollIntoView());
  await shot(page, "3-backup.png");
  await waitForQuestion(page, "cleanup-source");
  await step(page, "cleanup-source").getByRole("button", { name: "Go" }).click();
  await waitForQuestion(page, "cleanup-target");
  await page.emulateMedia({ colorScheme: "dark" });
  await page.getByLabel("Type the target pool's name").fill("tank");
  await page.getByRole("button", { name: "Destroy on the target" }).click();
  await page.locator(".refused", { hasText: "Not confirmed" }).waitFor();
  await step(page, "cleanup-target").evaluate((element) => element.scrollIntoView());
  await shot(page, "4-cleanup-target.png");
  await page.getByLabel("Type the target pool's name").fill("backup");
  await page.getByRole("button", { name: "Destroy on the target" }).click();
  await page.emulateMedia({ colorScheme: "light" });
  await page.locator("#summary").waitFor({ timeout: 60_000 });
  await page.locator("#summary").evaluate((element) => element.scrollIntoView());
  await shot(page, "5-summary.png");
  await page.locator("#close").click();
  await second.exited;
} finally {
  killWizards();
  await browser.close();
  env.remove();
}
