import { describe, expect, test } from "bun:test";
import { PassThrough } from "node:stream";
import {
  askStep,
  CONTINUE_QUESTION,
  confirm,
  confirmDanger,
  isYes,
  readLine,
  stepAnswer,
} from "../../lib/cli/prompt.ts";
import { createStyle } from "../../lib/cli/render/style.ts";

/** fake terminal: `typed` is what the user types (null: nothing, then EOF) */
function fakeIO(typed: string | null, options: { end?: boolean } = {}) {
  const input = new PassThrough();
  const output = new PassThrough();
  let written = "";
  output.on("data", (chunk: Buffer) => {
    written += chunk.toString("utf8");
  });
  if (typed !== null) input.write(typed);
  if (typed === null || options.end !== false) input.end();
  return { input, output, written: () => written };
}

describe("isYes", () => {
  test.each([
    ["y", true],
    ["yes", true],
    ["Y", true],
    ["YES", true],
    ["  yes \t", true],
    ["no", false],
    ["n", false],
    ["", false],
    ["yess", false],
    ["y es", false],
    ["ja", false],
    [null, false],
  ])("%p → %p", (answer, expected) => {
    expect(isYes(answer)).toBe(expected);
  });
});

describe("confirm", () => {
  test.each([
    ["y\n", true],
    ["yes\n", true],
    ["Y\n", true],
    ["Yes\r\n", true],
    ["no\n", false],
    ["\n", false],
    ["maybe\n", false],
    ["yes", true],
  ])("typed %p → %p", async (typed, expected) => {
    const io = fakeIO(typed);
    expect(await confirm(CONTINUE_QUESTION, { ...io, isTTY: true })).toBe(expected);
    expect(io.written()).toBe("Do you want to continue? [y/N] ");
  });

  test("EOF is no, and ends the prompt's line", async () => {
    const io = fakeIO(null);
    expect(await confirm(CONTINUE_QUESTION, { ...io, isTTY: true })).toBe(false);
    expect(io.written()).toBe("Do you want to continue? [y/N] \n");
  });

  test("waits for the line while the user types", async () => {
    const io = fakeIO("y", { end: false });
    let settled = false;
    const answer = confirm(CONTINUE_QUESTION, { ...io, isTTY: true }).finally(() => {
      settled = true;
    });
    await Bun.sleep(5);
    expect(settled).toBe(false);
    io.input.write("es\n");
    expect(await answer).toBe(true);
  });

  test("--yes answers without reading and says so", async () => {
    const io = fakeIO("no\n");
    expect(await confirm(CONTINUE_QUESTION, { ...io, isTTY: true, assumeYes: true })).toBe(true);
    expect(io.written()).toBe("Do you want to continue? [y/N] yes (--yes)\n");
  });

  test("without a terminal and without --yes it refuses instead of reading", async () => {
    const io = fakeIO("yes\n");
    expect(await confirm(CONTINUE_QUESTION, { ...io, isTTY: false })).toBe(false);
    expect(io.written()).toContain("standard input is not a terminal");
    expect(io.written()).toContain("--yes");
    expect(io.written()).not.toContain("[y/N]");
  });
});

describe("readLine", () => {
  test("a second read gets the next line (the rest is pushed back)", async () => {
    const input = new PassThrough();
    input.end("first\nsecond\nthird");
    expect(await readLine(input)).toBe("first");
    expect(await readLine(input)).toBe("second");
    expect(await readLine(input)).toBe("third");
    expect(await readLine(input)).toBeNull();
    expect(await readLine(input)).toBeNull();
  });
});

describe("confirmDanger", () => {
  const message = "This destroys snapshots on the TARGET (backup).";

  test("the exact word, blanks around it ignored, goes on", async () => {
    const io = fakeIO("  backup \n");
    expect(await confirmDanger(message, "backup", { ...io, isTTY: true })).toBe(true);
    expect(io.written()).toBe(`${message}\nType "backup" to continue: `);
  });

  test.each(["y\n", "yes\n", "Backup\n", "backu\n", "\n"])(
    "anything else (%p) is no, and says why",
    async (typed) => {
      const io = fakeIO(typed);
      expect(await confirmDanger(message, "backup", { ...io, isTTY: true })).toBe(false);
      expect(io.written()).toEndWith('Not confirmed: expected "backup".\n');
    },
  );

  test("EOF is no", async () => {
    const io = fakeIO(null);
    expect(await confirmDanger(message, "backup", { ...io, isTTY: true })).toBe(false);
  });

  test("after a yes to the first question, the second reads the next line", async () => {
    const io = fakeIO("y\nbackup\n");
    const options = { ...io, isTTY: true };
    expect(await confirm(CONTINUE_QUESTION, options)).toBe(true);
    expect(await confirmDanger(message, "backup", options)).toBe(true);
  });

  test("without a terminal it refuses", async () => {
    const io = fakeIO("backup\n");
    expect(await confirmDanger(message, "backup", { ...io, isTTY: false })).toBe(false);
    expect(io.written()).toContain("not a terminal");
  });

  test("assumeYes skips the typing and says so", async () => {
    const io = fakeIO(null);
    expect(await confirmDanger(message, "backup", { ...io, isTTY: false, assumeYes: true })).toBe(
      true,
    );
    expect(io.written()).toEndWith('Type "backup" to continue: backup (--yes)\n');
  });

  test("the message is red with colour on", async () => {
    const io = fakeIO("backup\n");
    await confirmDanger(message, "backup", { ...io, isTTY: true, style: createStyle(true) });
    expect(io.written()).toStartWith("\u001b[31m\u001b[1mThis destroys");
  });

  test("an empty word is a programming error, not an easy yes", async () => {
    const io = fakeIO("\n");
    await expect(confirmDanger(message, " ", { ...io, isTTY: true })).rejects.toThrow(
      "non-empty word",
    );
  });
});

describe("Ctrl-C (the run's signal aborts) ends a question at once", () => {
  test("confirm is no, without waiting for Enter, and stops reading", async () => {
    const io = fakeIO("", { end: false });
    const controller = new AbortController();
    const answer = confirm(CONTINUE_QUESTION, { ...io, isTTY: true, signal: controller.signal });
    await Bun.sleep(5);
    controller.abort("SIGINT");
    expect(await answer).toBe(false);
    // nothing listens any more: a paused terminal no longer keeps the process alive
    expect(io.input.listenerCount("data")).toBe(0);
    expect(io.input.isPaused()).toBe(true);
    // the cancel message ends the line, so the prompt adds no blank line of its own
    expect(io.written()).toBe("Do you want to continue? [y/N] ");
  });

  test("a line typed after the cancel is not taken as an answer", async () => {
    const io = fakeIO("", { end: false });
    const controller = new AbortController();
    controller.abort("SIGINT");
    const answer = confirmDanger("danger", "backup", {
      ...io,
      isTTY: true,
      signal: controller.signal,
    });
    io.input.write("backup\n");
    expect(await answer).toBe(false);
    expect(io.written()).not.toContain("Not confirmed");
  });

  test("the wizard's step question quits", async () => {
    const io = fakeIO("", { end: false });
    const controller = new AbortController();
    const answer = askStep("Run backup?", "cleanup", {
      ...io,
      isTTY: true,
      signal: controller.signal,
    });
    await Bun.sleep(5);
    controller.abort("SIGINT");
    expect(await answer).toBe("quit");
  });
});

describe("askStep", () => {
  test.each([
    ["y", "run"],
    ["YES", "run"],
    ["", "skip"],
    ["n", "skip"],
    ["no", "skip"],
    ["s", "skip"],
    [" skip ", "skip"],
    ["q", "quit"],
    ["quit", "quit"],
    ["maybe", null],
  ])("%p → %p", (typed, expected) => {
    expect(stepAnswer(typed)).toBe(expected as ReturnType<typeof stepAnswer>);
  });

  test("names the next step, and asks again after an unknown answer", async () => {
    const io = fakeIO("what\nn\n");
    expect(await askStep("Run backup?", "cleanup source", { ...io, isTTY: true })).toBe("skip");
    const prompt = "Run backup? y = yes, n = skip to cleanup source, q = quit [y/N/q] ";
    expect(io.written()).toBe(`${prompt}Answer y, n or q.\n${prompt}`);
  });

  test("the last step offers only y/N, and quit there is a skip", async () => {
    const io = fakeIO("q\n");
    expect(await askStep("Run cleanup target?", null, { ...io, isTTY: true })).toBe("skip");
    expect(io.written()).toBe("Run cleanup target? [y/N] ");
  });

  test("end of input quits; --yes runs; no terminal refuses and quits", async () => {
    expect(await askStep("Run snap?", "backup", { ...fakeIO(null), isTTY: true })).toBe("quit");
    const yes = fakeIO(null);
    expect(await askStep("Run snap?", "backup", { ...yes, isTTY: false, assumeYes: true })).toBe(
      "run",
    );
    expect(yes.written()).toEndWith("yes (--yes)\n");
    const none = fakeIO("y\n");
    expect(await askStep("Run snap?", "backup", { ...none, isTTY: false })).toBe("quit");
    expect(none.written()).toContain("not a terminal");
  });
});
