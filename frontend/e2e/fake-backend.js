// A fake Moat backend for the end-to-end test, injected with
// page.addInitScript before any page script runs. It defines
// window.go.desktop.App (the BINDINGS.md methods, returning Promises) and
// window.runtime (EventsOn/EventsOff/OnFileDrop), and records every call in
// window.__fake.calls. The test drives it through window.__fake:
//   __fake.emit(name, data)  deliver a backend event (e.g. "sandboxes", "error")
//   __fake.fail[method] = "text"  make the next calls of method reject with that text
//   __fake.folder = "/path"  what ChooseFolder answers ("" = cancelled)
//   __fake.service  what ServiceStatus answers (scenario.service over a default
//     with offered: true, so the first-start offer stays out of other tests)
// runtime.OnFileDrop hands over to window.__wailsDnD (Wails' real
// draganddrop.js, which run.mjs loads from the Go module cache) when present.
// This function is serialised by Playwright: it must not use outer variables.
export function installFakeBackend(scenario) {
  const state = {
    calls: [],
    handlers: {},
    drop: null,
    fail: {},
    folder: scenario.folder ?? "",
    sandboxes: scenario.sandboxes ?? [],
    credentials: scenario.credentials ?? [],
    settings: scenario.settings,
    service: {
      installed: false, running: false, offered: true, supported: true,
      detail: "not installed (systemd user unit /home/ada/.config/systemd/user/moat-vmhost.service); the daemon starts on demand",
      ...scenario.service,
    },
  };
  const clone = (v) => (v === undefined ? v : JSON.parse(JSON.stringify(v)));
  state.emit = (name, data) => (state.handlers[name] ?? []).forEach((cb) => cb(data));
  const method = (name, impl) => (...args) => {
    state.calls.push({ method: name, args: clone(args) });
    if (state.fail[name] !== undefined) return Promise.reject(state.fail[name]); // Wails rejects with the Go error's text
    return Promise.resolve().then(() => clone(impl(...args)));
  };
  const App = {
    ListSandboxes: method("ListSandboxes", () => state.sandboxes),
    ChooseFolder: method("ChooseFolder", () => state.folder),
    RunInFolder: method("RunInFolder", (path) => {
      const name = "moat-" + path.split("/").filter(Boolean).pop();
      return name;
    }),
    OpenTerminal: method("OpenTerminal", () => null),
    Start: method("Start", () => null),
    Stop: method("Stop", () => null),
    Remove: method("Remove", () => null),
    RevealFolder: method("RevealFolder", () => null),
    Providers: method("Providers", () => scenario.providers ?? []),
    LoginStatus: method("LoginStatus", () => state.credentials),
    Login: method("Login", (provider, secret) => {
      const c = state.credentials.find((x) => x.provider === provider);
      if (c) {
        c.masked = secret.slice(0, 7) + "…" + secret.slice(-4);
        c.source = "keychain";
      }
      return null;
    }),
    Logout: method("Logout", () => null),
    Terminals: method("Terminals", () => scenario.terminals ?? []),
    GetSettings: method("GetSettings", () => state.settings),
    SaveSettings: method("SaveSettings", () => null),
    ServiceStatus: method("ServiceStatus", () => state.service),
    InstallService: method("InstallService", () => {
      Object.assign(state.service, { installed: true, running: true, offered: true });
      return null;
    }),
    DeclineService: method("DeclineService", () => {
      state.service.offered = true;
      return null;
    }),
  };
  window.go = { desktop: { App } };
  window.runtime = {
    EventsOn(name, cb) {
      state.calls.push({ method: "runtime.EventsOn", args: [name] });
      (state.handlers[name] ??= []).push(cb);
      return () => {
        state.handlers[name] = (state.handlers[name] ?? []).filter((x) => x !== cb);
      };
    },
    EventsOff(name) {
      delete state.handlers[name];
    },
    OnFileDrop(cb, useDropTarget) {
      state.calls.push({ method: "runtime.OnFileDrop", args: [useDropTarget] });
      state.drop = cb;
      // When the test loaded Wails' own drag-and-drop code, hand over to it.
      window.__wailsDnD?.OnFileDrop(cb, useDropTarget);
    },
    OnFileDropOff() {
      state.drop = null;
    },
  };
  window.__fake = state;
}
