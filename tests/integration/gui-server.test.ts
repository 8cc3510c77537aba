// The wizard's web server keeps everyone but its one user out: plain HTTP against the server
// (no browser needed), and the real CLI's listening socket read from /proc/net.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EventHub } from "../../lib/gui/bridge.ts";
import { PAGE } from "../../lib/gui/page.ts";
import { type GuiServer, startGuiServer } from "../../lib/gui/server.ts";
import { CLI_MAIN, configYaml, createSimEnv, type SimEnv } from "../helpers/sim-env.ts";
import { readUntilWizardUrl } from "../helpers/wizard-url.ts";

const TOKEN = "test-token-0123456789abcdefghij";
let server: GuiServer;
const posted: string[] = [];

beforeAll(() => {
  const hub = new EventHub();
  hub.publish({ type: "warn", text: "hello from the hub" });
  server = startGuiServer({
    hostname: "127.0.0.1",
    port: 0,
    token: TOKEN,
    assets: PAGE,
    hub,
    handlers: {
      answer: () => {
        posted.push("answer");
        return { status: 200 };
      },
      cancel: () => posted.push("cancel"),
      close: () => posted.push("close"),
    },
  });
});

afterAll(() => server?.stop());

/** a raw request: fetch would not let a test set Host */
async function raw(
  path: string,
  headers: Record<string, string>,
  method = "GET",
  body = "",
): Promise<{ status: number; head: string; body: string }> {
  const lines = [
    `${method} ${path} HTTP/1.1`,
    ...Object.entries({ Connection: "close", ...headers }).map(([k, v]) => `${k}: ${v}`),
    ...(body ? [`Content-Length: ${Buffer.byteLength(body)}`] : []),
    "",
    body,
  ];
  const chunks: Uint8Array[] = [];
  const done = Promise.withResolvers<void>();
  await Bun.connect({
    hostname: "127.0.0.1",
    port: server.port,
    socket: {
      open: (socket) => {
        socket.write(lines.join("\r\n"));
      },
      data: (_socket, data) => {
        chunks.push(data);
      },
      close: () => done.resolve(),
      error: (_socket, error) => done.reject(error),
    },
  });
  await done.promise;
  const text = Buffer.concat(chunks).toString();
  const [head = "", ...rest] = text.split("\r\n\r\n");
  return { status: Number(head.split(" ")[1]), head, body: rest.join("\r\n\r\n") };
}

const host = () => `127.0.0.1:${server.port}`;
const withToken = () => ({ Host: host(), Cookie: `abgleich-${server.port}=${TOKEN}` });

describe("the wizard's server", () => {
  test("the token URL sets an HttpOnly, SameSite=Strict cookie and drops the token from the URL", async () => {
    const response = await raw(`/?token=${TOKEN}`, { Host: host() });
    expect(response.status).toBe(303);
    expect(response.head).toMatch(/location: \/\r?$/im);
    expect(response.head).toContain(
      `abgleich-${server.port}=${TOKEN}; Path=/; HttpOnly; SameSite=Strict`,
    );
    const page = await raw("/", withToken());
    expect(page.status).toBe(200);
    expect(page.body).toContain("<title>abgleich wizard</title>");
  });

  test("no token, a wrong token, or a token of another length: 403 on every path", async () => {
    for (const path of ["/", "/app.js", "/app.css", "/events", "/nowhere"]) {
      expect((await raw(path, { Host: host() })).status).toBe(403);
      expect(
        (await raw(path, { Host: host(), Cookie: `abgleich-${server.port}=x${TOKEN.slice(1)}` }))
          .status,
      ).toBe(403);
      expect((await raw(`${path}?token=short`, { Host: host() })).status).toBe(403);
    }
    const post = await raw(
      "/api/cancel",
      { Host: host(), "Content-Type": "application/json" },
      "POST",
      "{}",
    );
    expect(post.status).toBe(403);
    expect(posted).not.toContain("cancel");
  });

  test("the event stream needs the token too, and replays what happened so far", async () => {
    const refused = await fetch(`http://${host()}/events`);
    expect(refused.status).toBe(403);
    const response = await fetch(`http://${host()}/events`, {
      headers: { "X-Abgleich-Token": TOKEN },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let text = "";
    while (!text.includes("hello from the hub")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text).toContain('"type":"warn"');
    await reader.cancel();
  });

  test("a foreign Host (DNS rebinding) is refused even with the token", async () => {
    for (const foreign of [
      `evil.example:${server.port}`,
      "evil.example",
      `localhost.evil.example:${server.port}`,
      "",
    ]) {
      const response = await raw("/", { ...withToken(), Host: foreign });
      expect(response.status).toBe(403);
    }
    // loopback by name or address, any port (ssh -L may forward another one)
    for (const own of [`localhost:${server.port}`, "localhost:8080", `[::1]:${server.port}`]) {
      expect((await raw("/", { ...withToken(), Host: own })).status).toBe(200);
    }
  });

  test("a cross-origin POST is refused; the same origin's JSON POST is served", async () => {
    const json = { ...withToken(), "Content-Type": "application/json" };
    const crossSite = await raw(
      "/api/cancel",
      { ...json, Origin: "http://evil.example" },
      "POST",
      "{}",
    );
    expect(crossSite.status).toBe(403);
    const fetchMeta = await raw(
      "/api/cancel",
      { ...json, "Sec-Fetch-Site": "cross-site" },
      "POST",
      "{}",
    );
    expect(fetchMeta.status).toBe(403);
    // a form post from anywhere (not JSON) is no API call
    const form = await raw(
      "/api/cancel",
      {
        ...withToken(),
        "Content-Type": "application/x-www-form-urlencoded",
        Origin: `http://${host()}`,
      },
      "POST",
      "a=b",
    );
    expect(form.status).toBe(415);
    expect(posted).not.toContain("cancel");
    const own = await raw("/api/cancel", { ...json, Origin: `http://${host()}` }, "POST", "{}");
    expect(own.status).toBe(200);
    expect(posted).toContain("cancel");
  });

  test("no CORS headers; a preflight is not answered with permission", async () => {
    const page = await raw("/", { ...withToken(), Origin: "http://evil.example" });
    expect(page.status).toBe(403);
    const preflight = await raw(
      "/api/answer",
      {
        ...withToken(),
        Origin: `http://${host()}`,
        "Access-Control-Request-Method": "POST",
      },
      "OPTIONS",
    );
    expect(preflight.status).toBe(405);
    for (const response of [page, preflight, await raw("/", withToken())]) {
      expect(response.head.toLowerCase()).not.toContain("access-control-");
    }
    const served = await raw("/", withToken());
    expect(served.head).toMatch(/content-security-policy: default-src 'none'/i);
  });
});

describe("the CLI's wizard server", () => {
  let env: SimEnv;
  beforeAll(() => {
    env = createSimEnv();
    env.seed({
      now: 1_767_225_600,
      pools: [
        { name: "src", size: "1G", datasets: [{ name: "data", snapshots: [{ name: "s1" }] }] },
        { name: "dst", size: "1G" },
      ],
    });
  });
  afterAll(() => env?.remove());

  test("listens on 127.0.0.1 only, prints the token URL, and Ctrl-C ends it with 130", async () => {
    const config = env.writeConfig(
      configYaml({ zpool: "src", prefix: "data" }, { zpool: "dst", prefix: "backup" }),
    );
    const child = Bun.spawn([process.execPath, CLI_MAIN, "wizard", config, "--no-open"], {
      env: {
        ...process.env,
        PATH: env.path,
        TZ: "UTC",
        ABGLEICH_LOCK_DIR: join(env.dir, "locks"),
        ABGLEICH_STATE_DIR: join(env.dir, "run-state"),
      },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = await readUntilWizardUrl(child.stdout);
    const match = /http:\/\/127\.0\.0\.1:(\d+)\/\?token=([\w-]{32})/.exec(out);
    expect(match).not.toBeNull();
    const port = Number(match?.[1]);
    // every socket listening on that port, from the kernel's tables
    const listening = (file: string) =>
      readFileSync(file, "utf8")
        .split("\n")
        .slice(1)
        .map((line) => line.trim().split(/\s+/))
        .filter(
          (f) => f[3] === "0A" && Number.parseInt((f[1] ?? "").split(":")[1] ?? "", 16) === port,
        )
        .map((f) => (f[1] ?? "").split(":")[0]);
    expect(listening("/proc/net/tcp")).toEqual(["0100007F"]);
    expect(listening("/proc/net/tcp6")).toEqual([]);
    child.kill("SIGINT");
    expect(await child.exited).toBe(130);
  });
});
