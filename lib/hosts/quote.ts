// POSIX shell quoting for commands that a remote shell parses again (ssh joins its
// arguments into one string). Single quotes keep every byte literal except `'` itself.

/** characters that never mean anything to a shell; `=` is left out (`a=b` first is an assignment) */
const PLAIN_WORD = /^[A-Za-z0-9_@%+:,./-]+$/;

/** words a shell reads as syntax when bare in command position */
const RESERVED_WORDS = new Set([
  "case",
  "coproc",
  "do",
  "done",
  "elif",
  "else",
  "esac",
  "fi",
  "for",
  "function",
  "if",
  "in",
  "select",
  "then",
  "time",
  "until",
  "while",
]);

/** quote one argument so any POSIX shell reads it back as exactly `arg` */
export function shellQuote(arg: string): string {
  if (arg === "") return "''";
  // Plain words stay bare so commands shown in messages read naturally.
  if (PLAIN_WORD.test(arg) && !RESERVED_WORDS.has(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** join argv into one command line for a POSIX shell, every argument quoted as data */
export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}
