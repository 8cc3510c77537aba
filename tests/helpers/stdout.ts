// A child's stdout as text, read in steps: up to a marker (the first progress event, the
// action that starts a transfer), then, after the test did what it waits for (a signal, a
// second run), to its end. Tests that cut or race a running command all read it so.

export interface TextReader {
  /** reads on until `marker` has appeared (or the stream ended); all text so far */
  until(marker: string): Promise<string>;
  /** reads to the end; all text */
  rest(): Promise<string>;
}

export function readText(stream: ReadableStream<Uint8Array>): TextReader {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let ended = false;
  const more = async (): Promise<boolean> => {
    if (ended) return false;
    const { value, done } = await reader.read();
    if (done) {
      ended = true;
      text += decoder.decode();
      return false;
    }
    text += decoder.decode(value, { stream: true });
    return true;
  };
  return {
    async until(marker) {
      while (!text.includes(marker) && (await more()));
      return text;
    },
    async rest() {
      while (await more());
      return text;
    },
  };
}
