// Bundled plugin `notify`: tells someone how a run went, through ntfy, a JSON webhook (Slack,
// Discord, Matrix or plain JSON), healthchecks-style pings and e-mail via `sendmail -t`.
// A notification that fails is reported as a warning and never fails the run; every request
// has a timeout. Titles and subjects may hold any Unicode: HTTP and mail headers are ASCII, so
// they travel RFC 2047-encoded (ntfy and every mail reader decode them). Nothing secret goes
// out: texts are redacted, and a failure names the endpoint's origin, never its path (a
// webhook's or healthchecks' URL is itself a credential).

import { definePlugin, type RunSummary, type StageInfo, summaryText } from "../lib/engine/api.ts";
import { redact } from "../lib/engine/redact.ts";

type NotifyEvent = "start" | "done" | "error";

export interface NotifyOptions {
  /** when to notify; `done` carries the summary */
  events: NotifyEvent[];
  /** on `done`, stay quiet when the run went well */
  only_failures: boolean;
  /** seconds per request */
  timeout: number;
  title: string;
  ntfy?: { url: string; priority: number; tags: string[]; token?: string };
  webhook?: {
    url: string;
    preset: "json" | "slack" | "discord" | "matrix";
    method: "POST" | "PUT";
    headers: Record<string, string>;
  };
  healthchecks?: { url: string };
  email?: { to: string | string[]; from?: string; sendmail: string };
}

const schema = {
  type: "object",
  additionalProperties: false,
  properties: {
    events: {
      type: "array",
      items: { enum: ["start", "done", "error"] },
      uniqueItems: true,
      default: ["done"],
    },
    only_failures: { type: "boolean", default: false },
    timeout: { type: "number", exclusiveMinimum: 0, maximum: 2_147_483, default: 10 },
    title: { type: "string", minLength: 1, default: "abgleich" },
    ntfy: {
      type: "object",
      additionalProperties: false,
      required: ["url"],
      properties: {
        url: { type: "string", pattern: "^https?://" },
        priority: { type: "integer", minimum: 1, maximum: 5, default: 3 },
        tags: { type: "array", items: { type: "string", minLength: 1 }, default: [] },
        token: { type: "string", minLength: 1 },
      },
    },
    webhook: {
      type: "object",
      additionalProperties: false,
      required: ["url"],
      properties: {
        url: { type: "string", pattern: "^https?://" },
        preset: { enum: ["json", "slack", "discord", "matrix"], default: "json" },
        method: { enum: ["POST", "PUT"], default: "POST" },
        headers: { type: "object", additionalProperties: { type: "string" }, default: {} },
      },
    },
    healthchecks: {
      type: "object",
      additionalProperties: false,
      required: ["url"],
      properties: { url: { type: "string", pattern: "^https?://" } },
    },
    email: {
      type: "object",
      additionalProperties: false,
      required: ["to"],
      properties: {
        to: {
          anyOf: [
            { type: "string", minLength: 3 },
            { type: "array", minItems: 1, items: { type: "string", minLength: 3 } },
          ],
        },
        from: { type: "string", minLength: 3 },
        sendmail: { type: "string", minLength: 1, default: "/usr/sbin/sendmail" },
      },
    },
  },
} as const;

/** what one notification says */
export interface Message {
  title: string;
  text: string;
  failed: boolean;
  event: NotifyEvent;
  /** the run summary, for `done` */
  summary?: RunSummary;
}

/** the body a webhook preset posts */
export function webhookBody(
  preset: NonNullable<NotifyOptions["webhook"]>["preset"],
  message: Message,
): unknown {
  const line = `${message.title}: ${message.text}`;
  switch (preset) {
    case "slack":
      return { text: line };
    case "discord":
      // Discord refuses content over 2000 characters
      return { content: line.length > 2000 ? `${line.slice(0, 1997)}...` : line };
    case "matrix":
      return { msgtype: "m.text", body: line };
    default:
      return {
        title: message.title,
        event: message.event,
        failed: message.failed,
        text: message.text,
        summary: message.summary ? summaryJson(message.summary) : undefined,
      };
  }
}

/** the summary without the whole config, with dates as ISO strings */
export function summaryJson(summary: RunSummary) {
  return {
    config: summary.config.file,
    exitCode: summary.exitCode,
    startedAt: summary.startedAt.toISOString(),
    finishedAt: summary.finishedAt.toISOString(),
    stages: summary.stages.map((s) => ({
      stage: s.stage,
      ...(s.side ? { side: s.side } : {}),
      source: s.where.source,
      target: s.where.target,
      status: s.outcome.status,
      error: s.outcome.error?.message,
    })),
    datasets: summary.datasets,
  };
}

/** one line: a header value must not carry line breaks, or a title could add headers */
const oneLine = (value: string) => value.replace(/[\r\n]+/g, " ");

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * A header value in RFC 2047 encoded words when it is not plain ASCII: `=?UTF-8?B?…?=`, each
 * word at most 75 characters (45 bytes of UTF-8, never a character cut in two), joined by
 * `separator` (a space for HTTP, a folded line for mail).
 */
export function encodedWords(value: string, separator = " "): string {
  const text = oneLine(value);
  if (PRINTABLE_ASCII.test(text)) return text;
  const words: string[] = [];
  let chunk = "";
  for (const char of text) {
    if (Buffer.byteLength(chunk + char) > 45) {
      words.push(chunk);
      chunk = "";
    }
    chunk += char;
  }
  if (chunk !== "") words.push(chunk);
  return words
    .map((word) => `=?UTF-8?B?${Buffer.from(word, "utf8").toString("base64")}?=`)
    .join(separator);
}

/** the mail `sendmail -t` reads: headers, a blank line, the text */
export function mailText(email: NonNullable<NotifyOptions["email"]>, message: Message): string {
  const to = (Array.isArray(email.to) ? email.to : [email.to]).join(", ");
  const lines = [`To: ${oneLine(to)}`];
  if (email.from) lines.push(`From: ${oneLine(email.from)}`);
  const subject = `${message.title}: ${message.text.split("\n")[0] ?? ""}`;
  // a long subject folds onto continuation lines between its encoded words
  lines.push(`Subject: ${encodedWords(subject, "\n ")}`);
  lines.push(
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
    message.text,
    "",
  );
  return lines.join("\n");
}

/** `https://host:port` of a URL: what a message may say of an endpoint */
const originOf = (url: string) => {
  try {
    return new URL(url).origin;
  } catch {
    return "the configured URL";
  }
};

async function request(url: string, init: RequestInit, timeoutSeconds: number): Promise<void> {
  const where = originOf(url);
  let response: Response;
  try {
    response = await fetch(url, {
      ...init,
      signal: AbortSignal.timeout(timeoutSeconds * 1000),
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`${where}: ${reason.replaceAll(url, where)}`);
  }
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`${where} answered ${response.status} ${response.statusText}`);
}

async function sendmail(path: string, text: string, timeoutSeconds: number): Promise<void> {
  const child = Bun.spawn([path, "-t"], { stdin: "pipe", stdout: "ignore", stderr: "pipe" });
  const timer = setTimeout(() => child.kill("SIGTERM"), timeoutSeconds * 1000);
  try {
    child.stdin.write(text);
    await child.stdin.end();
    const [code, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()]);
    if (child.signalCode) throw new Error(`${path} -t timed out after ${timeoutSeconds} s`);
    if (code !== 0)
      throw new Error(`${path} -t exited with ${code}${stderr.trim() ? `: ${stderr.trim()}` : ""}`);
  } finally {
    clearTimeout(timer);
  }
}

export type Channel = "ntfy" | "webhook" | "healthchecks" | "email";

/**
 * which channels hear of `event`: all configured ones when the user asked for the event;
 * healthchecks also hears the start and the end of every run, since it tracks runs, not news
 */
export function channelsFor(
  options: NotifyOptions,
  event: NotifyEvent,
  failed: boolean,
): Set<Channel> {
  const configured = (["ntfy", "webhook", "healthchecks", "email"] as const).filter(
    (c) => options[c] !== undefined,
  );
  const chatty =
    options.events.includes(event) && !(event === "done" && options.only_failures && !failed);
  return new Set(
    configured.filter((channel) => {
      if (channel === "healthchecks") return event !== "error";
      return chatty;
    }),
  );
}

/** each channel's delivery of `message`, each one allowed to fail on its own */
export function deliveries(
  options: NotifyOptions,
  message: Message,
): { channel: Channel; send: () => Promise<void> }[] {
  const list: { channel: Channel; send: () => Promise<void> }[] = [];
  const only = channelsFor(options, message.event, message.failed);
  // a failed `zfs send -t` names its resume token; no notification carries it
  message = { ...message, title: redact(message.title), text: redact(message.text) };
  const { ntfy, webhook, healthchecks, email, timeout } = options;
  if (ntfy && only.has("ntfy")) {
    const headers: Record<string, string> = {
      Title: encodedWords(message.title),
      Priority: String(message.failed ? Math.max(ntfy.priority, 4) : ntfy.priority),
    };
    const tags = [...ntfy.tags, ...(message.failed ? ["warning"] : [])];
    if (tags.length > 0) headers.Tags = encodedWords(tags.join(","));
    if (ntfy.token) headers.Authorization = `Bearer ${ntfy.token}`;
    list.push({
      channel: "ntfy",
      send: () => request(ntfy.url, { method: "POST", headers, body: message.text }, timeout),
    });
  }
  if (webhook && only.has("webhook")) {
    const body = redact(JSON.stringify(webhookBody(webhook.preset, message)));
    const headers = { "Content-Type": "application/json", ...webhook.headers };
    list.push({
      channel: "webhook",
      send: () => request(webhook.url, { method: webhook.method, headers, body }, timeout),
    });
  }
  if (healthchecks && only.has("healthchecks")) {
    const base = healthchecks.url.replace(/\/+$/, "");
    const url =
      message.event === "start" ? `${base}/start` : message.failed ? `${base}/fail` : base;
    list.push({
      channel: "healthchecks",
      send: () => request(url, { method: "POST", body: message.text }, timeout),
    });
  }
  if (email && only.has("email")) {
    list.push({
      channel: "email",
      send: () => sendmail(email.sendmail, mailText(email, message), timeout),
    });
  }
  return list;
}

/** send `message` everywhere it should go; failures become warnings, never errors */
export async function deliver(
  options: NotifyOptions,
  message: Message,
  warn: (text: string) => void,
): Promise<void> {
  const list = deliveries(options, message);
  const results = await Promise.allSettled(list.map((d) => d.send()));
  results.forEach((result, i) => {
    if (result.status === "rejected") {
      const reason = result.reason instanceof Error ? result.reason.message : String(result.reason);
      warn(`could not notify by ${list[i]?.channel}: ${redact(reason)}`);
    }
  });
}

export default definePlugin<NotifyOptions>({
  name: "notify",
  options: schema,
  setup(hooks, { options, warn }) {
    let started = false;

    // tree, compare and dry runs change nothing: no start ping, no success ping
    hooks.beforeStage.tapPromise("notify", async (info: StageInfo) => {
      if (started || !info.changes) return;
      started = true;
      await deliver(
        options,
        {
          title: options.title,
          text: `started (${info.config.file})`,
          failed: false,
          event: "start",
        },
        warn,
      );
    });

    hooks.error.tapPromise("notify", async (error, info) => {
      if (!info.changes) return;
      const text = `${info.stage}${info.side ? ` ${info.side}` : ""} failed: ${error.message}`;
      await deliver(options, { title: options.title, text, failed: true, event: "error" }, warn);
    });

    hooks.done.tapPromise("notify", async (summary) => {
      if (summary.mode !== "changing") return;
      const message: Message = {
        title: options.title,
        text: summaryText(summary),
        failed: summary.exitCode !== 0,
        event: "done",
        summary,
      };
      await deliver(options, message, warn);
    });
  },
});
