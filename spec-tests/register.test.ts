// POST /register with user-interactive auth, /register/available, guests, and registration
// tokens (spec: client-server-api "Account registration", "Token-authenticated registration").
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { registerWithSharedSecret } from './support/admin.js';
import { sql } from './support/db.js';
import type { TestClient } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';

const REGISTER = '/_matrix/client/v3/register';
const PASSWORD = 'a long enough password';

describe('registration', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('answers a first call without auth with 401, a session and the m.login.dummy flow', async () => {
    const r = await server.anon().post(REGISTER, { username: 'uia_first', password: PASSWORD });
    assert.equal(r.status, 401);
    assert.equal(typeof r.body.session, 'string');
    assert.ok(r.body.session.length > 0);
    assert.deepEqual(r.body.flows, [{ stages: ['m.login.dummy'] }]);
    assert.deepEqual(r.body.params, {});
    // Nothing registered yet: the name is still free.
    const available = await server.anon().get('/_matrix/client/v3/register/available?username=uia_first');
    assert.equal(available.status, 200);
  });

  it('completes with m.login.dummy in the same session, keeping the first call’s parameters', async () => {
    const anon = server.anon();
    const first = await anon.post(REGISTER, { username: 'Dummy_Flow', password: PASSWORD, initial_device_display_name: 'First call' });
    assert.equal(first.status, 401);
    // Element resends the body; some clients send only the auth dict: both must work.
    const r = await anon.post(REGISTER, { auth: { type: 'm.login.dummy', session: first.body.session } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.user_id, `@dummy_flow:${server.serverName}`);
    assert.equal(typeof r.body.access_token, 'string');
    assert.equal(typeof r.body.device_id, 'string');
    const who = await anon.get('/_matrix/client/v3/account/whoami', { token: r.body.access_token });
    assert.equal(who.body.user_id, '@dummy_flow:localhost');
    const device = await anon.get(`/_matrix/client/v3/devices/${r.body.device_id}`, { token: r.body.access_token });
    assert.equal(device.body.display_name, 'First call');
    // The password given in the first call (never stored in the clear) is the account's.
    const login = await anon.post('/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'dummy_flow' }, password: PASSWORD });
    assert.equal(login.status, 200, login.text);
  });

  it('follows Element Web: an empty probe for flows, then the form with the probe’s session', async () => {
    const anon = server.anon();
    const probe = await anon.post(REGISTER, {});
    assert.equal(probe.status, 401);
    assert.deepEqual(probe.body.flows, [{ stages: ['m.login.dummy'] }]);
    const bodyless = await anon.request('POST', REGISTER, undefined, {});
    assert.equal(bodyless.status, 401, 'no body at all is read as {}');
    const r = await anon.post(REGISTER, {
      username: 'element_user',
      password: PASSWORD,
      initial_device_display_name: 'app.element.io: Firefox',
      auth: { type: 'm.login.dummy', session: probe.body.session },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.user_id, '@element_user:localhost');
  });

  it('never stores the password in the clear in the UIA session', async () => {
    const anon = server.anon();
    const first = await anon.post(REGISTER, { username: 'clear_text_check', password: 'a very recognisable secret' });
    assert.equal(first.status, 401);
    const rows = await sql(server.databaseUrl, 'SELECT clientdict::text AS c, results::text AS r FROM uia_sessions WHERE session_id = $1', [first.body.session]);
    assert.equal(rows.length, 1);
    assert.ok(!rows[0].c.includes('a very recognisable secret') && !rows[0].r.includes('a very recognisable secret'));
    assert.match(rows[0].r, /argon2id/, 'a hash is kept so the password from the first call still applies');
  });

  it('refuses to reuse a completed UIA session', async () => {
    const anon = server.anon();
    const first = await anon.post(REGISTER, { username: 'once_only', password: PASSWORD });
    const ok = await anon.post(REGISTER, { username: 'once_only', password: PASSWORD, auth: { type: 'm.login.dummy', session: first.body.session } });
    assert.equal(ok.status, 200);
    const again = await anon.post(REGISTER, { username: 'once_only2', password: PASSWORD, auth: { type: 'm.login.dummy', session: first.body.session } });
    assert.notEqual(again.status, 200);
    assert.equal(typeof again.body.errcode, 'string');
  });

  it('rejects an auth type the flows do not offer, keeping the session', async () => {
    const anon = server.anon();
    const first = await anon.post(REGISTER, { username: 'wrong_stage', password: PASSWORD });
    const r = await anon.post(REGISTER, { username: 'wrong_stage', password: PASSWORD, auth: { type: 'm.login.password', session: first.body.session } });
    assert.equal(r.status, 401);
    assert.equal(r.body.session, first.body.session);
    assert.equal(typeof r.body.errcode, 'string');
    assert.deepEqual(r.body.flows, [{ stages: ['m.login.dummy'] }]);
  });

  it('lower-cases the username', async () => {
    const r = await server.anon().post(REGISTER, { username: 'MixedCase', password: PASSWORD, auth: { type: 'm.login.dummy' } });
    assert.equal(r.status, 200);
    assert.equal(r.body.user_id, '@mixedcase:localhost');
    const taken = await server.anon().post(REGISTER, { username: 'MIXEDCASE', password: PASSWORD, auth: { type: 'm.login.dummy' } });
    assert.equal(taken.status, 400);
    assert.equal(taken.body.errcode, 'M_USER_IN_USE');
  });

  for (const bad of ['with space', 'smile☺', 'colon:name', '_underscore', '12345', '', 'a'.repeat(260), 'at@sign']) {
    it(`rejects the username ${JSON.stringify(bad.length > 20 ? `${bad.slice(0, 10)}…` : bad)} with M_INVALID_USERNAME`, async () => {
      const r = await server.anon().post(REGISTER, { username: bad, password: PASSWORD, auth: { type: 'm.login.dummy' } });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.errcode, 'M_INVALID_USERNAME');
    });
  }

  it('accepts every character of the localpart grammar', async () => {
    const r = await server.anon().post(REGISTER, { username: 'a.b_c=d-e/f+g9', password: PASSWORD, auth: { type: 'm.login.dummy' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.user_id, '@a.b_c=d-e/f+g9:localhost');
  });

  it('answers a taken username with M_USER_IN_USE before any UIA', async () => {
    await server.register('taken_name');
    const r = await server.anon().post(REGISTER, { username: 'taken_name', password: PASSWORD });
    assert.equal(r.status, 400);
    assert.equal(r.body.errcode, 'M_USER_IN_USE');
  });

  it('generates a user id when no username is given', async () => {
    const a = await server.anon().post(REGISTER, { password: PASSWORD, auth: { type: 'm.login.dummy' } });
    const b = await server.anon().post(REGISTER, { password: PASSWORD, auth: { type: 'm.login.dummy' } });
    assert.equal(a.status, 200, a.text);
    assert.match(a.body.user_id, /^@[a-z0-9._=\-/+]+:localhost$/);
    assert.notEqual(a.body.user_id, b.body.user_id);
  });

  it('requires a password for a user account', async () => {
    const r = await server.anon().post(REGISTER, { username: 'no_password', auth: { type: 'm.login.dummy' } });
    assert.equal(r.status, 400);
    assert.equal(r.body.errcode, 'M_MISSING_PARAM');
  });

  it('uses the device_id and initial_device_display_name given', async () => {
    const r = await server.anon().post(REGISTER, {
      username: 'with_device',
      password: PASSWORD,
      device_id: 'MYDEVICE',
      initial_device_display_name: 'Jungle Phone',
      auth: { type: 'm.login.dummy' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.device_id, 'MYDEVICE');
    const devices = await server.anon().get('/_matrix/client/v3/devices', { token: r.body.access_token });
    assert.deepEqual(devices.body.devices.map((d: { device_id: string; display_name: string }) => [d.device_id, d.display_name]), [['MYDEVICE', 'Jungle Phone']]);
  });

  it('returns no access token or device with inhibit_login', async () => {
    const r = await server.anon().post(REGISTER, { username: 'inhibited', password: PASSWORD, inhibit_login: true, auth: { type: 'm.login.dummy' } });
    assert.equal(r.status, 200);
    assert.equal(r.body.user_id, '@inhibited:localhost');
    assert.equal(r.body.access_token, undefined);
    assert.equal(r.body.device_id, undefined);
    assert.equal(r.body.refresh_token, undefined);
    // The account exists and can log in.
    const login = await server.anon().post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'inhibited', password: PASSWORD });
    assert.equal(login.status, 200);
  });

  it('issues a refresh token and expires_in_ms when asked', async () => {
    const r = await server.anon().post(REGISTER, { username: 'refresher', password: PASSWORD, refresh_token: true, auth: { type: 'm.login.dummy' } });
    assert.equal(r.status, 200);
    assert.equal(typeof r.body.refresh_token, 'string');
    assert.ok(Number.isInteger(r.body.expires_in_ms) && r.body.expires_in_ms > 0);
    const refreshed = await server.anon().post('/_matrix/client/v3/refresh', { refresh_token: r.body.refresh_token });
    assert.equal(refreshed.status, 200);
    const plain = await server.anon().post(REGISTER, { username: 'not_refresher', password: PASSWORD, auth: { type: 'm.login.dummy' } });
    assert.equal(plain.body.refresh_token, undefined);
    assert.equal(plain.body.expires_in_ms, undefined);
  });

  it('rejects wrong types in the body with M_BAD_JSON', async () => {
    const r = await server.anon().post(REGISTER, { username: 42, password: PASSWORD, auth: { type: 'm.login.dummy' } });
    assert.equal(r.status, 400);
    assert.equal(r.body.errcode, 'M_BAD_JSON');
  });

  it('rejects an unknown kind', async () => {
    const r = await server.anon().post(`${REGISTER}?kind=robot`, { username: 'robot', password: PASSWORD, auth: { type: 'm.login.dummy' } });
    assert.equal(r.status, 400);
    assert.ok(['M_INVALID_PARAM', 'M_UNRECOGNIZED'].includes(r.body.errcode));
  });

  describe('GET /register/available', () => {
    it('says a free name is available', async () => {
      const r = await server.anon().get('/_matrix/client/v3/register/available?username=free_name');
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { available: true });
    });

    it('answers a taken name (in any case) with M_USER_IN_USE', async () => {
      await server.register('avail_taken');
      const r = await server.anon().get('/_matrix/client/v3/register/available?username=Avail_Taken');
      assert.equal(r.status, 400);
      assert.equal(r.body.errcode, 'M_USER_IN_USE');
    });

    it('answers an invalid name with M_INVALID_USERNAME', async () => {
      const r = await server.anon().get(`/_matrix/client/v3/register/available?username=${encodeURIComponent('bad name')}`);
      assert.equal(r.status, 400);
      assert.equal(r.body.errcode, 'M_INVALID_USERNAME');
    });

    it('requires the username parameter', async () => {
      const r = await server.anon().get('/_matrix/client/v3/register/available');
      assert.equal(r.status, 400);
      assert.equal(r.body.errcode, 'M_MISSING_PARAM');
    });
  });

  describe('guests', () => {
    it('registers a guest without UIA, ignoring everything but the display name', async () => {
      const r = await server.anon().post(`${REGISTER}?kind=guest`, {
        username: 'guest_wants_a_name',
        password: PASSWORD,
        device_id: 'GUESTDEV',
        initial_device_display_name: 'Guest browser',
      });
      assert.equal(r.status, 200, r.text);
      assert.match(r.body.user_id, /^@\d+:localhost$/);
      // The spec: the server MUST pick the device_id for a guest regardless of input.
      assert.notEqual(r.body.device_id, 'GUESTDEV');
      const who = await server.anon().get('/_matrix/client/v3/account/whoami', { token: r.body.access_token });
      assert.deepEqual(who.body, { user_id: r.body.user_id, device_id: r.body.device_id, is_guest: true });
    });

    it('keeps guests out of endpoints that are not for guests', async () => {
      const r = await server.anon().post(`${REGISTER}?kind=guest`, {});
      const devices = await server.anon().get('/_matrix/client/v3/devices', { token: r.body.access_token });
      assert.equal(devices.status, 403);
      assert.equal(devices.body.errcode, 'M_GUEST_ACCESS_FORBIDDEN');
    });
  });
});

describe('registration when disabled', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ registration: { enabled: false, shared_secret: 'test-shared-secret', require_token: false, allow_guests: false } });
  });
  after(() => server.stop());

  it('refuses to register with 403 M_FORBIDDEN', async () => {
    const r = await server.anon().post(REGISTER, { username: 'nope', password: PASSWORD, auth: { type: 'm.login.dummy' } });
    assert.equal(r.status, 403);
    assert.equal(r.body.errcode, 'M_FORBIDDEN');
    const first = await server.anon().post(REGISTER, {});
    assert.equal(first.status, 403);
  });

  it('refuses guests when guest access is off', async () => {
    const r = await server.anon().post(`${REGISTER}?kind=guest`, {});
    assert.equal(r.status, 403);
    assert.equal(r.body.errcode, 'M_FORBIDDEN');
  });

  it('refuses /register/available with 403 M_FORBIDDEN', async () => {
    const r = await server.anon().get('/_matrix/client/v3/register/available?username=someone');
    assert.equal(r.status, 403);
    assert.equal(r.body.errcode, 'M_FORBIDDEN');
  });

  it('considers every registration token invalid (403)', async () => {
    const r = await server.anon().get('/_matrix/client/v1/register/m.login.registration_token/validity?token=abc');
    assert.equal(r.status, 403);
    assert.equal(r.body.errcode, 'M_FORBIDDEN');
  });

  it('still lets the shared-secret admin API register users', async () => {
    const admin = await registerWithSharedSecret(server.baseUrl, 'made_by_admin', PASSWORD, false);
    assert.equal(admin.userId, '@made_by_admin:localhost');
  });
});

describe('registration tokens', () => {
  let server: TestServer;
  let admin: TestClient;
  before(async () => {
    server = await startTestServer({ registration: { enabled: true, shared_secret: 'test-shared-secret', require_token: true, allow_guests: false } });
    admin = await registerWithSharedSecret(server.baseUrl, 'token_admin', PASSWORD, true);
  });
  after(() => server.stop());

  const newToken = async (body: Record<string, unknown>) => {
    const r = await admin.post('/_synapse/admin/v1/registration_tokens/new', body);
    assert.equal(r.status, 200, r.text);
    return r.body as { token: string; uses_allowed: number | null; pending: number; completed: number; expiry_time: number | null };
  };
  const validity = (token: string) => server.anon().get(`/_matrix/client/v1/register/m.login.registration_token/validity?token=${encodeURIComponent(token)}`);
  const registerWith = async (username: string, token: string) => {
    const anon = server.anon();
    const first = await anon.post(REGISTER, { username, password: PASSWORD });
    return anon.post(REGISTER, { username, password: PASSWORD, auth: { type: 'm.login.registration_token', token, session: first.body.session } });
  };

  it('offers only the m.login.registration_token flow', async () => {
    const r = await server.anon().post(REGISTER, { username: 'needs_token', password: PASSWORD });
    assert.equal(r.status, 401);
    assert.deepEqual(r.body.flows, [{ stages: ['m.login.registration_token'] }]);
    const dummy = await server.anon().post(REGISTER, { username: 'needs_token', password: PASSWORD, auth: { type: 'm.login.dummy', session: r.body.session } });
    assert.equal(dummy.status, 401);
  });

  it('creates tokens through the admin API, for admins only', async () => {
    const created = await newToken({ token: 'chosen-token', uses_allowed: 3 });
    assert.deepEqual(created, { token: 'chosen-token', uses_allowed: 3, pending: 0, completed: 0, expiry_time: null });
    const generated = await newToken({});
    assert.match(generated.token, /^[A-Za-z0-9._~-]+$/);
    const duplicate = await admin.post('/_synapse/admin/v1/registration_tokens/new', { token: 'chosen-token' });
    assert.equal(duplicate.status, 400);
    const user = await registerWith('not_an_admin', generated.token);
    assert.equal(user.status, 200);
    const refused = await server.anon().post('/_synapse/admin/v1/registration_tokens/new', {}, { token: user.body.access_token });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.errcode, 'M_FORBIDDEN');
    const badToken = await admin.post('/_synapse/admin/v1/registration_tokens/new', { token: 'has space' });
    assert.equal(badToken.status, 400);
    const past = await admin.post('/_synapse/admin/v1/registration_tokens/new', { expiry_time: Date.now() - 1000 });
    assert.equal(past.status, 400);
    assert.equal(past.body.errcode, 'M_INVALID_PARAM');
  });

  it('reports token validity', async () => {
    const { token } = await newToken({});
    assert.deepEqual((await validity(token)).body, { valid: true });
    assert.deepEqual((await validity('no-such-token')).body, { valid: false });
    const missing = await server.anon().get('/_matrix/client/v1/register/m.login.registration_token/validity');
    assert.equal(missing.status, 400);
    assert.equal(missing.body.errcode, 'M_MISSING_PARAM');
  });

  it('rejects an unknown token at the stage, keeping the session', async () => {
    const anon = server.anon();
    const first = await anon.post(REGISTER, { username: 'bad_token_user', password: PASSWORD });
    const r = await anon.post(REGISTER, { username: 'bad_token_user', password: PASSWORD, auth: { type: 'm.login.registration_token', token: 'wrong', session: first.body.session } });
    assert.equal(r.status, 401);
    assert.equal(r.body.errcode, 'M_UNAUTHORIZED');
    assert.equal(r.body.session, first.body.session);
  });

  it('registers with a valid token and stops accepting it after uses_allowed', async () => {
    const { token } = await newToken({ uses_allowed: 2 });
    assert.equal((await registerWith('token_user_1', token)).status, 200);
    assert.equal((await validity(token)).body.valid, true);
    const second = await registerWith('token_user_2', token);
    assert.equal(second.status, 200, second.text);
    assert.equal((await validity(token)).body.valid, false);
    const third = await registerWith('token_user_3', token);
    assert.equal(third.status, 401);
    assert.equal(third.body.errcode, 'M_UNAUTHORIZED');
  });

  it('counts a token pending while a registration that passed the token stage is unfinished', async () => {
    // The session passes the token stage, then fails (the name was taken meanwhile): its claim
    // on the only use must hold, so no other registration can take it, and the same session
    // can still finish with another name without spending a second use.
    const { token } = await newToken({ uses_allowed: 1 });
    const anon = server.anon();
    const first = await anon.post(REGISTER, { username: 'raced_name', password: PASSWORD });
    await registerWithSharedSecret(server.baseUrl, 'raced_name', PASSWORD, false);
    const lost = await anon.post(REGISTER, { auth: { type: 'm.login.registration_token', token, session: first.body.session } });
    assert.equal(lost.status, 400, lost.text);
    assert.equal(lost.body.errcode, 'M_USER_IN_USE');
    assert.equal((await validity(token)).body.valid, false);
    const other = await registerWith('someone_else', token);
    assert.equal(other.status, 401);
    const retried = await anon.post(REGISTER, { username: 'raced_name_2', auth: { type: 'm.login.registration_token', token, session: first.body.session } });
    assert.equal(retried.status, 200, retried.text);
    assert.equal(retried.body.user_id, '@raced_name_2:localhost');
  });

  it('stops accepting a token after its expiry time', async () => {
    const { token } = await newToken({ expiry_time: Date.now() + 1500 });
    assert.equal((await validity(token)).body.valid, true);
    await new Promise((r) => setTimeout(r, 1700));
    assert.equal((await validity(token)).body.valid, false);
    const r = await registerWith('too_late', token);
    assert.equal(r.status, 401);
    assert.equal(r.body.errcode, 'M_UNAUTHORIZED');
  });
});
