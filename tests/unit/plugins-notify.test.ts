// The notify plugin against a local HTTP server on 127.0.0.1 and a fake sendmail script:
// what each channel receives, and that failures and timeouts only warn.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RunSummary } from "../../lib/engine/hooks.ts";
import { createHooks } from "../../lib/engine/hooks.ts";
import { checkOptions, pluginHooks } from "../../lib/engine/plugins.ts";
import notify, { encodedWords } from "../../plugins/notify.ts";
import { config } from "./plan/fixtures.ts";

/** the sides a stage ran on, as the summary records them */
const WHERE = { source: "localhost:tank/data", target: "localhost:backup/tank-data" };

interface Received {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

let received: Received[] = [];
let server: ReturnType<typeof Bun.serve>;
let base = "";
const dir = mkdtempSync(join(tmpdir(), "abgleich-notify-"));

beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const url = new URL(request.url);
      const headers: Record<string, string> = {};
      request.headers.forEach((value, name) => {
        headers[name] = value;
      });
      received.push({
        method: request.method,
        path: url.pathname,
        headers,
        body: await request.text(),
      });
      if (url.pathname === "/broken") return new Response("no", { status: 500 });
      if (url.pathname === "/slow") await Bun.sleep(2000);
      return new Response("ok");
    },
  });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(() => {
  server.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

const summary = (exitCode: number, mode: RunSummary["mode"] = "changing"): RunSummary => ({
  config: config(),
  mode,
  stages: [
    { where: WHERE, stage: "snap", outcome: { status: "ok" } },
    {
      where: WHERE,
      stage: "backup",
      outcome:
        exitCode === 0 ? { status: "ok" } : { status: "failed", error: new Error("send failed") },
    },
  ],
  datasets: [
    {
      subname: "home",
      snapshotsMade: ["2026112601"],
      bytesSent: 3 * 1024 * 1024,
      snapshotsReceived: ["2026112601"],
      destroyed: [{ side: "source", snapshots: ["2026112401", "2026112501"] }],
      conflicts: [],
      failures: exitCode === 0 ? [] : ["zfs receive exited 1"],
    },
  ],
  exitCode,
  startedAt: new Date(0),
  finishedAt: new Date(1000),
});

async function plugin(options: Record<string, unknown>) {
  received = [];
  const hooks = createHooks();
  const warnings: string[] = [];
  const cfg = config();
  await notify.setup(pluginHooks(hooks, "notify"), {
    name: "notify",
    config: cfg,
    options: checkOptions(notify, options, cfg, 0),
    log() {},
    warn: (t) => warnings.push(t),
  });
  return { hooks, warnings };
}

const stageInfo = {
  stage: "snap" as const,
  config: config(),
  dryRun: false,
  changes: true,
  signal: new AbortController().signal,
};

describe("notify", () => {
  test("ntfy gets the summary with title, priority and tags; a failure raises the priority", async () => {
    const { hooks, warnings } = await plugin({
      ntfy: { url: `${base}/backups`, priority: 2, tags: ["floppy_disk"] },
    });
    await hooks.done.promise(summary(0));
    await hooks.done.promise(summary(1));
    expect(warnings).toEqual([]);
    expect(
      received.map((r) => [r.method, r.path, r.headers.title, r.headers.priority, r.headers.tags]),
    ).toEqual([
      ["POST", "/backups", "abgleich", "2", "floppy_disk"],
      ["POST", "/backups", "abgleich", "4", "floppy_disk,warning"],
    ]);
    expect(received[0]?.body).toBe(
      "abgleich ok: snap ok, backup ok\nhome: 1 snapshot made, 3.0 MiB sent (1 snapshot), 2 destroyed",
    );
    expect(received[1]?.body).toContain("abgleich FAILED: snap ok, backup failed");
    expect(received[1]?.body).toContain("failed: zfs receive exited 1");
  });

  test("webhook presets post what Slack, Discord and Matrix accept, and plain JSON", async () => {
    const bodies: Record<string, unknown> = {};
    for (const preset of ["slack", "discord", "matrix", "json"]) {
      const { hooks } = await plugin({ webhook: { url: `${base}/hook`, preset } });
      await hooks.done.promise(summary(0));
      expect(received[0]?.headers["content-type"]).toBe("application/json");
      bodies[preset] = JSON.parse(received[0]?.body ?? "null");
    }
    const line = expect.stringMatching(/^abgleich: abgleich ok: snap ok, backup ok\nhome: /);
    expect(bodies.slack).toEqual({ text: line });
    expect(bodies.discord).toEqual({ content: line });
    expect(bodies.matrix).toEqual({ msgtype: "m.text", body: line });
    expect(bodies.json).toMatchObject({
      title: "abgleich",
      event: "done",
      failed: false,
      summary: {
        config: "/etc/abgleich.yaml",
        exitCode: 0,
        // each stage with the sides it ran on
        stages: [
          { stage: "snap", status: "ok", ...WHERE },
          { stage: "backup", status: "ok", ...WHERE },
        ],
        datasets: [{ subname: "home", bytesSent: 3145728 }],
      },
    });
  });

  test("healthchecks gets start, then success or fail, even when `done` is not an event", async () => {
    const { hooks } = await plugin({
      events: ["error"],
      healthchecks: { url: `${base}/ping/abc/` },
    });
    await hooks.beforeStage.promise(stageInfo);
    await hooks.beforeStage.promise({ ...stageInfo, stage: "backup" });
    await hooks.done.promise(summary(0));
    await hooks.done.promise(summary(1));
    expect(received.map((r) => r.path)).toEqual(["/ping/abc/start", "/ping/abc", "/ping/abc/fail"]);
  });

  test("tree, compare and dry runs send no start, success or error pings", async () => {
    const { hooks } = await plugin({
      events: ["start", "error", "done"],
      healthchecks: { url: `${base}/ping/abc/` },
      ntfy: { url: `${base}/t` },
    });
    await hooks.beforeStage.promise({ ...stageInfo, stage: "inventory", changes: false });
    await hooks.beforeStage.promise({ ...stageInfo, stage: "compare", changes: false });
    await hooks.beforeStage.promise({ ...stageInfo, dryRun: true, changes: false });
    await hooks.error.promise(new Error("x"), { ...stageInfo, dryRun: true, changes: false });
    await hooks.done.promise(summary(0, "read-only"));
    await hooks.done.promise(summary(1, "dry-run"));
    expect(received).toHaveLength(0);
  });

  test("start and error events go out only when asked for; only_failures keeps a good run quiet", async () => {
    const quiet = await plugin({ ntfy: { url: `${base}/t` } });
    await quiet.hooks.beforeStage.promise(stageInfo);
    await quiet.hooks.error.promise(new Error("x"), stageInfo);
    expect(received).toHaveLength(0);

    const chatty = await plugin({
      events: ["start", "error", "done"],
      only_failures: true,
      ntfy: { url: `${base}/t` },
    });
    await chatty.hooks.beforeStage.promise(stageInfo);
    await chatty.hooks.error.promise(new Error("pool gone"), stageInfo);
    await chatty.hooks.done.promise(summary(0));
    await chatty.hooks.done.promise(summary(1));
    expect(received.map((r) => r.body.split("\n")[0])).toEqual([
      "started (/etc/abgleich.yaml)",
      "snap failed: pool gone",
      "abgleich FAILED: snap ok, backup failed",
    ]);
  });

  test("a failing or slow endpoint is a warning, never an error, and other channels still get theirs", async () => {
    const { hooks, warnings } = await plugin({
      timeout: 0.2,
      ntfy: { url: `${base}/slow` },
      webhook: { url: `${base}/broken` },
      healthchecks: { url: `${base}/hc` },
    });
    const started = Date.now();
    await hooks.done.promise(summary(0));
    expect(Date.now() - started).toBeLessThan(1500);
    expect(warnings).toHaveLength(2);
    expect(warnings.join("\n")).toContain("could not notify by webhook: ");
    expect(warnings.join("\n")).toContain("500");
    expect(warnings.join("\n")).toContain("could not notify by ntfy: ");
    expect(received.some((r) => r.path === "/hc")).toBe(true);
  });

  test("e-mail goes through `sendmail -t` with headers that cannot be split", async () => {
    const mailbox = join(dir, "mail.txt");
    const sendmail = join(dir, "sendmail");
    writeFileSync(sendmail, `#!/bin/sh\n[ "$1" = "-t" ] || exit 9\ncat > '${mailbox}'\n`);
    chmodSync(sendmail, 0o755);
    const { hooks, warnings } = await plugin({
      title: "nas\nBcc: evil@example.org",
      email: { to: ["root@localhost", "ops@example.org"], from: "abgleich@nas", sendmail },
    });
    await hooks.done.promise(summary(0));
    expect(warnings).toEqual([]);
    const mail = readFileSync(mailbox, "utf8");
    expect(mail).toStartWith(
      "To: root@localhost, ops@example.org\nFrom: abgleich@nas\nSubject: nas Bcc: evil@example.org: abgleich ok",
    );
    expect(mail).not.toContain("\nBcc:");
    expect(mail).toContain("\n\nabgleich ok: snap ok, backup ok\nhome: 1 snapshot made");
  });

  test("a sendmail that fails is a warning with its exit code and stderr", async () => {
    const sendmail = join(dir, "sendmail-broken");
    writeFileSync(sendmail, "#!/bin/sh\ncat >/dev/null\necho 'relay refused' >&2\nexit 75\n");
    chmodSync(sendmail, 0o755);
    const { hooks, warnings } = await plugin({ email: { to: "root@localhost", sendmail } });
    await hooks.done.promise(summary(1));
    expect(warnings).toEqual([
      `could not notify by email: ${sendmail} -t exited with 75: relay refused`,
    ]);
  });

  test("a Unicode title reaches ntfy intact: RFC 2047 in the header, as ntfy decodes it", async () => {
    const title = "Sicherung Büro ✓ 备份 🐟";
    const { hooks, warnings } = await plugin({
      title,
      ntfy: { url: `${base}/t`, tags: ["💾"] },
    });
    await hooks.done.promise(summary(0));
    expect(warnings).toEqual([]);
    const header = received[0]?.headers.title ?? "";
    expect(header).toMatch(/^[\x20-\x7e]+$/);
    expect(decodeWords(header)).toBe(title);
    expect(decodeWords(received[0]?.headers.tags ?? "")).toBe("💾");
    // a plain ASCII title is sent as it is
    const plain = await plugin({ title: "nas backup", ntfy: { url: `${base}/t` } });
    await plain.hooks.done.promise(summary(0));
    expect(received[0]?.headers.title).toBe("nas backup");
  });

  test("a Unicode e-mail subject is RFC 2047-encoded, folded in words a mail reader joins", async () => {
    const mailbox = join(dir, "mail-utf8.txt");
    const sendmail = join(dir, "sendmail-utf8");
    writeFileSync(sendmail, `#!/bin/sh\ncat > '${mailbox}'\n`);
    chmodSync(sendmail, 0o755);
    const title = "Datensicherung für das Büro — ✓ ohne Fehler, 备份完成 🐟🐟🐟";
    const { hooks } = await plugin({ title, email: { to: "root@localhost", sendmail } });
    await hooks.done.promise(summary(0));
    const mail = readFileSync(mailbox, "utf8");
    const [head = ""] = mail.split("\n\n");
    // every header line is ASCII and no encoded word is longer than 75 characters
    expect(head).toMatch(/^[\x20-\x7e\n]+$/);
    const subject = head.slice(head.indexOf("Subject: ") + 9).split(/\n(?! )/)[0] ?? "";
    for (const word of subject.split(/\s+/)) expect(word.length).toBeLessThanOrEqual(75);
    expect(decodeWords(subject)).toBe(`${title}: abgleich ok: snap ok, backup ok`);
    expect(head).toContain("Content-Type: text/plain; charset=utf-8");
  });

  test("encodedWords never cuts a character in two", () => {
    const text = "ä".repeat(100) + "🐟".repeat(30);
    const words = encodedWords(text).split(" ");
    expect(words.length).toBeGreaterThan(1);
    for (const word of words) {
      const bytes = Buffer.from(word.slice(10, -2), "base64");
      expect(bytes.toString("utf8")).not.toContain("\ufffd");
    }
    expect(decodeWords(encodedWords(text))).toBe(text);
  });

  test("no secret leaves in a notification or a warning: resume tokens, what a URL holds", async () => {
    const token = `1-c740b4e0e-f0-${"789c6364".repeat(8)}`;
    const failed = summary(1);
    const withToken: RunSummary = {
      ...failed,
      datasets: [
        {
          ...(failed.datasets[0] as RunSummary["datasets"][0]),
          failures: [`zfs send -t ${token} failed`],
        },
      ],
    };
    const { hooks, warnings } = await plugin({
      ntfy: { url: `${base}/t` },
      webhook: { url: `${base}/broken?key=T0SECRET` },
    });
    await hooks.done.promise(withToken);
    const bodies = received.map((r) => r.body).join("\n");
    expect(bodies).toContain("zfs send -t <resume token> failed");
    expect(bodies).not.toContain(token);
    expect(warnings).toEqual([
      `could not notify by webhook: ${base} answered 500 Internal Server Error`,
    ]);
  });
});

/** RFC 2047 encoded words decoded, as ntfy and mail readers do (whitespace between words drops) */
function decodeWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, "?==?")
    .replace(/=\?UTF-8\?B\?([^?]*)\?=/gi, (_m, data: string) => `\u0000${data}\u0000`)
    .split("\u0000")
    .map((part, i) => (i % 2 === 1 ? Buffer.from(part, "base64") : Buffer.from(part)))
    .reduce((all, part) => Buffer.concat([all, part]), Buffer.alloc(0))
    .toString("utf8");
}
