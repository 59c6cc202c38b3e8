// Settings: terminal of choice (or a custom command template), default agent
// and template, CPU and memory defaults; saved with SaveSettings.
import type { Api } from "./api";
import { h } from "./dom";
import type { Settings, TerminalView } from "./types";

export interface SettingsDeps {
  api: Api;
  report(err: unknown, context: string): void;
}

export interface SettingsPanel {
  el: HTMLElement;
  load(): Promise<void>;
}

export function createSettings(deps: SettingsDeps): SettingsPanel {
  let loaded: Settings | null = null;

  const terminal = h("select", { id: "set-terminal", name: "terminal" });
  const custom = h("input", { id: "set-custom", name: "customCommand", type: "text", autocomplete: "off", spellcheck: "false", placeholder: "xterm -e {args}", "aria-describedby": "set-custom-help" });
  const customField = h(
    "div",
    { class: "field" },
    h("label", { for: "set-custom" }, "Custom command"),
    custom,
    h("p", { id: "set-custom-help", class: "hint" }, "{cmd} is replaced by the shell-quoted command, {args} by its arguments (passed without a shell)."),
  );
  const agent = h("input", { id: "set-agent", name: "defaultAgent", type: "text", autocomplete: "off", spellcheck: "false", placeholder: "claude" });
  const template = h("input", { id: "set-template", name: "defaultTemplate", type: "text", autocomplete: "off", spellcheck: "false" });
  const cpus = h("input", { id: "set-cpus", name: "cpus", type: "number", min: "1", max: "256", step: "1", inputmode: "numeric", placeholder: "default" });
  const mem = h("input", { id: "set-memory", name: "memoryMiB", type: "number", min: "256", step: "256", inputmode: "numeric", placeholder: "default" });
  const error = h("p", { class: "field-error", role: "alert" });
  const done = h("p", { class: "status-text", role: "status" });
  const save = h("button", { type: "submit", class: "primary" }, "Save settings");

  const form = h(
    "form",
    { class: "form", "aria-labelledby": "settings-heading", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "set-terminal" }, "Terminal"), terminal),
    customField,
    h("div", { class: "field-row" },
      h("div", { class: "field" }, h("label", { for: "set-agent" }, "Default agent"), agent),
      h("div", { class: "field" }, h("label", { for: "set-template" }, "Default template"), template),
    ),
    h("div", { class: "field-row" },
      h("div", { class: "field" }, h("label", { for: "set-cpus" }, "CPUs"), cpus),
      h("div", { class: "field" }, h("label", { for: "set-memory" }, "Memory (MiB)"), mem),
    ),
    error,
    h("div", { class: "form-actions" }, save, done),
  );

  const el = h("section", { class: "panel-body" }, h("h2", { id: "settings-heading" }, "Settings"), form);

  const syncCustom = () => {
    customField.hidden = terminal.value !== "custom";
  };
  terminal.addEventListener("change", syncCustom);
  form.addEventListener("input", () => {
    done.textContent = "";
  });

  function read(): Settings | string {
    const s: Settings = {
      terminal: terminal.value,
      customCommand: custom.value,
      defaultAgent: agent.value.trim(),
      defaultTemplate: template.value.trim(),
      cpus: cpus.value.trim() === "" ? 0 : Number(cpus.value),
      memoryMiB: mem.value.trim() === "" ? 0 : Number(mem.value),
    };
    if (s.terminal === "custom" && !/\{(cmd|args)\}/.test(s.customCommand)) {
      return "The custom command needs {cmd} or {args} where the command goes.";
    }
    // empty (0) leaves the choice to the daemon's default
    if (!Number.isInteger(s.cpus) || s.cpus < 0) return "CPUs must be a whole number, at least 1 (or empty for the default).";
    if (!Number.isInteger(s.memoryMiB) || (s.memoryMiB !== 0 && s.memoryMiB < 256)) return "Memory must be a whole number of MiB, at least 256 (or empty for the default).";
    return s;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    done.textContent = "";
    const s = read();
    if (typeof s === "string") {
      error.textContent = s;
      return;
    }
    error.textContent = "";
    save.disabled = true;
    try {
      await deps.api.SaveSettings(s);
      loaded = s;
      done.textContent = "Saved.";
    } catch (err) {
      deps.report(err, "Save settings");
    } finally {
      save.disabled = false;
    }
  });

  function fill(terms: TerminalView[], s: Settings) {
    const opts = terms.map((t) =>
      h("option", { value: t.id, disabled: !t.available }, t.available ? t.name : `${t.name} (not installed)`),
    );
    opts.push(h("option", { value: "custom" }, "Custom command…"));
    if (s.terminal && s.terminal !== "custom" && !terms.some((t) => t.id === s.terminal)) {
      opts.unshift(h("option", { value: s.terminal }, `${s.terminal} (unknown)`));
    }
    terminal.replaceChildren(...opts);
    terminal.value = s.terminal || (terms.find((t) => t.available)?.id ?? "custom");
    custom.value = s.customCommand ?? "";
    agent.value = s.defaultAgent ?? "";
    template.value = s.defaultTemplate ?? "";
    cpus.value = s.cpus ? String(s.cpus) : "";
    mem.value = s.memoryMiB ? String(s.memoryMiB) : "";
    syncCustom();
  }

  return {
    el,
    async load() {
      const [terms, s] = await Promise.all([
        deps.api.Terminals().catch((e) => {
          deps.report(e, "Terminals");
          return [] as TerminalView[];
        }),
        deps.api.GetSettings().catch((e) => {
          deps.report(e, "Settings");
          return null;
        }),
      ]);
      loaded = s ?? loaded;
      fill(terms, loaded ?? { terminal: "", customCommand: "", defaultAgent: "", defaultTemplate: "", cpus: 0, memoryMiB: 0 });
    },
  };
}
