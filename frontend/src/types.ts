// Types of the Go↔frontend contract, exactly as in app/desktop/BINDINGS.md
// (JSON field names). Keep this file in step with that document.

export type Status = "running" | "starting" | "stopping" | "stopped" | "error";

export interface SandboxView {
  name: string;
  agent: string;
  status: Status;
  /** why it is in error, or the current phase */
  reason?: string;
  workspace: string;
  template: string;
  /** RFC 3339 */
  createdAt: string;
  /** RFC 3339, while running (uptime) */
  startedAt?: string;
  cpus?: number;
  memoryMiB?: number;
}

export interface ProviderView {
  id: string;
  name: string;
  variable: string;
  hint: string;
}

export interface CredentialView {
  provider: string;
  name: string;
  variable: string;
  /** "" when not set; never the secret */
  masked: string;
  source: "keychain" | "environment" | "";
}

export interface TerminalView {
  id: string;
  name: string;
  available: boolean;
}

export interface Settings {
  /** a TerminalView id, or "custom" */
  terminal: string;
  /** template with {cmd} (shell-quoted command) or {args} (argv) */
  customCommand: string;
  defaultAgent: string;
  defaultTemplate: string;
  cpus: number;
  memoryMiB: number;
}

export interface ServiceView {
  /** the VM host service is installed for this state dir */
  installed: boolean;
  /** its manager runs the daemon */
  running: boolean;
  /** the first-start offer was answered (installed or declined) */
  offered: boolean;
  /** this platform has a service manager moat drives */
  supported: boolean;
  /** what the manager says, or why it is not supported */
  detail: string;
}

/** The methods Wails exposes as window.go.desktop.App.<Method>(...). */
export interface AppBindings {
  ListSandboxes(): Promise<SandboxView[]>;
  RunInFolder(path: string): Promise<string>;
  ChooseFolder(): Promise<string>;
  OpenTerminal(name: string): Promise<void>;
  Start(name: string): Promise<void>;
  Stop(name: string): Promise<void>;
  Remove(name: string): Promise<void>;
  RevealFolder(name: string): Promise<void>;
  Providers(): Promise<ProviderView[]>;
  LoginStatus(): Promise<CredentialView[]>;
  Login(provider: string, secret: string): Promise<void>;
  Logout(provider: string): Promise<void>;
  Terminals(): Promise<TerminalView[]>;
  GetSettings(): Promise<Settings>;
  SaveSettings(s: Settings): Promise<void>;
  ServiceStatus(): Promise<ServiceView>;
  InstallService(): Promise<void>;
  DeclineService(): Promise<void>;
}

/** Event names and payloads (Wails runtime EventsOn). */
export interface EventPayloads {
  sandboxes: SandboxView[];
  error: string;
}

/** The part of window.runtime (Wails v2) the UI uses. */
export interface WailsRuntime {
  EventsOn(name: string, cb: (...data: unknown[]) => void): (() => void) | void;
  EventsOff?(name: string, ...more: string[]): void;
  OnFileDrop?(cb: (x: number, y: number, paths: string[]) => void, useDropTarget: boolean): void;
  OnFileDropOff?(): void;
}

declare global {
  interface Window {
    go?: { desktop?: { App?: Partial<AppBindings> } };
    runtime?: WailsRuntime;
  }
}
