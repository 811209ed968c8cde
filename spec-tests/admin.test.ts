// The Synapse-compatible admin API: shared-secret registration (so register_new_matrix_user and
// other admin tools work unchanged) and server_version.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { registerWithSharedSecret, sharedSecretMac, TEST_SHARED_SECRET } from './support/admin.js';
import { startTestServer, type TestServer } from './support/server.js';

const REGISTER = '/_synapse/admin/v1/register';

describe('shared-secret registration', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  const nonce = async () => {
    const r = await server.anon().get(REGISTER);
    assert.equal(r.status, 200);
    return r.body.nonce as string;
  };

  it('hands out a fresh nonce each time', async () => {
    const a = await nonce();
    const b = await nonce();
    assert.equal(typeof a, 'string');
    assert.ok(a.length >= 16);
    assert.notEqual(a, b);
  });

  it('computes the MAC as Synapse documents it (a fixed vector)', () => {
    // HMAC-SHA1(key, "abcd\0bob\0hunter2\0notadmin"), computed independently of the helper.
    const expected = createHmac('sha1', 'secret').update('abcd\x00bob\x00hunter2\x00notadmin').digest('hex');
    assert.equal(sharedSecretMac('secret', 'abcd', 'bob', 'hunter2', false), expected);
    assert.equal(
      sharedSecretMac('secret', 'abcd', 'bob', 'hunter2', true, 'bot'),
      createHmac('sha1', 'secret').update('abcd\x00bob\x00hunter2\x00admin\x00bot').digest('hex'),
    );
  });

  it('registers a user with a correct MAC and logs it in', async () => {
    const n = await nonce();
    const r = await server.anon().post(REGISTER, {
      nonce: n,
      username: 'shared_bob',
      password: 'bob password',
      admin: false,
      mac: sharedSecretMac(TEST_SHARED_SECRET, n, 'shared_bob', 'bob password', false),
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.user_id, '@shared_bob:localhost');
    assert.equal(r.body.home_server, 'localhost');
    assert.equal(typeof r.body.device_id, 'string');
    const who = await server.anon().get('/_matrix/client/v3/account/whoami', { token: r.body.access_token });
    assert.equal(who.body.user_id, '@shared_bob:localhost');
    const login = await server.anon().post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'shared_bob', password: 'bob password' });
    assert.equal(login.status, 200);
  });

  it('makes admins when admin is true (and the MAC says "admin")', async () => {
    const admin = await registerWithSharedSecret(server.baseUrl, 'shared_admin', 'pw', true);
    const plain = await registerWithSharedSecret(server.baseUrl, 'shared_plain', 'pw', false);
    // Only an admin may mint registration tokens: a direct probe of the admin flag.
    assert.equal((await admin.post('/_synapse/admin/v1/registration_tokens/new', {})).status, 200);
    assert.equal((await plain.post('/_synapse/admin/v1/registration_tokens/new', {})).status, 403);
  });

  it('covers user_type in the MAC when given', async () => {
    const n = await nonce();
    const r = await server.anon().post(REGISTER, {
      nonce: n,
      username: 'typed_user',
      password: 'pw',
      user_type: 'bot',
      mac: sharedSecretMac(TEST_SHARED_SECRET, n, 'typed_user', 'pw', false, 'bot'),
    });
    assert.equal(r.status, 200, r.text);
  });

  it('refuses a wrong MAC with 403 M_FORBIDDEN', async () => {
    for (const mac of [
      sharedSecretMac('not the secret', '', 'x', 'y', false),
      // Right secret, but the MAC claims notadmin while the request asks for admin.
      'ADMIN',
      '00',
    ]) {
      const n = await nonce();
      const body = {
        nonce: n,
        username: 'mallory',
        password: 'pw',
        admin: true,
        mac: mac === 'ADMIN' ? sharedSecretMac(TEST_SHARED_SECRET, n, 'mallory', 'pw', false) : mac,
      };
      const r = await server.anon().post(REGISTER, body);
      assert.equal(r.status, 403, r.text);
      assert.equal(r.body.errcode, 'M_FORBIDDEN');
    }
    const login = await server.anon().post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'mallory', password: 'pw' });
    assert.equal(login.status, 403);
  });

  it('refuses a reused nonce and an unknown one', async () => {
    const n = await nonce();
    const body = { nonce: n, username: 'nonce_user', password: 'pw', mac: sharedSecretMac(TEST_SHARED_SECRET, n, 'nonce_user', 'pw', false) };
    assert.equal((await server.anon().post(REGISTER, body)).status, 200);
    const replay = await server.anon().post(REGISTER, { ...body, username: 'nonce_user', mac: body.mac });
    assert.equal(replay.status, 400);
    const unknown = await server.anon().post(REGISTER, { ...body, nonce: 'made-up', mac: sharedSecretMac(TEST_SHARED_SECRET, 'made-up', 'nonce_user', 'pw', false) });
    assert.equal(unknown.status, 400);
  });

  it('burns a nonce even when its MAC was wrong (no guessing against one nonce)', async () => {
    const n = await nonce();
    const bad = await server.anon().post(REGISTER, { nonce: n, username: 'burnt', password: 'pw', mac: '00' });
    assert.equal(bad.status, 403);
    const good = await server.anon().post(REGISTER, { nonce: n, username: 'burnt', password: 'pw', mac: sharedSecretMac(TEST_SHARED_SECRET, n, 'burnt', 'pw', false) });
    assert.equal(good.status, 400);
  });

  it('applies the username rules and refuses taken names', async () => {
    const n1 = await nonce();
    const invalid = await server.anon().post(REGISTER, { nonce: n1, username: 'bad name', password: 'pw', mac: sharedSecretMac(TEST_SHARED_SECRET, n1, 'bad name', 'pw', false) });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.errcode, 'M_INVALID_USERNAME');
    await server.register('taken_by_uia');
    const n2 = await nonce();
    const taken = await server.anon().post(REGISTER, { nonce: n2, username: 'taken_by_uia', password: 'pw', mac: sharedSecretMac(TEST_SHARED_SECRET, n2, 'taken_by_uia', 'pw', false) });
    assert.equal(taken.status, 400);
    assert.equal(taken.body.errcode, 'M_USER_IN_USE');
  });

  it('answers missing fields with 400, never 500', async () => {
    const r = await server.anon().post(REGISTER, { username: 'x' });
    assert.equal(r.status, 400);
    assert.equal(r.body.errcode, 'M_MISSING_PARAM');
    const wrongType = await server.anon().post(REGISTER, { nonce: 1, username: 'x', password: 'y', mac: 'zz' });
    assert.equal(wrongType.status, 400);
  });

  it('serves server_version', async () => {
    const r = await server.anon().get('/_synapse/admin/v1/server_version');
    assert.equal(r.status, 200);
    assert.equal(typeof r.body.server_version, 'string');
    assert.ok(r.body.server_version.length > 0);
  });
});

describe('shared-secret registration without a secret', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ registration: { enabled: true, require_token: false, allow_guests: false } });
  });
  after(() => server.stop());

  it('is refused with 400 on both methods', async () => {
    const get = await server.anon().get(REGISTER);
    assert.equal(get.status, 400);
    const post = await server.anon().post(REGISTER, { nonce: 'n', username: 'u', password: 'p', mac: sharedSecretMac('', 'n', 'u', 'p', false) });
    assert.equal(post.status, 400);
  });
});
