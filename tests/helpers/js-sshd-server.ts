// A small SSH server for the integration tests, for machines without OpenSSH's sshd: the
// `ssh2` package (JavaScript on the runtime's crypto, no native addon needed) as the protocol,
// `sh -c COMMAND` as the session. Started by
// tests/helpers/sshd.ts as its own process (`bun js-sshd-server.ts CONFIG.json`), never
// imported by a test.
//
// What it does, as much of sshd as abgleich's ssh use needs:
// - listens on 127.0.0.1 on a port the OS picks, logs `Server listening on 127.0.0.1 port N.`
//   on stderr (as `sshd -e` does) once it accepts connections
// - one host key; public-key auth for the current user with one authorized key, logged as
//   `Accepted publickey for USER from 127.0.0.1 port N ssh2: ALGO` (tests count these lines)
// - any number of sessions per connection (ControlMaster multiplexing); `exec` runs
//   `sh -c COMMAND` in its own process group, in HOME, with the configured environment;
//   stdin, stdout and stderr stream both ways with backpressure (ssh windows ↔ pipes), EOF in
//   both directions, exit status or exit signal back; `signal` requests reach the group.
//   One difference to sshd: EOF goes out once the command exited AND closed its output, with
//   its exit status (ssh2 sends no exit status after EOF), not as soon as the output closed
//   while the command runs on.
// - a channel or connection that closes before its command ended hangs the command up: its
//   pipes close and its process group gets SIGHUP, then SIGKILL
// - global requests it does not know (`keepalive@openssh.com`) are answered with a failure,
//   as OpenSSH's sshd answers them (ssh2 does that by itself)
// - SIGTERM, or EOF on its stdin (the test process is gone), ends every session and exits
//
// Not there: passwords, pty, shell, subsystems (sftp), forwarding, agent, X11.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import ssh2, { type Connection, type ServerChannel, type Session } from "ssh2";

// ssh2 is CommonJS: named imports of its values work in Bun, not in Node's ESM loader
const { Server, utils } = ssh2;

export interface JsSshdConfig {
  /** the host's private key (OpenSSH format, e.g. from `ssh-keygen -t ed25519`) */
  hostKeyFile: string;
  /** one public key line (`ssh-ed25519 AAAA… comment`): the only key that may log in */
  authorizedKeyFile: string;
  /** the environment of every session, on top of USER, LOGNAME, SHELL, SSH_CONNECTION */
  env: Record<string, string>;
  /** the sessions' working directory */
  cwd: string;
}

/** after SIGHUP, how long a hung-up command's process group has before SIGKILL */
const HANGUP_GRACE_MS = 1000;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function readConfig(): JsSshdConfig {
  const file = process.argv[2];
  if (!file) throw new Error("usage: js-sshd-server.ts CONFIG.json");
  return JSON.parse(readFileSync(file, "utf8")) as JsSshdConfig;
}

function parsedKey(text: Buffer): ssh2.ParsedKey {
  const key = utils.parseKey(text);
  if (key instanceof Error) throw key;
  return key;
}

const config = readConfig();
// the name ssh logs in as by default (getpwuid); Bun's os.userInfo() says "unknown" for root
const user = execFileSync("id", ["-un"], { encoding: "utf8" }).trim();
const authorized = parsedKey(readFileSync(config.authorizedKeyFile));
const authorizedBlob = authorized.getPublicSSH();

/** a command that runs for a session, until it ended and its output went out */
interface Job {
  child: ChildProcess;
  /** true once exit status and EOF were sent, or the session was hung up */
  done: boolean;
}

const jobs = new Set<Job>();

/** signal a job's whole process group (it is the leader: spawned with `detached`) */
function signalGroup(job: Job, signal: NodeJS.Signals): void {
  const pid = job.child.pid;
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone already
  }
}

/** the channel or the connection went away before the command ended: hang it up */
function hangUp(job: Job): void {
  if (job.done) return;
  job.done = true;
  // closed pipes: a writer gets SIGPIPE, a reader EOF, as under OpenSSH's sshd
  job.child.stdin?.destroy();
  job.child.stdout?.destroy();
  job.child.stderr?.destroy();
  signalGroup(job, "SIGHUP");
  setTimeout(() => signalGroup(job, "SIGKILL"), HANGUP_GRACE_MS).unref();
}

/** a write of nothing, queued behind every earlier write: resolves once those went out */
function flushed(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    stream.write(Buffer.alloc(0), () => resolve());
  });
}

/** run COMMAND for a session's channel; the job is in `jobs` and `ofConnection` until done */
function runCommand(
  channel: ServerChannel,
  command: string,
  env: Record<string, string>,
  ofConnection: Set<Job>,
): Job {
  const child = spawn("/bin/sh", ["-c", command], {
    cwd: config.cwd,
    env,
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const job: Job = { child, done: false };
  jobs.add(job);
  ofConnection.add(job);
  const forget = () => {
    jobs.delete(job);
    ofConnection.delete(job);
  };

  const { stdin, stdout, stderr } = child;
  if (!stdin || !stdout || !stderr) throw new Error("spawn gave no pipes");

  // client → command: pipe() pauses the channel while stdin is full, and ssh2 holds back the
  // window adjust while the channel is paused: the client stops sending
  channel.pipe(stdin);
  stdin.on("error", () => {
    // the command closed its stdin (exited, or never reads): drop what still comes
    channel.unpipe(stdin);
    channel.resume();
  });
  // command → client: a full ssh window makes the channel's write wait, pipe() pauses stdout
  stdout.pipe(channel, { end: false });
  stderr.pipe(channel.stderr, { end: false });

  const outputEnded = Promise.all(
    [stdout, stderr].map(
      (stream) =>
        new Promise<void>((resolve) => {
          stream.once("end", resolve);
          stream.once("close", resolve);
        }),
    ),
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
    child.once("error", (error) => {
      // no process (a missing cwd, …): say so on the session's stderr, exit 127 as sh would
      log(`session: cannot run sh: ${error.message}`);
      channel.stderr.write(`js-sshd: cannot run sh: ${error.message}\n`);
      stdout.destroy();
      stderr.destroy();
      resolve({ code: 127, signal: null });
    });
  });

  void (async () => {
    const [status] = await Promise.all([exited, outputEnded]);
    forget();
    if (job.done) return;
    await Promise.all([flushed(channel), flushed(channel.stderr)]);
    if (job.done) return;
    job.done = true;
    if (status.signal !== null) {
      try {
        channel.exit(status.signal, false, "");
      } catch {
        // a signal ssh has no name for (SIGXCPU, …): report it the way a shell would
        channel.exit(128 + (osConstants.signals[status.signal] ?? 0));
      }
    } else {
      channel.exit(status.code ?? 255);
    }
    channel.end(); // EOF and CHANNEL_CLOSE
  })();
  return job;
}

function handleSession(
  session: Session,
  base: Record<string, string>,
  ofConnection: Set<Job>,
): void {
  let job: Job | undefined;

  // like sshd without AcceptEnv: the client's variables are not taken
  session.on("env", (_accept, reject) => reject?.());
  session.on("pty", (_accept, reject) => reject?.());
  session.on("shell", (_accept, reject) => reject());
  session.on("subsystem", (_accept, reject) => reject());
  session.on("exec", (accept, _reject, info) => {
    const channel = accept();
    channel.on("close", () => {
      if (job) hangUp(job);
    });
    job = runCommand(channel, info.command, base, ofConnection);
  });
  session.on("signal", (accept, reject, info) => {
    const name = `SIG${info.name}`;
    if (!job || job.done || !(name in osConstants.signals)) {
      reject?.();
      return;
    }
    signalGroup(job, name as NodeJS.Signals);
    accept?.();
  });
  session.on("close", () => {
    if (job) hangUp(job);
  });
}

function handleConnection(connection: Connection, remoteIp: string, remotePort: number): void {
  const connectionJobs = new Set<Job>();
  connection.on("authentication", (ctx) => {
    if (ctx.method !== "publickey" || ctx.username !== user) {
      ctx.reject(["publickey"]);
      return;
    }
    const keyMatches =
      ctx.key.algo === authorized.type && Buffer.compare(ctx.key.data, authorizedBlob) === 0;
    if (!keyMatches) {
      ctx.reject(["publickey"]);
      return;
    }
    if (!ctx.signature) {
      // the client asks whether this key would do; it signs next
      ctx.accept();
      return;
    }
    if (!ctx.blob || authorized.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) {
      ctx.reject(["publickey"]);
      return;
    }
    log(`Accepted publickey for ${user} from ${remoteIp} port ${remotePort} ssh2: ${ctx.key.algo}`);
    ctx.accept();
  });
  connection.on("ready", () => {
    const base: Record<string, string> = {
      USER: user,
      LOGNAME: user,
      SHELL: "/bin/sh",
      PATH: "/usr/local/bin:/usr/bin:/bin",
      SSH_CLIENT: `${remoteIp} ${remotePort} ${port}`,
      SSH_CONNECTION: `${remoteIp} ${remotePort} 127.0.0.1 ${port}`,
      ...config.env,
    };
    connection.on("session", (accept) => {
      const session = accept();
      handleSession(session, base, connectionJobs);
    });
  });
  connection.on("error", (error) => {
    // a client that goes away mid-handshake is routine; keep the line for a failing test
    log(`connection from ${remoteIp} port ${remotePort}: ${error.message}`);
  });
  connection.on("close", () => {
    for (const job of connectionJobs) hangUp(job);
    log(`Disconnected from ${remoteIp} port ${remotePort}`);
  });
}

const server = new Server(
  {
    hostKeys: [readFileSync(config.hostKeyFile)],
    algorithms: {
      // chacha20-poly1305 (ssh's first choice) would be ssh2's JS poly1305 without its native
      // binding: slow for gigabyte streams; AES goes through the runtime's crypto
      cipher: [
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        "aes128-ctr",
        "aes192-ctr",
        "aes256-ctr",
      ],
    },
  },
  (connection, info) => handleConnection(connection, info.ip, info.port),
);

let port = 0;
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  port = typeof address === "object" && address !== null ? address.port : 0;
  log(`Server listening on 127.0.0.1 port ${port}.`);
});

let shuttingDown = false;
function shutdown(why: string): void {
  if (shuttingDown) return;
  shuttingDown = true;
  log(`shutting down: ${why}`);
  for (const job of jobs) {
    job.done = true;
    signalGroup(job, "SIGHUP");
  }
  server.close();
  setTimeout(() => {
    for (const job of jobs) signalGroup(job, "SIGKILL");
    process.exit(0);
  }, 200).unref();
  setTimeout(() => process.exit(0), 300);
}

process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
// the test process holds our stdin: when it is gone, so are we
process.stdin.on("end", () => shutdown("stdin closed"));
process.stdin.on("close", () => shutdown("stdin closed"));
process.stdin.resume();
