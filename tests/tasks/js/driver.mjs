// A Tasks requester we did not write (@modelcontextprotocol/ext-tasks with @modelcontextprotocol/client),
// driven by pytest (tests/tasks/test_ext_tasks_client.py) one JSON command per stdin line; one JSON
// answer per stdout line. Only rawDispatch (the HTTP POST the library leaves to its host) is ours.
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/client";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { createTaskSessionFromClient } from "@modelcontextprotocol/ext-tasks/client";

const VERSION = "2026-07-28";
const CLIENT_INFO = { name: "rivya-mcp-tasks-tests", version: "1.0.0" };
const ENDPOINT_ID = "rivya-mcp-under-test";
let nextId = 1;

function rawDispatchFor(url) {
  return async (request, options = {}) => {
    const headers = {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": VERSION,
      "mcp-method": request.method,
      ...(options.context?.headers ?? {}),
    };
    if (request.method === "tools/call") headers["mcp-name"] = request.params.name;
    const body = { jsonrpc: "2.0", id: nextId++, ...request };
    const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body), signal: options.signal });
    let text = await response.text();
    if ((response.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
      const data = text.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim());
      text = data[data.length - 1];
    }
    const message = JSON.parse(text);
    return "error" in message ? { kind: "error", error: message.error } : { kind: "result", result: message.result };
  };
}

async function open(url) {
  const client = new Client(CLIENT_INFO, {
    capabilities: { extensions: { "io.modelcontextprotocol/tasks": {} } },
    versionNegotiation: { mode: { pin: VERSION } },
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  const session = createTaskSessionFromClient(client, {
    endpointId: ENDPOINT_ID,
    rawDispatch: rawDispatchFor(url),
    v2RequestFraming: {
      protocolVersion: VERSION,
      clientInfo: CLIENT_INFO,
      clientCapabilities: { extensions: { "io.modelcontextprotocol/tasks": {} } },
    },
  });
  return { client, session, era: client.getProtocolEra() };
}

function summary(outcome, extra = {}) {
  const out = { status: outcome.status, ...extra };
  if (outcome.status === "completed") out.result = outcome.result;
  if (outcome.status === "failed") out.error = String(outcome.error?.message ?? outcome.error);
  if (outcome.task) out.task = { taskId: outcome.task.taskId, status: outcome.task.status, statusMessage: outcome.task.statusMessage };
  return out;
}

const handlers = {
  // Call a tool and settle it: immediate or task, whatever the server chose.
  async call({ url, tool, args }) {
    const { client, session, era } = await open(url);
    try {
      const events = [];
      const execution = await session.callTool(tool, args);
      const { outcome } = await execution.settle({ onEvent: (e) => { if (e.type === "task") events.push(e.task.status); } });
      return summary(outcome, { era, kind: execution.kind, taskId: execution.handle?.taskId ?? null, events });
    } finally {
      await session.close();
      await client.close();
    }
  },
  // Start a task and hand it off (a serialized reference), without waiting for it.
  async start({ url, tool, args }) {
    const { client, session } = await open(url);
    try {
      const execution = await session.callTool(tool, args);
      let reference = null;
      if (execution.kind === "task") await execution.handoff((r) => { reference = r; });
      return { kind: execution.kind, taskId: execution.handle?.taskId ?? null, reference };
    } finally {
      // Not session.close(): in ext-tasks 0.2.2 it still cancels a handed-off, unsettled execution
      // (TaskExecution.close() after detach()). A host that hands a task off and goes away, as
      // here, just drops the session.
      await client.close();
    }
  },
  // Resume a handed-off task (e.g. against a restarted server) and settle it.
  async resume({ url, reference }) {
    const { client, session } = await open(url);
    try {
      const execution = await session.resumeTask(reference);
      const { outcome } = await execution.settle();
      return summary(outcome, { kind: execution.kind });
    } finally {
      await session.close();
      await client.close();
    }
  },
  // Start a task, cancel it through the library, then read it back.
  async cancel({ url, tool, args }) {
    const { client, session } = await open(url);
    try {
      const execution = await session.callTool(tool, args);
      if (execution.kind !== "task") return { kind: execution.kind };
      const taskId = execution.handle.taskId;
      await session.cancelTask(taskId);
      const { outcome } = await execution.settle();
      const view = await session.task(taskId).snapshot();
      return summary(outcome, { kind: execution.kind, taskId, snapshot: { status: view.status, statusMessage: view.statusMessage } });
    } finally {
      await session.close();
      await client.close();
    }
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  let answer;
  try {
    answer = { ok: true, ...(await handlers[command.op](command)) };
  } catch (error) {
    answer = { ok: false, error: String(error?.stack ?? error) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
