// Errors with ZFS's exit codes, its usage texts, and a getopt-style option parser that
// rejects what zfs rejects with the same words ("invalid option 'p'").
import type { ZfsVersion } from "./version.ts";

/** A failure to report as zfs does: the message (without trailing newline) and the exit code. */
export class ZfsError extends Error {
  constructor(
    message: string,
    readonly code = 1,
  ) {
    super(message);
  }
}

const USAGES: Record<string, string> = {
  create:
    "\tcreate [-Pnpuv] [-o property=value] ... <filesystem>\n\tcreate [-Pnpsv] [-b blocksize] [-o property=value] ... -V <size> <volume>",
  destroy:
    "\tdestroy [-fnpRrv] <filesystem|volume>\n\tdestroy [-dnpRrv] <filesystem|volume>@<snap>[%<snap>][,...]\n\tdestroy <filesystem|volume>#<bookmark>",
  get: '\tget [-rHp] [-d max] [-o "all" | field[,...]]\n\t    [-t type[,...]] [-s source[,...]]\n\t    <"all" | property[,...]> [filesystem|volume|snapshot|bookmark] ...',
  list: "\tlist [-Hp] [-r|-d max] [-o property[,...]] [-s property]...\n\t    [-S property]... [-t type[,...]] [filesystem|volume|snapshot] ...",
  mount: "\tmount\n\tmount [-flvO] [-o opts] <-a | filesystem>",
  receive:
    "\treceive [-vMnsFhu] [-o <property>=<value>] ... [-x <property>] ...\n\t    <filesystem|volume|snapshot>\n\treceive [-vMnsFhu] [-o <property>=<value>] ... [-x <property>] ... \n\t    [-d | -e] <filesystem>\n\treceive -A <filesystem|volume>",
  send: "\tsend [-DnPpRVvLecwhb] [-[i|I] snapshot] <snapshot>\n\tsend [-DnVvPLecw] [-i snapshot|bookmark] <filesystem|volume|snapshot>\n\tsend [-DnPpVvLec] [-i bookmark|snapshot] --redact <bookmark> <snapshot>\n\tsend [-nVvPe] -t <receive_resume_token>\n\tsend [-PnVv] --saved filesystem",
  snapshot: "\tsnapshot [-r] [-o property=value] ... <filesystem|volume>@<snap> ...",
  unmount: "\tunmount [-fu] <-a | filesystem|mountpoint>",
  hold: "\thold [-r] <tag> <snapshot> ...",
  holds: "\tholds [-rH] <snapshot> ...",
  release: "\trelease [-r] <tag> <snapshot> ...",
  diff: "\tdiff [-FHt] <snapshot> [snapshot|filesystem]",
  bookmark: "\tbookmark <snapshot|bookmark> <newbookmark>",
  version: "\tversion",
  "load-key": "\tload-key [-rn] [-L <keylocation>] <-a | filesystem|volume>",
  "unload-key": "\tunload-key [-r] <-a | filesystem|volume>",
};

/** where 2.3.2's usage lines differ from 2.1.11's (cmd/zfs/zfs_main.c get_usage) */
const USAGES_23: Record<string, string> = {
  get: '\tget [-rHp] [-j [--json-int]] [-d max] [-o "all" | field[,...]]\n\t    [-t type[,...]] [-s source[,...]]\n\t    <"all" | property[,...]> [filesystem|volume|snapshot|bookmark] ...',
  list: "\tlist [-Hp] [-j [--json-int]] [-r|-d max] [-o property[,...]] [-s property]...\n\t    [-S property]... [-t type[,...]] [filesystem|volume|snapshot] ...",
  mount: "\tmount [-j]\n\tmount [-flvO] [-o opts] <-a|-R filesystem|filesystem>",
  send: "\tsend [-DLPbcehnpsVvw] [-i|-I snapshot]\n\t     [-R [-X dataset[,dataset]...]]     <snapshot>\n\tsend [-DnVvPLecw] [-i snapshot|bookmark] <filesystem|volume|snapshot>\n\tsend [-DnPpVvLec] [-i bookmark|snapshot] --redact <bookmark> <snapshot>\n\tsend [-nVvPe] -t <receive_resume_token>\n\tsend [-PnVv] --saved filesystem",
  holds: "\tholds [-rHp] <snapshot> ...",
  diff: "\tdiff [-FHth] <snapshot> [snapshot|filesystem]",
  version: "\tversion [-j]",
};

/**
 * The text zfs prints after an error in a command's arguments (exit code 2), as the given
 * release prints it (2.3 adds a line pointing to `zfs help`).
 */
export function usage(verb: string, version: ZfsVersion = "2.1.11"): string {
  const is23 = version !== "2.1.11";
  const lines = (is23 ? USAGES_23[verb] : undefined) ?? USAGES[verb] ?? `\t${verb}`;
  const help = is23 ? "\n\nFor further help on a command or topic, run: zfs help [<topic>]" : "";
  return `usage:\n${lines}\n\nFor the property list, run: zfs set|get\n\nFor the delegated permission list, run: zfs allow|unallow${help}`;
}

/**
 * An error in a command's arguments: the message, then the usage text of the release the
 * simulator answers as (simMain renders it; `message` holds 2.1.11's).
 */
export class UsageError extends ZfsError {
  constructor(
    readonly verb: string,
    readonly detail?: string,
  ) {
    super(UsageError.text(verb, detail, "2.1.11"), 2);
  }

  static text(verb: string, detail: string | undefined, version: ZfsVersion): string {
    return detail ? `${detail}\n${usage(verb, version)}` : usage(verb, version);
  }

  /** the whole text as `version` prints it */
  render(version: ZfsVersion): string {
    return UsageError.text(this.verb, this.detail, version);
  }
}

export function usageError(verb: string, message?: string): ZfsError {
  return new UsageError(verb, message);
}

export interface ParsedArgs {
  flags: Set<string>;
  /** options with a value, in order (repeatable options keep every value) */
  values: Array<[string, string]>;
  operands: string[];
}

/**
 * getopt(3) as zfs uses it: `spec` lists flag letters, a letter followed by ':' takes a
 * value ("o:" accepts "-o x" and "-ox").
 */
export function parseOptions(verb: string, args: string[], spec: string): ParsedArgs {
  const withValue = new Set<string>();
  const known = new Set<string>();
  for (let i = 0; i < spec.length; i++) {
    const letter = spec[i] as string;
    known.add(letter);
    if (spec[i + 1] === ":") {
      withValue.add(letter);
      i++;
    }
  }
  const result: ParsedArgs = { flags: new Set(), values: [], operands: [] };
  // glibc getopt permutes: options may follow operands (zfs list pool -d 1), until "--".
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--") {
      result.operands.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      result.operands.push(arg);
      continue;
    }
    for (let j = 1; j < arg.length; j++) {
      const letter = arg[j] as string;
      if (!known.has(letter)) throw usageError(verb, `invalid option '${letter}'`);
      if (withValue.has(letter)) {
        let value = arg.slice(j + 1);
        if (value === "") {
          i++;
          if (i >= args.length) throw usageError(verb, `missing argument for '${letter}' option`);
          value = args[i] as string;
        }
        result.values.push([letter, value]);
        break;
      }
      result.flags.add(letter);
    }
  }
  return result;
}

export function lastValue(parsed: ParsedArgs, letter: string): string | undefined {
  let found: string | undefined;
  for (const [key, value] of parsed.values) if (key === letter) found = value;
  return found;
}

/** the `-o property=value` options of a parsed command line */
export function parseProps(verb: string, values: Array<[string, string]>): Record<string, string> {
  const props: Record<string, string> = {};
  for (const [letter, value] of values) {
    if (letter !== "o") continue;
    const eq = value.indexOf("=");
    if (eq <= 0) throw usageError(verb, `missing '=' for property=value argument`);
    props[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return props;
}
