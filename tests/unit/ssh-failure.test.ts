// ssh's own failures are told apart, each with its fix: a refused key or an unknown host key
// is not "host is not up" (the host answered), and the message says what to change.

import { describe, expect, test } from "bun:test";
import {
  classifySshFailure,
  hostFailure,
  type SshProblem,
  sshFailureMessage,
} from "../../lib/hosts/failure.ts";

const CHANGED_KEY = `@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
Offending ED25519 key in /root/.ssh/known_hosts:3
Host key for nas has changed and you have requested strict checking.
Host key verification failed.
`;

/** ssh's stderr as OpenSSH prints it, by the kind each must be read as */
const SAMPLES: [SshProblem, string][] = [
  ["authentication", "root@nas: Permission denied (publickey).\n"],
  ["authentication", "backup@10.0.0.7: Permission denied (publickey,password).\n"],
  [
    "authentication",
    "Received disconnect from 10.0.0.7 port 22:2: Too many authentication failures\n",
  ],
  [
    "host-key-unknown",
    "No ED25519 host key is known for nas and you have requested strict checking.\nHost key verification failed.\n",
  ],
  ["host-key-unknown", "Host key verification failed.\n"],
  ["host-key-changed", CHANGED_KEY],
  ["name-unresolved", "ssh: Could not resolve hostname nowhere: Name or service not known\n"],
  ["connection-refused", "ssh: connect to host 127.0.0.1 port 1: Connection refused\n"],
  ["no-route", "ssh: connect to host 10.9.9.9 port 22: No route to host\n"],
  ["no-route", "ssh: connect to host 10.9.9.9 port 22: Network is unreachable\n"],
  ["timeout", "ssh: connect to host 10.9.9.9 port 22: Connection timed out\n"],
  ["timeout", "Timeout, server 10.0.0.7 not responding.\n"],
  ["other", "client_loop: send disconnect: Broken pipe\n"],
];

const remote = { side: "target" as const, name: "nas", isLocal: false };

describe("classifySshFailure", () => {
  test.each(SAMPLES.map(([kind, stderr], i) => [kind, i, stderr] as const))(
    "%s (sample %d)",
    (kind, _i, stderr) => {
      expect(classifySshFailure(stderr)).toBe(kind);
      // and hostFailure takes every one of them for ssh's failure, not the command's
      expect(hostFailure(remote, { code: 255, stderr })?.problem).toBe(kind);
    },
  );
});

describe("the messages say what happened and what to do", () => {
  const message = (stderr: string) => hostFailure(remote, { code: 255, stderr })?.message ?? "";

  test("a refused key: authentication failed for the user ssh tried, with the fix", () => {
    const text = message("root@nas: Permission denied (publickey).\n");
    expect(text).toStartWith("authentication failed for root@nas (target)");
    expect(text).not.toContain("host is not up");
    expect(text).toContain("~/.ssh/authorized_keys");
    expect(text).toContain("IdentityFile");
    expect(text).toContain("(root@nas: Permission denied (publickey).)");
  });

  test("an unknown host key: accept it once by hand", () => {
    const text = message("Host key verification failed.\n");
    expect(text).toStartWith("the host key of nas (target) is not known here");
    expect(text).toContain("ssh nas true");
    expect(text).not.toContain("host is not up");
  });

  test("a changed host key: a warning, and how to replace the old key after checking", () => {
    const text = message(CHANGED_KEY);
    expect(text).toStartWith("the host key of nas (target) has CHANGED");
    expect(text).toContain("ssh-keygen -R nas");
  });

  test("network failures are `host is not up`, each with its own hint", () => {
    const hints: [string, string][] = [
      ["ssh: connect to host nas port 2222: Connection refused\n", "is sshd running on nas"],
      ["ssh: connect to host nas port 22: No route to host\n", "no route to nas"],
      ["ssh: Could not resolve hostname nas: Name or service not known\n", "check target.host"],
      ["ssh: connect to host nas port 22: Connection timed out\n", "nas did not answer"],
    ];
    for (const [stderr, hint] of hints) {
      const text = message(stderr);
      expect(text).toStartWith(`host is not up: target (${stderr.trim()}): `);
      expect(text).toContain(hint);
    }
  });

  test("every kind has its own message", () => {
    const kinds = [...new Set(SAMPLES.map(([kind]) => kind))];
    const texts = kinds.map((kind) =>
      sshFailureMessage(kind, "", { side: "source", host: "h", reason: "r" }).replace(/ \(r\)/, ""),
    );
    expect(new Set(texts).size).toBe(kinds.length);
  });
});
