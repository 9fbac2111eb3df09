// The TypeScript MCP SDK's client auth (@modelcontextprotocol/client), signing in to rivya-login.
//
// Driven by pytest (tests/identity/test_login_typescript_sdk.py): one JSON line when ready, then one
// JSON command per stdin line, one JSON answer per stdout line. The OAuth flow is the SDK's own
// (discovery, CIMD or DCR, PKCE, RFC 9207 iss check, token exchange, refresh on 401); only the
// browser is ours: it opens the authorization URL, reads the consent form and submits the Rivya
// key, as a person would, and hands the callback's parameters to finishAuth.
//   {"op": "connect"}  -> sign in (if needed) and call the whoami tool
//   {"op": "whoami"}   -> call whoami again with the tokens held (the SDK refreshes on a 401)
//   {"op": "revoke"}   -> revoke the access token held at the server's /revoke
//   {"op": "status"}   -> the HTTP status of an MCP initialize sent with the access token held
// The Rivya key comes in the RIVYA_TEST_KEY environment variable and is never printed.
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';

console.log = (...args) => console.error(...args);

const [server, documentUrl] = process.argv.slice(2);
const rivyaKey = process.env.RIVYA_TEST_KEY;
const CALLBACK = 'http://127.0.0.1:47125/callback';
const origin = new URL(server).origin;

class Provider {
  constructor() {
    this.saved = { client: undefined, tokens: undefined, verifier: undefined, discovery: undefined };
    this.callback = undefined;
    this.signIns = 0;
    if (documentUrl) this.clientMetadataUrl = documentUrl;
  }
  get redirectUrl() { return CALLBACK; }
  get clientMetadata() {
    return {
      client_name: 'TypeScript SDK test client',
      redirect_uris: [CALLBACK],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() { return this.saved.client; }
  saveClientInformation(info) { this.saved.client = info; }
  tokens() { return this.saved.tokens; }
  saveTokens(tokens) { this.saved.tokens = tokens; }
  saveCodeVerifier(verifier) { this.saved.verifier = verifier; }
  codeVerifier() { return this.saved.verifier; }
  saveDiscoveryState(state) { this.saved.discovery = state; }
  discoveryState() { return this.saved.discovery; }
  async redirectToAuthorization(url) { this.callback = await browse(url); this.signIns += 1; }
}

// The browser: /authorize -> consent page -> the form, submitted with the key -> the callback URL.
async function browse(authorizationUrl) {
  const authorize = await fetch(authorizationUrl, { redirect: 'manual' });
  if (authorize.status !== 302) throw new Error(`authorize answered ${authorize.status}`);
  const page = await fetch(new URL(authorize.headers.get('location'), origin), { redirect: 'manual' });
  const cookie = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const html = await page.text();
  const fields = Object.fromEntries([...html.matchAll(/<input type=hidden name=(\w+) value="([^"]*)">/g)].map((m) => [m[1], m[2]]));
  const body = new URLSearchParams({ ...fields, api_key: rivyaKey, display_name: 'Grace', action: 'approve' });
  const answer = await fetch(`${origin}/consent`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, origin, 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  if (answer.status !== 303) throw new Error(`consent answered ${answer.status}`);
  return new URL(answer.headers.get('location'));
}

const provider = new Provider();

async function whoami() {
  const client = new Client({ name: 'rivya-identity-tests', version: '1.0.0' });
  const connect = () => client.connect(new StreamableHTTPClientTransport(new URL(server), { authProvider: provider }));
  try {
    await connect();
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || provider.callback === undefined) throw error;
    const transport = new StreamableHTTPClientTransport(new URL(server), { authProvider: provider });
    await transport.finishAuth(provider.callback.searchParams);
    provider.callback = undefined;
    await client.connect(transport);
  }
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  await client.close();
  return result.structuredContent;
}

async function status() {
  const response = await fetch(server, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${provider.saved.tokens.access_token}`,
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
  });
  return response.status;
}

function held() {
  const tokens = provider.saved.tokens ?? {};
  // Fingerprints of what the client holds, never the tokens themselves.
  const tag = (value) => (value ? `${value.slice(0, 8)}${createHash('sha256').update(value).digest('hex').slice(0, 12)}` : null);
  return { access: tag(tokens.access_token), refresh: tag(tokens.refresh_token), clientId: provider.saved.client?.client_id, signIns: provider.signIns };
}

const handlers = {
  connect: async () => ({ me: await whoami(), ...held() }),
  whoami: async () => ({ me: await whoami(), ...held() }),
  revoke: async () => {
    const response = await fetch(`${origin}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: provider.saved.tokens.access_token, client_id: provider.saved.client.client_id }),
    });
    return { status: response.status };
  },
  status: async () => ({ status: await status() }),
};

process.stdout.write(JSON.stringify({ ok: true }) + '\n');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const command = JSON.parse(line);
  try {
    process.stdout.write(JSON.stringify({ ok: true, ...(await handlers[command.op]()) }) + '\n');
  } catch (error) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(error?.stack ?? error) }) + '\n');
  }
}
