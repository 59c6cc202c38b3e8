import { afterEach, describe, expect, it } from "vitest";
import { INSTALLED_TEXT, OFFER_TEXT, OFFER_TITLE } from "../src/service";
import { bannerMessages, button, flush, installFake, mount, unmount } from "./fake";

afterEach(unmount);

const offer = () => document.querySelector<HTMLElement>("section.offer");
const shown = () => {
  const el = offer();
  return !!el && !el.hidden && el.childElementCount > 0;
};

describe("service offer", () => {
  it("is shown on start when supported, not installed and not offered", async () => {
    const fake = installFake({ service: { offered: false } });
    await mount();
    expect(fake.App.ServiceStatus).toHaveBeenCalledTimes(1);
    expect(shown()).toBe(true);
    expect(offer()!.getAttribute("aria-label")).toBe("VM host service");
    expect(offer()!.textContent).toContain(`${OFFER_TITLE} ${OFFER_TEXT}`);
    expect(OFFER_TITLE).toBe("Start Moat's VM host at login?");
    expect(OFFER_TEXT).toBe("Installs a per-user service so sandboxes are ready when you are.");
    expect(button("Install", offer()!)).toBeTruthy();
    expect(button("Not now", offer()!)).toBeTruthy();
    expect(fake.App.InstallService).not.toHaveBeenCalled();
    expect(fake.App.DeclineService).not.toHaveBeenCalled();
  });

  it.each([
    ["offered before", { offered: true }],
    ["already installed", { offered: false, installed: true, running: true }],
    ["installed but stopped", { offered: false, installed: true, running: false }],
    ["not supported here", { offered: false, supported: false, detail: "moat service is not supported on this platform" }],
  ])("is hidden when %s", async (_name, service) => {
    installFake({ service });
    await mount();
    expect(shown()).toBe(false);
    expect(document.body.textContent).not.toContain(OFFER_TITLE);
    expect(offer()!.childElementCount).toBe(0); // no empty status/alert regions left in the page
  });

  it("Not now calls DeclineService and hides the offer", async () => {
    const fake = installFake({ service: { offered: false } });
    await mount();
    button("Not now").click();
    await flush();
    expect(fake.App.DeclineService).toHaveBeenCalledTimes(1);
    expect(fake.App.DeclineService.mock.calls).toEqual([[]]);
    expect(fake.App.InstallService).not.toHaveBeenCalled();
    expect(shown()).toBe(false);
  });

  it("Install calls InstallService and shows success", async () => {
    const fake = installFake({ service: { offered: false } });
    await mount();
    button("Install").click();
    await flush();
    expect(fake.App.InstallService).toHaveBeenCalledTimes(1);
    expect(fake.App.DeclineService).not.toHaveBeenCalled();
    expect(offer()!.querySelector('[role="status"]')!.textContent).toBe(INSTALLED_TEXT);
    expect(offer()!.querySelector<HTMLElement>(".offer-actions")!.hidden).toBe(true);
    button("Close", offer()!).click();
    expect(shown()).toBe(false);
  });

  it("shows InstallService's error verbatim and lets the user retry or decline", async () => {
    const fake = installFake({ service: { offered: false } });
    const msg = "wrote /home/ada/.config/systemd/user/moat-vmhost.service, but `systemctl --user` cannot reach a systemd user manager for this session: exit status 1";
    fake.App.InstallService.mockRejectedValueOnce(msg);
    await mount();
    button("Install").click();
    await flush();
    expect(offer()!.querySelector('[role="alert"]')!.textContent).toBe(msg);
    expect(shown()).toBe(true);
    expect(button("Install", offer()!).disabled).toBe(false);
    expect(bannerMessages()).toEqual([]);
    // an Error object's message, also as worded
    fake.App.InstallService.mockRejectedValueOnce(new Error("the service is installed but did not start: exit status 5"));
    button("Install").click();
    await flush();
    expect(offer()!.querySelector('[role="alert"]')!.textContent).toBe("the service is installed but did not start: exit status 5");
    button("Not now").click();
    await flush();
    expect(fake.App.InstallService).toHaveBeenCalledTimes(2);
    expect(fake.App.DeclineService).toHaveBeenCalledTimes(1);
    expect(shown()).toBe(false);
  });

  it("keeps the offer and shows DeclineService's error verbatim", async () => {
    const fake = installFake({ service: { offered: false } });
    fake.App.DeclineService.mockRejectedValueOnce("/home/ada/.local/state/moat/settings.json is not valid JSON: unexpected end of JSON input");
    await mount();
    button("Not now").click();
    await flush();
    expect(shown()).toBe(true);
    expect(offer()!.querySelector('[role="alert"]')!.textContent).toBe("/home/ada/.local/state/moat/settings.json is not valid JSON: unexpected end of JSON input");
  });

  it("a failing ServiceStatus goes to the error banner, as worded, and shows no offer", async () => {
    const fake = installFake();
    fake.App.ServiceStatus.mockRejectedValueOnce("settings.json is not valid JSON: unexpected end of JSON input");
    await mount();
    expect(shown()).toBe(false);
    expect(bannerMessages()).toEqual(["settings.json is not valid JSON: unexpected end of JSON input"]);
  });
});
