// Drives the MCP Apps viewer in a real headless Chromium through the test host (host/).
//
//   node run.mjs --mcp http://127.0.0.1:PORT/mcp --out DIR [--scenarios tests|screenshots]
//
// Serves host/index.html and the esbuild bundle of host/host.mjs on loopback, proxies /mcp to our
// server (so the page, and its Origin, stay on one loopback origin), launches the system Chromium
// (never a downloaded one), runs the scenarios and writes DIR/report.json plus screenshots.
// Assertions live in pytest (tests/browser/test_viewer.py); this script only acts and records.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const mcpUrl = new URL(args.mcp);
const out = args.out;
const which = args.scenarios || "tests";
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(`chromium not found at ${executablePath}: install Debian's package (scripts/ci/browser.sh)`);
  process.exit(3);
}
mkdirSync(out, { recursive: true });

const bundle = (await esbuild.build({
  entryPoints: [join(here, "host", "host.mjs")], bundle: true, format: "iife", platform: "browser",
  write: false, logLevel: "warning", minify: true,
})).outputFiles[0].contents;
const page = readFileSync(join(here, "host", "index.html"));

const server = http.createServer((req, res) => {
  if (req.url === "/" || req.url === "/index.html") return res.writeHead(200, { "content-type": "text/html" }).end(page);
  if (req.url === "/host.js") return res.writeHead(200, { "content-type": "text/javascript" }).end(bundle);
  if (req.url.startsWith("/mcp")) {
    const upstream = http.request(
      { host: mcpUrl.hostname, port: mcpUrl.port, path: mcpUrl.pathname + req.url.slice(4), method: req.method,
        // The host's backend holds the server's bearer token; the page never sees it.
        headers: { ...req.headers, host: mcpUrl.host,
          ...(process.env.MCP_TOKEN ? { authorization: `Bearer ${process.env.MCP_TOKEN}` } : {}) } },
      (up) => { res.writeHead(up.statusCode, up.headers); up.pipe(res); },
    );
    upstream.on("error", (e) => { res.writeHead(502).end(String(e)); });
    return req.pipe(upstream);
  }
  res.writeHead(404).end();
});
await new Promise((r) => server.listen(Number(process.env.HOST_PORT || 0), "127.0.0.1", r));
const origin = `http://127.0.0.1:${server.address().port}`;

const profile = mkdtempSync(join(tmpdir(), "rivya-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--force-color-profile=srgb",
         // Containers often have a tiny /dev/shm: renderers then crash on large images.
         "--disable-dev-shm-usage"],
  viewport: { width: 1500, height: 1200 },
  deviceScaleFactor: 1,
});
const report = { origin, scenarios: {} };
const consoleErrors = [];

async function openPage(viewport) {
  const p = await context.newPage();
  p.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  p.on("pageerror", (e) => consoleErrors.push(String(e)));
  p.on("crash", () => consoleErrors.push("page crashed"));
  await p.setViewportSize(viewport);
  await p.goto(origin + "/");
  await p.waitForFunction(() => window.hostReady === true);
  return p;
}

const viewer = (p) => p.frameLocator("iframe");

async function frameOf(p) {
  const handle = await p.waitForSelector("iframe");
  return handle.contentFrame();
}

// What the view shows, read from its own DOM.
async function snapshot(frame) {
  return frame.evaluate(() => {
    const img = document.getElementById("img");
    const facts = {};
    const dts = document.querySelectorAll("#facts dt");
    for (const dt of dts) facts[dt.textContent] = dt.nextElementSibling.textContent;
    const visible = (id) => { const el = document.getElementById(id); return !!el && !el.hidden && el.getClientRects().length > 0; };
    return {
      source: img.dataset.source || null,
      complete: img.complete,
      naturalWidth: img.naturalWidth,
      naturalHeight: img.naturalHeight,
      alt: img.alt,
      rect: (() => { const r = img.getBoundingClientRect(); return { x: r.x, y: r.y, width: r.width, height: r.height }; })(),
      prompt: document.getElementById("prompt").textContent,
      facts,
      caption: document.getElementById("caption").textContent,
      problem: visible("problem") ? document.getElementById("problem").innerText : null,
      state: visible("state") ? document.getElementById("stateText").textContent : null,
      buttons: [...document.querySelectorAll("button")].filter((b) => b.getClientRects().length).map((b) => ({ text: b.textContent, label: b.getAttribute("aria-label") })),
      theme: document.documentElement.dataset.theme || null,
      background: getComputedStyle(document.body).backgroundColor,
      color: getComputedStyle(document.body).color,
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
      inside: [...document.querySelectorAll("button, select, textarea, input")].filter((el) => el.getClientRects().length)
        .every((el) => { const r = el.getBoundingClientRect(); return r.left >= 0 && r.right <= document.documentElement.clientWidth; }),
      appHeight: document.getElementById("app").getBoundingClientRect().height,
    };
  });
}

async function waitFor(frame, predicate, arg) {
  await frame.waitForFunction(predicate, arg, { timeout: 20_000 });
}
const fullImageShown = (taskNot) => {
  const img = document.getElementById("img");
  const task = [...document.querySelectorAll("#facts dt")].find((d) => d.textContent === "Task");
  return img.dataset.source === "full" && img.complete && img.naturalWidth > 0 &&
    task && task.nextElementSibling.textContent !== taskNot && /^Full resolution/.test(document.getElementById("caption").textContent);
};

async function iframeBox(p) {
  const box = await (await p.$("iframe")).boundingBox();
  return { x: box.x, y: box.y, width: box.width, height: box.height };
}

async function scenario(name, fn) {
  const started = Date.now();
  try {
    report.scenarios[name] = { ok: true, ...(await fn()) };
  } catch (e) {
    report.scenarios[name] = { ok: false, error: String(e && e.stack || e) };
  }
  console.error(`scenario ${name}: ${report.scenarios[name].ok ? "done" : report.scenarios[name].error}`);
  writeFileSync(join(out, "report.json"), JSON.stringify(report, null, 2));
  report.scenarios[name].seconds = (Date.now() - started) / 1000;
}

if (which === "tests") {
  let firstTask = null;
  const p = await openPage({ width: 1500, height: 1300 });
  await scenario("generate", async () => {
    const opened = await p.evaluate(() => window.openTool("generate_image",
      { prompt: "A lighthouse on a cliff at dusk, viewer test", aspectRatio: "16:9", wait_seconds: 30 }, { theme: "light", width: 1440 }));
    const frame = await frameOf(p);
    await waitFor(frame, fullImageShown, "");
    const seen = await snapshot(frame);
    firstTask = opened.result.structuredContent.task_id;
    const iframe = await iframeBox(p);
    await p.screenshot({ path: join(out, "generate.png"), fullPage: true });
    return { opened, seen, iframe, shot: "generate.png" };
  });
  await scenario("edit", async () => {
    const frame = await frameOf(p);
    // Keyboard only: Tab to the prompt box, type, Tab to its button, Enter.
    let reached = false;
    for (let i = 0; i < 30 && !reached; i++) {
      await p.keyboard.press("Tab");
      reached = await frame.evaluate(() => document.activeElement && document.activeElement.id === "editPrompt");
    }
    if (!reached) throw new Error("Tab never reached the edit prompt box");
    const before = await snapshot(frame);
    await p.keyboard.type("make it night with a full moon");
    await p.keyboard.press("Tab");
    const focused = await frame.evaluate(() => document.activeElement.id);
    await p.keyboard.press("Enter");
    await waitFor(frame, fullImageShown, firstTask);
    const seen = await snapshot(frame);
    const iframe = await iframeBox(p);
    await p.screenshot({ path: join(out, "edit.png"), fullPage: true });
    const modelContext = await p.evaluate(() => window.hostState.modelContext);
    return { firstTask, before, focused, seen, iframe, modelContext, shot: "edit.png" };
  });
  await scenario("running", async () => {
    // wait_seconds 0: the tool returns the task still queued; the view shows its state and
    // elapsed time, follows it with get_task (free) and then shows the image.
    const opened = await p.evaluate(() => window.openTool("generate_image",
      { prompt: "A slow harbour scene [sandbox:seconds=2]", wait_seconds: 0 }, { theme: "light", width: 800 }));
    const frame = await frameOf(p);
    const during = await snapshot(frame);
    await waitFor(frame, fullImageShown, "");
    const after = await snapshot(frame);
    return { opened, during, after };
  });
  await scenario("failed", async () => {
    await p.evaluate(() => window.openTool("generate_image", { prompt: "A cat [sandbox:fail]", wait_seconds: 30 }, { theme: "light", width: 800 }));
    const frame = await frameOf(p);
    await waitFor(frame, () => !document.getElementById("problem").hidden);
    const seen = await snapshot(frame);
    const iframe = await iframeBox(p);
    await p.screenshot({ path: join(out, "failed.png") });
    return { seen, iframe, shot: "failed.png" };
  });
  await scenario("dark", async () => {
    await p.evaluate((task) => window.openTool("get_task", { task_id: task }, { theme: "dark", width: 800 }), firstTask);
    const frame = await frameOf(p);
    await waitFor(frame, fullImageShown, "");
    const seen = await snapshot(frame);
    const iframe = await iframeBox(p);
    await p.screenshot({ path: join(out, "dark.png") });
    await p.evaluate(() => window.setHostTheme("light"));
    await waitFor(frame, () => document.documentElement.dataset.theme === "light");
    const switched = await snapshot(frame);
    return { seen, switched, iframe, shot: "dark.png" };
  });
  await p.close();
  await scenario("narrow", async () => {
    const q = await openPage({ width: 352, height: 900 });
    await q.evaluate((task) => window.openTool("get_task", { task_id: task }, { theme: "light", width: 320 }), firstTask);
    const frame = await frameOf(q);
    await waitFor(frame, fullImageShown, "");
    const seen = await snapshot(frame);
    const iframe = await iframeBox(q);
    await q.screenshot({ path: join(out, "narrow.png"), fullPage: true });
    await q.close();
    return { seen, iframe, shot: "narrow.png" };
  });
} else {
  // README screenshots: the same host and viewer, light then dark.
  const p = await openPage({ width: 640, height: 1000 });
  let task = null;
  for (const theme of ["light", "dark"]) {
    await scenario(theme, async () => {
      const opened = task
        ? await p.evaluate((t) => window.openTool("get_task", { task_id: t }, { theme: "dark", width: 600 }), task)
        : await p.evaluate(() => window.openTool("generate_image",
            { prompt: "A red fox in a snowy birch forest, soft morning light", aspectRatio: "16:9", wait_seconds: 30 },
            { theme: "light", width: 600 }));
      task = opened.result.structuredContent.task_id;
      const frame = await frameOf(p);
      await waitFor(frame, fullImageShown, "");
      await frame.evaluate(() => document.activeElement && document.activeElement.blur());
      const iframe = await iframeBox(p);
      const file = `viewer-${theme}.jpg`;
      await p.screenshot({ path: join(out, file), type: "jpeg", quality: 80, clip: iframe });
      return { file };
    });
  }
  await p.close();
}

report.consoleErrors = consoleErrors;
writeFileSync(join(out, "report.json"), JSON.stringify(report, null, 2));
await context.close();
server.close();
rmSync(profile, { recursive: true, force: true });
