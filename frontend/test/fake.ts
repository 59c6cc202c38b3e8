// The Wails bindings mocked for Vitest: window.go.desktop.App with vi.fn()
// methods and window.runtime with EventsOn that the test can emit through.
import { vi } from "vitest";
import { api } from "../src/api";
import { mountApp, type MountedApp } from "../src/app";
import { runtime } from "../src/runtime";
import type { AppBindings, CredentialView, ProviderView, SandboxView, ServiceView, Settings, TerminalView } from "../src/types";

export interface FakeOptions {
  sandboxes?: SandboxView[];
  providers?: ProviderView[];
  credentials?: CredentialView[];
  terminals?: TerminalView[];
  settings?: Settings;
  /** ServiceStatus's answer; the offer was answered (offered: true) by default */
  service?: Partial<ServiceView>;
}

export const SERVICE: ServiceView = { installed: false, running: false, offered: true, supported: true, detail: "not installed (systemd user unit /home/ada/.config/systemd/user/moat-vmhost.service); the daemon starts on demand" };

export const PROVIDERS: ProviderView[] = [
  { id: "anthropic", name: "Anthropic API key", variable: "ANTHROPIC_API_KEY", hint: "create one at console.anthropic.com → API keys" },
  { id: "github", name: "GitHub token", variable: "GH_TOKEN", hint: "run `gh auth token`" },
];
export const SETTINGS: Settings = { terminal: "xterm", customCommand: "", defaultAgent: "claude", defaultTemplate: "default", cpus: 2, memoryMiB: 4096 };
export const TERMINALS: TerminalView[] = [
  { id: "gnome-terminal", name: "GNOME Terminal", available: false },
  { id: "xterm", name: "xterm", available: true },
];

export function sb(over: Partial<SandboxView> & { name: string }): SandboxView {
  return { agent: "claude", status: "stopped", workspace: `/home/ada/${over.name}`, template: "default", createdAt: "2026-12-01T10:00:00Z", ...over };
}

export function installFake(opts: FakeOptions = {}) {
  const handlers: Record<string, ((d: unknown) => void)[]> = {};
  const App = {
    ListSandboxes: vi.fn(async (): Promise<SandboxView[] | null> => opts.sandboxes ?? []),
    RunInFolder: vi.fn(async (_p: string) => "moat-x"),
    ChooseFolder: vi.fn(async () => ""),
    OpenTerminal: vi.fn(async (_n: string) => undefined),
    Start: vi.fn(async (_n: string) => undefined),
    Stop: vi.fn(async (_n: string) => undefined),
    Remove: vi.fn(async (_n: string) => undefined),
    RevealFolder: vi.fn(async (_n: string) => undefined),
    Providers: vi.fn(async () => opts.providers ?? PROVIDERS),
    LoginStatus: vi.fn(async () => opts.credentials ?? []),
    Login: vi.fn(async (_p: string, _s: string) => undefined),
    Logout: vi.fn(async (_p: string) => undefined),
    Terminals: vi.fn(async () => opts.terminals ?? TERMINALS),
    GetSettings: vi.fn(async () => opts.settings ?? SETTINGS),
    SaveSettings: vi.fn(async (_s: Settings) => undefined),
    ServiceStatus: vi.fn(async (): Promise<ServiceView> => ({ ...SERVICE, ...opts.service })),
    InstallService: vi.fn(async () => undefined),
    DeclineService: vi.fn(async () => undefined),
  };
  const rt = {
    EventsOn: vi.fn((name: string, cb: (d: unknown) => void) => {
      (handlers[name] ??= []).push(cb);
      return () => {
        handlers[name] = handlers[name].filter((x) => x !== cb);
      };
    }),
    EventsOff: vi.fn(),
    OnFileDrop: vi.fn(),
  };
  window.go = { desktop: { App: App as unknown as Partial<AppBindings> } }; // Go may answer null for a nil slice
  window.runtime = rt;
  const emit = (name: string, data: unknown) => (handlers[name] ?? []).forEach((cb) => cb(data));
  return { App, rt, emit, handlers };
}

/** Let pending promise callbacks run (microtasks only, so fake timers are fine). */
export async function flush(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

let mounted: MountedApp | undefined;
export async function mount(): Promise<HTMLElement> {
  document.body.innerHTML = '<div id="app"></div>';
  const root = document.getElementById("app")!;
  mounted = mountApp(root, { api, runtime });
  await mounted.ready;
  await flush();
  return root;
}
export function unmount() {
  mounted?.destroy();
  mounted = undefined;
  document.body.innerHTML = "";
  delete window.go;
  delete window.runtime;
}

export const q = <T extends Element = HTMLElement>(sel: string, root: ParentNode = document): T => {
  const el = root.querySelector<T>(sel);
  if (!el) throw new Error(`no element matches ${sel}`);
  return el;
};
export const row = (name: string) => q<HTMLLIElement>(`li.sandbox[data-name="${name}"]`);
export function button(name: string, root: ParentNode = document): HTMLButtonElement {
  const all = Array.from(root.querySelectorAll("button")).filter((b) => (b.getAttribute("aria-label") ?? b.textContent?.trim()) === name);
  if (all.length !== 1) throw new Error(`${all.length} buttons named ${JSON.stringify(name)}`);
  return all[0];
}
export const bannerMessages = () => Array.from(document.querySelectorAll(".banner-message")).map((e) => e.textContent);
