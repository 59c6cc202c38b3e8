// Prints one plain closing line, "vitest: N passed, N failed[, N skipped]",
// after Vitest's own report, so CI logs read the same for every runner.
import type { Reporter } from "vitest/node";

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: Parameters<NonNullable<Reporter["onTestRunEnd"]>>[0], errors: Parameters<NonNullable<Reporter["onTestRunEnd"]>>[1]) {
    let passed = 0;
    let failed = errors.length;
    let skipped = 0;
    for (const m of modules) {
      if (m.state() === "failed" && [...m.children.allTests()].length === 0) failed++;
      for (const t of m.children.allTests()) {
        const s = t.result().state;
        if (s === "passed") passed++;
        else if (s === "failed") failed++;
        else skipped++;
      }
    }
    console.log(`vitest: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  }
}
