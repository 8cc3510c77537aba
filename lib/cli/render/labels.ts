// Small shared wording, so every renderer names things the same way.

/** a subname as a reader sees it: the root (subname "") has no name of its own */
export function subnameLabel(subname: string): string {
  return subname === "" ? "(root)" : subname;
}

/** "1 snapshot", "3 snapshots" */
export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

/** a target dataset holding a cut receive (its resume token), in words */
export const PARTIAL_RECEIVE = "a cut transfer waits here: the next backup resumes it";
/** the same on a source: abgleich does not resume into its own source */
export const PARTIAL_RECEIVE_ELSEWHERE = "a cut receive waits here (another run's, into this pool)";

/** `encrypted`, `encrypted, key not loaded` (a raw-received copy without its key), or null */
export function encryptionWords(dataset: {
  encryption: string;
  keystatus: "available" | "unavailable" | null;
}): string | null {
  if (dataset.encryption === "off") return null;
  return dataset.keystatus === "unavailable" ? "encrypted, key not loaded" : "encrypted";
}
