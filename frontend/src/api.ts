// The only module that touches window.go: every call goes through here and
// returns a Promise. A Go error rejects with its text; errorText() turns any
// rejection into the string the UI shows, as worded.
import type {
  AppBindings, CredentialView, ProviderView, SandboxView, ServiceView, Settings, TerminalView,
} from "./types";

export type Api = AppBindings;

function call<T>(method: keyof AppBindings, ...args: unknown[]): Promise<T> {
  try {
    const app = window.go?.desktop?.App;
    const fn = app?.[method] as ((...a: unknown[]) => Promise<T>) | undefined;
    if (typeof fn !== "function") {
      throw new Error(`the Moat backend is not available (window.go.desktop.App.${method} is missing)`);
    }
    return Promise.resolve(fn.apply(app, args));
  } catch (e) {
    return Promise.reject(e);
  }
}

/** Go returns nil slices as null; the UI always wants an array. */
const list = <T>(p: Promise<T[] | null | undefined>): Promise<T[]> => p.then((v) => v ?? []);

export const api: Api = {
  ListSandboxes: () => list(call<SandboxView[]>("ListSandboxes")),
  RunInFolder: (path) => call<string>("RunInFolder", path),
  ChooseFolder: () => call<string>("ChooseFolder").then((v) => v ?? ""),
  OpenTerminal: (name) => call<void>("OpenTerminal", name),
  Start: (name) => call<void>("Start", name),
  Stop: (name) => call<void>("Stop", name),
  Remove: (name) => call<void>("Remove", name),
  RevealFolder: (name) => call<void>("RevealFolder", name),
  Providers: () => list(call<ProviderView[]>("Providers")),
  LoginStatus: () => list(call<CredentialView[]>("LoginStatus")),
  Login: (provider, secret) => call<void>("Login", provider, secret),
  Logout: (provider) => call<void>("Logout", provider),
  Terminals: () => list(call<TerminalView[]>("Terminals")),
  GetSettings: () => call<Settings>("GetSettings"),
  SaveSettings: (s) => call<void>("SaveSettings", s),
  ServiceStatus: () => call<ServiceView>("ServiceStatus"),
  InstallService: () => call<void>("InstallService"),
  DeclineService: () => call<void>("DeclineService"),
};

/** The text of a rejection, unchanged: Wails rejects with the Go error's string. */
export function errorText(e: unknown): string {
  if (typeof e === "string") return e;
  if (e instanceof Error) return e.message;
  if (e && typeof e === "object" && "message" in e && typeof (e as { message: unknown }).message === "string") {
    return (e as { message: string }).message;
  }
  try {
    return JSON.stringify(e) ?? String(e);
  } catch {
    return String(e);
  }
}
