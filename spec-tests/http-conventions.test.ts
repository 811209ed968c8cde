// The HTTP conventions every endpoint follows (spec: client-server-api "API standards"): error
// bodies and statuses, body parsing and limits, the r0 prefix, rate limiting, and request logs
// that never carry a secret.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { sql } from './support/db.js';
import type { TestClient } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';

/** A pino destination that keeps every line, for assertions on the request log. */
class LogCapture extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  raw = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    const text = chunk.toString('utf8');
    this.raw += text;
    for (const line of text.split('\n')) if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  }
}

describe('HTTP conventions', () => {
  let server: TestServer;
  let alice: TestClient;
  const logs = new LogCapture();
  before(async () => {
    server = await startTestServer({ limits: { max_request_body_size: 4096 } }, { logDestination: logs });
    alice = await server.register('alice', 'alice secret password');
  });
  after(() => server.stop());

  describe('errors', () => {
    it('answers unparseable JSON with 400 M_NOT_JSON', async () => {
      for (const raw of ['{"type": "m.login.password",', 'not json at all', '{"a": NaN}']) {
        const r = await server.anon().request('POST', '/_matrix/client/v3/login', undefined, { raw, headers: { 'Content-Type': 'application/json' } });
        assert.equal(r.status, 400, raw);
        assert.equal(r.body.errcode, 'M_NOT_JSON');
        assert.equal(typeof r.body.error, 'string');
      }
      const authed = await alice.request('PUT', `/_matrix/client/v3/profile/${encodeURIComponent(alice.userId)}/displayname`, undefined, { raw: '{' });
      assert.equal(authed.status, 400);
      assert.equal(authed.body.errcode, 'M_NOT_JSON');
    });

    it('answers JSON of the wrong shape with 400 M_BAD_JSON', async () => {
      for (const raw of ['[]', '"a string"', '42', 'null']) {
        const r = await server.anon().request('POST', '/_matrix/client/v3/login', undefined, { raw });
        assert.equal(r.status, 400, raw);
        assert.equal(r.body.errcode, 'M_BAD_JSON');
      }
      const wrongTypes = await server.anon().post('/_matrix/client/v3/login', { type: ['m.login.password'] });
      assert.equal(wrongTypes.status, 400);
      assert.equal(wrongTypes.body.errcode, 'M_BAD_JSON');
      const register = await server.anon().post('/_matrix/client/v3/register', { username: 'x', inhibit_login: 'yes' });
      assert.equal(register.status, 400);
      assert.equal(register.body.errcode, 'M_BAD_JSON');
      const auth = await server.anon().post('/_matrix/client/v3/register', { username: 'x', password: 'y', auth: 'dummy' });
      assert.equal(auth.status, 400);
      assert.equal(auth.body.errcode, 'M_BAD_JSON');
    });

    it('answers an over-large body with 413 M_TOO_LARGE, with or without Content-Length', async () => {
      const big = JSON.stringify({ type: 'm.login.password', user: 'alice', password: 'x'.repeat(8000) });
      const r = await server.anon().request('POST', '/_matrix/client/v3/login', undefined, { raw: big });
      assert.equal(r.status, 413);
      assert.equal(r.body.errcode, 'M_TOO_LARGE');
      // Chunked: the limit must hold while streaming, not only from the header.
      const chunked = await new Promise<{ status: number; body: string }>((resolveReq, reject) => {
        const req = http.request(`${server.baseUrl}/_matrix/client/v3/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolveReq({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        for (let i = 0; i < 10; i++) req.write('x'.repeat(1000));
        req.end();
      });
      assert.equal(chunked.status, 413);
      assert.equal(JSON.parse(chunked.body).errcode, 'M_TOO_LARGE');
      // Just under the limit is fine.
      const ok = await server.anon().post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'alice', password: 'x'.repeat(3000) });
      assert.equal(ok.status, 403);
    });

    it('answers an unknown endpoint with 404 M_UNRECOGNIZED', async () => {
      for (const path of ['/_matrix/client/v3/nope', '/_matrix/client/r0/nope', '/nothing/here', '/_matrix/client/v3/account/whoami/extra']) {
        const r = await alice.get(path);
        assert.equal(r.status, 404, path);
        assert.equal(r.body.errcode, 'M_UNRECOGNIZED');
      }
    });

    it('answers a known path with a wrong method with 405 M_UNRECOGNIZED', async () => {
      for (const [method, path] of [
        ['DELETE', '/_matrix/client/v3/login'],
        ['PUT', '/_matrix/client/v3/register'],
        ['POST', '/_matrix/client/v3/account/whoami'],
        ['GET', '/_matrix/client/v3/logout'],
        ['PATCH', '/_matrix/client/r0/devices'],
      ] as const) {
        const r = await alice.request(method, path, method === 'GET' ? undefined : {});
        assert.equal(r.status, 405, `${method} ${path}`);
        assert.equal(r.body.errcode, 'M_UNRECOGNIZED');
      }
    });

    it('never answers 500 to malformed input in paths and queries', async () => {
      const probes: [string, string][] = [
        ['GET', '/_matrix/client/v3/profile/%ZZ'],
        ['GET', '/_matrix/client/v3/profile/%E0%A4%A'],
        ['GET', `/_matrix/client/v3/profile/${'@'.repeat(5000)}`],
        ['PUT', '/_matrix/client/v3/devices/%FF'],
        ['GET', '/_matrix/client/v3/register/available?username=a&username=b'],
        ['GET', '/_matrix/client/v3/register/available?username=%00'],
        ['GET', '/_matrix/client/v3/profile/%40a%00%3Alocalhost'],
        ['PUT', '/_matrix/client/v3/profile/%40a%00%3Alocalhost/displayname'],
        ['GET', '/_matrix/client/v3/devices/%00'],
        ['DELETE', '/_matrix/client/v3/devices/A%00'],
        ['GET', '/_matrix/client/v1/register/m.login.registration_token/validity?token=a%00'],
        ['POST', '/_matrix/client/v3/register?kind=guest&kind=user'],
        ['GET', '/_matrix/client/v3/account/whoami?access_token=a&access_token=b'],
        ['GET', '/_matrix/client/v1/register/m.login.registration_token/validity?token=%E0'],
      ];
      for (const [method, path] of probes) {
        // A repeated access_token is no token at all (so send no header with it).
        const token = path.includes('access_token') ? null : alice.token;
        const r = await alice.request(method, path, method === 'GET' ? undefined : {}, { noSchema: true, token });
        assert.ok(r.status >= 400 && r.status < 500, `${method} ${path} -> ${r.status} ${r.text}`);
        assert.equal(typeof r.body?.errcode, 'string', `${method} ${path}`);
      }
    });

    it('never answers 500 to bodies of odd shapes on any account endpoint', async () => {
      const bob = await server.register();
      const uid = encodeURIComponent(bob.userId);
      const endpoints: [string, string][] = [
        ['POST', '/_matrix/client/v3/register'],
        ['POST', '/_matrix/client/v3/register?kind=guest'],
        ['POST', '/_matrix/client/v3/login'],
        ['POST', '/_matrix/client/v3/refresh'],
        ['POST', '/_matrix/client/v3/account/password'],
        ['POST', '/_matrix/client/v3/delete_devices'],
        ['PUT', `/_matrix/client/v3/devices/${bob.deviceId}`],
        ['DELETE', '/_matrix/client/v3/devices/OTHERDEV'],
        ['PUT', `/_matrix/client/v3/profile/${uid}/displayname`],
        ['PUT', `/_matrix/client/v3/profile/${uid}/avatar_url`],
        ['POST', '/_synapse/admin/v1/register'],
        ['POST', '/_synapse/admin/v1/registration_tokens/new'],
        // Last: it would end bob's account if a body were (wrongly) accepted.
        ['POST', '/_matrix/client/v3/account/deactivate'],
      ];
      const bodies: unknown[] = [
        {},
        { auth: [] },
        { auth: null },
        { auth: { type: [] } },
        { auth: { type: 'm.login.password' } },
        { auth: { type: 'm.login.password', identifier: [], password: 'x' } },
        { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: {} }, password: 'x' } },
        { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: '@' }, password: 'x' } },
        { auth: { type: 'm.login.password', user: 7, password: 'x' } },
        { auth: { type: 'm.login.dummy', session: {} } },
        { auth: { type: 'm.login.dummy', session: 'no-such-session' } },
        { auth: { type: 'm.login.registration_token', token: null } },
        { type: 'm.login.password', identifier: { type: 'm.id.user', user: '@:' }, password: 'x' },
        { type: 'm.login.password', identifier: 'alice', password: 'x' },
        { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'x'.repeat(100000) }, password: 'x' },
        { username: '\u0000', password: '\u0000', nonce: '\u0000', mac: '00' },
        { username: 'x'.repeat(1000), password: 'x' },
        { devices: 'all' },
        { devices: [null] },
        { new_password: '' },
        { new_password: 5 },
        { displayname: { nested: true } },
        { avatar_url: 'mxc://' },
        { display_name: null },
        { refresh_token: 7 },
        { uses_allowed: -1 },
        { expiry_time: 'soon' },
        { device_id: '' },
        { initial_device_display_name: 'x'.repeat(1000) },
        { inhibit_login: null },
      ];
      for (const [method, path] of endpoints) {
        for (const body of bodies) {
          const r = await bob.request(method, path, body, { noSchema: true });
          assert.ok(r.status < 500, `${method} ${path} ${JSON.stringify(body).slice(0, 80)} -> ${r.status} ${r.text}`);
          // A JSON answer: an error with its errcode, a UIA 401 with flows, or a success.
          const shaped = typeof r.body?.errcode === 'string' || Array.isArray(r.body?.flows) || r.status === 200;
          assert.ok(shaped, `${method} ${path} ${JSON.stringify(body).slice(0, 80)} -> ${r.status} ${r.text}`);
        }
      }
      assert.equal((await bob.get('/_matrix/client/v3/account/whoami')).status, 200, 'no odd body deactivated or logged out bob');
    });

    it('answers an unexpected failure with 500 M_UNKNOWN, no internals, and logs it with the request id', async () => {
      // A dedicated server whose database loses a table under it.
      const brokenLogs = new LogCapture();
      const s = await startTestServer({}, { logDestination: brokenLogs });
      try {
        await sql(s.databaseUrl, 'DROP TABLE registration_nonces');
        const r = await s.anon().get('/_synapse/admin/v1/register');
        assert.equal(r.status, 500);
        assert.equal(r.body.errcode, 'M_UNKNOWN');
        assert.doesNotMatch(r.text, /registration_nonces|relation|stack|at /);
        const failure = brokenLogs.lines.find((l) => l['msg'] === 'unhandled error');
        assert.ok(failure, 'the exception is logged');
        const request = brokenLogs.lines.find((l) => l['msg'] === 'request' && l['status'] === 500);
        assert.ok(request);
        assert.equal(failure['reqId'], request['reqId']);
      } finally {
        await s.stop();
      }
    });
  });

  describe('the r0 prefix', () => {
    it('serves the same handlers as v3', async () => {
      const flows = await server.anon().get('/_matrix/client/r0/login');
      assert.deepEqual(flows.body, (await server.anon().get('/_matrix/client/v3/login')).body);
      const login = await server.anon().post('/_matrix/client/r0/login', { type: 'm.login.password', user: 'alice', password: 'alice secret password' });
      assert.equal(login.status, 200);
      const who = await server.anon().get('/_matrix/client/r0/account/whoami', { token: login.body.access_token });
      assert.equal(who.body.user_id, '@alice:localhost');
      const reg = await server.anon().post('/_matrix/client/r0/register', { username: 'old_bot', password: 'pw', auth: { type: 'm.login.dummy' } });
      assert.equal(reg.status, 200);
      assert.equal(reg.body.user_id, '@old_bot:localhost');
    });

    it('lets a UIA session started on r0 finish on v3 (the same operation)', async () => {
      const first = await server.anon().post('/_matrix/client/r0/register', { username: 'mixed_prefix', password: 'pw' });
      assert.equal(first.status, 401);
      const r = await server.anon().post('/_matrix/client/v3/register', { auth: { type: 'm.login.dummy', session: first.body.session } });
      assert.equal(r.status, 200, r.text);
    });
  });

  describe('request logs', () => {
    it('logs request id, method, route, status and duration, and never a token or password', async () => {
      const password = 'alice secret password';
      const login = await server.anon().post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'alice', password, refresh_token: true });
      const token = login.body.access_token as string;
      await server.anon().get(`/_matrix/client/v3/account/whoami?access_token=${encodeURIComponent(token)}`);
      await server.anon().get('/_matrix/client/v3/account/whoami', { token });
      await server.anon().get(`/_matrix/client/v3/no_such_endpoint?access_token=${encodeURIComponent(token)}`);
      await server.anon().post('/_matrix/client/v3/refresh', { refresh_token: login.body.refresh_token });
      await server.anon().post('/_matrix/client/v3/account/password', { new_password: 'new secret 123' }, { token });
      await new Promise((r) => setImmediate(r));

      const requests = logs.lines.filter((l) => l['msg'] === 'request');
      const whoami = requests.filter((l) => l['route'] === '/_matrix/client/v3/account/whoami');
      assert.ok(whoami.length >= 2);
      for (const l of requests) {
        assert.match(String(l['reqId']), /^[0-9a-z]+$/);
        assert.equal(typeof l['method'], 'string');
        assert.equal(typeof l['status'], 'number');
        assert.equal(typeof l['ms'], 'number');
      }
      assert.equal(new Set(requests.map((l) => l['reqId'])).size, requests.length, 'request ids are unique');
      for (const secret of [token, login.body.refresh_token, password, 'new secret 123', 'access_token=']) {
        assert.ok(!logs.raw.includes(secret), `the log contains ${secret.slice(0, 12)}…`);
      }
    });
  });
});

describe('rate limiting', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ rate_limits: { enabled: true, login: { per_second: 0.2, burst_count: 2 }, registration: { per_second: 0.2, burst_count: 2 } } });
  });
  after(() => server.stop());

  it('answers 429 M_LIMIT_EXCEEDED with retry_after_ms once the burst is spent', async () => {
    const attempt = () => server.anon().post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'someone', password: 'wrong' });
    assert.equal((await attempt()).status, 403);
    assert.equal((await attempt()).status, 403);
    const limited = await attempt();
    assert.equal(limited.status, 429);
    assert.equal(limited.body.errcode, 'M_LIMIT_EXCEEDED');
    assert.ok(Number.isInteger(limited.body.retry_after_ms));
    assert.ok(limited.body.retry_after_ms > 0 && limited.body.retry_after_ms <= 5000, String(limited.body.retry_after_ms));
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  });

  it('limits each endpoint class separately', async () => {
    // Login is exhausted above; registration has its own bucket.
    const r = await server.anon().get('/_matrix/client/v3/register/available?username=fresh');
    assert.equal(r.status, 200);
  });

  it('refills the bucket with time', async () => {
    const limited = await server.anon().post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'someone', password: 'wrong' });
    assert.equal(limited.status, 429);
    await new Promise((r) => setTimeout(r, limited.body.retry_after_ms + 50));
    const again = await server.anon().post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'someone', password: 'wrong' });
    assert.equal(again.status, 403);
  });
});

describe('listeners', () => {
  /** A self-signed certificate for 127.0.0.1, or undefined where openssl is missing. */
  function selfSigned(dir: string): { cert: string; key: string } | undefined {
    const cert = join(dir, 'tls.crt');
    const key = join(dir, 'tls.key');
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
      return { cert, key };
    } catch {
      return undefined;
    }
  }

  it('serves each listener only its resources, one of them over TLS', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'prat-tls-'));
    const tls = selfSigned(dir);
    if (!tls) {
      t.skip('openssl not available');
      return;
    }
    const server = await startTestServer({
      listeners: [
        { port: 0, bind_addresses: ['127.0.0.1'], resources: ['client'] },
        { port: 0, bind_addresses: ['127.0.0.1'], resources: ['federation', 'admin'], tls: { certificate_path: tls.cert, private_key_path: tls.key } },
      ],
    });
    try {
      const [client, federation] = server.hs.addresses;
      assert.equal(client!.tls, false);
      assert.equal(federation!.tls, true);
      const get = (port: number, path: string, secure: boolean) =>
        new Promise<number>((resolveGet, reject) => {
          const mod = secure ? https : http;
          mod
            .get({ host: '127.0.0.1', port, path, rejectUnauthorized: false }, (res) => {
              res.resume();
              resolveGet(res.statusCode ?? 0);
            })
            .on('error', reject);
        });
      assert.equal(await get(client!.port, '/_matrix/client/versions', false), 200);
      assert.equal(await get(client!.port, '/_matrix/key/v2/server', false), 404, 'no federation on the client listener');
      assert.equal(await get(client!.port, '/_synapse/admin/v1/server_version', false), 404, 'no admin API on the client listener');
      assert.equal(await get(federation!.port, '/_matrix/key/v2/server', true), 200);
      assert.equal(await get(federation!.port, '/_synapse/admin/v1/server_version', true), 200);
      assert.equal(await get(federation!.port, '/_matrix/client/versions', true), 404, 'no client API on the federation listener');
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts a server_name with a port in user ids', async () => {
    const server = await startTestServer({ server_name: 'localhost:8800' });
    try {
      const alice = await server.register('porty');
      assert.equal(alice.userId, '@porty:localhost:8800');
      const login = await server.anon().post('/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: '@porty:localhost:8800' }, password: alice.password });
      assert.equal(login.status, 200, login.text);
      const profile = await server.anon().get(`/_matrix/client/v3/profile/${encodeURIComponent('@porty:localhost:8800')}`);
      assert.equal(profile.body.displayname, 'porty');
    } finally {
      await server.stop();
    }
  });
});
