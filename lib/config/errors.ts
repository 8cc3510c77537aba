// The one error type for bad configuration; the CLI turns it into exit code 2.

export interface ConfigErrorDetails {
  /** the file as the user named it */
  file: string;
  /** dotted key path such as `source.port` or `ignore[1]`; "" when the problem is the whole file */
  keyPath: string;
  /** 1-based; null when no position applies (missing file, empty file) */
  line: number | null;
  column: number | null;
  /** what is wrong, without file or position */
  reason: string;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly exitCode = 2;
  readonly file: string;
  readonly keyPath: string;
  readonly line: number | null;
  readonly column: number | null;
  readonly reason: string;

  constructor(details: ConfigErrorDetails) {
    super(formatConfigError(details));
    this.file = details.file;
    this.keyPath = details.keyPath;
    this.line = details.line;
    this.column = details.column;
    this.reason = details.reason;
  }
}

/** `file:line:column: key.path: reason`, the shape compilers use so editors can jump there. */
export function formatConfigError(details: ConfigErrorDetails): string {
  let where = details.file;
  if (details.line !== null) {
    where += `:${details.line}`;
    if (details.column !== null) where += `:${details.column}`;
  }
  const key = details.keyPath === "" ? "" : `${details.keyPath}: `;
  return `${where}: ${key}${details.reason}`;
}
