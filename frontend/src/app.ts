// Puts the window together: error banner, the first-start service offer, tabs (Sandboxes, Log in, Settings),
// the live list fed by the `sandboxes` event.
import type { Api } from "./api";
import { createBanner } from "./banner";
import { h } from "./dom";
import { createList } from "./list";
import { createLogin } from "./login";
import type { Runtime } from "./runtime";
import { createServiceOffer } from "./service";
import { createSettings } from "./settings";
import type { SandboxView } from "./types";

export interface AppDeps {
  api: Api;
  runtime: Runtime;
  now?: () => number;
}

export interface MountedApp {
  /** Resolves when the first snapshot and the panels have loaded. */
  ready: Promise<void>;
  destroy(): void;
}

export function mountApp(root: HTMLElement, deps: AppDeps): MountedApp {
  const { api, runtime } = deps;
  let secretInFlight: string | null = null;
  // The Go side never echoes a secret; if an error ever did, it is scrubbed here.
  const banner = createBanner((s) => (secretInFlight && s.includes(secretInFlight) ? s.split(secretInFlight).join("[secret]") : s));
  const report = (err: unknown, context?: string) => banner.show(err, context);

  // Snapshots: an event always wins over an older ListSandboxes answer.
  let generation = 0;
  const list = createList({ api, report, changed: () => void refresh(), now: deps.now });
  const apply = (views: SandboxView[] | null | undefined) => list.update(views ?? []);
  async function refresh() {
    const g = generation;
    try {
      const views = await api.ListSandboxes();
      if (g === generation) apply(views);
    } catch (e) {
      report(e, "List sandboxes");
    }
  }

  const login = createLogin({ api, report, inFlight: (s) => (secretInFlight = s) });
  const settings = createSettings({ api, report });
  const offer = createServiceOffer({ api, report });

  const tabs = [
    { id: "sandboxes", label: "Sandboxes", body: list.el },
    { id: "login", label: "Log in", body: login.el },
    { id: "settings", label: "Settings", body: settings.el },
  ];
  const tabButtons: HTMLButtonElement[] = [];
  const panels: HTMLElement[] = [];
  const tablist = h("div", { class: "tabs", role: "tablist", "aria-label": "Moat" });
  for (const [i, t] of tabs.entries()) {
    const b = h("button", { type: "button", role: "tab", id: `tab-${t.id}`, "aria-controls": `panel-${t.id}` }, t.label);
    b.addEventListener("click", () => select(i, false));
    b.addEventListener("keydown", (e) => {
      const n = tabs.length;
      const to = e.key === "ArrowRight" ? (i + 1) % n : e.key === "ArrowLeft" ? (i - 1 + n) % n : e.key === "Home" ? 0 : e.key === "End" ? n - 1 : -1;
      if (to >= 0) {
        e.preventDefault();
        select(to, true);
      }
    });
    tabButtons.push(b);
    tablist.appendChild(b);
    panels.push(h("div", { class: "panel", role: "tabpanel", id: `panel-${t.id}`, "aria-labelledby": `tab-${t.id}` }, t.body));
  }
  function select(i: number, focus: boolean) {
    tabButtons.forEach((b, j) => {
      b.setAttribute("aria-selected", String(i === j));
      b.tabIndex = i === j ? 0 : -1;
    });
    panels.forEach((p, j) => (p.hidden = i !== j));
    if (focus) tabButtons[i].focus();
  }
  select(0, false);

  root.replaceChildren(
    h("header", { class: "app-header" }, h("h1", { class: "app-title" }, "Moat"), tablist),
    banner.el,
    offer.el,
    h("main", { class: "app-main" }, ...panels),
  );

  const offs: (() => void)[] = [];
  try {
    offs.push(runtime.on("sandboxes", (views) => {
      generation++;
      apply(views);
    }));
    offs.push(runtime.on("error", (msg) => report(msg)));
    runtime.enableDropTarget();
  } catch (e) {
    report(e, "Events");
  }

  const ready = Promise.all([refresh(), login.load(), settings.load(), offer.load()]).then(() => undefined);

  return {
    ready,
    destroy() {
      offs.forEach((off) => off());
      list.destroy();
    },
  };
}
