// The naming plugin: templates render, parse back (isOwn), never repeat, stay valid ZFS names.

import { describe, expect, test } from "bun:test";
import { PluginOptionError } from "../../lib/engine/api.ts";
import { createHooks } from "../../lib/engine/hooks.ts";
import { checkOptions } from "../../lib/engine/plugins.ts";
import naming, { templateNamer } from "../../plugins/naming.ts";
import { config } from "./plan/fixtures.ts";

const NOON_UTC = new Date(Date.UTC(2026, 10, 26, 12, 5, 9));
const settings = { template: "%Y%m%d%N", utc: true, digits: 2, suffix: "", host: "nas" };

describe("templateNamer", () => {
  test("fields, host, counter and suffix render in UTC", () => {
    const namer = templateNamer({
      ...settings,
      template: "%h_%Y-%m-%dT%H:%M:%S_%N",
      suffix: "auto",
    });
    expect(namer.next([], NOON_UTC)).toEqual({ name: "nas_2026-11-26T12:05:09_01auto" });
  });

  test("local time follows the process time zone", () => {
    const local = new Date(2026, 0, 2, 3, 4, 5);
    const namer = templateNamer({ ...settings, template: "%Y%m%d%H%M%S", utc: false });
    expect(namer.next([], local)).toEqual({ name: "20260102030405" });
  });

  test("the counter goes past the highest of names that share every other field", () => {
    const namer = templateNamer({ ...settings, template: "%Y%m%d-%N" });
    const existing = ["20261126-01", "20261126-07", "20261125-42", "other"];
    expect(namer.next(existing, NOON_UTC)).toEqual({ name: "20261126-08" });
  });

  test("a used-up counter is an error, never a repeated name", () => {
    const namer = templateNamer({ ...settings, digits: 1, template: "%Y%m%d-%N" });
    const result = namer.next(["20261126-9"], NOON_UTC);
    expect("error" in result && result.error).toContain("used up");
  });

  test("without a counter, a name that exists already is an error", () => {
    const namer = templateNamer({ ...settings, template: "%Y%m%d%H%M%S" });
    expect(namer.next(["20261126120509"], NOON_UTC)).toEqual({
      error: expect.stringContaining("exists already"),
    });
  });

  test("isOwn accepts what next() makes and nothing else", () => {
    const namer = templateNamer({ ...settings, template: "auto.%Y%m%d.%N", suffix: "x" });
    const made = namer.next([], NOON_UTC);
    expect(made).toEqual({ name: "auto.20261126.01x" });
    expect(namer.isOwn("auto.20261126.01x")).toBe(true);
    expect(namer.isOwn("auto.20261126.1x")).toBe(false);
    expect(namer.isOwn("auto.20261326.01x")).toBe(false);
    expect(namer.isOwn("autoX20261126.01x")).toBe(false); // '.' is literal, not a regex wildcard
    expect(namer.isOwn("manual")).toBe(false);
  });

  test("templates that cannot give unique or valid names are refused", () => {
    const refuse = (template: string, host = "nas") => {
      try {
        templateNamer({ ...settings, template, host });
      } catch (error) {
        expect(error).toBeInstanceOf(PluginOptionError);
        return (error as PluginOptionError).reason;
      }
      throw new Error(`accepted ${template}`);
    };
    expect(refuse("%Y%m%d")).toContain("cannot give unique names");
    expect(refuse("%N/%Y")).toContain("ZFS refuses");
    expect(refuse("%Q%N")).toContain("unknown field %Q");
    expect(refuse("%N%N")).toContain("only once");
    expect(refuse("%h%N", "bad host!")).toContain("cannot be part of a snapshot name");
  });
});

describe("the naming plugin", () => {
  test("it replaces the namer through the namer hook, with the config's digits and suffix", async () => {
    const hooks = createHooks();
    const cfg = config({ digits: 3, suffix: "bk" });
    const options = checkOptions(naming, { template: "%Y%m%d_%N", utc: true }, cfg, 0);
    await naming.setup(hooks, { name: "naming", config: cfg, options, log() {}, warn() {} });
    const namer = hooks.namer.call(templateNamer(settings), cfg);
    expect(namer.next([], NOON_UTC)).toEqual({ name: "20261126_001bk" });
  });
});
