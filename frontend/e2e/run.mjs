// End-to-end test: the BUILT page (dist/) in Debian's headless Chromium,
// driven by playwright-core, with the fake backend of fake-backend.js.
// Run `npm run build` first. Prints one line per test and "N passed, N failed".
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { installFakeBackend } from "./fake-backend.js";

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(here, "../dist");
const shots = resolve(here, "../../docs/screenshots");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

if (!existsSync(join(dist, "index.html"))) {
  console.error("e2e: dist/index.html is missing; run `npm run build` first");
  process.exit(2);
}
if (!existsSync(executablePath)) {
  console.error(`e2e: ${executablePath} is missing; install Debian's chromium (apt-get install chromium)`);
  process.exit(2);
}

// --- a tiny static server for dist/ on 127.0.0.1 ---
const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png" };
const server = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  let p = normalize(decodeURIComponent(url.pathname)).replace(/^([/\\])+/, "");
  if (p === "" || p.endsWith("/")) p += "index.html";
  const file = join(dist, p);
  if (!file.startsWith(dist) || !existsSync(file)) {
    res.writeHead(404).end("not found");
    return;
  }
  res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
  res.end(readFileSync(file));
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const base = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

// --- scenario data ---
// The page runs on a fixed clock (Playwright's clock), so uptimes and screenshots are the same every run.
const NOW = Date.parse("2026-12-03T12:00:00Z");
const minutesAgo = (m) => new Date(NOW - m * 60_000).toISOString();
const providers = [
  { id: "anthropic", name: "Anthropic API key", variable: "ANTHROPIC_API_KEY", hint: "create one at console.anthropic.com → API keys" },
  { id: "github", name: "GitHub token", variable: "GH_TOKEN", hint: "run `gh auth token`" },
];
const credentials = () => [
  { provider: "anthropic", name: "Anthropic API key", variable: "ANTHROPIC_API_KEY", masked: "", source: "" },
  { provider: "github", name: "GitHub token", variable: "GH_TOKEN", masked: "ghp_…Zz12", source: "environment" },
];
const settings = { terminal: "gnome-terminal", customCommand: "", defaultAgent: "claude", defaultTemplate: "default", cpus: 2, memoryMiB: 4096 };
const terminals = [
  { id: "gnome-terminal", name: "GNOME Terminal", available: true },
  { id: "xterm", name: "xterm", available: true },
  { id: "kitty", name: "kitty", available: false },
];
const ERROR_REASON = 'vm: start "moat-api": kvm: permission denied on /dev/kvm (is your user in the kvm group?)';
const sandboxes = () => [
  { name: "moat-webapp", agent: "claude", status: "running", workspace: "/home/ada/src/webapp", template: "default", createdAt: minutesAgo(90), startedAt: minutesAgo(12.5), cpus: 2, memoryMiB: 4096 },
  { name: "moat-docs", agent: "claude", status: "starting", reason: "booting VM", workspace: "/home/ada/src/docs site", template: "default", createdAt: minutesAgo(3) },
  { name: "moat-cli", agent: "codex", status: "stopped", workspace: "/home/ada/src/cli", template: "go", createdAt: minutesAgo(600) },
  { name: "moat-api", agent: "claude", status: "error", reason: ERROR_REASON, workspace: "/home/ada/src/api", template: "node", createdAt: minutesAgo(30) },
];
const scenario = (over = {}) => ({ providers, credentials: credentials(), settings, terminals, sandboxes: sandboxes(), ...over });

// Wails' own drag-and-drop runtime code (v2 internal/frontend/runtime/desktop/draganddrop.js)
// for the version in go.mod, read from the Go module cache at test time (not copied here).
function wailsDragAndDrop() {
  try {
    const v = readFileSync(resolve(here, "../../go.mod"), "utf8").match(/github\.com\/wailsapp\/wails\/v2 (v\S+)/)?.[1];
    if (!v) return null;
    const cache = process.env.GOMODCACHE || execFileSync("go", ["env", "GOMODCACHE"], { encoding: "utf8" }).trim();
    const file = join(cache, `github.com/wailsapp/wails/v2@${v}`, "internal/frontend/runtime/desktop/draganddrop.js");
    if (!existsSync(file)) return null;
    const body = readFileSync(file, "utf8").replace(/^import .*$/m, "").replace(/^export function/gm, "function");
    const content = `(() => {
      const EventsOn = (n, cb) => window.runtime.EventsOn(n, cb);
      const EventsOff = (n) => window.runtime.EventsOff(n);
      window.wails = { flags: { cssDropProperty: "--wails-drop-target", cssDropValue: "drop", enableWailsDragAndDrop: true } };
      ${body}
      window.__wailsDnD = { OnFileDrop, OnFileDropOff };
    })();`;
    return { version: v, content };
  } catch {
    return null;
  }
}

async function open(sc, opts = {}) {
  const context = await browser.newContext({ viewport: { width: 900, height: 720 }, colorScheme: opts.colorScheme ?? "light" });
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e));
  await context.clock.install({ time: NOW - 10_000 });
  await context.clock.pauseAt(NOW); // time stands still unless a test runs it forward
  await page.addInitScript(installFakeBackend, sc);
  if (opts.wailsDnD) await page.addInitScript({ content: opts.wailsDnD.content });
  await page.goto(base);
  await page.getByRole("heading", { name: "Sandboxes" }).waitFor();
  return { page, context, pageErrors, calls: () => page.evaluate(() => window.__fake.calls) };
}
const bindingCalls = (calls) => calls.filter((c) => !c.method.startsWith("runtime.") && !["ListSandboxes", "Providers", "LoginStatus", "Terminals", "GetSettings", "ServiceStatus"].includes(c.method));

// --- tests ---
const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test("list renders badges, reasons verbatim and a ticking uptime", async () => {
  const { page, context, pageErrors } = await open(scenario());
  const row = (n) => page.locator(`li.sandbox[data-name="${n}"]`);
  await row("moat-webapp").waitFor();
  assert.equal(await page.locator("li.sandbox").count(), 4);
  for (const [n, s] of [["moat-webapp", "running"], ["moat-docs", "starting"], ["moat-cli", "stopped"], ["moat-api", "error"]]) {
    assert.equal((await row(n).locator(".badge").textContent()).trim(), s, n);
    assert.match(await row(n).locator(".badge").getAttribute("class"), new RegExp(`badge-${s}`));
  }
  assert.equal(await row("moat-api").locator(".sb-reason").textContent(), ERROR_REASON);
  assert.equal(await row("moat-docs").locator(".sb-workspace").textContent(), "/home/ada/src/docs site");
  assert.equal(await row("moat-webapp").locator(".sb-uptime").textContent(), "12m 30s");
  await page.clock.runFor(1000);
  assert.equal(await row("moat-webapp").locator(".sb-uptime").textContent(), "12m 31s");
  await page.clock.runFor(59_000);
  assert.equal(await row("moat-webapp").locator(".sb-uptime").textContent(), "13m 30s");
  assert.equal(await row("moat-cli").locator(".sb-uptime").textContent(), "—");
  // Start/Stop reflects the status
  assert.equal(await row("moat-webapp").getByRole("button", { name: "Stop moat-webapp" }).count(), 1);
  assert.equal(await row("moat-cli").getByRole("button", { name: "Start moat-cli" }).count(), 1);
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, "frontend-list.png"), fullPage: true, animations: "disabled" });
  await context.close();
  const dark = await open(scenario(), { colorScheme: "dark" });
  await dark.page.locator("li.sandbox").first().waitFor();
  await dark.page.screenshot({ path: join(shots, "frontend-list-dark.png"), fullPage: true, animations: "disabled" });
  await dark.context.close();
  assert.deepEqual(pageErrors.concat(dark.pageErrors), []);
});

test("\"Run Claude in folder…\" calls ChooseFolder then RunInFolder(path); the event adds the row", async () => {
  const { page, context, calls } = await open(scenario({ folder: "/home/ada/src/new project" }));
  await page.getByRole("button", { name: "Run Claude in folder…" }).click();
  await page.waitForFunction(() => window.__fake.calls.some((c) => c.method === "RunInFolder"));
  const acts = bindingCalls(await calls());
  assert.deepEqual(acts, [{ method: "ChooseFolder", args: [] }, { method: "RunInFolder", args: ["/home/ada/src/new project"] }]);
  await page.evaluate(() => window.__fake.emit("sandboxes", [
    ...window.__fake.sandboxes,
    { name: "moat-new-project", agent: "claude", status: "starting", workspace: "/home/ada/src/new project", template: "default", createdAt: new Date().toISOString() },
  ]));
  await page.locator('li.sandbox[data-name="moat-new-project"] .badge', { hasText: "starting" }).waitFor();
  // cancelled chooser, this time from the keyboard
  await page.evaluate(() => { window.__fake.folder = ""; window.__fake.calls.length = 0; });
  await page.getByRole("button", { name: "Run Claude in folder…" }).focus();
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => window.__fake.calls.some((c) => c.method === "ChooseFolder"));
  await page.waitForTimeout(100);
  assert.deepEqual(bindingCalls(await calls()).map((c) => c.method), ["ChooseFolder"]);
  await context.close();
});

test("row actions call the right binding; Remove asks first", async () => {
  const { page, context, calls } = await open(scenario());
  const row = page.locator('li.sandbox[data-name="moat-webapp"]');
  await row.getByRole("button", { name: "Stop moat-webapp" }).click();
  await row.getByRole("button", { name: "Open moat-webapp in terminal" }).click();
  await row.getByRole("button", { name: "Reveal folder of moat-webapp" }).click();
  await page.locator('li.sandbox[data-name="moat-cli"]').getByRole("button", { name: "Start moat-cli" }).click();
  await row.getByRole("button", { name: "Remove moat-webapp…" }).click();
  await page.waitForTimeout(100);
  let acts = bindingCalls(await calls());
  assert.deepEqual(acts.map((c) => [c.method, ...c.args]).sort(), [["OpenTerminal", "moat-webapp"], ["RevealFolder", "moat-webapp"], ["Start", "moat-cli"], ["Stop", "moat-webapp"]]);
  // the confirmation is focused on Cancel; Escape backs out
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Cancel");
  await page.keyboard.press("Escape");
  await row.getByRole("button", { name: "Remove moat-webapp…" }).click();
  await row.getByRole("button", { name: "Remove moat-webapp", exact: true }).click();
  await page.waitForFunction(() => window.__fake.calls.some((c) => c.method === "Remove"));
  acts = bindingCalls(await calls()).filter((c) => c.method === "Remove");
  assert.deepEqual(acts, [{ method: "Remove", args: ["moat-webapp"] }]);
  await context.close();
});

test("empty state is the drop target; drops are left to Go", async () => {
  const { page, context, calls } = await open(scenario({ sandboxes: [] }));
  const target = page.getByTestId("drop-target");
  await page.getByText("Drop a project folder here").waitFor();
  assert.ok(await page.getByText("Drop a project folder here").isVisible());
  await page.screenshot({ path: join(shots, "frontend-empty.png"), animations: "disabled" });
  assert.match(await target.getAttribute("style"), /--wails-drop-target:\s*drop/);
  assert.equal(await target.evaluate((el) => getComputedStyle(el).getPropertyValue("--wails-drop-target").trim()), "drop");
  // the UI asks Wails to track drag-over on drop targets (useDropTarget = true)
  assert.deepEqual((await calls()).filter((c) => c.method === "runtime.OnFileDrop"), [{ method: "runtime.OnFileDrop", args: [true] }]);
  // the hover state Wails sets is visible
  const look = () => target.evaluate((el) => { const s = getComputedStyle(el); return s.borderTopColor + "|" + s.backgroundColor; });
  const before = await look();
  await target.evaluate((el) => el.classList.add("wails-drop-target-active"));
  await page.waitForTimeout(200);
  assert.notEqual(await look(), before);
  await target.evaluate((el) => el.classList.remove("wails-drop-target-active"));
  // a drop (DOM event and Wails' callback) must not make the page run anything itself: Go does
  await target.evaluate((el) => {
    const dt = new DataTransfer();
    dt.items.add(new File(["x"], "readme.txt"));
    el.dispatchEvent(new DragEvent("drop", { bubbles: true, cancelable: true, dataTransfer: dt }));
    window.__fake.drop?.(10, 10, ["/home/ada/src/dropped"]);
  });
  await page.waitForTimeout(100);
  assert.deepEqual(bindingCalls(await calls()), []);
  // ...and the Go side's `sandboxes` event fills the list
  await page.evaluate(() => window.__fake.emit("sandboxes", [{ name: "moat-dropped", agent: "claude", status: "starting", workspace: "/home/ada/src/dropped", template: "default", createdAt: new Date().toISOString() }]));
  await page.locator('li.sandbox[data-name="moat-dropped"]').waitFor();
  assert.ok(await page.getByText("Drop a project folder here").isHidden());
  await context.close();
});

test("Wails' own drag-and-drop code lights up the list on drag-over", async () => {
  const dnd = wailsDragAndDrop();
  if (!dnd) return "skip: Wails' draganddrop.js is not in the Go module cache (go mod download)";
  const { page, context, calls } = await open(scenario({ sandboxes: [] }), { wailsDnD: dnd });
  const target = page.getByTestId("drop-target");
  const drag = (sel, type) => page.evaluate(([s, t]) => {
    document.querySelector(s).dispatchEvent(new DragEvent(t, { bubbles: true, cancelable: true, dataTransfer: new DataTransfer() }));
  }, [sel, type]);
  await drag(".empty-title", "dragover");
  assert.match(await target.getAttribute("class"), /wails-drop-target-active/);
  await page.screenshot({ path: join(shots, "frontend-drop-hover.png"), animations: "disabled" });
  await drag(".empty-title", "dragleave");
  await page.clock.runFor(100); // Wails deactivates after a 50 ms debounce
  assert.doesNotMatch(await target.getAttribute("class"), /wails-drop-target-active/);
  // the header is not a drop target
  await drag(".app-title", "dragover");
  assert.doesNotMatch(await target.getAttribute("class"), /wails-drop-target-active/);
  // with rows: hovering a row's button lights up the list too
  await page.evaluate(() => window.__fake.emit("sandboxes", [{ name: "moat-a", agent: "claude", status: "stopped", workspace: "/a", template: "default", createdAt: new Date().toISOString() }]));
  await page.locator('li.sandbox[data-name="moat-a"]').waitFor();
  await drag('li.sandbox[data-name="moat-a"] button', "dragover");
  assert.match(await target.getAttribute("class"), /wails-drop-target-active/);
  await drag('li.sandbox[data-name="moat-a"] button', "drop");
  assert.doesNotMatch(await target.getAttribute("class"), /wails-drop-target-active/);
  assert.deepEqual(bindingCalls(await calls()), []);
  await context.close();
  return `with Wails ${dnd.version}`;
});

test("errors from a binding and the `error` event are shown verbatim and can be dismissed", async () => {
  const { page, context } = await open(scenario());
  const msg = 'daemon: stop "moat-webapp": guest agent did not answer within 10s';
  await page.evaluate((m) => { window.__fake.fail.Stop = m; }, msg);
  await page.getByRole("button", { name: "Stop moat-webapp" }).click();
  const alert = page.getByRole("alert").filter({ hasText: msg });
  await alert.waitFor();
  assert.equal(await alert.locator(".banner-message").textContent(), msg);
  const ev = "could not open Ghostty: exec: \"ghostty\": executable file not found in $PATH";
  await page.evaluate((m) => window.__fake.emit("error", m), ev);
  await page.locator(".banner-message", { hasText: ev }).waitFor();
  assert.equal(await page.locator(".banner-item").count(), 2);
  await alert.getByRole("button", { name: "Dismiss" }).click();
  assert.equal(await page.locator(".banner-item").count(), 1);
  await context.close();
});

test("login panel masks, validates, clears and never shows the secret", async () => {
  const { page, context, calls } = await open(scenario());
  await page.getByRole("tab", { name: "Log in" }).click();
  const input = page.getByLabel("Anthropic API key", { exact: true });
  assert.equal(await input.getAttribute("type"), "password");
  assert.equal(await input.getAttribute("autocomplete"), "off");
  const bad = "sk-proj-" + "a".repeat(40);
  await input.fill(bad);
  await page.getByRole("button", { name: "Save to keychain" }).click();
  const err = page.locator("#login-error");
  await err.filter({ hasText: 'should start with "sk-ant-"' }).waitFor();
  assert.equal(await input.inputValue(), "");
  assert.equal(await input.getAttribute("aria-invalid"), "true");
  await input.fill("sk-ant-short");
  await input.press("Enter");
  await err.filter({ hasText: "too short (12 characters, expected at least 40)" }).waitFor();
  await input.fill("sk-ant-api03 with space" + "x".repeat(30));
  await input.press("Enter");
  await err.filter({ hasText: "whitespace at position 13" }).waitFor();
  assert.deepEqual(bindingCalls(await calls()), []);
  const good = "sk-ant-api03-E2Esecret" + "Q".repeat(30) + "Wx9z";
  await input.fill(good);
  // masked while typed: the page shows bullets, the value is not in the DOM
  assert.ok(!(await page.content()).includes(good));
  await page.getByRole("button", { name: "Save to keychain" }).click();
  await page.getByRole("status").filter({ hasText: "Saved the Anthropic API key" }).waitFor();
  assert.equal(await input.inputValue(), "");
  assert.deepEqual(bindingCalls(await calls()), [{ method: "Login", args: ["anthropic", good] }]);
  const row = page.locator('tr[data-provider="anthropic"]');
  await row.locator("code.masked", { hasText: "sk-ant-…Wx9z" }).waitFor();
  const html = await page.content();
  const text = await page.evaluate(() => document.body.innerText);
  assert.ok(!html.includes(good) && !text.includes(good) && !html.includes("E2Esecret"), "the secret must not be in the page");
  await input.fill("sk-ant-short");
  await input.press("Enter");
  await err.filter({ hasText: "too short" }).waitFor();
  await page.screenshot({ path: join(shots, "frontend-login.png"), fullPage: true, animations: "disabled" });
  // environment credentials have no Log out; keychain ones do
  assert.equal(await page.locator('tr[data-provider="github"] button').count(), 0);
  await row.getByRole("button", { name: "Log out of Anthropic API key" }).click();
  await page.waitForFunction(() => window.__fake.calls.some((c) => c.method === "Logout"));
  assert.deepEqual(bindingCalls(await calls()).at(-1), { method: "Logout", args: ["anthropic"] });
  await context.close();
});

test("settings: unavailable terminals disabled, custom template, SaveSettings", async () => {
  const { page, context, calls } = await open(scenario());
  await page.getByRole("tab", { name: "Settings" }).click();
  const term = page.getByLabel("Terminal", { exact: true });
  assert.equal(await term.inputValue(), "gnome-terminal");
  assert.equal(await page.locator('#set-terminal option[value="kitty"]').isDisabled(), true);
  assert.ok(await page.getByLabel("Custom command").isHidden());
  await term.selectOption("custom");
  await page.getByLabel("Custom command").fill("foot -- {args}");
  await page.getByLabel("CPUs").fill("4");
  await page.evaluate(() => document.activeElement?.blur()); // a focused number field renders its spinner unevenly
  await page.screenshot({ path: join(shots, "frontend-settings.png"), fullPage: true, animations: "disabled" });
  await page.getByRole("button", { name: "Save settings" }).click();
  await page.getByRole("status").filter({ hasText: "Saved." }).waitFor();
  assert.deepEqual(bindingCalls(await calls()), [{ method: "SaveSettings", args: [{ ...settings, terminal: "custom", customCommand: "foot -- {args}", cpus: 4 }] }]);
  await context.close();
});

test("first start offers the VM host service; Not now calls DeclineService", async () => {
  const { page, context, calls, pageErrors } = await open(scenario({ service: { offered: false } }));
  const offer = page.getByRole("region", { name: "VM host service" });
  await offer.waitFor();
  assert.equal(
    (await offer.locator(".offer-text").textContent()).trim(),
    "Start Moat's VM host at login? Installs a per-user service so sandboxes are ready when you are.",
  );
  assert.ok(await offer.getByRole("button", { name: "Install" }).isVisible());
  await offer.getByRole("button", { name: "Not now" }).click();
  await offer.waitFor({ state: "hidden" });
  assert.deepEqual(bindingCalls(await calls()), [{ method: "DeclineService", args: [] }]);
  assert.equal(await page.evaluate(() => window.__fake.service.offered), true);
  // the list is still there and works
  assert.equal(await page.locator("li.sandbox").count(), 4);
  assert.deepEqual(pageErrors, []);
  await context.close();
});

let passed = 0;
let failed = 0;
let skipped = 0;
try {
  for (const t of tests) {
    try {
      const note = await t.fn();
      if (typeof note === "string" && note.startsWith("skip")) {
        skipped++;
        console.log(`ok - ${t.name} # ${note}`);
      } else {
        passed++;
        console.log(`ok - ${t.name}${note ? ` (${note})` : ""}`);
      }
    } catch (e) {
      failed++;
      console.log(`not ok - ${t.name}\n  ${String(e?.stack ?? e).split("\n").join("\n  ")}`);
    }
  }
} finally {
  await browser.close();
  server.close();
}
console.log(`e2e: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed ? 1 : 0);
