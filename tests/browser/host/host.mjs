// The test host: a minimal MCP Apps host built on the real host-side library
// (@modelcontextprotocol/ext-apps/app-bridge) and the real MCP TypeScript client over Streamable HTTP.
// It renders a ui:// resource the way a host must: in a sandboxed iframe (scripts only, opaque
// origin) with the resource's CSP from _meta.ui, and proxies the view's tools/call and
// resources/read to our server through the AppBridge.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import {
  AppBridge,
  PostMessageTransport,
  RESOURCE_MIME_TYPE,
  getToolUiResourceUri,
} from "@modelcontextprotocol/ext-apps/app-bridge";

const UI_EXTENSION = "io.modelcontextprotocol/ui";

// The CSP a host builds from _meta.ui.csp (the spec's restrictive default, widened only by the
// domains the resource declares; ours declares none).
export function cspFor(csp = {}) {
  const list = (xs) => (xs && xs.length ? " " + xs.join(" ") : "");
  return [
    "default-src 'none'",
    "script-src 'unsafe-inline'" + list(csp.resourceDomains),
    "style-src 'unsafe-inline'" + list(csp.resourceDomains),
    "img-src data: blob:" + list(csp.resourceDomains),
    "font-src data:" + list(csp.resourceDomains),
    "media-src data: blob:" + list(csp.resourceDomains),
    "connect-src" + (csp.connectDomains && csp.connectDomains.length ? list(csp.connectDomains) : " 'none'"),
    "frame-src" + (csp.frameDomains && csp.frameDomains.length ? list(csp.frameDomains) : " 'none'"),
    "base-uri" + (csp.baseUriDomains && csp.baseUriDomains.length ? list(csp.baseUriDomains) : " 'none'"),
    "form-action 'none'",
  ].join("; ");
}

function withCsp(html, policy) {
  const tag = `<meta http-equiv="Content-Security-Policy" content="${policy.replace(/"/g, "&quot;")}">`;
  return /<head[^>]*>/i.test(html) ? html.replace(/<head[^>]*>/i, (m) => m + tag) : tag + html;
}

const state = { client: null, tools: [], bridge: null, iframe: null, theme: "light", log: [], openedLinks: [], modelContext: [], calls: [] };
window.hostLog = state.log;
const trace = (step) => console.debug("host: " + step);
window.hostState = state;

async function connect() {
  if (state.client) return state.client;
  const client = new Client(
    { name: "rivya-test-host", version: "1.0.0" },
    {
      capabilities: { extensions: { [UI_EXTENSION]: { mimeTypes: [RESOURCE_MIME_TYPE] } } },
      versionNegotiation: { mode: { pin: "2026-07-28" } },
    },
  );
  await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", location.href)));
  state.tools = (await client.listTools()).tools;
  state.client = client;
  return client;
}

function hostContext(width) {
  return {
    theme: state.theme,
    displayMode: "inline",
    availableDisplayModes: ["inline"],
    platform: "web",
    locale: "en-US",
    containerDimensions: { width, maxHeight: 4000 },
  };
}

// Calls `name` the way a host does for the model, and renders the tool's ui:// resource with the
// result. Resolves once the view has the result; returns the result as the host saw it.
window.openTool = async function openTool(name, args, { theme = "light", width = 800 } = {}) {
  const client = await connect();
  state.theme = theme;
  document.documentElement.dataset.theme = theme;
  const tool = state.tools.find((t) => t.name === name);
  if (!tool) throw new Error(`no tool ${name}`);
  const uri = getToolUiResourceUri(tool);
  if (!uri) throw new Error(`tool ${name} names no ui:// resource`);
  const read = await client.readResource({ uri });
  const content = read.contents[0];
  if (content.mimeType !== RESOURCE_MIME_TYPE) throw new Error(`resource MIME ${content.mimeType}`);
  const ui = (content._meta && content._meta.ui) || {};
  trace("calling " + name);
  const result = await client.callTool({ name, arguments: args });
  trace("result of " + name);

  if (state.bridge) await state.bridge.close().catch(() => {});
  const slot = document.getElementById("slot");
  slot.replaceChildren();
  slot.style.width = width + "px";
  const iframe = document.createElement("iframe");
  iframe.title = "Rivya image viewer";
  // Scripts only: an opaque origin that can reach nothing of the host page.
  iframe.setAttribute("sandbox", "allow-scripts");
  iframe.style.width = width + "px";
  iframe.style.height = "200px";
  state.iframe = iframe;

  const bridge = new AppBridge(
    client,
    { name: "rivya-test-host", version: "1.0.0" },
    { openLinks: {}, serverTools: {}, serverResources: {}, logging: {}, updateModelContext: { text: {} } },
    { hostContext: hostContext(width) },
  );
  state.bridge = bridge;
  bridge.onsizechange = ({ height }) => { if (height) iframe.style.height = Math.ceil(height) + "px"; };
  bridge.onopenlink = async ({ url }) => { state.openedLinks.push(url); return {}; };
  bridge.onupdatemodelcontext = async (params) => { state.modelContext.push(params); return {}; };
  bridge.onloggingmessage = (params) => state.log.push(params);
  const delivered = new Promise((resolve, reject) => {
    bridge.oninitialized = async () => {
      try {
        await bridge.sendToolInput({ arguments: args });
        await bridge.sendToolResult(result);
        resolve();
      } catch (e) { reject(e); }
    };
  });
  // Listen before the document loads: the view sends ui/initialize as soon as its script runs.
  slot.append(iframe);
  await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
  // Every tools/call the view makes, as the host saw it (before it goes to the server).
  const forward = bridge.oncalltool;
  bridge.oncalltool = async (params, extra) => {
    const shown = { ...(params.arguments || {}) };
    if (typeof shown.mask === "string") shown.mask = { dataUri: shown.mask.slice(0, 22), length: shown.mask.length };
    state.calls.push({ name: params.name, arguments: shown, at: Date.now() });
    return forward(params, extra);
  };
  trace("bridge connected");
  iframe.srcdoc = withCsp(content.text, cspFor(ui.csp));
  await delivered;
  trace("delivered");
  return { result, csp: cspFor(ui.csp), resourceMeta: ui, size: content.text.length };
};

window.setHostTheme = async function setHostTheme(theme) {
  state.theme = theme;
  document.documentElement.dataset.theme = theme;
  state.bridge.setHostContext({ ...hostContext(parseInt(state.iframe.style.width, 10)), theme });
};

window.hostReady = true;
