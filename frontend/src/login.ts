// The login panel: provider, a masked secret field (never echoed, cleared
// after every submit), shape checks before Login, the masked status list.
import type { Api } from "./api";
import { h } from "./dom";
import type { CredentialView, ProviderView } from "./types";
import { validateSecret } from "./validate";

export interface LoginDeps {
  api: Api;
  report(err: unknown, context: string): void;
  /** Called with each secret while it is in flight, so errors can be scrubbed of it. */
  inFlight(secret: string | null): void;
}

export interface LoginPanel {
  el: HTMLElement;
  load(): Promise<void>;
}

export function createLogin(deps: LoginDeps): LoginPanel {
  let providers: ProviderView[] = [];

  const select = h("select", { id: "login-provider", name: "provider" });
  const secretLabel = h("label", { for: "login-secret" }, "Secret");
  const secret = h("input", {
    id: "login-secret",
    type: "password",
    autocomplete: "off",
    autocapitalize: "off",
    autocorrect: "off",
    spellcheck: "false",
    "data-1p-ignore": "true",
    "aria-describedby": "login-hint login-error",
  });
  const hint = h("p", { id: "login-hint", class: "hint" });
  const error = h("p", { id: "login-error", class: "field-error", role: "alert" });
  const done = h("p", { class: "status-text", role: "status" });
  const submit = h("button", { type: "submit", class: "primary" }, "Save to keychain");

  const form = h(
    "form",
    { class: "form", "aria-labelledby": "login-heading", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "login-provider" }, "Provider"), select),
    h("div", { class: "field" }, secretLabel, secret, hint, error),
    h("div", { class: "form-actions" }, submit, done),
  );

  const statusBody = h("tbody", {});
  const statusTable = h(
    "table",
    { class: "status-table", "aria-labelledby": "login-status-heading" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Credential"), h("th", { scope: "col" }, "Variable"), h("th", { scope: "col" }, "Value"), h("th", { scope: "col" }, "Source"), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
    statusBody,
  );

  const el = h(
    "section",
    { class: "panel-body" },
    h("h2", { id: "login-heading" }, "Log in"),
    h("p", { class: "lede" }, "Credentials are kept in your system keychain and given to sandboxes when they run. Moat never shows them again."),
    form,
    h("h2", { id: "login-status-heading" }, "Stored credentials"),
    statusTable,
  );

  const current = () => providers.find((p) => p.id === select.value);

  function syncProvider() {
    const p = current();
    secretLabel.textContent = p ? p.name : "Secret";
    hint.textContent = p ? `${p.hint.charAt(0).toUpperCase()}${p.hint.slice(1)}. Stored as ${p.variable}.` : "";
    error.textContent = "";
    secret.removeAttribute("aria-invalid");
  }
  select.addEventListener("change", syncProvider);
  secret.addEventListener("input", () => {
    if (error.textContent) {
      error.textContent = "";
      secret.removeAttribute("aria-invalid");
    }
    done.textContent = "";
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const p = current();
    const value = secret.value.trim(); // as Login does (strings.TrimSpace) before its checks
    secret.value = ""; // cleared after every submit, whatever happens next
    done.textContent = "";
    if (!p) {
      error.textContent = "Choose a provider first.";
      return;
    }
    const problem = validateSecret(p.id, p.name, value, p.hint);
    if (problem) {
      error.textContent = problem;
      secret.setAttribute("aria-invalid", "true");
      secret.focus();
      return;
    }
    error.textContent = "";
    secret.removeAttribute("aria-invalid");
    submit.disabled = true;
    deps.inFlight(value);
    try {
      await deps.api.Login(p.id, value);
      done.textContent = `Saved the ${p.name} to the keychain.`;
    } catch (err) {
      deps.report(err, `Log in (${p.name})`);
    } finally {
      deps.inFlight(null);
      submit.disabled = false;
    }
    await loadStatus();
  });

  function renderStatus(creds: CredentialView[]) {
    statusBody.replaceChildren(
      ...creds.map((c) => {
        const set = c.masked !== "";
        const logout = c.source === "keychain"
          ? h("button", { type: "button", "aria-label": `Log out of ${c.name}` }, "Log out")
          : null;
        logout?.addEventListener("click", async () => {
          logout.disabled = true;
          try {
            await deps.api.Logout(c.provider);
          } catch (err) {
            deps.report(err, `Log out (${c.name})`);
          } finally {
            logout.disabled = false;
          }
          await loadStatus();
        });
        return h(
          "tr",
          { "data-provider": c.provider },
          h("th", { scope: "row" }, c.name || c.provider),
          h("td", {}, h("code", {}, c.variable)),
          h("td", {}, set ? h("code", { class: "masked" }, c.masked) : h("span", { class: "muted" }, "not set")),
          h("td", {}, c.source === "keychain" ? "keychain" : c.source === "environment" ? "environment" : "—"),
          h("td", { class: "cell-actions" }, logout),
        );
      }),
    );
  }

  async function loadStatus() {
    try {
      renderStatus(await deps.api.LoginStatus());
    } catch (err) {
      deps.report(err, "Login status");
    }
  }

  async function loadProviders() {
    try {
      providers = await deps.api.Providers();
    } catch (err) {
      deps.report(err, "Providers");
      providers = [];
    }
    const keep = select.value;
    select.replaceChildren(...providers.map((p) => h("option", { value: p.id }, p.name)));
    if (providers.some((p) => p.id === keep)) select.value = keep;
    syncProvider();
  }

  return {
    el,
    async load() {
      await Promise.all([loadProviders(), loadStatus()]);
    },
  };
}
