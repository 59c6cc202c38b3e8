import { describe, expect, it } from "vitest";
import { errorText } from "../src/api";
import { memory, uptime } from "../src/format";
import { validateSecret } from "../src/validate";

describe("uptime", () => {
  const t0 = Date.parse("2026-12-03T12:00:00Z");
  it.each([
    [0, "0s"], [59, "59s"], [60, "1m 00s"], [754, "12m 34s"], [3600, "1h 00m"], [3 * 3600 + 7 * 60 + 5, "3h 07m"], [86400 * 3 + 4 * 3600, "3d 4h"],
  ])("%i s → %s", (s, want) => {
    expect(uptime(new Date(t0 - s * 1000).toISOString(), t0)).toBe(want);
  });
  it("is empty without a start, and never negative", () => {
    expect(uptime(undefined, t0)).toBe("");
    expect(uptime("not a time", t0)).toBe("");
    expect(uptime(new Date(t0 + 5000).toISOString(), t0)).toBe("0s");
  });
  it("memory", () => {
    expect(memory(4096)).toBe("4 GiB");
    expect(memory(1536)).toBe("1536 MiB");
    expect(memory(undefined)).toBe("");
  });
});

describe("validateSecret mirrors keychain.Provider.Validate", () => {
  const name = "Anthropic API key";
  it("accepts a well-formed key", () => {
    expect(validateSecret("anthropic", name, "sk-ant-api03-" + "x".repeat(40))).toBeNull();
    expect(validateSecret("claude-oauth", "Claude long-lived OAuth token", "sk-ant-oat01-" + "b".repeat(60))).toBeNull();
    expect(validateSecret("gemini", "Gemini API key", "A".repeat(39))).toBeNull();
  });
  it("exactly 40 characters is enough, 39 is not", () => {
    expect(validateSecret("anthropic", name, "sk-ant-" + "a".repeat(33))).toBeNull();
    expect(validateSecret("anthropic", name, "sk-ant-" + "a".repeat(32))).toContain("too short (39 characters");
  });
  it("never includes the secret", () => {
    const s = "sk-proj-SECRETPART" + "a".repeat(30);
    expect(validateSecret("anthropic", name, s)).not.toContain("SECRETPART");
    expect(validateSecret("anthropic", name, "sk-ant-api03-SECRETPART with space" + "a".repeat(20))).not.toContain("SECRETPART");
  });
  it("checks whitespace, tabs and CR too", () => {
    expect(validateSecret("anthropic", name, "sk-ant-\t" + "a".repeat(40))).toContain("whitespace at position 8");
    expect(validateSecret("anthropic", name, "sk-ant-" + "a".repeat(40) + "\r")).toContain("line break at position 48");
    expect(validateSecret("anthropic", name, "sk-ant-api03-" + "x".repeat(30) + "\nmore")).toContain("line break at position 44");
  });
  it("unknown providers get the generic checks only", () => {
    expect(validateSecret("future", "Future key", "abc")).toBeNull();
    expect(validateSecret("future", "Future key", "a b")).toContain("whitespace");
  });
});

describe("errorText", () => {
  it("keeps the text as it is", () => {
    expect(errorText("exact text\nline 2")).toBe("exact text\nline 2");
    expect(errorText(new Error("boom"))).toBe("boom");
    expect(errorText({ message: "m" })).toBe("m");
    expect(errorText({ code: 1 })).toBe('{"code":1}');
  });
});
