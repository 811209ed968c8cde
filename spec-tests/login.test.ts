// Login, refresh, logout, whoami and access-token handling (spec: client-server-api "Login",
// "Refreshing access tokens", "Using access tokens").
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from './support/db.js';
import type { TestClient } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';

const LOGIN = '/_matrix/client/v3/login';
const WHOAMI = '/_matrix/client/v3/account/whoami';

describe('login', () => {
  let server: TestServer;
  let alice: TestClient;
  before(async () => {
    server = await startTestServer();
    alice = await server.register('alice', 'alice password');
  });
  after(() => server.stop());

  const login = (body: Record<string, unknown>) => server.anon().post(LOGIN, { type: 'm.login.password', ...body });

  it('lists m.login.password as the login flow (GET /login)', async () => {
    const r = await server.anon().get(LOGIN);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.flows.map((f: { type: string }) => f.type), ['m.login.password']);
  });

  it('logs in with an m.id.user identifier holding the localpart', async () => {
    const r = await login({ identifier: { type: 'm.id.user', user: 'alice' }, password: 'alice password' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.user_id, '@alice:localhost');
    assert.equal(typeof r.body.access_token, 'string');
    assert.equal(typeof r.body.device_id, 'string');
    // Access tokens issued without refresh_token do not expire.
    assert.equal(r.body.expires_in_ms, undefined);
    assert.equal(r.body.refresh_token, undefined);
    const who = await server.anon().get(WHOAMI, { token: r.body.access_token });
    assert.deepEqual(who.body, { user_id: '@alice:localhost', device_id: r.body.device_id, is_guest: false });
  });

  it('logs in with the full user id, in any case', async () => {
    const r = await login({ identifier: { type: 'm.id.user', user: '@Alice:localhost' }, password: 'alice password' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.user_id, '@alice:localhost');
  });

  it('accepts the deprecated top-level user', async () => {
    const r = await login({ user: 'alice', password: 'alice password' });
    assert.equal(r.status, 200);
    assert.equal(r.body.user_id, '@alice:localhost');
  });

  it('gives every login a new device unless a device_id is given', async () => {
    const a = await login({ user: 'alice', password: 'alice password' });
    const b = await login({ user: 'alice', password: 'alice password', device_id: 'KNOWNDEV', initial_device_display_name: 'Laptop' });
    assert.notEqual(a.body.device_id, b.body.device_id);
    assert.equal(b.body.device_id, 'KNOWNDEV');
    const again = await login({ user: 'alice', password: 'alice password', device_id: 'KNOWNDEV', initial_device_display_name: 'Renamed?' });
    assert.equal(again.body.device_id, 'KNOWNDEV');
    // The spec: initial_device_display_name is ignored for a known device.
    const device = await alice.get('/_matrix/client/v3/devices/KNOWNDEV');
    assert.equal(device.body.display_name, 'Laptop');
    // Both sessions of the device work.
    assert.equal((await server.anon().get(WHOAMI, { token: b.body.access_token })).status, 200);
    assert.equal((await server.anon().get(WHOAMI, { token: again.body.access_token })).body.device_id, 'KNOWNDEV');
  });

  it('refuses a wrong password and an unknown user alike with 403 M_FORBIDDEN', async () => {
    const wrong = await login({ identifier: { type: 'm.id.user', user: 'alice' }, password: 'not it' });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.errcode, 'M_FORBIDDEN');
    const unknown = await login({ identifier: { type: 'm.id.user', user: 'nobody' }, password: 'not it' });
    assert.equal(unknown.status, 403);
    assert.equal(unknown.body.errcode, 'M_FORBIDDEN');
    assert.equal(unknown.body.error, wrong.body.error);
    const remote = await login({ identifier: { type: 'm.id.user', user: '@alice:elsewhere.example' }, password: 'alice password' });
    assert.equal(remote.status, 403);
  });

  it('answers bad login bodies with 400, never 500', async () => {
    const unknownType = await server.anon().post(LOGIN, { type: 'm.login.magic', user: 'alice' });
    assert.equal(unknownType.status, 400);
    assert.equal(unknownType.body.errcode, 'M_UNKNOWN');
    const noType = await server.anon().post(LOGIN, { user: 'alice', password: 'x' });
    assert.equal(noType.status, 400);
    assert.equal(noType.body.errcode, 'M_MISSING_PARAM');
    const noPassword = await login({ user: 'alice' });
    assert.equal(noPassword.status, 400);
    assert.equal(noPassword.body.errcode, 'M_MISSING_PARAM');
    const noUser = await login({ password: 'x' });
    assert.equal(noUser.status, 400);
    assert.equal(noUser.body.errcode, 'M_MISSING_PARAM');
    const badIdentifier = await login({ identifier: { type: 'm.id.thirdparty', medium: 'email', address: 'a@b.c' }, password: 'x' });
    assert.equal(badIdentifier.status, 400);
    const wrongType = await login({ identifier: { type: 'm.id.user', user: 7 }, password: 'x' });
    assert.equal(wrongType.status, 400);
    const passwordNumber = await login({ user: 'alice', password: 12 });
    assert.equal(passwordNumber.status, 400);
    assert.equal(passwordNumber.body.errcode, 'M_BAD_JSON');
  });

  describe('access tokens', () => {
    it('accepts the token as an access_token query parameter', async () => {
      const r = await server.anon().get(`${WHOAMI}?access_token=${encodeURIComponent(alice.token!)}`, { token: null });
      assert.equal(r.status, 200);
      assert.equal(r.body.user_id, alice.userId);
    });

    it('answers a missing token with 401 M_MISSING_TOKEN', async () => {
      const r = await server.anon().get(WHOAMI);
      assert.equal(r.status, 401);
      assert.equal(r.body.errcode, 'M_MISSING_TOKEN');
    });

    it('answers an unknown token with 401 M_UNKNOWN_TOKEN', async () => {
      const header = await server.anon().get(WHOAMI, { token: 'prat_not_a_real_token' });
      assert.equal(header.status, 401);
      assert.equal(header.body.errcode, 'M_UNKNOWN_TOKEN');
      assert.equal(header.body.soft_logout, false);
      const query = await server.anon().get(`${WHOAMI}?access_token=nope`);
      assert.equal(query.status, 401);
      assert.equal(query.body.errcode, 'M_UNKNOWN_TOKEN');
    });

    it('stores tokens only as hashes', async () => {
      const rows = await sql(server.databaseUrl, 'SELECT encode(token_hash, $1) AS h FROM access_tokens', ['escape']);
      assert.ok(rows.length > 0);
      for (const row of rows) assert.ok(!String(row.h).includes(alice.token!));
      const users = await sql(server.databaseUrl, 'SELECT password_hash FROM users WHERE user_id = $1', [alice.userId]);
      assert.match(users[0].password_hash, /^\$argon2id\$/);
    });
  });

  describe('refresh tokens', () => {
    const loginRefreshable = async () => {
      const r = await login({ user: 'alice', password: 'alice password', refresh_token: true });
      assert.equal(r.status, 200);
      return r.body as { access_token: string; refresh_token: string; expires_in_ms: number; device_id: string };
    };

    it('issues a refresh token and expires_in_ms when asked', async () => {
      const s = await loginRefreshable();
      assert.equal(typeof s.refresh_token, 'string');
      assert.ok(Number.isInteger(s.expires_in_ms) && s.expires_in_ms > 0);
    });

    it('exchanges a refresh token for a new pair on the same device', async () => {
      const s = await loginRefreshable();
      const r = await server.anon().post('/_matrix/client/v3/refresh', { refresh_token: s.refresh_token });
      assert.equal(r.status, 200, r.text);
      assert.notEqual(r.body.access_token, s.access_token);
      assert.notEqual(r.body.refresh_token, s.refresh_token);
      assert.ok(r.body.expires_in_ms > 0);
      const who = await server.anon().get(WHOAMI, { token: r.body.access_token });
      assert.equal(who.body.device_id, s.device_id);
    });

    it('retires the old refresh and access tokens once the new access token is used', async () => {
      const s = await loginRefreshable();
      const first = await server.anon().post('/_matrix/client/v3/refresh', { refresh_token: s.refresh_token });
      // Until the new pair is used, the old refresh token may be retried (the response may have been lost).
      const retry = await server.anon().post('/_matrix/client/v3/refresh', { refresh_token: s.refresh_token });
      assert.equal(retry.status, 200);
      assert.equal((await server.anon().get(WHOAMI, { token: retry.body.access_token })).status, 200);
      const reuse = await server.anon().post('/_matrix/client/v3/refresh', { refresh_token: s.refresh_token });
      assert.equal(reuse.status, 401);
      assert.equal(reuse.body.errcode, 'M_UNKNOWN_TOKEN');
      const old = await server.anon().get(WHOAMI, { token: s.access_token });
      assert.equal(old.status, 401);
      assert.equal(old.body.errcode, 'M_UNKNOWN_TOKEN');
      assert.ok(first.body.access_token);
    });

    it('answers an expired access token with M_UNKNOWN_TOKEN and soft_logout, then refreshes', async () => {
      const s = await loginRefreshable();
      assert.equal((await server.anon().get(WHOAMI, { token: s.access_token })).status, 200);
      // Move the expiry into the past rather than waiting the whole lifetime.
      await sql(server.databaseUrl, 'UPDATE access_tokens SET expires_ts = $1 WHERE device_id = $2', [Date.now() - 1, s.device_id]);
      const expired = await server.anon().get(WHOAMI, { token: s.access_token });
      assert.equal(expired.status, 401);
      assert.equal(expired.body.errcode, 'M_UNKNOWN_TOKEN');
      assert.equal(expired.body.soft_logout, true);
      const r = await server.anon().post('/_matrix/client/v3/refresh', { refresh_token: s.refresh_token });
      assert.equal(r.status, 200);
      assert.equal((await server.anon().get(WHOAMI, { token: r.body.access_token })).status, 200);
    });

    it('refuses an unknown refresh token with 401 M_UNKNOWN_TOKEN and a missing one with 400', async () => {
      const unknown = await server.anon().post('/_matrix/client/v3/refresh', { refresh_token: 'pratr_nope' });
      assert.equal(unknown.status, 401);
      assert.equal(unknown.body.errcode, 'M_UNKNOWN_TOKEN');
      const missing = await server.anon().post('/_matrix/client/v3/refresh', {});
      assert.equal(missing.status, 400);
      assert.equal(missing.body.errcode, 'M_MISSING_PARAM');
    });

    it('refuses a refresh token whose device was logged out', async () => {
      const s = await loginRefreshable();
      assert.equal((await server.anon().post('/_matrix/client/v3/logout', {}, { token: s.access_token })).status, 200);
      const r = await server.anon().post('/_matrix/client/v3/refresh', { refresh_token: s.refresh_token });
      assert.equal(r.status, 401);
      assert.equal(r.body.errcode, 'M_UNKNOWN_TOKEN');
    });
  });

  describe('logout', () => {
    it('revokes the token and ends the device', async () => {
      const s = (await login({ user: 'alice', password: 'alice password' })).body;
      const r = await server.anon().post('/_matrix/client/v3/logout', {}, { token: s.access_token });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, {});
      const who = await server.anon().get(WHOAMI, { token: s.access_token });
      assert.equal(who.status, 401);
      assert.equal(who.body.errcode, 'M_UNKNOWN_TOKEN');
      const devices = await alice.get('/_matrix/client/v3/devices');
      assert.ok(!devices.body.devices.some((d: { device_id: string }) => d.device_id === s.device_id));
      // Other sessions are untouched.
      assert.equal((await alice.get(WHOAMI)).status, 200);
    });

    it('logs out every session with /logout/all', async () => {
      const bob = await server.register('bob', 'bob password');
      const other = (await server.anon().post(LOGIN, { type: 'm.login.password', user: 'bob', password: 'bob password' })).body;
      const r = await bob.post('/_matrix/client/v3/logout/all');
      assert.equal(r.status, 200);
      for (const token of [bob.token!, other.access_token]) {
        const who = await server.anon().get(WHOAMI, { token });
        assert.equal(who.status, 401);
        assert.equal(who.body.errcode, 'M_UNKNOWN_TOKEN');
      }
      // The account still works: logging in again is possible.
      const again = await server.anon().post(LOGIN, { type: 'm.login.password', user: 'bob', password: 'bob password' });
      assert.equal(again.status, 200);
      assert.equal((await alice.get(WHOAMI)).status, 200);
    });

    it('requires a token', async () => {
      const r = await server.anon().post('/_matrix/client/v3/logout');
      assert.equal(r.status, 401);
      assert.equal(r.body.errcode, 'M_MISSING_TOKEN');
    });
  });
});
