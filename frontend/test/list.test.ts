import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { bannerMessages, button, flush, installFake, mount, q, row, sb, unmount } from "./fake";

afterEach(() => {
  unmount();
  vi.useRealTimers();
});

describe("sandbox list", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: new Date("2026-12-03T12:00:00Z") });
  });

  it("renders one row per sandbox with its badge, reason as worded and uptime", async () => {
    const reason = 'vm: start "moat-b": kvm: permission denied on /dev/kvm';
    installFake({
      sandboxes: [
        sb({ name: "moat-a", status: "running", startedAt: "2026-12-03T11:47:26Z", agent: "claude", template: "go", workspace: "/home/ada/src/a b", cpus: 2, memoryMiB: 4096 }),
        sb({ name: "moat-b", status: "error", reason }),
        sb({ name: "moat-c", status: "starting", reason: "booting VM" }),
        sb({ name: "moat-d", status: "stopping" }),
        sb({ name: "moat-e", status: "stopped" }),
      ],
    });
    await mount();
    expect(Array.from(document.querySelectorAll("li.sandbox")).map((l) => l.getAttribute("data-name"))).toEqual(["moat-a", "moat-b", "moat-c", "moat-d", "moat-e"]);
    for (const [n, s] of [["moat-a", "running"], ["moat-b", "error"], ["moat-c", "starting"], ["moat-d", "stopping"], ["moat-e", "stopped"]]) {
      const badge = q(".badge", row(n));
      expect(badge.textContent).toBe(s);
      expect(badge.classList.contains(`badge-${s}`)).toBe(true);
    }
    expect(q(".sb-reason", row("moat-b")).textContent).toBe(reason);
    expect(q(".sb-reason", row("moat-b")).classList.contains("sb-error")).toBe(true);
    expect(q(".sb-reason", row("moat-c")).textContent).toBe("booting VM");
    const a = row("moat-a");
    expect(a.textContent).toContain("claude");
    expect(a.textContent).toContain("go");
    expect(q(".sb-workspace", a).textContent).toBe("/home/ada/src/a b");
    expect(a.textContent).toContain("2 CPU, 4 GiB");
    expect(q(".sb-uptime", a).textContent).toBe("12m 34s");
    expect(q(".sb-uptime time", a).getAttribute("datetime")).toBe("2026-12-03T11:47:26Z");
    expect(q(".sb-uptime", row("moat-e")).textContent).toBe("—");
    // Start/Stop follows the status; stopping cannot be stopped again
    expect(button("Stop moat-a").disabled).toBe(false);
    expect(button("Start moat-b").disabled).toBe(false);
    expect(button("Stop moat-c").disabled).toBe(false);
    expect(button("Stop moat-d").disabled).toBe(true);
    expect(button("Start moat-e").disabled).toBe(false);
  });

  it("ticks the uptime each second only while something is running", async () => {
    const fake = installFake({ sandboxes: [sb({ name: "moat-a", status: "stopped" })] });
    await mount();
    expect(vi.getTimerCount()).toBe(0);

    fake.emit("sandboxes", [sb({ name: "moat-a", status: "running", startedAt: "2026-12-03T11:59:58Z" })]);
    expect(q(".sb-uptime", row("moat-a")).textContent).toBe("2s");
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(1000);
    expect(q(".sb-uptime", row("moat-a")).textContent).toBe("3s");
    vi.advanceTimersByTime(60_000);
    expect(q(".sb-uptime", row("moat-a")).textContent).toBe("1m 03s");

    fake.emit("sandboxes", [sb({ name: "moat-a", status: "stopped" })]);
    expect(vi.getTimerCount()).toBe(0);
    expect(q(".sb-uptime", row("moat-a")).textContent).toBe("—");
    fake.emit("sandboxes", []);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("follows the `sandboxes` event, updating rows in place (focus survives)", async () => {
    const fake = installFake({ sandboxes: [sb({ name: "moat-a", status: "starting" })] });
    await mount();
    expect(fake.rt.EventsOn).toHaveBeenCalledWith("sandboxes", expect.any(Function));
    expect(fake.App.ListSandboxes).toHaveBeenCalledTimes(1);
    const el = row("moat-a");
    const stop = button("Stop moat-a");
    stop.focus();

    fake.emit("sandboxes", [sb({ name: "moat-a", status: "running", startedAt: "2026-12-03T11:59:00Z" }), sb({ name: "moat-b", status: "starting" })]);
    expect(row("moat-a")).toBe(el);
    expect(q(".badge", el).textContent).toBe("running");
    expect(document.activeElement).toBe(stop);
    expect(row("moat-b")).toBeTruthy();

    fake.emit("sandboxes", [sb({ name: "moat-b", status: "running", startedAt: "2026-12-03T11:59:00Z" })]);
    expect(document.querySelector('li[data-name="moat-a"]')).toBeNull();
    expect(document.querySelectorAll("li.sandbox").length).toBe(1);

    fake.emit("sandboxes", null); // Go's nil slice
    expect(document.querySelectorAll("li.sandbox").length).toBe(0);
    expect(q(".empty").hidden).toBe(false);
    // no polling: still only the one initial snapshot
    vi.advanceTimersByTime(60_000);
    expect(fake.App.ListSandboxes).toHaveBeenCalledTimes(1);
  });

  it("an event beats an older ListSandboxes answer", async () => {
    const fake = installFake();
    let answer!: (v: ReturnType<typeof sb>[]) => void;
    fake.App.ListSandboxes.mockImplementationOnce(() => new Promise((r) => (answer = r)));
    const m = mount();
    await flush();
    fake.emit("sandboxes", [sb({ name: "fresh", status: "running", startedAt: "2026-12-03T11:59:00Z" })]);
    answer([sb({ name: "stale" })]);
    await m;
    expect(document.querySelector('li[data-name="stale"]')).toBeNull();
    expect(row("fresh")).toBeTruthy();
  });

  it("shows the empty state inside the drop target", async () => {
    const fake = installFake({ sandboxes: [] });
    await mount();
    const target = q('[data-testid="drop-target"]');
    expect(target.getAttribute("style")).toMatch(/--wails-drop-target:\s*drop/);
    expect(target.contains(q(".empty"))).toBe(true);
    expect(q(".empty").hidden).toBe(false);
    expect(q(".empty-title").textContent).toBe("Drop a project folder here");
    // Wails only toggles wails-drop-target-active when the page registers OnFileDrop(cb, true)
    expect(fake.rt.OnFileDrop).toHaveBeenCalledWith(expect.any(Function), true);
    // the drop itself is Go's: the callback runs nothing
    fake.rt.OnFileDrop.mock.calls[0][0](1, 1, ["/tmp/x"]);
    await flush();
    expect(fake.App.RunInFolder).not.toHaveBeenCalled();
  });
});

describe("actions", () => {
  it("each row button calls its binding with the sandbox name", async () => {
    const fake = installFake({ sandboxes: [sb({ name: "moat-a", status: "running", startedAt: "2026-12-03T11:00:00Z" }), sb({ name: "moat b", status: "stopped" })] });
    await mount();
    button("Open moat-a in terminal").click();
    button("Stop moat-a").click();
    button("Reveal folder of moat-a").click();
    button("Start moat b").click();
    await flush();
    expect(fake.App.OpenTerminal.mock.calls).toEqual([["moat-a"]]);
    expect(fake.App.Stop.mock.calls).toEqual([["moat-a"]]);
    expect(fake.App.RevealFolder.mock.calls).toEqual([["moat-a"]]);
    expect(fake.App.Start.mock.calls).toEqual([["moat b"]]);
    expect(fake.App.Remove).not.toHaveBeenCalled();
  });

  it("disables a button while its call is in flight", async () => {
    const fake = installFake({ sandboxes: [sb({ name: "moat-a", status: "stopped" })] });
    let done!: () => void;
    fake.App.Start.mockImplementationOnce(() => new Promise<undefined>((r) => (done = () => r(undefined))));
    await mount();
    button("Start moat-a").click();
    expect(button("Start moat-a").disabled).toBe(true);
    done();
    await flush();
    expect(button("Start moat-a").disabled).toBe(false);
  });

  it("Run Claude in folder… asks for a folder, then runs in it", async () => {
    const fake = installFake();
    fake.App.ChooseFolder.mockResolvedValueOnce("/home/ada/src/my project");
    await mount();
    button("Run Claude in folder…").click();
    await flush();
    expect(fake.App.ChooseFolder).toHaveBeenCalledTimes(1);
    expect(fake.App.RunInFolder.mock.calls).toEqual([["/home/ada/src/my project"]]);
    expect(fake.App.ChooseFolder.mock.invocationCallOrder[0]).toBeLessThan(fake.App.RunInFolder.mock.invocationCallOrder[0]);
  });

  it("a cancelled folder chooser runs nothing", async () => {
    const fake = installFake();
    await mount();
    button("Run Claude in folder…").click();
    await flush();
    expect(fake.App.ChooseFolder).toHaveBeenCalledTimes(1);
    expect(fake.App.RunInFolder).not.toHaveBeenCalled();
    expect(bannerMessages()).toEqual([]);
  });

  it("Remove asks for confirmation first", async () => {
    const fake = installFake({ sandboxes: [sb({ name: "moat-a", status: "running", startedAt: "2026-12-03T11:00:00Z" })] });
    await mount();
    button("Remove moat-a…").click();
    await flush();
    expect(fake.App.Remove).not.toHaveBeenCalled();
    const confirm = q(".sb-confirm", row("moat-a"));
    expect(confirm.hidden).toBe(false);
    expect(confirm.textContent).toContain("Remove sandbox moat-a?");
    expect(document.activeElement?.textContent).toBe("Cancel");

    button("Cancel", row("moat-a")).click();
    await flush();
    expect(confirm.hidden).toBe(true);
    expect(fake.App.Remove).not.toHaveBeenCalled();

    button("Remove moat-a…").click();
    confirm.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    expect(confirm.hidden).toBe(true);
    expect(fake.App.Remove).not.toHaveBeenCalled();

    button("Remove moat-a…").click();
    button("Remove moat-a").click();
    await flush();
    expect(fake.App.Remove.mock.calls).toEqual([["moat-a"]]);
  });
});

describe("errors", () => {
  it("a rejected binding is shown verbatim, with its context, and can be dismissed", async () => {
    const fake = installFake({ sandboxes: [sb({ name: "moat-a", status: "running", startedAt: "2026-12-03T11:00:00Z" })] });
    const msg = 'daemon: stop "moat-a": guest agent did not answer within 10s\n(see ~/.local/state/moat/daemon.log)';
    fake.App.Stop.mockRejectedValueOnce(msg); // Wails rejects with the Go error's text
    await mount();
    button("Stop moat-a").click();
    await flush();
    expect(bannerMessages()).toEqual([msg]);
    expect(q(".banner-context").textContent).toBe("Stop moat-a:");
    expect(q(".banner-item").getAttribute("role")).toBe("alert");
    button("Dismiss").click();
    expect(bannerMessages()).toEqual([]);
    expect(q(".banner").hidden).toBe(true);
  });

  it("Error objects and the `error` event are shown as worded", async () => {
    const fake = installFake({ sandboxes: [sb({ name: "moat-a" })] });
    fake.App.Start.mockRejectedValueOnce(new Error("template \"go\" not found"));
    await mount();
    button("Start moat-a").click();
    await flush();
    fake.emit("error", "open terminal: exec: \"ghostty\": executable file not found in $PATH");
    expect(bannerMessages()).toEqual(['template "go" not found', 'open terminal: exec: "ghostty": executable file not found in $PATH']);
    expect(fake.rt.EventsOn).toHaveBeenCalledWith("error", expect.any(Function));
  });

  it("a failure to list, to choose a folder or to run is reported, not swallowed", async () => {
    const fake = installFake();
    fake.App.ListSandboxes.mockRejectedValueOnce("connect: /run/user/1000/moat.sock: no such file or directory");
    fake.App.ChooseFolder.mockResolvedValueOnce("/x");
    fake.App.RunInFolder.mockRejectedValueOnce("create sandbox: disk full");
    await mount();
    button("Run Claude in folder…").click();
    await flush();
    expect(bannerMessages()).toEqual(["connect: /run/user/1000/moat.sock: no such file or directory", "create sandbox: disk full"]);
  });

  it("says so when the bindings are missing", async () => {
    installFake();
    delete window.go;
    await mount();
    expect(bannerMessages().some((m) => m?.includes("window.go.desktop.App.ListSandboxes is missing"))).toBe(true);
  });
});
