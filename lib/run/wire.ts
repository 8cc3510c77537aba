// The wire of a transfer: what carries the stream between `zfs send` and `zfs receive` —
// compression, a buffer on the receiving host, a bandwidth limit — and where each stage runs.
// chooseWire decides once per backup stage from the config and the tools each host has;
// wirePipeline turns the choice into the argvs of ONE OS pipeline (lib/run/pipeline.ts).
//
// Stages of one remote host run in ONE ssh command, so ssh carries the compressed bytes: a
// POSIX `sh -c SCRIPT sh ARGV… NONCE` whose SCRIPT holds nothing but fixed text and numbers
// (every argv is a positional parameter, quoted for the remote shell by Host.wrap). The script
// reports each inner stage's exit code and stderr in tagged lines at the end of its stderr,
// so a `zfs receive` failing behind `zstd -d` is still reported as the receive's failure.

import type { Config, SideConfig, TransferConfig } from "../config/types.ts";
import type { Host, RunOptions } from "../hosts/host.ts";
import { shellJoin } from "../hosts/quote.ts";
import { SERVER_ALIVE_COUNT_MAX, SERVER_ALIVE_INTERVAL } from "../hosts/ssh.ts";
import { sudoArgvOf } from "../hosts/sudo.ts";
import type { Side } from "../zfs/model.ts";
import { type PipelineResult, UNKNOWN_CODE } from "./pipeline.ts";

export const WIRE_TOOLS = ["zstd", "lz4", "mbuffer", "pv"] as const;
export type WireTool = (typeof WIRE_TOOLS)[number];
/**
 * A host's zstd takes `--single-thread` (zstd 1.4 and later; older ones refuse the option).
 * Without it zstd 1.5 compresses in jobs of several MiB and writes nothing of a job before it
 * is full: the streams of a batch of small datasets would reach the target only at the end.
 * With it, each side holds back at most about 128 KiB of compressed bytes (one read's worth).
 */
export const ZSTD_SINGLE_THREAD = "zstd --single-thread";
/** what the probe can find on a host: the tools, and what its zstd can do */
export type WireCapability = WireTool | typeof ZSTD_SINGLE_THREAD;

/** mbuffer memory for `buffer: auto` */
export const AUTO_BUFFER = 64 * 1024 * 1024;
/**
 * `buffer: auto` leaves out the buffer for a stream expected smaller than this: it ends within
 * moments on any link, and the buffer would only cost a process (and its memory) per transfer
 */
export const AUTO_BUFFER_FROM = 8 * 1024 * 1024;

/**
 * One command per host finds every wire tool: fixed text, nothing interpolated. `command -v`
 * is POSIX; the script never fails, so a non-zero exit means the host did not run it. zstd is
 * asked whether it takes `--single-thread` by compressing nothing with it.
 */
export const TOOLS_PROBE: readonly string[] = [
  "sh",
  "-c",
  'for t in zstd lz4 mbuffer pv; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; ' +
    `zstd -q --single-thread -c </dev/null >/dev/null 2>&1 && echo '${ZSTD_SINGLE_THREAD}'; exit 0`,
];

/** the tools (and zstd's option) named in the probe's output (anything else is ignored) */
export function parseTools(stdout: string): Set<WireCapability> {
  const names = new Set(stdout.split("\n").map((line) => line.trim()));
  return new Set(
    [...WIRE_TOOLS, ZSTD_SINGLE_THREAD].filter((name): name is WireCapability => names.has(name)),
  );
}

/** which wire tools `host` has; throws with the host's answer when the probe did not run */
export async function detectTools(
  host: Host,
  options: RunOptions = {},
): Promise<Set<WireCapability>> {
  const result = await host.run(TOOLS_PROBE, options);
  if (result.code !== 0) {
    throw new Error(
      `cannot ask ${host.name} (${host.side}) which of ${WIRE_TOOLS.join(", ")} it has: exit ${result.code}${result.stderr.trim() ? `: ${result.stderr.trim()}` : ""}`,
    );
  }
  return parseTools(result.stdout);
}

/** one end of the wire, as chooseWire sees it */
export interface WireEnd {
  side: Side;
  /** "localhost" or the ssh destination */
  name: string;
  isLocal: boolean;
  /**
   * the machine its commands run on, as the config names it (`localhost`, or destination, user
   * and port): two remote ends with the same one are one host
   */
  address: string;
  tools: ReadonlySet<WireCapability>;
}

export interface Wire {
  /** compressed on the source host, decompressed on the target host; null: as sent */
  compression: "zstd" | "lz4" | null;
  /** zstd on the source runs with `--single-thread`: it writes each 128 KiB block once made */
  zstdSingleThread?: boolean;
  /** `mbuffer -m` bytes on the target host; 0: none */
  buffer: number;
  /** streams expected smaller than this go without the buffer (0: every stream is buffered) */
  bufferFrom: number;
  /** bytes per second on the wire (after compression); 0: no limit */
  bwlimit: number;
  /** the source host's tool that limits the rate */
  limiter: "pv" | "mbuffer" | null;
  /** the pipeline runs on the source host, which connects to the target itself */
  direct: boolean;
  /**
   * source and target are one remote host: the whole pipeline runs there in one ssh command,
   * `zfs send | zfs receive`, and no byte comes to this machine
   */
  oneHost?: boolean;
  /** what was chosen and why, for the plan: `wire: zstd over ssh, mbuffer 64 MiB on target` */
  text: string;
}

export type WireChoice = { ok: true; wire: Wire } | { ok: false; problems: string[] };

/** `64 MiB`, `1.5 GiB`, `512 KiB`, `100 B` */
export function sizeText(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}

const at = (end: WireEnd) => `${end.name} (${end.side})`;

/** `zstd missing on a (source)`, `zstd and lz4 missing on b (target)`, or both kinds */
function missingText(tools: readonly WireTool[], ends: readonly WireEnd[]): string {
  const byHosts = new Map<string, WireTool[]>();
  for (const tool of tools) {
    const lacking = ends.filter((end) => !end.tools.has(tool)).map(at);
    const key = [...new Set(lacking)].join(" and ");
    byHosts.set(key, [...(byHosts.get(key) ?? []), tool]);
  }
  return [...byHosts]
    .map(([hosts, missing]) => `${missing.join(" and ")} missing on ${hosts}`)
    .join(", ");
}

const has = (tool: WireTool, ...ends: WireEnd[]) => ends.every((end) => end.tools.has(tool));

/**
 * The wire for a backup stage: pure, from the transfer config and each end's tools. `auto`
 * settings fall back and say why; an explicit setting an end cannot honour is refused before
 * any transfer, naming the host, the tool and the fix.
 */
export function chooseWire(transfer: TransferConfig, source: WireEnd, target: WireEnd): WireChoice {
  const problems: string[] = [];
  const notes: string[] = [];
  // both ends on this machine, or both on one remote host: a local pipe there, no wire
  const oneHost = !source.isLocal && !target.isLocal && source.address === target.address;
  const local = (source.isLocal && target.isLocal) || oneHost;
  const direct = transfer.direct && !source.isLocal && !target.isLocal && !oneHost;

  let compression: Wire["compression"] = null;
  if (!local && transfer.compression !== "off") {
    if (transfer.compression === "auto") {
      compression = has("zstd", source, target)
        ? "zstd"
        : has("lz4", source, target)
          ? "lz4"
          : null;
      if (compression === "lz4") notes.push(`lz4: ${missingText(["zstd"], [source, target])}`);
      if (compression === null)
        notes.push(`compression off: ${missingText(["zstd", "lz4"], [source, target])}`);
    } else {
      const tool = transfer.compression;
      for (const end of [source, target].filter((e) => !e.tools.has(tool))) {
        problems.push(
          `transfer.compression is ${tool}, but ${tool} is missing on ${at(end)}: install it there (\`apt install ${tool}\`) or set \`compression: auto\``,
        );
      }
      compression = tool;
    }
  }

  let buffer = 0;
  if (transfer.buffer === "auto") {
    if (!local && target.tools.has("mbuffer")) buffer = AUTO_BUFFER;
    else if (!local) notes.push(`no buffer: ${missingText(["mbuffer"], [target])}`);
  } else if (transfer.buffer > 0) {
    buffer = transfer.buffer;
    if (!target.tools.has("mbuffer"))
      problems.push(
        `transfer.buffer is ${sizeText(buffer)}, but mbuffer is missing on ${at(target)}: install it there (\`apt install mbuffer\`) or set \`buffer: auto\``,
      );
  }

  let limiter: Wire["limiter"] = null;
  if (transfer.bwlimit > 0) {
    limiter = source.tools.has("pv") ? "pv" : source.tools.has("mbuffer") ? "mbuffer" : null;
    if (limiter === null)
      problems.push(
        `transfer.bwlimit is ${sizeText(transfer.bwlimit)}/s, but neither pv nor mbuffer is on ${at(source)}: install one there (\`apt install pv\`) or set \`bwlimit: off\``,
      );
  }
  if (problems.length > 0) return { ok: false, problems };

  const carrier = oneHost
    ? `local pipe on ${source.name} (source and target are one host)`
    : local
      ? "local pipe"
      : `${compression ?? "uncompressed"} over ssh${direct ? `, direct from ${source.name} to ${target.name}` : ""}`;
  const parts = [`wire: ${carrier}`];
  const bufferFrom = transfer.buffer === "auto" && buffer > 0 ? AUTO_BUFFER_FROM : 0;
  if (buffer > 0)
    parts.push(
      `mbuffer ${sizeText(buffer)} on target${bufferFrom > 0 ? ` for streams from ${sizeText(bufferFrom)}` : ""}`,
    );
  if (limiter !== null) parts.push(`limit ${sizeText(transfer.bwlimit)}/s (${limiter} on source)`);
  const text = parts.join(", ") + (notes.length > 0 ? ` (${notes.join("; ")})` : "");
  return {
    ok: true,
    wire: {
      compression,
      ...(compression === "zstd" && source.tools.has(ZSTD_SINGLE_THREAD)
        ? { zstdSingleThread: true }
        : {}),
      buffer,
      bufferFrom,
      bwlimit: limiter ? transfer.bwlimit : 0,
      limiter,
      direct,
      ...(oneHost ? { oneHost } : {}),
      text,
    },
  };
}

/** the wire of a plain `send | receive`: what runSend does without a choice */
export const PLAIN_WIRE: Wire = Object.freeze({
  compression: null,
  buffer: 0,
  bufferFrom: 0,
  bwlimit: 0,
  limiter: null,
  direct: false,
  text: "wire: as sent",
});

// ---- the pipeline ----

/** a stage as the user reads it (`argv`), and what runs (`run`: maybe `ssh … -- argv`) */
interface CommandNode {
  kind: "command";
  argv: string[];
  run: string[];
  /** only moves bytes (compressor, buffer, limiter): not blamed for a zfs stage's failure */
  carrier: boolean;
  /** the host it runs on */
  side: Side;
}

/** commands one after another into the same pipe while they succeed (a batch's sends) */
interface SequenceNode {
  kind: "sequence";
  steps: CommandNode[];
}

/** stages of one host in one `sh -c` (see groupScript) */
interface GroupNode {
  kind: "group";
  nonce: string;
  parts: (Node | SequenceNode)[];
  /** the part a failure without a report belongs to (the zfs command the group exists for) */
  main: number;
  run: string[];
}

type Node = CommandNode | GroupNode;

/**
 * A part of a group: one command's word count, or a sequence's — commands run one after
 * another into the same pipe, each only when the one before it succeeded (a batch's sends or
 * receives)
 */
export type GroupPart = number | readonly number[];

/**
 * POSIX sh running `parts.length` commands as `c1 | c2 | …`, the argvs being the positional
 * parameters in order, then the nonce. One line, no `!`, only fixed text and numbers, so any
 * login shell (csh included) hands it over intact. c1's stderr stays live (`zfs send -v -P`
 * progress); every other command's stderr is passed on as it comes, each line tagged
 * `NONCE I|LINE`, and each command reports its exit code when it ends, in a line `NONCE I CODE`.
 * Every tagged line starts with a carriage return, so a tag is found even inside a line c1 had
 * not finished; not a newline, because bash (`/bin/sh` on some systems) writes a `printf`
 * through line-buffered output, a leading newline as a write of its own, and two stages'
 * tags written at once would then share one (see parseGroupReport). No temporary files, so
 * no `mktemp` or `rm`: on a slow or emulated host every process a transfer starts counts. The
 * group exits 0 when it ran to its end; the codes are in the report. With `watch`, the end of
 * the session's stdin (the local ssh was killed: a cancel) stops c1 with SIGTERM, as a cut
 * connection would: OpenSSH sends no signal to a command without a terminal, and c1 here never
 * writes to the closed channel; c1's pid goes through a file in a private temporary directory
 * (`$!` would need a `!`).
 *
 * A sequence part runs its commands one after another while they succeed, and after each
 * reports `NONCE I.K CODE` (K from 1) in its own text: as a tagged line for c1, through the
 * tagging loop (so in order with the command's stderr) for the others; its own code is the
 * last command's that ran.
 */
export function groupScript(parts: readonly GroupPart[], watch = false): string {
  const total = parts.reduce<number>(
    (sum, part) => sum + (typeof part === "number" ? part : part.reduce((a, n) => a + n, 0)),
    0,
  );
  const nonce = `"\${${total + 1}}"`;
  let next = 1;
  const wordsOf = (length: number, where: string) => {
    if (length < 1) throw new Error(`group ${where} is empty`);
    const words = Array.from({ length }, (_, i) => `"\${${next + i}}"`).join(" ");
    next += length;
    return words;
  };
  const stages = parts.map((part, index) => {
    const i = index + 1;
    const sequence = typeof part !== "number";
    if (sequence && part.length === 0) throw new Error(`group stage ${i} is an empty sequence`);
    if (sequence && watch && index === 0) throw new Error("a watched group runs one command first");
    const code = `printf '\\r%s ${i} %s\\n' ${nonce} "${sequence ? "$r" : "$?"}" >&2;`;
    /** `r=0; [ "$r" -ne 0 ] || { c1 REDIRECT; r=$?; MARK 1; }; …`: stops at the first failure */
    const steps = (counts: readonly number[], redirect: string, mark: (k: number) => string) =>
      [
        "r=0;",
        ...counts.map(
          (length, k) =>
            `[ "$r" -ne 0 ] || { ${wordsOf(length, `stage ${i}.${k + 1}`)}${redirect}; r=$?; ${mark(k + 1)} };`,
        ),
      ].join(" ");
    if (index === 0) {
      if (sequence)
        return `{ ${steps(part, "", (k) => `printf '\\r%s ${i}.${k} %s\\n' ${nonce} "$r" >&2;`)} ${code} }`;
      const words = wordsOf(part, `stage ${i}`);
      const command = watch
        ? `sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$t/p" ${words} </dev/null`
        : words;
      return `{ ${command}; ${code} }`;
    }
    // the command's stdout goes on down the pipe (fd 4); its stderr through a tagging loop
    // (the shell's own `read`: no process started for it)
    const run = sequence
      ? steps(part, " 2>&1 >&4 4>&-", (k) => `printf '%s ${i}.${k} %s\\n' ${nonce} "$r";`)
      : `${wordsOf(part, `stage ${i}`)} 2>&1 >&4 4>&-;`;
    const tag = `printf '\\r%s ${i}|%s\\n' ${nonce} "$l"`;
    return `{ { ${run} ${code} } | { while IFS= read -r l; do ${tag}; done; [ -z "$l" ] || ${tag}; } >&2; } 4>&1`;
  });
  return [
    `trap 'exit 129' HUP; trap 'exit 143' TERM;`,
    watch
      ? `t=$(mktemp -d "\${TMPDIR:-/tmp}/abgleich.XXXXXX") || exit 125; trap 'rm -rf "$t"' EXIT; exec 3<&0; { while read -r _ <&3; do :; done; kill -TERM "$(cat "$t/p" 2>/dev/null)"; } >/dev/null 2>&1 &`
      : "",
    `${stages.join(" | ")};`,
    "exit 0",
  ]
    .filter((line) => line !== "")
    .join(" ");
}

export interface GroupReport {
  /** per command; UNKNOWN_CODE where no code was reported */
  codes: number[];
  stderr: string[];
}

/**
 * The report in a group's stderr: every tagged line (`\rNONCE I CODE\n`, `\rNONCE I|LINE\n`)
 * is taken out, and what is left is c1's own stderr. null when nothing is tagged with `nonce`
 * (the group never got as far as one command's end). A sequence c1's reports
 * (`\rNONCE 1.K CODE\n`) stay in its text, where sequenceReport finds them.
 */
export function parseGroupReport(stderr: string, nonce: string, count: number): GroupReport | null {
  const codes = Array.from({ length: count }, () => UNKNOWN_CODE);
  const sections = Array.from({ length: count }, () => "");
  const escaped = escapeRegExp(nonce);
  const tagged = new RegExp(`\\r${escaped} (\\d+)(?:\\.(\\d+))?(?: (\\d+)|\\|([^\\n]*))\\n`, "g");
  let found = false;
  let first = "";
  let from = 0;
  for (const match of stderr.matchAll(tagged)) {
    found = true;
    first += stderr.slice(from, match.index);
    from = (match.index ?? 0) + match[0].length;
    const index = Number(match[1]) - 1;
    if (index < 0 || index >= count) continue;
    if (match[2] !== undefined) {
      // a step of c1's sequence: kept in place, between the steps' own lines
      if (index === 0 && match[3] !== undefined) first += `${nonce} 1.${match[2]} ${match[3]}\n`;
    } else if (match[3] !== undefined) codes[index] = Number(match[3]);
    else sections[index] += `${match[4]}\n`;
  }
  if (!found) return null;
  sections[0] = first + stderr.slice(from) + sections[0];
  return { codes, stderr: sections };
}

/** `text` matched literally in a RegExp */
export const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The steps of sequence part `part` (1-based) from its text: each step's code and the stderr
 * it wrote before its report; the text after the last report is the step that was running
 * (no code: cut, or never reached). Steps without a report are UNKNOWN_CODE.
 */
export function sequenceReport(
  text: string,
  nonce: string,
  part: number,
  count: number,
): GroupReport {
  const codes = Array.from({ length: count }, () => UNKNOWN_CODE);
  const stderr = Array.from({ length: count }, () => "");
  const mark = new RegExp(`\\r?${escapeRegExp(nonce)} ${part}\\.(\\d+) (\\d+)\\n`, "g");
  let from = 0;
  let next = 0;
  for (const match of text.matchAll(mark)) {
    const step = Number(match[1]) - 1;
    if (step !== next || step >= count) continue; // only in order: nothing else carries the nonce
    stderr[step] = text.slice(from, match.index);
    codes[step] = Number(match[2]);
    from = (match.index ?? 0) + match[0].length;
    next++;
  }
  if (next < count) stderr[next] = text.slice(from);
  else stderr[count - 1] += text.slice(from);
  return { codes, stderr };
}

function leaves(node: Node | SequenceNode): CommandNode[] {
  if (node.kind === "command") return [node];
  return node.kind === "sequence" ? node.steps : node.parts.flatMap(leaves);
}

/** the logical codes and stderr of `node`, from what its process reported */
function expandNode(
  node: Node | SequenceNode,
  code: number,
  stderr: string,
  nonce = "",
  part = 0,
): GroupReport {
  if (node.kind === "command") return { codes: [code], stderr: [stderr] };
  if (node.kind === "sequence") return sequenceReport(stderr, nonce, part, node.steps.length);
  const report = parseGroupReport(stderr, node.nonce, node.parts.length);
  const out: GroupReport = { codes: [], stderr: [] };
  node.parts.forEach((part, index) => {
    const reported = report?.codes[index] ?? UNKNOWN_CODE;
    const partStderr = report?.stderr[index] ?? "";
    let own: GroupReport;
    if (reported !== UNKNOWN_CODE || code === 0) {
      // a group that ran to its end (exit 0) without reporting a command did not run as
      // written (a forced command, another shell): unknown, never a success
      const text = report !== null ? partStderr : index === node.main ? stderr : "";
      own = expandNode(part, reported, text, node.nonce, index + 1);
    } else if (index === node.main) {
      // the group was cut, or never ran, before its main command ended: only the connection's
      // code is known, and it is the main command's, with what ssh said (the untagged text)
      const untagged = report?.stderr[0] ?? "";
      const text = report === null ? stderr : index === 0 ? partStderr : partStderr + untagged;
      own = expandNode(part, code, text, node.nonce, index + 1);
      // in a sequence, the step that was running when the group was cut (the first without
      // a report of its own) is the one the connection's code belongs to
      const running = own.codes.indexOf(UNKNOWN_CODE);
      if (part.kind === "sequence" && running >= 0) own.codes[running] = code;
    } else {
      own = { codes: leaves(part).map(() => 0), stderr: leaves(part).map(() => "") };
    }
    out.codes.push(...own.codes);
    out.stderr.push(...own.stderr);
  });
  return out;
}

let nonceCounter = 0;
/** a tag no stderr line carries by chance */
function randomNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  nonceCounter++;
  return `abgleich-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}${nonceCounter}`;
}

/** where `direct` connects from the source host: the config's target host, user and port */
export interface DirectTarget {
  sideConfig: Pick<SideConfig, "host" | "user" | "port">;
  ssh: Pick<Config["ssh"], "compression" | "cipher">;
}

/** seconds the source host's ssh waits for the target in direct mode */
const DIRECT_CONNECT_TIMEOUT = 20;

/**
 * `ssh … TARGET` as run ON THE SOURCE HOST: no ssh_config of this machine, no control socket;
 * its own keys, never a password prompt.
 */
export function directSshArgv(
  target: DirectTarget,
  connectTimeout = DIRECT_CONNECT_TIMEOUT,
): string[] {
  const { host, user, port } = target.sideConfig;
  if (host.startsWith("-") || /[\s\0]/.test(host) || user.startsWith("-") || /[\s\0]/.test(user))
    throw new Error(`direct: not an ssh destination: ${JSON.stringify(`${user}@${host}`)}`);
  const argv = ["ssh", "-o", "BatchMode=yes", "-o", `ConnectTimeout=${connectTimeout}`];
  argv.push("-o", `ServerAliveInterval=${SERVER_ALIVE_INTERVAL}`);
  argv.push("-o", `ServerAliveCountMax=${SERVER_ALIVE_COUNT_MAX}`);
  argv.push("-o", `Compression=${target.ssh.compression ? "yes" : "no"}`);
  if (target.ssh.cipher !== "") argv.push("-c", target.ssh.cipher);
  if (port !== null) argv.push("-p", String(port));
  if (user !== "") argv.push("-l", user);
  argv.push(host);
  return argv;
}

/** the check that the source host reaches the target on its own (run on the source) */
export function directProbeArgv(target: DirectTarget): string[] {
  return [...directSshArgv(target, 10), "--", "true"];
}

export interface WirePipeline {
  /** argvs for runPipeline */
  stages: string[][];
  /** every command as the user reads it, in pipe order (unwrapped) */
  commands: string[][];
  /** per command: only moves bytes */
  carriers: boolean[];
  /** per command: the host it runs on */
  sides: Side[];
  /** stage 1 reads a stdin held open until a cancel (its end stops a direct send) */
  holdStdin: boolean;
  /** per transfer of a batch: the index in `commands` of its send and of its receive */
  sends: number[];
  receives: number[];
  /**
   * a batch's sends report each end in stage 1's live stderr as `\rTAG 1.K CODE` (see
   * groupScript); null for a single transfer
   */
  stepTag: string | null;
  /** a batch's receives report each end in the last stage's stderr, tagged so; else null */
  receiveTag: string | null;
  /** runPipeline's result per stage → the result per command */
  expand(result: PipelineResult): PipelineResult;
  /** the codes and stderr per command as reported, kept even when the run was cancelled */
  report(result: PipelineResult): GroupReport;
}

export interface WirePipelineOptions {
  /** required for a direct wire */
  direct?: DirectTarget;
  /** tags of the groups' reports (tests fix them) */
  nonce?: () => string;
  /** the stream's expected size (the plan's estimate); unknown: null */
  expectedBytes?: number | null;
}

/**
 * The stages of one transfer: `send | [compress] | [limit]` on the source host,
 * `[decompress] | [buffer] | receive` on the target host. Pure but for the hosts' wrap() (and
 * trace() under -v).
 */
export function wirePipeline(
  send: readonly string[],
  receive: readonly string[],
  source: Host,
  target: Host,
  wire: Wire,
  options: WirePipelineOptions = {},
): WirePipeline {
  return wireBatch([send], [receive], source, target, wire, options);
}

/**
 * Several transfers through ONE pipeline: the sends one after another into the same wire, the
 * receives one after another out of it, each `zfs receive` reading exactly its own stream. A
 * host's part stops at its first failure, so a receive never reads what follows a refused
 * stream. One command each is the single transfer of wirePipeline. Not for a direct wire, nor
 * for one on one host.
 */
export function wireBatch(
  sends: readonly (readonly string[])[],
  receives: readonly (readonly string[])[],
  source: Host,
  target: Host,
  wire: Wire,
  options: WirePipelineOptions = {},
): WirePipeline {
  if (sends.length === 0 || sends.length !== receives.length)
    throw new Error("a batch pairs each send with one receive");
  const batch = sends.length > 1;
  if (batch && (wire.direct || wire.oneHost))
    throw new Error("a direct or one-host wire carries one transfer at a time");
  const nonce = options.nonce ?? randomNonce;
  // a `sudo: yes` side's zfs stages run (and read in messages) as `sudo -n zfs …`
  const cmd = (side: Side, argv: readonly string[], carrier = true): CommandNode => {
    const line = sudoArgvOf(side === "source" ? source : target, argv);
    return { kind: "command", argv: line, run: [...line], carrier, side };
  };
  const zfsPart = (
    side: Side,
    argvs: readonly (readonly string[])[],
  ): CommandNode | SequenceNode =>
    batch
      ? { kind: "sequence", steps: argvs.map((argv) => cmd(side, argv, false)) }
      : cmd(side, argvs[0] as string[], false);
  const sending: (CommandNode | SequenceNode)[] = [zfsPart("source", sends)];
  if (wire.compression === "zstd")
    sending.push(
      cmd("source", ["zstd", "-c", "-3", ...(wire.zstdSingleThread ? ["--single-thread"] : [])]),
    );
  // 64 KiB blocks (LZ4's match window anyway): with its default 4 MiB ones lz4 writes nothing of
  // a block until it is full, and a batch's small streams would wait for the last send. `-q`
  // first, or lz4 says the block size on stderr (its errors it still prints).
  if (wire.compression === "lz4") sending.push(cmd("source", ["lz4", "-q", "-c", "-B4"]));
  if (wire.limiter === "pv") sending.push(cmd("source", ["pv", "-q", "-L", String(wire.bwlimit)]));
  if (wire.limiter === "mbuffer")
    sending.push(cmd("source", ["mbuffer", "-q", "-r", String(wire.bwlimit)]));
  const receiving: (CommandNode | SequenceNode)[] = [];
  if (wire.compression !== null) receiving.push(cmd("target", [wire.compression, "-dc"]));
  const expected = options.expectedBytes ?? null;
  const small = expected !== null && expected < wire.bufferFrom;
  if (wire.buffer > 0 && !small)
    receiving.push(cmd("target", ["mbuffer", "-q", "-m", String(wire.buffer)]));
  receiving.push(zfsPart("target", receives));

  let stepTag: string | null = null;
  let receiveTag: string | null = null;
  /** `parts` on the host `wrap` reaches: as they are, one wrapped command, or one group */
  const onHost = (
    parts: (Node | SequenceNode)[],
    wrap: ((argv: string[]) => string[]) | null,
    main: number,
    watch = false,
  ): Node[] => {
    const sequence = parts.some((part) => part.kind === "sequence");
    // a sequence is a group even on this machine (the local shell runs it as given)
    if (wrap === null && !sequence) return parts as Node[];
    const only = parts[0];
    if (parts.length === 1 && only?.kind === "command" && !watch && wrap !== null)
      return [{ ...only, run: wrap(only.run) }];
    const tag = nonce();
    if (batch && parts.includes(sending[0] as SequenceNode)) stepTag = tag;
    if (batch && parts.includes(receiving[receiving.length - 1] as SequenceNode)) receiveTag = tag;
    const script = groupScript(
      parts.map((part) =>
        part.kind === "sequence" ? part.steps.map((step) => step.run.length) : part.run.length,
      ),
      watch,
    );
    const words = parts.flatMap((part) =>
      part.kind === "sequence" ? part.steps.flatMap((step) => step.run) : part.run,
    );
    const argv = ["sh", "-c", script, "sh", ...words, tag];
    return [{ kind: "group", nonce: tag, parts, main, run: wrap === null ? argv : wrap(argv) }];
  };
  const wrapOf = (host: Host) => (host.isLocal ? null : (argv: string[]) => host.wrap(argv));
  /** -v: the stages a host of this machine runs, as run (a remote one's wrap tells its own) */
  const local = (host: Host, nodes: Node[]): Node[] => {
    if (host.isLocal) for (const node of nodes) host.trace?.(node.run);
    return nodes;
  };

  let top: Node[];
  if (wire.direct) {
    if (!options.direct) throw new Error("a direct wire needs the target's ssh destination");
    const hop = directSshArgv(options.direct);
    const inner = onHost(
      receiving,
      (argv) => [...hop, "--", shellJoin(argv)],
      receiving.length - 1,
    );
    top = local(source, onHost([...sending, ...inner], wrapOf(source), 0, true));
  } else if (wire.oneHost) {
    // every stage on the one host, in one group watched like a direct one's (a cancel ends it)
    top = local(source, onHost([...sending, ...receiving], wrapOf(source), 0, true));
  } else {
    top = [
      ...local(source, onHost(sending, wrapOf(source), 0)),
      ...local(target, onHost(receiving, wrapOf(target), receiving.length - 1)),
    ];
  }
  const all = top.flatMap(leaves);
  const sendSteps = leaves(sending[0] as CommandNode | SequenceNode);
  const receiveSteps = leaves(receiving[receiving.length - 1] as CommandNode | SequenceNode);
  const report = (result: PipelineResult): GroupReport => {
    const out: GroupReport = { codes: [], stderr: [] };
    top.forEach((node, index) => {
      const own = expandNode(node, result.codes[index] ?? UNKNOWN_CODE, result.stderr[index] ?? "");
      out.codes.push(...own.codes);
      out.stderr.push(...own.stderr);
    });
    return out;
  };
  return {
    stages: top.map((node) => node.run),
    commands: all.map((node) => node.argv),
    carriers: all.map((node) => node.carrier),
    sides: all.map((node) => node.side),
    holdStdin: wire.direct || wire.oneHost === true,
    sends: sendSteps.map((step) => all.indexOf(step)),
    receives: receiveSteps.map((step) => all.indexOf(step)),
    stepTag,
    receiveTag,
    report,
    expand(result) {
      const out = report(result);
      const codes = result.cancelled ? out.codes.map(() => UNKNOWN_CODE) : out.codes;
      return { ...result, codes, stderr: out.stderr, ok: result.ok && codes.every((c) => c === 0) };
    },
  };
}
