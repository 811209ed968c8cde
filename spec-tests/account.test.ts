// Password change, deactivation, devices and profiles (spec: client-server-api "Account
// management", "Device management", "Profiles"), each behind UIA where the spec puts it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestClient } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';

const WHOAMI = '/_matrix/client/v3/account/whoami';

describe('account management', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  const login = (user: string, password: string, extra: Record<string, unknown> = {}) =>
    server.anon().post('/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password, ...extra });
  const passwordAuth = (c: TestClient, session: string, password = c.password) => ({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: c.userId },
    password,
    session,
  });

  describe('POST /account/password', () => {
    it('asks for m.login.password first', async () => {
      const c = await server.register();
      const r = await c.post('/_matrix/client/v3/account/password', { new_password: 'new one' });
      assert.equal(r.status, 401);
      assert.deepEqual(r.body.flows, [{ stages: ['m.login.password'] }]);
      assert.equal(typeof r.body.session, 'string');
    });

    it('refuses a wrong current password with 401 M_FORBIDDEN and keeps the old password', async () => {
      const c = await server.register();
      const first = await c.post('/_matrix/client/v3/account/password', { new_password: 'new one' });
      const r = await c.post('/_matrix/client/v3/account/password', { new_password: 'new one', auth: passwordAuth(c, first.body.session, 'wrong') });
      assert.equal(r.status, 401);
      assert.equal(r.body.errcode, 'M_FORBIDDEN');
      assert.equal(r.body.session, first.body.session);
      assert.equal((await login(c.userId, c.password)).status, 200);
      assert.equal((await login(c.userId, 'new one')).status, 403);
    });

    it('refuses to authenticate as another user', async () => {
      const c = await server.register();
      const other = await server.register();
      const first = await c.post('/_matrix/client/v3/account/password', { new_password: 'new one' });
      const r = await c.post('/_matrix/client/v3/account/password', {
        new_password: 'new one',
        auth: { ...passwordAuth(other, first.body.session) },
      });
      assert.equal(r.status, 401);
      assert.equal(r.body.errcode, 'M_FORBIDDEN');
    });

    it('changes the password and logs out the other devices', async () => {
      const c = await server.register();
      const other = (await login(c.userId, c.password)).body;
      const first = await c.post('/_matrix/client/v3/account/password', { new_password: 'brand new' });
      const r = await c.post('/_matrix/client/v3/account/password', { new_password: 'brand new', auth: passwordAuth(c, first.body.session) });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, {});
      assert.equal((await c.get(WHOAMI)).status, 200, 'the device that changed it stays logged in');
      const gone = await server.anon().get(WHOAMI, { token: other.access_token });
      assert.equal(gone.status, 401);
      assert.equal(gone.body.errcode, 'M_UNKNOWN_TOKEN');
      assert.equal((await login(c.userId, c.password)).status, 403);
      assert.equal((await login(c.userId, 'brand new')).status, 200);
    });

    it('keeps the other devices with logout_devices: false', async () => {
      const c = await server.register();
      const other = (await login(c.userId, c.password)).body;
      const first = await c.post('/_matrix/client/v3/account/password', { new_password: 'kept', logout_devices: false });
      const r = await c.post('/_matrix/client/v3/account/password', { new_password: 'kept', logout_devices: false, auth: passwordAuth(c, first.body.session) });
      assert.equal(r.status, 200);
      assert.equal((await server.anon().get(WHOAMI, { token: other.access_token })).status, 200);
    });

    it('refuses a session started for another operation', async () => {
      const c = await server.register();
      const started = await c.post('/_matrix/client/v3/account/deactivate', {});
      const r = await c.post('/_matrix/client/v3/account/password', { new_password: 'x', auth: passwordAuth(c, started.body.session) });
      assert.equal(r.status, 403);
      assert.equal((await login(c.userId, c.password)).status, 200);
    });

    it('requires new_password', async () => {
      const c = await server.register();
      const r = await c.post('/_matrix/client/v3/account/password', {});
      assert.equal(r.status, 400);
      assert.equal(r.body.errcode, 'M_MISSING_PARAM');
    });
  });

  describe('POST /account/deactivate', () => {
    it('asks for the password, then revokes every token; the name is never reusable', async () => {
      const c = await server.register('leaving');
      const second = (await login(c.userId, c.password)).body;
      const first = await c.post('/_matrix/client/v3/account/deactivate', {});
      assert.equal(first.status, 401);
      assert.deepEqual(first.body.flows, [{ stages: ['m.login.password'] }]);
      const wrong = await c.post('/_matrix/client/v3/account/deactivate', { auth: passwordAuth(c, first.body.session, 'nope') });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.errcode, 'M_FORBIDDEN');
      assert.equal((await c.get(WHOAMI)).status, 200);

      const r = await c.post('/_matrix/client/v3/account/deactivate', { auth: passwordAuth(c, first.body.session) });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.id_server_unbind_result, 'no-support');
      for (const token of [c.token!, second.access_token]) {
        const who = await server.anon().get(WHOAMI, { token });
        assert.equal(who.status, 401);
        assert.equal(who.body.errcode, 'M_UNKNOWN_TOKEN');
      }
      assert.equal((await login(c.userId, c.password)).status, 403);
      const again = await server.anon().post('/_matrix/client/v3/register', { username: 'leaving', password: 'x', auth: { type: 'm.login.dummy' } });
      assert.equal(again.status, 400);
      assert.equal(again.body.errcode, 'M_USER_IN_USE');
      const available = await server.anon().get('/_matrix/client/v3/register/available?username=leaving');
      assert.equal(available.body.errcode, 'M_USER_IN_USE');
      const profile = await server.anon().get(`/_matrix/client/v3/profile/${encodeURIComponent(c.userId)}`);
      assert.equal(profile.status, 404);
    });
  });

  describe('devices', () => {
    it('lists, gets and renames devices', async () => {
      const c = await server.register();
      const other = (await login(c.userId, c.password, { device_id: 'SECONDDEV', initial_device_display_name: 'Second' })).body;
      const list = await c.get('/_matrix/client/v3/devices');
      assert.equal(list.status, 200);
      const ids = list.body.devices.map((d: { device_id: string }) => d.device_id).sort();
      assert.deepEqual(ids, [c.deviceId, 'SECONDDEV'].sort());
      // The caller's own device has been seen (it made this request).
      const mine = list.body.devices.find((d: { device_id: string }) => d.device_id === c.deviceId);
      assert.ok(typeof mine.last_seen_ts === 'number' && mine.last_seen_ts > 0);

      const got = await c.get('/_matrix/client/v3/devices/SECONDDEV');
      assert.equal(got.status, 200);
      assert.equal(got.body.device_id, 'SECONDDEV');
      assert.equal(got.body.display_name, 'Second');

      const put = await c.put('/_matrix/client/v3/devices/SECONDDEV', { display_name: 'Renamed' });
      assert.equal(put.status, 200);
      assert.equal((await c.get('/_matrix/client/v3/devices/SECONDDEV')).body.display_name, 'Renamed');
      // The spec: without display_name, the name is unchanged.
      assert.equal((await c.put('/_matrix/client/v3/devices/SECONDDEV', {})).status, 200);
      assert.equal((await c.get('/_matrix/client/v3/devices/SECONDDEV')).body.display_name, 'Renamed');
      assert.ok(other.access_token);
    });

    it('answers an unknown device (or another user’s) with 404 M_NOT_FOUND', async () => {
      const c = await server.register();
      const stranger = await server.register();
      for (const id of ['NOSUCHDEV', stranger.deviceId]) {
        const got = await c.get(`/_matrix/client/v3/devices/${id}`);
        assert.equal(got.status, 404);
        assert.equal(got.body.errcode, 'M_NOT_FOUND');
        const put = await c.put(`/_matrix/client/v3/devices/${id}`, { display_name: 'x' });
        assert.equal(put.status, 404);
        assert.equal(put.body.errcode, 'M_NOT_FOUND');
      }
      assert.equal((await stranger.get(WHOAMI)).status, 200);
    });

    it('rejects a display name of the wrong type', async () => {
      const c = await server.register();
      const r = await c.put(`/_matrix/client/v3/devices/${c.deviceId}`, { display_name: 5 });
      assert.equal(r.status, 400);
      assert.equal(r.body.errcode, 'M_BAD_JSON');
    });

    it('deletes a device behind UIA and revokes its token', async () => {
      const c = await server.register();
      const other = (await login(c.userId, c.password)).body;
      const first = await c.delete(`/_matrix/client/v3/devices/${other.device_id}`);
      assert.equal(first.status, 401);
      assert.deepEqual(first.body.flows, [{ stages: ['m.login.password'] }]);
      assert.equal((await server.anon().get(WHOAMI, { token: other.access_token })).status, 200);
      const wrong = await c.delete(`/_matrix/client/v3/devices/${other.device_id}`, { auth: passwordAuth(c, first.body.session, 'bad') });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.errcode, 'M_FORBIDDEN');
      const r = await c.delete(`/_matrix/client/v3/devices/${other.device_id}`, { auth: passwordAuth(c, first.body.session) });
      assert.equal(r.status, 200, r.text);
      const who = await server.anon().get(WHOAMI, { token: other.access_token });
      assert.equal(who.status, 401);
      assert.equal(who.body.errcode, 'M_UNKNOWN_TOKEN');
      assert.equal((await c.get(`/_matrix/client/v3/devices/${other.device_id}`)).status, 404);
      assert.equal((await c.get(WHOAMI)).status, 200);
    });

    it('deletes several devices with /delete_devices behind UIA', async () => {
      const c = await server.register();
      const a = (await login(c.userId, c.password)).body;
      const b = (await login(c.userId, c.password)).body;
      const first = await c.post('/_matrix/client/v3/delete_devices', { devices: [a.device_id, b.device_id] });
      assert.equal(first.status, 401);
      const r = await c.post('/_matrix/client/v3/delete_devices', { devices: [a.device_id, b.device_id, 'UNKNOWNDEV'], auth: passwordAuth(c, first.body.session) });
      assert.equal(r.status, 200, r.text);
      for (const s of [a, b]) assert.equal((await server.anon().get(WHOAMI, { token: s.access_token })).status, 401);
      const left = (await c.get('/_matrix/client/v3/devices')).body.devices.map((d: { device_id: string }) => d.device_id);
      assert.deepEqual(left, [c.deviceId]);
      const missing = await c.post('/_matrix/client/v3/delete_devices', {});
      assert.equal(missing.status, 400);
      assert.equal(missing.body.errcode, 'M_MISSING_PARAM');
    });

    it('requires a token for every device endpoint', async () => {
      for (const [method, path] of [
        ['GET', '/_matrix/client/v3/devices'],
        ['GET', '/_matrix/client/v3/devices/X'],
        ['PUT', '/_matrix/client/v3/devices/X'],
        ['DELETE', '/_matrix/client/v3/devices/X'],
        ['POST', '/_matrix/client/v3/delete_devices'],
      ] as const) {
        const r = await server.anon().request(method, path, method === 'GET' ? undefined : {});
        // (Token errors are checked against the standard error schema, not the UIA one: see openapi.ts.)
        assert.equal(r.status, 401, `${method} ${path}`);
        assert.equal(r.body.errcode, 'M_MISSING_TOKEN');
      }
    });
  });

  describe('profiles', () => {
    it('starts with the localpart as display name and no avatar', async () => {
      const c = await server.register('profiled');
      const r = await server.anon().get(`/_matrix/client/v3/profile/${encodeURIComponent(c.userId)}`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { displayname: 'profiled' });
      const avatar = await server.anon().get(`/_matrix/client/v3/profile/${encodeURIComponent(c.userId)}/avatar_url`);
      assert.equal(avatar.status, 200);
      assert.deepEqual(avatar.body, {});
    });

    it('sets and reads back the display name and avatar', async () => {
      const c = await server.register();
      const uid = encodeURIComponent(c.userId);
      assert.equal((await c.put(`/_matrix/client/v3/profile/${uid}/displayname`, { displayname: 'Alice W.' })).status, 200);
      assert.equal((await c.put(`/_matrix/client/v3/profile/${uid}/avatar_url`, { avatar_url: 'mxc://localhost/abc' })).status, 200);
      assert.deepEqual((await server.anon().get(`/_matrix/client/v3/profile/${uid}/displayname`)).body, { displayname: 'Alice W.' });
      assert.deepEqual((await server.anon().get(`/_matrix/client/v3/profile/${uid}/avatar_url`)).body, { avatar_url: 'mxc://localhost/abc' });
      assert.deepEqual((await server.anon().get(`/_matrix/client/v3/profile/${uid}`)).body, { displayname: 'Alice W.', avatar_url: 'mxc://localhost/abc' });
      // r0 serves the same.
      assert.deepEqual((await server.anon().get(`/_matrix/client/r0/profile/${uid}/displayname`)).body, { displayname: 'Alice W.' });
    });

    it("refuses to change another user's profile with M_FORBIDDEN", async () => {
      const c = await server.register();
      const victim = await server.register();
      const r = await c.put(`/_matrix/client/v3/profile/${encodeURIComponent(victim.userId)}/displayname`, { displayname: 'pwned' });
      assert.equal(r.status, 403);
      assert.equal(r.body.errcode, 'M_FORBIDDEN');
      const a = await c.put(`/_matrix/client/v3/profile/${encodeURIComponent(victim.userId)}/avatar_url`, { avatar_url: 'mxc://localhost/x' });
      assert.equal(a.status, 403);
      assert.equal(a.body.errcode, 'M_FORBIDDEN');
      assert.equal((await server.anon().get(`/_matrix/client/v3/profile/${encodeURIComponent(victim.userId)}/displayname`)).body.displayname, victim.userId.slice(1).split(':')[0]);
    });

    it('answers an unknown user with 404 M_NOT_FOUND', async () => {
      for (const suffix of ['', '/displayname', '/avatar_url']) {
        const r = await server.anon().get(`/_matrix/client/v3/profile/${encodeURIComponent('@nobody:localhost')}${suffix}`);
        assert.equal(r.status, 404, suffix);
        assert.equal(r.body.errcode, 'M_NOT_FOUND');
      }
    });

    it('requires a token to set and rejects bad values with 400', async () => {
      const c = await server.register();
      const uid = encodeURIComponent(c.userId);
      const anon = await server.anon().put(`/_matrix/client/v3/profile/${uid}/displayname`, { displayname: 'x' });
      assert.equal(anon.status, 401);
      const missing = await c.put(`/_matrix/client/v3/profile/${uid}/displayname`, {});
      assert.equal(missing.status, 400);
      assert.equal(missing.body.errcode, 'M_MISSING_PARAM');
      const wrongType = await c.put(`/_matrix/client/v3/profile/${uid}/displayname`, { displayname: 12 });
      assert.equal(wrongType.status, 400);
      const tooLong = await c.put(`/_matrix/client/v3/profile/${uid}/displayname`, { displayname: 'x'.repeat(300) });
      assert.equal(tooLong.status, 400);
      const notMxc = await c.put(`/_matrix/client/v3/profile/${uid}/avatar_url`, { avatar_url: 'https://example.com/a.png' });
      assert.equal(notMxc.status, 400);
      assert.equal((await server.anon().get(`/_matrix/client/v3/profile/${uid}/displayname`)).body.displayname, c.userId.slice(1).split(':')[0]);
    });
  });
});

describe('UIA sessions', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it("cannot be continued by another user on the same endpoint", async () => {
    const alice = await server.register();
    const mallory = await server.register();
    const started = await alice.post('/_matrix/client/v3/delete_devices', { devices: [] });
    assert.equal(started.status, 401);
    const r = await mallory.post('/_matrix/client/v3/delete_devices', {
      devices: [mallory.deviceId],
      auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.userId }, password: alice.password, session: started.body.session },
    });
    assert.equal(r.status, 403);
    assert.equal(r.body.errcode, 'M_FORBIDDEN');
    assert.equal((await mallory.get(WHOAMI)).status, 200);
  });
});
