// A real OAuth 2.0 authorization server for tests/identity: oidc-provider on a loopback port.
//
// It issues access tokens by the client_credentials grant, with RFC 8707 resource indicators: a
// token is issued for the `resource` the request names (that is its `aud`), as a JWT signed with the
// provider's current key, or as an opaque token for the client `svc-opaque` (checked by RFC 7662
// introspection by the client `rs`). Started by pytest; one JSON line on stdout when it listens,
// then one JSON command per stdin line, one JSON answer per stdout line:
//   {"op": "rotate"}  -> a new signing key becomes current, the old one stays published
import http from 'node:http';
import crypto from 'node:crypto';
import readline from 'node:readline';
import Provider from 'oidc-provider';

// stdout is the protocol: whatever the provider prints goes to stderr.
console.log = (...args) => console.error(...args);
console.info = console.log;

const SCOPES = 'images other';
const secrets = { svc: 'svc-secret', 'svc-b': 'svc-b-secret', 'svc-opaque': 'svc-opaque-secret', rs: 'rs-secret' };

function newKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };
}

function build(issuer, keys) {
  const clients = Object.entries(secrets).map(([id, secret]) => ({
    client_id: id,
    client_secret: secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }));
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys },
    scopes: SCOPES.split(' '),
    ttl: { ClientCredentials: 600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        async getResourceServerInfo(_ctx, resourceIndicator, client) {
          return {
            scope: SCOPES,
            audience: resourceIndicator,
            accessTokenTTL: 600,
            accessTokenFormat: client.clientId === 'svc-opaque' ? 'opaque' : 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  });
  provider.proxy = false;
  return provider;
}

let keys = [newKey()];
let current;
const server = http.createServer((req, res) => current.callback()(req, res));
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  current = build(issuer, keys);
  process.stdout.write(JSON.stringify({ ok: true, issuer, kid: keys[0].kid, secrets }) + '\n');
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const command = JSON.parse(line);
    if (command.op === 'rotate') {
      keys = [newKey(), ...keys];
      current = build(issuer, keys);
      process.stdout.write(JSON.stringify({ ok: true, kid: keys[0].kid }) + '\n');
    } else {
      process.stdout.write(JSON.stringify({ ok: false, error: `unknown op ${command.op}` }) + '\n');
    }
  });
  lines.on('close', () => server.close(() => process.exit(0)));
});
