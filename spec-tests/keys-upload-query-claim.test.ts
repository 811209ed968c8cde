import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestDevice } from './support/e2ee.js';
import { startTestServer, type TestServer } from './support/server.js';
import type { TestClient } from './support/client.js';

const UPLOAD = '/_matrix/client/v3/keys/upload';
const QUERY = '/_matrix/client/v3/keys/query';
const CLAIM = '/_matrix/client/v3/keys/claim';

describe('keys: upload, query, claim, changes', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  async function deviceWithKeys(client?: TestClient): Promise<TestDevice> {
    const device = new TestDevice(client ?? (await server.register()));
    const r = await device.upload({ device_keys: device.deviceKeys() });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return device;
  }

  const listPosition = async () => (await server.hs.services.keys.streamHeads()).deviceLists;
  // A sync token as /sync writes it (src/sync/token.ts), at the given device-list position.
  const tokenAt = (deviceLists: number) => `e0_r0_t0_a0_d0_l${deviceLists}_p0`;

  it('stores device keys and serves them, with the display name in unsigned, to any user', async () => {
    const alice = await deviceWithKeys();
    const bob = await server.register();
    await alice.client.put(`/_matrix/client/v3/devices/${alice.client.deviceId}`, { display_name: 'Alice phone' });
    const r = await bob.post(QUERY, { device_keys: { [alice.client.userId]: [] } });
    assert.equal(r.status, 200);
    const got = r.body.device_keys[alice.client.userId][alice.client.deviceId];
    const sent = alice.deviceKeys();
    assert.deepEqual(got.keys, sent.keys);
    assert.deepEqual(got.signatures, sent.signatures, 'signatures are kept as given');
    assert.equal(got.unsigned.device_display_name, 'Alice phone');
    assert.deepEqual(r.body.failures, {});
  });

  it('answers a query for named devices with only those that exist, and {} for a user without keys', async () => {
    const alice = await deviceWithKeys();
    const carol = await server.register();
    const r = await carol.post(QUERY, {
      device_keys: { [alice.client.userId]: [alice.client.deviceId, 'NOSUCHDEVICE'], [carol.userId]: [] },
    });
    assert.deepEqual(Object.keys(r.body.device_keys[alice.client.userId]), [alice.client.deviceId]);
    assert.deepEqual(r.body.device_keys[carol.userId], {});
  });

  it('reports users of other servers under failures', async () => {
    const alice = await server.register();
    const r = await alice.post(QUERY, { device_keys: { '@someone:remote.example': [] } });
    assert.equal(r.status, 200);
    assert.ok(r.body.failures['remote.example'], JSON.stringify(r.body));
    assert.equal(r.body.device_keys['@someone:remote.example'], undefined);
  });

  it("refuses device keys naming another user or another device (400 M_BAD_JSON)", async () => {
    const alice = new TestDevice(await server.register());
    const bob = await server.register();
    const otherUser = await alice.upload({ device_keys: { ...alice.deviceKeys(), user_id: bob.userId } });
    assert.equal(otherUser.status, 400);
    assert.equal(otherUser.body.errcode, 'M_BAD_JSON');
    const otherDevice = await alice.upload({ device_keys: { ...alice.deviceKeys(), device_id: 'OTHERDEVICE' } });
    assert.equal(otherDevice.status, 400);
    assert.equal(otherDevice.body.errcode, 'M_BAD_JSON');
    const q = await bob.post(QUERY, { device_keys: { [alice.client.userId]: [] } });
    assert.deepEqual(q.body.device_keys[alice.client.userId], {}, 'nothing was stored');
  });

  it('refuses new identity keys for an existing device but accepts the same upload again', async () => {
    const alice = await deviceWithKeys();
    const again = await alice.upload({ device_keys: alice.deviceKeys() });
    assert.equal(again.status, 200);
    const impostor = new TestDevice(alice.client);
    const r = await impostor.upload({ device_keys: impostor.deviceKeys() });
    assert.equal(r.status, 400);
    assert.equal(r.body.errcode, 'M_INVALID_PARAM');
    assert.match(r.body.error, /already exists/);
  });

  it('counts one-time keys, accepts the same key again and refuses a different key under an existing id', async () => {
    const alice = await deviceWithKeys();
    const keys = alice.oneTimeKeys(5);
    const first = await alice.upload({ one_time_keys: keys });
    assert.deepEqual(first.body.one_time_key_counts, { signed_curve25519: 5 });
    const same = await alice.upload({ one_time_keys: keys });
    assert.equal(same.status, 200);
    assert.equal(same.body.one_time_key_counts.signed_curve25519, 5);
    const different = await alice.upload({ one_time_keys: alice.oneTimeKeys(1) }); // AAAA0 again, new key
    assert.equal(different.status, 400);
    assert.equal(different.body.errcode, 'M_INVALID_PARAM');
    assert.match(different.body.error, /signed_curve25519:AAAA0 already exists/);
    const counts = await alice.upload({});
    assert.equal(counts.body.one_time_key_counts.signed_curve25519, 5, 'the refused upload stored nothing');
  });

  it('hands out one-time keys in upload order, each once, and then the fallback key', async () => {
    const alice = await deviceWithKeys();
    const bob = await server.register();
    const first = alice.oneTimeKeys(1, 'OLD');
    await alice.upload({ one_time_keys: first });
    const second = alice.oneTimeKeys(1, 'NEW');
    await alice.upload({ one_time_keys: second, fallback_keys: alice.fallbackKey('FB') });
    const claim = () => bob.post(CLAIM, { one_time_keys: { [alice.client.userId]: { [alice.client.deviceId]: 'signed_curve25519' } } });
    const c1 = (await claim()).body.one_time_keys[alice.client.userId][alice.client.deviceId];
    assert.deepEqual(c1, first);
    const c2 = (await claim()).body.one_time_keys[alice.client.userId][alice.client.deviceId];
    assert.deepEqual(c2, second);
    const fb = alice.fallbackKey('FB'); // ids match; the key itself was random: compare the id only
    for (let i = 0; i < 2; i++) {
      const c = (await claim()).body.one_time_keys[alice.client.userId][alice.client.deviceId];
      assert.deepEqual(Object.keys(c), Object.keys(fb), 'the fallback key stays until replaced');
      assert.equal(c['signed_curve25519:FB'].fallback, true);
    }
    const counts = await alice.upload({});
    assert.equal(counts.body.one_time_key_counts.signed_curve25519, 0);
  });

  it('marks the fallback key used, keeps the flag on a retried upload, and clears it for a new key', async () => {
    const alice = await deviceWithKeys();
    const bob = await server.register();
    const keys = server.hs.services.keys;
    const fb = alice.fallbackKey('F1');
    await alice.upload({ fallback_keys: fb });
    assert.deepEqual((await keys.syncKeyFigures(alice.client.userId, alice.client.deviceId)).fallback, ['signed_curve25519']);
    await bob.post(CLAIM, { one_time_keys: { [alice.client.userId]: { [alice.client.deviceId]: 'signed_curve25519' } } });
    assert.deepEqual((await keys.syncKeyFigures(alice.client.userId, alice.client.deviceId)).fallback, []);
    await alice.upload({ fallback_keys: fb });
    assert.deepEqual((await keys.syncKeyFigures(alice.client.userId, alice.client.deviceId)).fallback, [], 'same key: still used');
    await alice.upload({ fallback_keys: alice.fallbackKey('F2') });
    assert.deepEqual((await keys.syncKeyFigures(alice.client.userId, alice.client.deviceId)).fallback, ['signed_curve25519']);
  });

  it('refuses two fallback keys of one algorithm in one upload', async () => {
    const alice = await deviceWithKeys();
    const r = await alice.upload({ fallback_keys: { ...alice.fallbackKey('A'), ...alice.fallbackKey('B') } });
    assert.equal(r.status, 400);
    assert.equal(r.body.errcode, 'M_INVALID_PARAM');
  });

  it('never hands out a one-time key twice when 20 claims race for 10 keys', async () => {
    const alice = await deviceWithKeys();
    await alice.upload({ one_time_keys: alice.oneTimeKeys(10, 'RACE') });
    const claimers = await Promise.all(Array.from({ length: 4 }, () => server.register()));
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        claimers[i % claimers.length]!.post(CLAIM, { one_time_keys: { [alice.client.userId]: { [alice.client.deviceId]: 'signed_curve25519' } } }),
      ),
    );
    const handedOut: string[] = [];
    for (const r of results) {
      assert.equal(r.status, 200);
      const forDevice = r.body.one_time_keys[alice.client.userId]?.[alice.client.deviceId];
      if (forDevice) handedOut.push(...Object.keys(forDevice));
    }
    assert.equal(handedOut.length, 10, `expected exactly 10 keys handed out, got ${handedOut.length}`);
    assert.equal(new Set(handedOut).size, 10, 'no key was handed out twice');
    const counts = await alice.upload({});
    assert.equal(counts.body.one_time_key_counts.signed_curve25519, 0);
  });

  it('reports key changes between two sync tokens; a user sees their own changes', async () => {
    const alice = new TestDevice(await server.register());
    const bob = await server.register();
    const from = await listPosition();
    await alice.upload({ device_keys: alice.deviceKeys() });
    const to = await listPosition();
    assert.ok(to > from);
    const own = await alice.client.get(`/_matrix/client/v3/keys/changes?from=${tokenAt(from)}&to=${tokenAt(to)}`);
    assert.equal(own.status, 200);
    assert.ok(own.body.changed.includes(alice.client.userId));
    // Only users sharing a room see each other's changes; these two share none.
    const other = await bob.get(`/_matrix/client/v3/keys/changes?from=${tokenAt(from)}&to=${tokenAt(to)}`);
    assert.ok(!other.body.changed.includes(alice.client.userId));
    const before = await alice.client.get(`/_matrix/client/v3/keys/changes?from=${tokenAt(to)}&to=${tokenAt(to)}`);
    assert.deepEqual(before.body.changed, []);
  });

  it('deletes the keys of a deleted device and records the change', async () => {
    const alice = await deviceWithKeys();
    const login = await server.anon().post('/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: alice.client.userId },
      password: alice.client.password,
    });
    const second = new TestDevice(Object.assign(server.anon(), { token: login.body.access_token, userId: alice.client.userId, deviceId: login.body.device_id }));
    await second.upload({ device_keys: second.deviceKeys(), one_time_keys: second.oneTimeKeys(3) });
    const from = await listPosition();
    const del = await alice.client.post('/_matrix/client/v3/delete_devices', {
      devices: [second.client.deviceId],
      auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.client.userId }, password: alice.client.password },
    });
    assert.equal(del.status, 200, JSON.stringify(del.body));
    const q = await alice.client.post(QUERY, { device_keys: { [alice.client.userId]: [] } });
    assert.deepEqual(Object.keys(q.body.device_keys[alice.client.userId]), [alice.client.deviceId]);
    const claim = await alice.client.post(CLAIM, { one_time_keys: { [alice.client.userId]: { [second.client.deviceId]: 'signed_curve25519' } } });
    assert.deepEqual(claim.body.one_time_keys, {});
    const changes = await alice.client.get(`/_matrix/client/v3/keys/changes?from=${tokenAt(from)}`);
    assert.ok(changes.body.changed.includes(alice.client.userId));
    const rows = await server.hs.services.db.query('SELECT count(*)::int AS n FROM e2e_one_time_keys WHERE device_id = $1', [second.client.deviceId]);
    assert.equal(rows.rows[0].n, 0, 'one-time keys of the deleted device are gone from the database');
  });

  describe('unhappy paths', () => {
    it('answers 401 M_MISSING_TOKEN without a token', async () => {
      for (const path of [UPLOAD, QUERY, CLAIM]) {
        const r = await server.anon().post(path, {});
        assert.equal(r.status, 401);
        assert.equal(r.body.errcode, 'M_MISSING_TOKEN');
      }
      const r = await server.anon().get('/_matrix/client/v3/keys/changes?from=l0');
      assert.equal(r.status, 401);
    });

    it('answers M_NOT_JSON for a body that is not JSON', async () => {
      const alice = await server.register();
      const r = await alice.request('POST', UPLOAD, undefined, { raw: '{"device_keys":', headers: { 'Content-Type': 'application/json' } });
      assert.equal(r.status, 400);
      assert.equal(r.body.errcode, 'M_NOT_JSON');
    });

    it('answers 400 M_BAD_JSON for wrong types', async () => {
      const alice = new TestDevice(await server.register());
      const cases: [string, unknown][] = [
        [UPLOAD, { device_keys: [] }],
        [UPLOAD, { one_time_keys: { nocolon: 'abc' } }],
        [UPLOAD, { one_time_keys: { 'signed_curve25519:X': { key: 1 } } }],
        [UPLOAD, { device_keys: { ...alice.deviceKeys(), keys: { 'ed25519:X': 5 } } }],
        [QUERY, { device_keys: { [alice.client.userId]: 'all' } }],
        [CLAIM, { one_time_keys: { [alice.client.userId]: { DEV: 5 } } }],
      ];
      for (const [path, body] of cases) {
        const r = await alice.client.post(path, body);
        assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}`);
        assert.equal(r.body.errcode, 'M_BAD_JSON', `${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      }
    });

    it('answers M_MISSING_PARAM for missing required fields and M_INVALID_PARAM for bad ids and tokens', async () => {
      const alice = await server.register();
      assert.equal((await alice.post(QUERY, {})).body.errcode, 'M_MISSING_PARAM');
      assert.equal((await alice.post(CLAIM, {})).body.errcode, 'M_MISSING_PARAM');
      assert.equal((await alice.get('/_matrix/client/v3/keys/changes')).body.errcode, 'M_MISSING_PARAM');
      const badUser = await alice.post(QUERY, { device_keys: { 'not-a-user': [] } });
      assert.equal(badUser.status, 400);
      assert.equal(badUser.body.errcode, 'M_INVALID_PARAM');
      const badToken = await alice.get('/_matrix/client/v3/keys/changes?from=garbage!&to=l1');
      assert.equal(badToken.status, 400);
      assert.equal(badToken.body.errcode, 'M_INVALID_PARAM');
    });
  });
});
