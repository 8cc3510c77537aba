// Colour is decided once per run (colorEnabled) and carried in a Style that every renderer
// takes, so the same renderer can be tested with colour on and off.
// util.styleText is told not to look at any stream (validateStream: false): the decision is
// ours and explicit, not hidden in whichever stream styleText would guess.

import { styleText } from "node:util";

/** a styleText format: one modifier/colour name or several */
export type StyleFormat = Parameters<typeof styleText>[0];

export interface Style {
  readonly enabled: boolean;
  /** the terminal's width when the output is one; tables fit it. Unset for pipes and files */
  readonly columns?: number;
  /** `text` wrapped in the ANSI codes for `format`, or `text` unchanged when colour is off */
  paint(format: StyleFormat, text: string): string;
}

export function createStyle(enabled: boolean, columns?: number): Style {
  return {
    enabled,
    ...(columns !== undefined && columns > 0 ? { columns } : {}),
    paint(format, text) {
      if (!enabled || text === "") return text;
      return styleText(format, text, { validateStream: false });
    },
  };
}

/** colour off: for tests, JSON mode and pipes */
export const plainStyle: Style = createStyle(false);

export interface ColorStream {
  isTTY?: boolean;
}

/**
 * Whether to colour output written to `stream`.
 * FORCE_COLOR (non-empty, not "0"/"false") forces colour on and, as in Node, wins over NO_COLOR;
 * FORCE_COLOR=0 forces it off. Otherwise NO_COLOR (any non-empty value), TERM=dumb or a stream
 * that is not a terminal turn colour off.
 */
export function colorEnabled(
  stream: ColorStream,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== "") {
    return force !== "0" && force.toLowerCase() !== "false";
  }
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.TERM === "dumb") return false;
  return stream.isTTY === true;
}

// CSI sequences (colours, erase line, cursor moves) and OSC sequences (hyperlinks, titles).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching escape codes is the point
const ANSI_PATTERN = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI_PATTERN, "");
}

// an escape code, or a character past the narrow Latin/Greek/Cyrillic range (it may be wide,
// combining or half of a surrogate pair): without any, width is length
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching escape codes is the point
const NOT_SIMPLE = /\u001b|[^\u0000-\u02ff]/;

// East Asian Wide and Fullwidth blocks (CJK, Hangul, fullwidth forms) and the emoji blocks
const WIDE_RANGES: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f],
  [0x2e80, 0x303e],
  [0x3041, 0x33ff],
  [0x3400, 0x4dbf],
  [0x4e00, 0x9fff],
  [0xa000, 0xa4cf],
  [0xa960, 0xa97f],
  [0xac00, 0xd7a3],
  [0xf900, 0xfaff],
  [0xfe10, 0xfe19],
  [0xfe30, 0xfe6f],
  [0xff00, 0xff60],
  [0xffe0, 0xffe6],
  [0x1f300, 0x1f64f],
  [0x1f900, 0x1f9ff],
  [0x20000, 0x2fffd],
  [0x30000, 0x3fffd],
];
const COMBINING = /^(?:\p{Mn}|\p{Me})$/u;
const EMOJI = /^\p{Emoji_Presentation}$/u;

/** columns one character takes on a terminal: 0 for combining marks, 2 for wide ones, else 1 */
export function charWidth(char: string): number {
  const code = char.codePointAt(0) ?? 0;
  if (code < 0x300) return 1;
  // zero-width spaces and joiners, variation selectors, combining marks
  if ((code >= 0x200b && code <= 0x200f) || (code >= 0xfe00 && code <= 0xfe0f)) return 0;
  if (COMBINING.test(char)) return 0;
  for (const [low, high] of WIDE_RANGES) if (code >= low && code <= high) return 2;
  return EMOJI.test(char) ? 2 : 1;
}

/** columns the text takes on a terminal: ANSI codes take none, wide characters (CJK, emoji) two */
export function visibleWidth(text: string): number {
  if (!NOT_SIMPLE.test(text)) return text.length;
  let width = 0;
  for (const char of stripAnsi(text)) width += charWidth(char);
  return width;
}

/**
 * `(text) => style.paint(format, text)` for painting many cells: the codes are found once.
 * A text with escape codes of its own still goes through paint (styleText re-opens the
 * format after a nested close code).
 */
export function painter(style: Style, format: StyleFormat): (text: string) => string {
  if (!style.enabled) return (text) => text;
  const probe = style.paint(format, "\u0000");
  const at = probe.indexOf("\u0000");
  const open = probe.slice(0, at);
  const close = probe.slice(at + 1);
  // a Style that does not wrap plainly gets no shortcut
  if (at < 0 || style.paint(format, "ab") !== `${open}ab${close}`)
    return (text) => style.paint(format, text);
  return (text) =>
    text === "" ? text : text.includes("\u001b") ? style.paint(format, text) : open + text + close;
}

// the same pattern anchored at one position, to walk a string code by code
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching escape codes is the point
const ANSI_AT = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)/y;

/** `text` cut to at most `width` visible columns; escape codes are all kept so colours still close */
export function truncateVisible(text: string, width: number): string {
  if (visibleWidth(text) <= width) return text;
  let out = "";
  let used = 0;
  let full = false;
  let index = 0;
  while (index < text.length) {
    ANSI_AT.lastIndex = index;
    const code = ANSI_AT.exec(text);
    if (code) {
      out += code[0];
      index += code[0].length;
      continue;
    }
    const char = String.fromCodePoint(text.codePointAt(index) ?? 0);
    const columns = charWidth(char);
    // a wide character that would stick out is left off whole, and so is all after it
    if (used + columns <= width && !full) {
      out += char;
      used += columns;
    } else full = true;
    index += char.length;
  }
  return out;
}
