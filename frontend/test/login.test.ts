import { afterEach, describe, expect, it } from "vitest";
import { bannerMessages, button, flush, installFake, mount, q, unmount } from "./fake";

afterEach(unmount);

const GOOD = "sk-ant-api03-UNITsecret" + "Q".repeat(30) + "Wx9z";

function secretInput() {
  return q<HTMLInputElement>("#login-secret");
}
async function submit(value: string) {
  const input = secretInput();
  input.value = value;
  input.dispatchEvent(new Event("input", { bubbles: true }));
  button("Save to keychain").click();
  await flush();
}
function assertNotInDom(secret: string) {
  const html = document.documentElement.outerHTML;
  const text = document.documentElement.textContent ?? "";
  expect(html.includes(secret)).toBe(false);
  expect(text.includes(secret)).toBe(false);
  for (const el of Array.from(document.querySelectorAll("*"))) {
    for (const a of Array.from(el.attributes)) expect(a.value.includes(secret)).toBe(false);
  }
}

describe("login panel", () => {
  it("is a labelled, masked field with autocomplete off", async () => {
    installFake();
    await mount();
    const input = secretInput();
    expect(input.type).toBe("password");
    expect(input.getAttribute("autocomplete")).toBe("off");
    expect(input.getAttribute("spellcheck")).toBe("false");
    expect(q<HTMLLabelElement>('label[for="login-secret"]').textContent).toBe("Anthropic API key");
    expect(q('label[for="login-provider"]').textContent).toBe("Provider");
    const opts = Array.from(q<HTMLSelectElement>("#login-provider").options).map((o) => [o.value, o.text]);
    expect(opts).toEqual([["anthropic", "Anthropic API key"], ["github", "GitHub token"]]);
    expect(q("#login-hint").textContent).toContain("console.anthropic.com");
  });

  it.each([
    ["", "The Anthropic API key is empty."],
    ["sk-proj-" + "a".repeat(40), 'should start with "sk-ant-"'],
    ["sk-ant-short", "too short (12 characters, expected at least 40)"],
    ["sk-ant-api03 with spaces" + "x".repeat(30), "whitespace at position 13"],
    ["sk-ant-api03-é" + "x".repeat(40), "not printable ASCII at position 14"],
    ["sk-ant-" + "a".repeat(600), "too long (607 characters, at most 512)"],
  ])("rejects %j before calling Login, clears the field and never shows it", async (bad, message) => {
    const fake = installFake();
    await mount();
    await submit(bad);
    expect(fake.App.Login).not.toHaveBeenCalled();
    expect(q("#login-error").textContent).toContain(message);
    expect(secretInput().value).toBe("");
    expect(secretInput().getAttribute("aria-invalid")).toBe("true");
    if (bad) assertNotInDom(bad);
  });

  it("a pasted line break is stripped by the password field itself (HTML value sanitisation)", async () => {
    installFake();
    await mount();
    secretInput().value = "sk-ant-api03-abc\n";
    expect(secretInput().value).toBe("sk-ant-api03-abc");
  });

  it("trims surrounding whitespace first, as App.Login does", async () => {
    const fake = installFake();
    await mount();
    await submit("  " + GOOD + " \t");
    expect(fake.App.Login.mock.calls).toEqual([["anthropic", GOOD]]);
    expect(q("#login-error").textContent).toBe("");
  });

  it("checks the chosen provider's shape", async () => {
    const fake = installFake();
    await mount();
    const sel = q<HTMLSelectElement>("#login-provider");
    sel.value = "github";
    sel.dispatchEvent(new Event("change"));
    expect(q('label[for="login-secret"]').textContent).toBe("GitHub token");
    await submit(GOOD);
    expect(q("#login-error").textContent).toContain('should start with "ghp_"');
    await submit("ghp_" + "g".repeat(36));
    expect(fake.App.Login.mock.calls).toEqual([["github", "ghp_" + "g".repeat(36)]]);
  });

  it("calls Login(provider, secret), clears the field, shows only the masked value", async () => {
    const fake = installFake({
      credentials: [{ provider: "anthropic", name: "Anthropic API key", variable: "ANTHROPIC_API_KEY", masked: "", source: "" }],
    });
    fake.App.LoginStatus
      .mockResolvedValueOnce([{ provider: "anthropic", name: "Anthropic API key", variable: "ANTHROPIC_API_KEY", masked: "", source: "" }])
      .mockResolvedValue([{ provider: "anthropic", name: "Anthropic API key", variable: "ANTHROPIC_API_KEY", masked: "sk-ant-…Wx9z", source: "keychain" }]);
    await mount();
    expect(q('tr[data-provider="anthropic"]').textContent).toContain("not set");
    const input = secretInput();
    input.value = GOOD;
    assertNotInDom(GOOD); // typing puts nothing in the DOM
    await submit(GOOD);
    expect(fake.App.Login.mock.calls).toEqual([["anthropic", GOOD]]);
    expect(input.value).toBe("");
    expect(q("#login-error").textContent).toBe("");
    expect(document.querySelector('[role="status"]')?.textContent).toBe("Saved the Anthropic API key to the keychain.");
    expect(q('tr[data-provider="anthropic"] code.masked').textContent).toBe("sk-ant-…Wx9z");
    assertNotInDom(GOOD);
    assertNotInDom("UNITsecret");
  });

  it("shows the Go side's refusal as worded, and scrubs the secret should it ever be echoed", async () => {
    const fake = installFake();
    fake.App.Login.mockRejectedValueOnce("keychain: org.freedesktop.secrets was not provided by any .service files");
    await mount();
    await submit(GOOD);
    expect(bannerMessages()).toEqual(["keychain: org.freedesktop.secrets was not provided by any .service files"]);
    expect(secretInput().value).toBe("");
    fake.App.Login.mockRejectedValueOnce(`bad key ${GOOD}`);
    await submit(GOOD);
    expect(bannerMessages()[1]).toBe("bad key [secret]");
    assertNotInDom(GOOD);
  });

  it("offers Log out for keychain entries only", async () => {
    const fake = installFake({
      credentials: [
        { provider: "anthropic", name: "Anthropic API key", variable: "ANTHROPIC_API_KEY", masked: "sk-ant-…AbC1", source: "keychain" },
        { provider: "github", name: "GitHub token", variable: "GH_TOKEN", masked: "ghp_…Zz12", source: "environment" },
      ],
    });
    await mount();
    expect(q('tr[data-provider="github"]').querySelector("button")).toBeNull();
    expect(q('tr[data-provider="github"]').textContent).toContain("environment");
    button("Log out of Anthropic API key").click();
    await flush();
    expect(fake.App.Logout.mock.calls).toEqual([["anthropic"]]);
    expect(fake.App.LoginStatus).toHaveBeenCalledTimes(2);
  });
});
