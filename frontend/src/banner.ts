// Errors from bindings and the `error` event, shown as worded, one per item,
// each dismissable. Nothing is swallowed: every failure ends up here.
import { errorText } from "./api";
import { h } from "./dom";

export interface Banner {
  el: HTMLElement;
  /** Show an error; context (e.g. "Stop demo") is shown apart from the message. */
  show(err: unknown, context?: string): void;
  clear(): void;
}

export function createBanner(redact: (s: string) => string = (s) => s): Banner {
  const el = h("div", { class: "banner" });
  el.hidden = true;

  const sync = () => {
    el.hidden = el.childElementCount === 0;
  };

  return {
    el,
    show(err, context) {
      const message = redact(errorText(err));
      for (const item of Array.from(el.children)) {
        const m = item.querySelector(".banner-message")?.textContent;
        const c = item.querySelector(".banner-context")?.textContent ?? "";
        if (m === message && c === (context ? `${context}:` : "")) return; // already shown
      }
      const item = h(
        "div",
        { class: "banner-item", role: "alert" },
        h("span", { class: "banner-icon", "aria-hidden": "true" }, "!"),
        h(
          "p",
          { class: "banner-text" },
          context ? h("span", { class: "banner-context" }, `${context}:`) : null,
          context ? " " : null,
          h("span", { class: "banner-message" }, message),
        ),
        h("button", {
          type: "button",
          class: "icon-button",
          "aria-label": "Dismiss",
          title: "Dismiss",
          onclick: () => {
            item.remove();
            sync();
          },
        }, "×"),
      );
      el.appendChild(item);
      sync();
    },
    clear() {
      el.replaceChildren();
      sync();
    },
  };
}
