// The only module that touches window.runtime (Wails v2).
import type { EventPayloads } from "./types";

export interface Runtime {
  /** Subscribe to a backend event; returns the unsubscribe function. */
  on<K extends keyof EventPayloads>(name: K, cb: (data: EventPayloads[K]) => void): () => void;
  /**
   * Let Wails mark the element styled `--wails-drop-target: drop` with the
   * class `wails-drop-target-active` while files are dragged over it. Wails
   * only tracks drag-over when the page registers OnFileDrop(cb, true); the
   * drop itself is handled in Go (BINDINGS.md), so the callback does nothing.
   */
  enableDropTarget(): void;
}

export const runtime: Runtime = {
  on(name, cb) {
    const rt = window.runtime;
    if (!rt || typeof rt.EventsOn !== "function") {
      throw new Error("the Wails runtime is not available (window.runtime.EventsOn is missing)");
    }
    const off = rt.EventsOn(name, (data: unknown) => cb(data as never));
    if (typeof off === "function") return off;
    return () => rt.EventsOff?.(name);
  },
  enableDropTarget() {
    window.runtime?.OnFileDrop?.(() => {}, true);
  },
};
