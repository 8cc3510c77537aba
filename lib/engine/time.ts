// Times as abgleich writes them: log stamps, events, the run lock's holder.

/** ISO 8601 in local time with its UTC offset: `2026-11-30T12:04:05+01:00` (with `ms`, `.123`) */
export function localIsoTime(date: Date, ms = false): string {
  const two = (n: number) => String(n).padStart(2, "0");
  const offset = -date.getTimezoneOffset();
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  const fraction = ms ? `.${String(date.getMilliseconds()).padStart(3, "0")}` : "";
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}T${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}${fraction}${sign}${two(Math.floor(abs / 60))}:${two(abs % 60)}`;
}
