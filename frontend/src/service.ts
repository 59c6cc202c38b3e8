// The first-start offer to install the VM host as a per-user service:
// a calm banner shown when ServiceStatus says it is supported, not
// installed and not offered before. Install calls InstallService and shows
// the outcome (a Go error as worded); Not now calls DeclineService.
import { errorText, type Api } from "./api";
import { h } from "./dom";

export interface ServiceOfferDeps {
  api: Api;
  report(err: unknown, context: string): void;
}

export interface ServiceOffer {
  el: HTMLElement;
  load(): Promise<void>;
}

export const OFFER_TITLE = "Start Moat's VM host at login?";
export const OFFER_TEXT = "Installs a per-user service so sandboxes are ready when you are.";
export const INSTALLED_TEXT = "Installed. Moat's VM host now starts at login.";

export function createServiceOffer(deps: ServiceOfferDeps): ServiceOffer {
  const { api } = deps;
  const install = h("button", { type: "button", class: "primary" }, "Install");
  const later = h("button", { type: "button" }, "Not now");
  const close = h("button", { type: "button" }, "Close");
  const actions = h("div", { class: "offer-actions" }, install, later);
  const text = h("p", { class: "offer-text" }, h("strong", {}, OFFER_TITLE), " ", OFFER_TEXT);
  const error = h("p", { class: "offer-error", role: "alert" });
  const done = h("p", { class: "offer-done", role: "status" });
  close.hidden = true;
  const box = h(
    "div",
    { class: "offer-box" },
    h("div", { class: "offer-body" }, text, error, done),
    h("div", { class: "offer-buttons" }, actions, close),
  );
  // Empty until shown, so its status and alert regions exist only then.
  const el = h("section", { class: "offer", "aria-label": "VM host service" });
  el.hidden = true;
  const hide = () => {
    el.hidden = true;
    el.replaceChildren();
  };

  const busy = (b: boolean) => {
    install.disabled = b;
    later.disabled = b;
  };

  install.addEventListener("click", async () => {
    busy(true);
    error.textContent = "";
    install.textContent = "Installing…";
    try {
      await api.InstallService();
      text.hidden = true;
      actions.hidden = true;
      done.textContent = INSTALLED_TEXT;
      close.hidden = false;
      close.focus();
    } catch (e) {
      error.textContent = errorText(e);
    } finally {
      install.textContent = "Install";
      busy(false);
    }
  });

  later.addEventListener("click", async () => {
    busy(true);
    error.textContent = "";
    try {
      await api.DeclineService();
      hide();
    } catch (e) {
      error.textContent = errorText(e);
    } finally {
      busy(false);
    }
  });

  close.addEventListener("click", hide);

  return {
    el,
    async load() {
      try {
        const s = await api.ServiceStatus();
        if (s && s.supported && !s.installed && !s.offered) {
          el.replaceChildren(box);
          el.hidden = false;
        } else {
          hide();
        }
      } catch (e) {
        hide();
        deps.report(e, "Service status");
      }
    },
  };
}
