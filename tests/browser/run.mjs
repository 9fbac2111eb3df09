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
    const tilesOf = (id) => [...document.querySelectorAll(`#${id} .tile`)].map((b) => {
      const t = b.querySelector("img");
      const badge = b.querySelector(".badge");
      return { label: b.getAttribute("aria-label"), caption: b.querySelector(".caption").textContent,
        badge: badge ? badge.textContent : null, disabled: b.disabled,
        image: t ? { complete: t.complete, naturalWidth: t.naturalWidth, naturalHeight: t.naturalHeight, data: (t.getAttribute("src") || "").startsWith("data:image/") } : null };
    });
    return {
      view: ["single", "gridView", "galleryView"].find((id) => !document.getElementById(id).hidden) || null,
      source: img.dataset.source || null,
      complete: img.complete,
      naturalWidth: img.naturalWidth,
      naturalHeight: img.naturalHeight,
      alt: img.alt,
      rect: (() => { const r = img.getBoundingClientRect(); return { x: r.x, y: r.y, width: r.width, height: r.height }; })(),
      prompt: document.getElementById("prompt").textContent,
      promptElements: document.getElementById("prompt").childElementCount,
      injected: !!document.getElementById("inj") || document.title === "pwned" || !!window.pwned,
      facts,
      caption: document.getElementById("caption").textContent,
      problem: visible("problem") ? document.getElementById("problem").innerText : null,
      state: visible("state") ? document.getElementById("stateText").textContent : null,
      editValue: document.getElementById("editPrompt").value,
      note: document.getElementById("note").textContent,
      buttons: [...document.querySelectorAll("button")].filter((b) => b.getClientRects().length).map((b) => ({ id: b.id || null, text: b.textContent, label: b.getAttribute("aria-label"), disabled: b.disabled })),
      gridTitle: document.getElementById("gridTitle").textContent,
      gridNote: document.getElementById("gridNote").textContent,
      grid: tilesOf("grid"),
      gallery: tilesOf("gallery"),
      galleryNote: document.getElementById("galleryNote").textContent,
      filter: document.getElementById("filter").value,
      back: visible("back") ? document.getElementById("back").textContent : null,
      painting: visible("mask"),
      theme: document.documentElement.dataset.theme || null,
      background: getComputedStyle(document.body).backgroundColor,
      color: getComputedStyle(document.body).color,
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
      inside: [...document.querySelectorAll("button, select, textarea, input, canvas")].filter((el) => el.getClientRects().length)
        .every((el) => { const r = el.getBoundingClientRect(); return r.left >= 0 && r.right <= document.documentElement.clientWidth; }),
      appHeight: document.getElementById("app").getBoundingClientRect().height,
      focused: document.activeElement ? (document.activeElement.id || document.activeElement.getAttribute("aria-label")) : null,
    };
  });
}

// Tab (forwards) until `test` holds for the focused element of the view; false after `limit` presses.
async function tabTo(p, frame, test, arg, limit = 60) {
  for (let i = 0; i < limit; i++) {
    await p.keyboard.press("Tab");
    if (await frame.evaluate(test, arg)) return true;
  }
  return false;
}
const focusedId = (id) => document.activeElement && document.activeElement.id === id;
const focusedLabel = (start) => document.activeElement && (document.activeElement.getAttribute("aria-label") || "").startsWith(start);
const calls = (p) => p.evaluate(() => window.hostState.calls.map((c) => ({ ...c })));

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
    if (!(await tabTo(p, frame, focusedId, "editPrompt"))) throw new Error("Tab never reached the edit prompt box");
    const before = await snapshot(frame);
    await p.keyboard.type("make it night with a full moon");
    await p.keyboard.press("Tab");
    const focused = await frame.evaluate(() => document.activeElement.id);
    await p.keyboard.press("Enter");
    // While the edit runs: the text is still in its box, and the state line says what was asked.
    await waitFor(frame, () => /Editing/.test(document.getElementById("stateText").textContent));
    const running = await snapshot(frame);
    await waitFor(frame, fullImageShown, firstTask);
    const seen = await snapshot(frame);
    const iframe = await iframeBox(p);
    await p.screenshot({ path: join(out, "edit.png"), fullPage: true });
    const modelContext = await p.evaluate(() => window.hostState.modelContext);
    return { firstTask, before, focused, running, seen, iframe, modelContext, shot: "edit.png" };
  });
  await scenario("running", async () => {
    // wait_seconds 0: the tool returns the task still queued; the view follows it with get_task
    // (free), showing the task's real state, its own age and what is reserved, then the image.
    const opened = await p.evaluate(() => window.openTool("generate_image",
      { prompt: "A slow harbour scene [sandbox:seconds=7]", wait_seconds: 0 }, { theme: "light", width: 800 }));
    const frame = await frameOf(p);
    const during = await snapshot(frame);
    const samples = [];
    for (let i = 0; i < 14; i++) {
      const seen = await snapshot(frame);
      if (seen.source === "full") break;
      samples.push({ at: Date.now(), state: seen.state, facts: seen.facts });
      await p.waitForTimeout(400);
    }
    await waitFor(frame, fullImageShown, "");
    const after = await snapshot(frame);
    const followUps = (await calls(p)).filter((c) => c.name === "get_task" && c.arguments.task_id === opened.result.structuredContent.task_id);
    return { opened, during, samples, after, followUps };
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
  await scenario("html", async () => {
    // Markup in a prompt is text: shown as typed, never parsed (no element, no handler run).
    const prompt = `<img src=x onerror="window.pwned=1;document.title='pwned'"><b id="inj">bold</b> & <script>window.pwned=2</script> tags`;
    await p.evaluate((text) => window.openTool("generate_image", { prompt: text, wait_seconds: 30 }, { theme: "light", width: 800 }), prompt);
    const frame = await frameOf(p);
    await waitFor(frame, fullImageShown, "");
    await p.waitForTimeout(300);
    const seen = await snapshot(frame);
    return { prompt, seen };
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
  let gridTasks = null;
  const gridArgs = { prompt: "A paper lantern festival at night, four takes", count: 4, outputFormat: "png", aspectRatio: "4:3",
    idempotency_key: "viewer-grid-test", wait_seconds: 30 };
  await scenario("grid", async () => {
    const opened = await p.evaluate((args) => window.openTool("generate_image", args, { theme: "light", width: 800 }), gridArgs);
    gridTasks = opened.result.structuredContent.candidates.map((c) => c.task_id);
    const frame = await frameOf(p);
    await waitFor(frame, () => [...document.querySelectorAll("#grid .tile img")].filter((i) => i.complete && i.naturalWidth > 0).length === 4);
    const seen = await snapshot(frame);
    const iframe = await iframeBox(p);
    await p.screenshot({ path: join(out, "grid.png") });
    // Keyboard only: Tab to image 3, Enter opens it to keep working on.
    if (!(await tabTo(p, frame, focusedLabel, "Image 3 of 4"))) throw new Error("Tab never reached image 3");
    await p.keyboard.press("Enter");
    await waitFor(frame, fullImageShown, "");
    const picked = await snapshot(frame);
    await p.screenshot({ path: join(out, "picked.png"), fullPage: true });
    return { opened, seen, iframe, picked, gridTasks, shot: "grid.png", pickedShot: "picked.png" };
  });
  await scenario("mask", async () => {
    // On image 3 of the grid (a PNG): paint a stroke from the middle to the right with the
    // keyboard alone, clear and paint again, describe the change, Edit.
    const frame = await frameOf(p);
    const reference = await snapshot(frame);
    const sentAtStart = (await calls(p)).filter((c) => c.name === "edit_image").length;
    if (!(await tabTo(p, frame, focusedId, "paint"))) throw new Error("Tab never reached the paint button");
    await p.keyboard.press("Enter");
    await waitFor(frame, () => document.activeElement && document.activeElement.id === "mask");
    for (let i = 0; i < 3; i++) await p.keyboard.press("Shift+ArrowRight");
    if (!(await tabTo(p, frame, focusedId, "clear"))) throw new Error("Tab never reached Clear");
    await p.keyboard.press("Enter");
    if (!(await tabTo(p, frame, focusedId, "editPrompt"))) throw new Error("Tab never reached the prompt box");
    await p.keyboard.type("turn the lanterns green");
    await p.keyboard.press("Tab");
    await p.keyboard.press("Enter"); // nothing painted: refused in the view, nothing sent
    const refused = await snapshot(frame);
    const sentBefore = (await calls(p)).filter((c) => c.name === "edit_image").length;
    await waitFor(frame, () => document.activeElement && document.activeElement.id === "mask");
    for (let i = 0; i < 4; i++) await p.keyboard.press("Shift+ArrowRight");
    await p.keyboard.press("Space");
    const painting = await snapshot(frame);
    const shotBefore = join(out, "mask.png");
    await p.screenshot({ path: shotBefore, fullPage: true });
    if (!(await tabTo(p, frame, focusedId, "editGo"))) throw new Error("Tab never reached Edit");
    await p.keyboard.press("Enter");
    await waitFor(frame, fullImageShown, reference.facts.Task);
    const seen = await snapshot(frame);
    const sent = (await calls(p)).filter((c) => c.name === "edit_image");
    return { reference, sentAtStart, refused, sentBefore, painting, seen, sent, shot: "mask.png" };
  });
  await scenario("variations", async () => {
    // "4 variations of this" on the edited image: a second grid, the cost on the button.
    const frame = await frameOf(p);
    if (!(await tabTo(p, frame, focusedId, "variationsGo"))) throw new Error("Tab never reached the variations button");
    const before = await snapshot(frame);
    await p.keyboard.press("Enter");
    await waitFor(frame, () => !document.getElementById("gridView").hidden
      && [...document.querySelectorAll("#grid .tile img")].filter((i) => i.complete && i.naturalWidth > 0).length === 4, "");
    const seen = await snapshot(frame);
    const sent = (await calls(p)).filter((c) => c.name === "edit_image").pop();
    return { before, seen, sent };
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
  await scenario("grid-narrow-dark", async () => {
    // The same call again (its idempotency key): the four images are found, none is paid again.
    const q = await openPage({ width: 352, height: 1400 });
    const opened = await q.evaluate((args) => window.openTool("generate_image", args, { theme: "dark", width: 320 }), gridArgs);
    const frame = await frameOf(q);
    await waitFor(frame, () => [...document.querySelectorAll("#grid .tile img")].filter((i) => i.complete && i.naturalWidth > 0).length === 4);
    const seen = await snapshot(frame);
    const iframe = await iframeBox(q);
    await q.screenshot({ path: join(out, "grid-narrow-dark.png"), fullPage: true });
    // Painting at 320 px, in the dark theme: open image 1, the tools fit, a stroke is painted.
    if (!(await tabTo(q, frame, focusedLabel, "Image 1 of 4"))) throw new Error("Tab never reached image 1");
    await q.keyboard.press("Enter");
    await waitFor(frame, fullImageShown, "");
    if (!(await tabTo(q, frame, focusedId, "paint"))) throw new Error("Tab never reached the paint button");
    await q.keyboard.press("Enter");
    await waitFor(frame, () => document.activeElement && document.activeElement.id === "mask");
    await q.keyboard.press("Shift+ArrowDown");
    const painting = await snapshot(frame);
    await q.screenshot({ path: join(out, "mask-narrow-dark.png"), fullPage: true });
    await q.close();
    return { opened, seen, iframe, painting, shot: "grid-narrow-dark.png" };
  });
  await scenario("gallery", async () => {
    // list_tasks opens the gallery; filter by text and open one, all from the keyboard, 320 px, dark.
    const q = await openPage({ width: 352, height: 1600 });
    const opened = await q.evaluate(() => window.openTool("list_tasks", { status: "succeeded", limit: 12 }, { theme: "dark", width: 320 }));
    const frame = await frameOf(q);
    await waitFor(frame, () => !document.getElementById("galleryView").hidden
      && [...document.querySelectorAll("#gallery .tile img")].length > 0
      && [...document.querySelectorAll("#gallery .tile img")].every((i) => i.complete && i.naturalWidth > 0));
    const first = await snapshot(frame);
    await q.screenshot({ path: join(out, "gallery-dark.png"), fullPage: true });
    if (!(await tabTo(q, frame, focusedId, "older"))) throw new Error("Tab never reached Older");
    await q.keyboard.press("Enter");
    await waitFor(frame, () => /^Images 13-/.test(document.getElementById("galleryNote").textContent));
    const second = await snapshot(frame);
    if (!(await tabTo(q, frame, focusedId, "filter"))) throw new Error("Tab never reached the filter box");
    await q.keyboard.type("lighthouse");
    await q.keyboard.press("Enter");
    await waitFor(frame, () => /lighthouse/.test(document.getElementById("galleryNote").textContent)
      && [...document.querySelectorAll("#gallery .tile img")].every((i) => i.complete && i.naturalWidth > 0));
    const filtered = await snapshot(frame);
    if (!(await tabTo(q, frame, focusedLabel, "Open the image"))) throw new Error("Tab never reached a gallery image");
    await q.keyboard.press("Enter");
    await waitFor(frame, fullImageShown, "");
    const openedOne = await snapshot(frame);
    await q.keyboard.press("Enter"); // focus is on "back"
    await waitFor(frame, () => !document.getElementById("galleryView").hidden);
    const back = await snapshot(frame);
    const sent = (await calls(q)).filter((c) => c.name === "list_tasks");
    const iframe = await iframeBox(q);
    await q.close();
    return { opened, first, second, filtered, openedOne, back, sent, iframe, shot: "gallery-dark.png" };
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
  const tall = await openPage({ width: 640, height: 1700 });
  const loaded = () => [...document.querySelectorAll("#grid .tile img, #gallery .tile img")].length > 0
    && [...document.querySelectorAll("#grid .tile img, #gallery .tile img")].every((i) => i.complete && i.naturalWidth > 0);
  const shoot = async (page, file) => {
    const frame = await frameOf(page);
    await frame.evaluate(() => document.activeElement && document.activeElement.blur());
    await page.screenshot({ path: join(out, file), type: "jpeg", quality: 80, clip: await iframeBox(page) });
    return { file };
  };
  await scenario("grid", async () => {
    await tall.evaluate(() => window.openTool("generate_image",
      { prompt: "A paper lantern festival over a river at dusk", aspectRatio: "4:3", count: 4, wait_seconds: 30 },
      { theme: "light", width: 600 }));
    await waitFor(await frameOf(tall), loaded);
    return shoot(tall, "viewer-grid.jpg");
  });
  await scenario("mask", async () => {
    // Image 2 picked from the grid, a stroke painted across its middle: what Edit will change.
    const frame = await frameOf(tall);
    await frame.evaluate(() => document.querySelectorAll("#grid .tile")[1].click());
    await waitFor(frame, fullImageShown, "");
    await frame.evaluate(() => document.getElementById("paint").click());
    await waitFor(frame, () => document.activeElement && document.activeElement.id === "mask");
    for (let i = 0; i < 5; i++) await tall.keyboard.press("Shift+ArrowRight");
    for (let i = 0; i < 2; i++) await tall.keyboard.press("Shift+ArrowDown");
    await frame.evaluate(() => { document.getElementById("editPrompt").value = "turn the lanterns into stars"; });
    return shoot(tall, "viewer-mask.jpg");
  });
  await scenario("gallery", async () => {
    await tall.evaluate(() => window.openTool("list_tasks", { status: "succeeded", limit: 12 }, { theme: "dark", width: 600 }));
    await waitFor(await frameOf(tall), loaded);
    return shoot(tall, "viewer-gallery.jpg");
  });
  await tall.close();
  await p.close();
}

report.consoleErrors = consoleErrors;
writeFileSync(join(out, "report.json"), JSON.stringify(report, null, 2));
await context.close();
server.close();
rmSync(profile, { recursive: true, force: true });
