// The wizard's web server: one user, one token. Every request must carry the token (the URL's
// `?token=` once, then a cookie, or an `X-Abgleich-Token` header), name a Host that is an IP
// address, `localhost` or the `--listen` name (so a DNS name an attacker controls cannot be
// rebound to this port), and come from this page's own origin when it says where it comes from
// (so no other site can post to it). No CORS headers: a browser keeps other origins out.

import { timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import type { Server } from "bun";
import type { EventHub } from "./bridge.ts";
import type { AnswerRequest, GuiEvent } from "./protocol.ts";

export interface PageAssets {
  html: string;
  css: string;
  js: string;
}

export interface GuiHandlers {
  answer(request: AnswerRequest): { status: number; error?: string };
  cancel(): void;
  close(): void;
}

export interface GuiServerOptions {
  /** the address to listen on: 127.0.0.1 unless `--listen` says otherwise */
  hostname: string;
  /** 0: a free port */
  port: number;
  token: string;
  assets: PageAssets;
  hub: EventHub;
  handlers: GuiHandlers;
  /** a page connected or went away (the count of open event streams) */
  onClients?: (count: number) => void;
}

export interface GuiServer {
  readonly url: string;
  /** the URL with the token: what the user opens */
  readonly tokenUrl: string;
  readonly port: number;
  stop(): void;
}

const SECURITY_HEADERS = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-store",
  "Cross-Origin-Resource-Policy": "same-origin",
};

/** the hostname of a Host header value, without port and IPv6 brackets */
export function hostnameOf(host: string): string {
  if (host.startsWith("[")) return host.slice(1, host.indexOf("]"));
  const colon = host.lastIndexOf(":");
  return colon >= 0 ? host.slice(0, colon) : host;
}

/**
 * A Host that DNS rebinding cannot produce: an IP address, `localhost`, or the name given to
 * `--listen`. Any port: `ssh -L` may forward another local port to this one.
 */
export function hostAllowed(host: string | null, listenName: string): boolean {
  if (host === null || host === "") return false;
  const name = hostnameOf(host).toLowerCase();
  return isIP(name) !== 0 || name === "localhost" || name === listenName.toLowerCase();
}

/** same origin, or no origin at all (a plain navigation, curl); other sites are refused */
export function originAllowed(request: Request): boolean {
  if (request.headers.get("sec-fetch-site") === "cross-site") return false;
  const origin = request.headers.get("origin");
  if (origin === null) return true;
  return origin === `http://${request.headers.get("host")}`;
}

function sameSecret(given: string | null | undefined, token: string): boolean {
  if (typeof given !== "string" || given.length !== token.length) return false;
  return timingSafeEqual(Buffer.from(given), Buffer.from(token));
}

function cookie(request: Request, name: string): string | null {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return value.join("=");
  }
  return null;
}

const text = (status: number, body: string, headers: Record<string, string> = {}) =>
  new Response(`${body}\n`, {
    status,
    headers: { ...SECURITY_HEADERS, "Content-Type": "text/plain; charset=utf-8", ...headers },
  });

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { ...SECURITY_HEADERS, "Content-Type": "application/json" },
  });

/** how often an idle event stream says it is alive (proxies and ssh tunnels drop silent ones) */
const KEEPALIVE_MS = 15_000;

export function startGuiServer(options: GuiServerOptions): GuiServer {
  const { token, assets, hub, handlers } = options;
  let streams = 0;
  let cookieName = "abgleich";
  const encoder = new TextEncoder();

  const events = (request: Request): Response => {
    let unsubscribe = () => {};
    let keepalive: ReturnType<typeof setInterval> | undefined;
    const stop = () => {
      unsubscribe();
      unsubscribe = () => {};
      if (keepalive !== undefined) {
        clearInterval(keepalive);
        keepalive = undefined;
        streams--;
        options.onClients?.(streams);
      }
    };
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const send = (event: GuiEvent) => {
          try {
            controller.enqueue(encoder.encode(`data: ${JSON.stringify(event)}\n\n`));
          } catch {
            stop();
          }
        };
        controller.enqueue(encoder.encode("retry: 1000\n\n"));
        for (const event of hub.replay()) send(event);
        unsubscribe = hub.subscribe(send);
        keepalive = setInterval(() => {
          try {
            controller.enqueue(encoder.encode(": alive\n\n"));
          } catch {
            stop();
          }
        }, KEEPALIVE_MS);
        streams++;
        options.onClients?.(streams);
        request.signal.addEventListener("abort", stop, { once: true });
      },
      cancel: stop,
    });
    return new Response(body, {
      headers: {
        ...SECURITY_HEADERS,
        "Content-Type": "text/event-stream; charset=utf-8",
        Connection: "keep-alive",
      },
    });
  };

  const post = async (request: Request, path: string): Promise<Response> => {
    // a JSON body is not a "simple request": a form elsewhere cannot send one
    if (!(request.headers.get("content-type") ?? "").startsWith("application/json"))
      return text(415, "expected Content-Type: application/json");
    let body: unknown;
    try {
      body = await request.json();
    } catch {
      return json(400, { error: "the body is not JSON" });
    }
    if (path === "/api/answer") {
      const answer = body as Partial<AnswerRequest>;
      if (
        typeof answer?.id !== "number" ||
        (answer.answer !== "go" && answer.answer !== "skip") ||
        (answer.pool !== undefined && typeof answer.pool !== "string")
      )
        return json(400, { error: 'expected {"id": number, "answer": "go"|"skip", "pool"?}' });
      const result = handlers.answer(answer as AnswerRequest);
      return json(result.status, result.error ? { error: result.error } : { ok: true });
    }
    if (path === "/api/cancel") {
      handlers.cancel();
      return json(200, { ok: true });
    }
    if (path === "/api/close") {
      handlers.close();
      return json(200, { ok: true });
    }
    return text(404, "not found");
  };

  const server: Server<undefined> = Bun.serve({
    hostname: options.hostname,
    port: options.port,
    // the event stream stays open for the whole run
    idleTimeout: 0,
    async fetch(request) {
      if (!hostAllowed(request.headers.get("host"), options.hostname))
        return text(403, "forbidden: unknown Host (open the URL abgleich printed)");
      const url = new URL(request.url);
      if (!originAllowed(request)) return text(403, "forbidden: request from another site");
      const fromUrl = url.searchParams.get("token");
      const given =
        fromUrl ?? request.headers.get("x-abgleich-token") ?? cookie(request, cookieName);
      if (!sameSecret(given, token))
        return text(403, "forbidden: missing or wrong token (open the URL abgleich printed)");
      if (request.method === "GET" && fromUrl !== null && url.pathname === "/") {
        // the token moves into a cookie and out of the address bar and history
        return new Response(null, {
          status: 303,
          headers: {
            ...SECURITY_HEADERS,
            Location: "/",
            "Set-Cookie": `${cookieName}=${token}; Path=/; HttpOnly; SameSite=Strict`,
          },
        });
      }
      if (request.method === "POST") return post(request, url.pathname);
      if (request.method !== "GET" && request.method !== "HEAD")
        return text(405, "method not allowed");
      switch (url.pathname) {
        case "/":
          return new Response(assets.html, {
            headers: { ...SECURITY_HEADERS, "Content-Type": "text/html; charset=utf-8" },
          });
        case "/app.js":
          return new Response(assets.js, {
            headers: { ...SECURITY_HEADERS, "Content-Type": "text/javascript; charset=utf-8" },
          });
        case "/app.css":
          return new Response(assets.css, {
            headers: { ...SECURITY_HEADERS, "Content-Type": "text/css; charset=utf-8" },
          });
        case "/events":
          return events(request);
        default:
          return text(404, "not found");
      }
    },
  });
  const port = server.port as number;
  // per port: another wizard on this machine has its own token and must not overwrite it
  cookieName = `abgleich-${port}`;
  const shown = isIP(options.hostname) === 6 ? `[${options.hostname}]` : options.hostname;
  const displayHost =
    options.hostname === "0.0.0.0" || options.hostname === "::" ? "127.0.0.1" : shown;
  const url = `http://${displayHost}:${port}/`;
  return {
    url,
    tokenUrl: `${url}?token=${token}`,
    port,
    stop: () => {
      server.stop(true);
    },
  };
}
