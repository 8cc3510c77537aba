// Secrets never reach a log, an event, a summary or a notification. One function, `redact`,
// is the chokepoint every output path goes through (the console streams, the run summary, the
// notify plugin, the wizard's page events); it replaces
// - ZFS resume tokens (they name datasets, guids and offsets, and let anyone resume the stream),
// - the value of an HTTP Authorization header, and the password of a URL (`https://u:pw@host`),
// - every value the configuration marks as a secret (a plugin option named like a token,
//   password or key, a header such as X-Api-Key included), registered once the config is loaded.

/** what stands in a redacted text for what was there */
export const REDACTED = "<redacted>";
export const REDACTED_TOKEN = "<resume token>";

// `1-<checksum hex>-<length hex>-<zlib payload hex>` (OpenZFS's format, also the simulator's)
const RESUME_TOKEN = /\b1-[0-9a-f]{1,16}-[0-9a-f]{1,16}-[0-9a-f]{16,}\b/gi;
const AUTHORIZATION =
  /\b(authorization["']?\s*[:=]\s*["']?)((?:bearer|basic|token)\s+)?[^\s"',;]+/gi;
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)[^/\s@]+@/gi;

/** option names whose values are secrets, wherever they sit in a plugin's options */
const SECRET_WORD = /token|passw|secret|credential|auth|cookie|api[_-]?key|private[_-]?key/i;
/** a key by its name: `key`, `api_key`, `X-Api-Key`, `accessKey` (not `monkey` or `keyring`) */
const KEY_NAME = /(?:^|[_-])key$/i;
const CAMEL_KEY = /[a-z0-9]Key$/;
/** keys that are public by nature: `public_key`, `publicKey`, `host_key`, `hostKey` */
const PUBLIC_KEY = /^(?:public|host)[_-]?key$/i;

const isSecretName = (name: string): boolean =>
  SECRET_WORD.test(name) ||
  ((KEY_NAME.test(name) || CAMEL_KEY.test(name)) && !PUBLIC_KEY.test(name));

const secrets = new Set<string>();

/** values that must never be shown; shorter than 4 characters they would hide too much */
export function addSecrets(values: Iterable<string>): void {
  for (const value of values) if (value.length >= 4) secrets.add(value);
}

/** forget the registered secrets (tests) */
export function clearSecrets(): void {
  secrets.clear();
}

/** `text` with every secret replaced */
export function redact(text: string): string {
  let out = text;
  if (out.includes("1-")) out = out.replace(RESUME_TOKEN, REDACTED_TOKEN);
  if (/authorization/i.test(out)) out = out.replace(AUTHORIZATION, `$1$2${REDACTED}`);
  if (out.includes("@")) out = out.replace(URL_PASSWORD, `$1${REDACTED}@`);
  // longest first: a secret that contains another is replaced whole
  if (secrets.size > 0)
    for (const secret of [...secrets].sort((a, b) => b.length - a.length))
      if (out.includes(secret)) out = out.replaceAll(secret, REDACTED);
  return out;
}

/** `value` with `redact` applied to every string in it (arrays and plain objects, deep) */
export function redactDeep<T>(value: T): T {
  if (typeof value === "string") return redact(value) as T;
  if (Array.isArray(value)) return value.map(redactDeep) as T;
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = redactDeep(item);
    return out as T;
  }
  return value;
}

/**
 * The secrets in plugin options: values under keys named like a token or password (a header
 * such as Authorization or X-Api-Key included), and passwords inside URLs.
 */
export function secretsOf(options: unknown, key = ""): string[] {
  if (typeof options === "string") {
    const found: string[] = [];
    if (isSecretName(key)) found.push(options);
    for (const match of options.matchAll(/:\/\/[^/\s:@]*:([^/\s@]+)@/g))
      if (match[1]) found.push(match[1]);
    return found;
  }
  if (Array.isArray(options)) return options.flatMap((item) => secretsOf(item, key));
  if (typeof options !== "object" || options === null) return [];
  return Object.entries(options).flatMap(([name, value]) => secretsOf(value, name));
}
