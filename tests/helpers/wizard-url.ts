// The browser wizard prints its URL with the token on stdout; tests that talk to its server read
// stdout until that line is complete.

/** stdout up to and including the line with `?token=…` (all of it if the process ends first) */
export async function readUntilWizardUrl(stdout: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stdout.getReader();
  const decoder = new TextDecoder();
  let out = "";
  try {
    while (!/token=\S+\n/.test(out)) {
      const { value, done } = await reader.read();
      if (done) break;
      out += decoder.decode(value, { stream: true });
    }
  } finally {
    reader.releaseLock();
  }
  return out;
}
