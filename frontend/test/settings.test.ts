import { afterEach, describe, expect, it } from "vitest";
import { bannerMessages, button, flush, installFake, mount, q, SETTINGS, unmount } from "./fake";

afterEach(unmount);

const sel = () => q<HTMLSelectElement>("#set-terminal");
const input = (id: string) => q<HTMLInputElement>(id);
function set(el: HTMLInputElement | HTMLSelectElement, v: string) {
  el.value = v;
  el.dispatchEvent(new Event(el instanceof HTMLSelectElement ? "change" : "input", { bubbles: true }));
}

describe("settings", () => {
  it("lists the terminals, marks unavailable ones, and adds custom", async () => {
    installFake();
    await mount();
    const opts = Array.from(sel().options).map((o) => [o.value, o.text, o.disabled]);
    expect(opts).toEqual([
      ["gnome-terminal", "GNOME Terminal (not installed)", true],
      ["xterm", "xterm", false],
      ["custom", "Custom command…", false],
    ]);
    expect(sel().value).toBe("xterm");
    expect(input("#set-agent").value).toBe("claude");
    expect(input("#set-template").value).toBe("default");
    expect(input("#set-cpus").value).toBe("2");
    expect(input("#set-memory").value).toBe("4096");
    expect(q("#set-custom").closest(".field")!.hasAttribute("hidden")).toBe(true);
  });

  it("saves what was entered", async () => {
    const fake = installFake();
    await mount();
    set(sel(), "custom");
    expect(q("#set-custom").closest(".field")!.hasAttribute("hidden")).toBe(false);
    set(input("#set-custom"), "foot -- {args}");
    set(input("#set-agent"), "codex");
    set(input("#set-cpus"), "4");
    set(input("#set-memory"), "8192");
    button("Save settings").click();
    await flush();
    expect(fake.App.SaveSettings.mock.calls).toEqual([[{ ...SETTINGS, terminal: "custom", customCommand: "foot -- {args}", defaultAgent: "codex", cpus: 4, memoryMiB: 8192 }]]);
    expect(document.querySelector("#panel-settings [role=status]")?.textContent).toBe("Saved.");
  });

  it("wants {cmd} or {args} in a custom command and sane numbers", async () => {
    const fake = installFake();
    await mount();
    set(sel(), "custom");
    set(input("#set-custom"), "xterm -e");
    button("Save settings").click();
    await flush();
    expect(fake.App.SaveSettings).not.toHaveBeenCalled();
    expect(q("#panel-settings .field-error").textContent).toContain("{cmd} or {args}");
    set(input("#set-custom"), "xterm -e {cmd}");
    set(input("#set-cpus"), "1.5");
    button("Save settings").click();
    await flush();
    expect(fake.App.SaveSettings).not.toHaveBeenCalled();
    expect(q("#panel-settings .field-error").textContent).toContain("CPUs");
  });

  it("empty CPU and memory fields mean the daemon's default (0)", async () => {
    const fake = installFake();
    await mount();
    set(input("#set-cpus"), "");
    set(input("#set-memory"), "");
    button("Save settings").click();
    await flush();
    expect(fake.App.SaveSettings.mock.calls).toEqual([[{ ...SETTINGS, cpus: 0, memoryMiB: 0 }]]);
  });

  it("reports a failed save as worded", async () => {
    const fake = installFake();
    fake.App.SaveSettings.mockRejectedValueOnce("write /home/ada/.local/state/moat/settings.json: read-only file system");
    await mount();
    button("Save settings").click();
    await flush();
    expect(bannerMessages()).toEqual(["write /home/ada/.local/state/moat/settings.json: read-only file system"]);
  });
});

describe("tabs", () => {
  it("are buttons with roles, switch panels, and follow the arrow keys", async () => {
    installFake();
    await mount();
    const tabs = Array.from(document.querySelectorAll<HTMLButtonElement>('[role="tab"]'));
    expect(tabs.map((t) => t.textContent)).toEqual(["Sandboxes", "Log in", "Settings"]);
    expect(tabs.every((t) => t.tagName === "BUTTON")).toBe(true);
    expect(q("#panel-sandboxes").hidden).toBe(false);
    tabs[1].click();
    expect(q("#panel-login").hidden).toBe(false);
    expect(q("#panel-sandboxes").hidden).toBe(true);
    tabs[1].dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true }));
    expect(q("#panel-settings").hidden).toBe(false);
    expect(document.activeElement).toBe(tabs[2]);
    expect(tabs[2].getAttribute("aria-selected")).toBe("true");
    tabs[2].dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true }));
    expect(document.activeElement).toBe(tabs[0]);
  });
});
