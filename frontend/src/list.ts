// The sandbox list: one row per sandbox, updated in place (keyed by name) so
// focus survives live updates; uptime ticks once a second only while some
// sandbox is running.
import type { Api } from "./api";
import { h, id } from "./dom";
import { memory, uptime } from "./format";
import type { SandboxView } from "./types";

export interface ListDeps {
  api: Api;
  report(err: unknown, context: string): void;
  /** Called after an action succeeded (one snapshot refresh, not polling). */
  changed(): void;
  now?: () => number;
}

export interface SandboxList {
  el: HTMLElement;
  update(views: SandboxView[]): void;
  destroy(): void;
}

interface Row {
  el: HTMLLIElement;
  view: SandboxView;
  update(v: SandboxView): void;
  tick(now: number): void;
}

export function createList(deps: ListDeps): SandboxList {
  const now = deps.now ?? (() => Date.now());
  const rows = new Map<string, Row>();
  let timer: ReturnType<typeof setInterval> | undefined;

  const runButton = h("button", { type: "button", class: "primary" }, "Run Claude in folder…");
  runButton.addEventListener("click", async () => {
    runButton.disabled = true;
    try {
      const path = await deps.api.ChooseFolder();
      if (path) {
        await deps.api.RunInFolder(path);
        deps.changed();
      }
    } catch (e) {
      deps.report(e, "Run Claude in folder");
    } finally {
      runButton.disabled = false;
    }
  });

  const heading = h("h2", { id: "sandboxes-heading" }, "Sandboxes");
  const ul = h("ul", { class: "sandbox-list", "aria-labelledby": "sandboxes-heading" });
  const empty = h(
    "div",
    { class: "empty" },
    h("p", { class: "empty-title" }, "Drop a project folder here"),
    h("p", { class: "empty-sub" }, "or choose one with “Run Claude in folder…”. Moat starts a sandbox for it and opens it in your terminal."),
  );
  // Inline style on purpose: Wails looks for the property in the style attribute.
  const drop = h("div", { class: "drop-target", style: "--wails-drop-target: drop", "data-testid": "drop-target" }, empty, ul);

  const el = h(
    "section",
    { class: "panel-body", "aria-labelledby": "sandboxes-heading" },
    h("div", { class: "toolbar" }, heading, runButton),
    drop,
  );

  function act(label: string, name: string, button: HTMLButtonElement, fn: () => Promise<unknown>) {
    button.disabled = true;
    fn()
      .then(() => deps.changed())
      .catch((e) => deps.report(e, `${label} ${name}`))
      .finally(() => {
        button.disabled = false;
        rows.get(name)?.update(rows.get(name)!.view); // re-derive enabled state
      });
  }

  function makeRow(v: SandboxView): Row {
    const nameEl = h("h3", { class: "sb-name" });
    const badge = h("span", { class: "badge" });
    const reason = h("p", { class: "sb-reason" });
    const agent = h("dd", {});
    const template = h("dd", {});
    const workspace = h("dd", { class: "sb-workspace" });
    const resources = h("dd", {});
    const up = h("dd", { class: "sb-uptime" });
    const timeEl = h("time", {});
    up.appendChild(timeEl);

    const openBtn = h("button", { type: "button" }, "Open in terminal");
    const toggleBtn = h("button", { type: "button" });
    const removeBtn = h("button", { type: "button", class: "danger" }, "Remove…");
    const revealBtn = h("button", { type: "button" }, "Reveal folder");
    const actions = h("div", { class: "sb-actions", role: "group" }, openBtn, toggleBtn, revealBtn, removeBtn);

    const confirmId = id("confirm");
    const confirmYes = h("button", { type: "button", class: "danger primary" }, "Remove");
    const confirmNo = h("button", { type: "button" }, "Cancel");
    const confirmText = h("p", { id: confirmId });
    const confirm = h("div", { class: "sb-confirm", role: "group", "aria-describedby": confirmId }, confirmText, confirmYes, confirmNo);
    confirm.hidden = true;

    const li = h(
      "li",
      { class: "sandbox" },
      h("div", { class: "sb-head" }, nameEl, badge),
      reason,
      h(
        "dl",
        { class: "sb-facts" },
        h("div", {}, h("dt", {}, "Agent"), agent),
        h("div", {}, h("dt", {}, "Template"), template),
        h("div", {}, h("dt", {}, "Uptime"), up),
        h("div", { class: "sb-res" }, h("dt", {}, "Resources"), resources),
        h("div", { class: "wide" }, h("dt", {}, "Workspace"), workspace),
      ),
      actions,
      confirm,
    );

    const row: Row = {
      el: li,
      view: v,
      update(nv) {
        row.view = nv;
        const n = nv.name;
        li.dataset.name = n;
        li.dataset.status = nv.status;
        nameEl.textContent = n;
        badge.textContent = nv.status;
        badge.className = `badge badge-${nv.status}`;
        reason.textContent = nv.reason ?? "";
        reason.hidden = !nv.reason;
        reason.className = nv.status === "error" ? "sb-reason sb-error" : "sb-reason";
        agent.textContent = nv.agent || "—";
        template.textContent = nv.template || "—";
        workspace.textContent = nv.workspace;
        workspace.title = nv.workspace;
        const res = [nv.cpus ? `${nv.cpus} CPU` : "", memory(nv.memoryMiB)].filter(Boolean).join(", ");
        resources.textContent = res;
        (resources.parentElement as HTMLElement).hidden = !res;
        actions.setAttribute("aria-label", `Actions for ${n}`);
        openBtn.setAttribute("aria-label", `Open ${n} in terminal`);
        revealBtn.setAttribute("aria-label", `Reveal folder of ${n}`);
        removeBtn.setAttribute("aria-label", `Remove ${n}…`);
        const stoppable = nv.status === "running" || nv.status === "starting" || nv.status === "stopping";
        toggleBtn.textContent = stoppable ? "Stop" : "Start";
        toggleBtn.setAttribute("aria-label", `${stoppable ? "Stop" : "Start"} ${n}`);
        if (nv.status === "stopping") toggleBtn.disabled = true;
        else if (toggleBtn.dataset.busy !== "1") toggleBtn.disabled = false;
        confirmText.textContent = `Remove sandbox ${n}? It is stopped first. Your project folder is not touched.`;
        confirmYes.setAttribute("aria-label", `Remove ${n}`);
        row.tick(now());
      },
      tick(t) {
        const running = row.view.status === "running" && !!row.view.startedAt;
        if (running) {
          timeEl.dateTime = row.view.startedAt!;
          timeEl.textContent = uptime(row.view.startedAt, t);
        } else {
          timeEl.removeAttribute("datetime");
          timeEl.textContent = "—";
        }
      },
    };

    openBtn.addEventListener("click", () => act("Open in terminal", row.view.name, openBtn, () => deps.api.OpenTerminal(row.view.name)));
    revealBtn.addEventListener("click", () => act("Reveal folder", row.view.name, revealBtn, () => deps.api.RevealFolder(row.view.name)));
    toggleBtn.addEventListener("click", () => {
      const n = row.view.name;
      const stop = toggleBtn.textContent === "Stop";
      toggleBtn.dataset.busy = "1";
      act(stop ? "Stop" : "Start", n, toggleBtn, () =>
        (stop ? deps.api.Stop(n) : deps.api.Start(n)).finally(() => delete toggleBtn.dataset.busy),
      );
    });
    const closeConfirm = (focus: boolean) => {
      confirm.hidden = true;
      actions.hidden = false;
      if (focus) removeBtn.focus();
    };
    removeBtn.addEventListener("click", () => {
      actions.hidden = true;
      confirm.hidden = false;
      confirmNo.focus();
    });
    confirmNo.addEventListener("click", () => closeConfirm(true));
    confirm.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        closeConfirm(true);
      }
    });
    confirmYes.addEventListener("click", () => {
      const n = row.view.name;
      confirmYes.disabled = true;
      confirmNo.disabled = true;
      deps.api
        .Remove(n)
        .then(() => deps.changed())
        .catch((e) => {
          deps.report(e, `Remove ${n}`);
        })
        .finally(() => {
          confirmYes.disabled = false;
          confirmNo.disabled = false;
          if (li.isConnected) closeConfirm(false);
        });
    });

    row.update(v);
    return row;
  }

  function syncTimer() {
    const anyRunning = [...rows.values()].some((r) => r.view.status === "running" && !!r.view.startedAt);
    if (anyRunning && timer === undefined) {
      timer = setInterval(() => {
        const t = now();
        for (const r of rows.values()) r.tick(t);
      }, 1000);
    } else if (!anyRunning && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  }

  function update(views: SandboxView[]) {
    const seen = new Set<string>();
    let prev: Element | null = null;
    for (const v of views) {
      seen.add(v.name);
      let row = rows.get(v.name);
      if (row) row.update(v);
      else {
        row = makeRow(v);
        rows.set(v.name, row);
      }
      // keep DOM order equal to the snapshot's order without moving rows needlessly
      const expected: Element | null = prev ? prev.nextElementSibling : ul.firstElementChild;
      if (expected !== row.el) ul.insertBefore(row.el, expected);
      prev = row.el;
    }
    for (const [name, row] of rows) {
      if (!seen.has(name)) {
        row.el.remove();
        rows.delete(name);
      }
    }
    empty.hidden = rows.size > 0;
    ul.hidden = rows.size === 0;
    syncTimer();
  }

  update([]);

  return {
    el,
    update,
    destroy() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
}
