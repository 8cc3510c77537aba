// The one redaction every output goes through: resume tokens, Authorization values, URL
// passwords and the secrets of the configuration never reach a line.

import { afterEach, describe, expect, test } from "bun:test";
import {
  addSecrets,
  clearSecrets,
  REDACTED,
  REDACTED_TOKEN,
  redact,
  secretsOf,
} from "../../lib/engine/redact.ts";
import { encodeToken } from "../../lib/sim/token.ts";

afterEach(() => clearSecrets());

describe("redact", () => {
  test("a resume token as zfs makes it is replaced wherever it stands", () => {
    const token = encodeToken({
      object: 1n,
      offset: 4096n,
      bytes: 123456n,
      toguid: 0x6c95b77f1972c82en,
      toname: "tank/data@2026010101",
    });
    expect(token).toMatch(/^1-/);
    const line = `cannot receive: zfs send -t ${token} | zfs receive -s -u dst exited 1`;
    expect(redact(line)).toBe(
      `cannot receive: zfs send -t ${REDACTED_TOKEN} | zfs receive -s -u dst exited 1`,
    );
    expect(redact(JSON.stringify({ token }))).toBe(JSON.stringify({ token: REDACTED_TOKEN }));
  });

  test("names that look a little like tokens are left alone", () => {
    for (const text of ["tank/data@2026010101", "1-2-3", "snapshot 1-abc-def", "20260101-01"])
      expect(redact(text)).toBe(text);
  });

  test("Authorization values and URL passwords", () => {
    expect(redact("Authorization: Bearer tk_abc123")).toBe(`Authorization: Bearer ${REDACTED}`);
    expect(redact('{"authorization":"Basic dXNlcjpwdw=="}')).toBe(
      `{"authorization":"Basic ${REDACTED}"}`,
    );
    expect(redact("posting to https://bot:hunter22@ntfy.example/t failed")).toBe(
      `posting to https://bot:${REDACTED}@ntfy.example/t failed`,
    );
    expect(redact("mail to root@localhost")).toBe("mail to root@localhost");
  });

  test("the configuration's secrets: found by their option names, replaced once registered", () => {
    const plugins = [
      {
        name: "notify",
        options: {
          title: "nas",
          ntfy: { url: "https://ntfy.example/backups", token: "tk_live_4f9a" },
          webhook: {
            url: "https://user:p4ssw0rd@hooks.example/x",
            headers: { "X-Api-Key": "key-7781", "X-Title": "abgleich nas" },
          },
          email: { to: "root@localhost", password: "smtp-secret" },
        },
      },
    ];
    const found = secretsOf(plugins);
    expect(found.sort()).toEqual(["key-7781", "p4ssw0rd", "smtp-secret", "tk_live_4f9a"]);
    addSecrets(found);
    expect(redact("ntfy said 401 for tk_live_4f9a; smtp-secret; abgleich nas")).toBe(
      `ntfy said 401 for ${REDACTED}; ${REDACTED}; abgleich nas`,
    );
  });

  test("a key by its name is a secret: key, access_key, accessKey, apikey; monkey, keyring and public keys not", () => {
    const options = {
      key: "k-plain-1",
      access_key: "k-snake-2",
      accessKey: "k-camel-3",
      apikey: "k-api-4",
      "Signing-Key": "k-header-5",
      monkey: "not-a-secret",
      keyring: "/etc/keyring",
      keys: ["a", "b"],
      publicKey: "ssh-ed25519 AAAA",
      host_key: "/etc/ssh/host.pub",
    };
    expect(secretsOf(options).sort()).toEqual([
      "k-api-4",
      "k-camel-3",
      "k-header-5",
      "k-plain-1",
      "k-snake-2",
    ]);
  });
});
