import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { crossSigningKeys, sign, TestDevice, type CrossSigning } from './support/e2ee.js';
import { startTestServer, type TestServer } from './support/server.js';
import type { TestClient } from './support/client.js';

const DEVICE_SIGNING = '/_matrix/client/v3/keys/device_signing/upload';
const SIGNATURES = '/_matrix/client/v3/keys/signatures/upload';
const QUERY = '/_matrix/client/v3/keys/query';

function passwordAuth(client: TestClient, session?: string) {
  return {
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: client.userId },
    password: client.password,
    ...(session ? { session } : {}),
  };
}

describe('keys: cross-signing', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  /** A user with device keys uploaded and cross-signing set up (first upload: no UIA). */
  async function setUp(): Promise<{ device: TestDevice; cs: CrossSigning }> {
    const device = new TestDevice(await server.register());
    assert.equal((await device.upload({ device_keys: device.deviceKeys() })).status, 200);
    const cs = crossSigningKeys(device.client.userId);
    const r = await device.client.post(DEVICE_SIGNING, cs.body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return { device, cs };
  }

  const listPosition = async () => (await server.hs.services.keys.streamHeads()).deviceLists;

  it('accepts the first upload without UIA and serves user_signing keys only to their owner', async () => {
    const { device: alice, cs } = await setUp();
    const bob = await server.register();
    const own = await alice.client.post(QUERY, { device_keys: { [alice.client.userId]: [] } });
    assert.deepEqual(own.body.master_keys[alice.client.userId], cs.body.master_key);
    assert.deepEqual(own.body.self_signing_keys[alice.client.userId], cs.body.self_signing_key);
    assert.deepEqual(own.body.user_signing_keys[alice.client.userId], cs.body.user_signing_key);
    const other = await bob.post(QUERY, { device_keys: { [alice.client.userId]: [] } });
    assert.deepEqual(other.body.master_keys[alice.client.userId], cs.body.master_key);
    assert.deepEqual(other.body.self_signing_keys[alice.client.userId], cs.body.self_signing_key);
    assert.equal(other.body.user_signing_keys?.[alice.client.userId], undefined);
  });

  it('requires UIA with m.login.password to replace keys, and not to repeat the same upload', async () => {
    const { device: alice, cs } = await setUp();
    const same = await alice.client.post(DEVICE_SIGNING, cs.body);
    assert.equal(same.status, 200, 'a retried identical upload needs no UIA');

    const next = crossSigningKeys(alice.client.userId);
    const challenge = await alice.client.post(DEVICE_SIGNING, next.body);
    assert.equal(challenge.status, 401);
    assert.deepEqual(challenge.body.flows, [{ stages: ['m.login.password'] }]);
    const wrong = await alice.client.post(DEVICE_SIGNING, {
      ...next.body,
      auth: { ...passwordAuth(alice.client, challenge.body.session), password: 'wrong' },
    });
    assert.equal(wrong.status, 401);
    let q = await alice.client.post(QUERY, { device_keys: { [alice.client.userId]: [] } });
    assert.deepEqual(q.body.master_keys[alice.client.userId], cs.body.master_key, 'unchanged without authentication');

    const done = await alice.client.post(DEVICE_SIGNING, { ...next.body, auth: passwordAuth(alice.client, challenge.body.session) });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    q = await alice.client.post(QUERY, { device_keys: { [alice.client.userId]: [] } });
    assert.deepEqual(q.body.master_keys[alice.client.userId], next.body.master_key);
  });

  it('lets only one of two racing first uploads skip UIA', async () => {
    const alice = await server.register();
    const [one, two] = [crossSigningKeys(alice.userId), crossSigningKeys(alice.userId)];
    const results = await Promise.all([alice.post(DEVICE_SIGNING, one.body), alice.post(DEVICE_SIGNING, two.body)]);
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 401]);
    const winner = results[0]!.status === 200 ? one : two;
    const q = await alice.post(QUERY, { device_keys: { [alice.userId]: [] } });
    assert.deepEqual(q.body.master_keys[alice.userId], winner.body.master_key);
  });

  it('refuses a cross-signing key equal to one of the user\'s device ids (403)', async () => {
    const alice = await server.register();
    const cs = crossSigningKeys(alice.userId);
    // A device whose id is the master public key: verification would confuse the two.
    const login = await server.anon().post('/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: alice.userId },
      password: alice.password,
      device_id: cs.master.publicKey,
    });
    assert.equal(login.status, 200);
    const r = await alice.post(DEVICE_SIGNING, cs.body);
    assert.equal(r.status, 403);
    assert.equal(r.body.errcode, 'M_FORBIDDEN');
  });

  it('records a change visible to everyone for master keys and only to the owner for user-signing keys', async () => {
    const alice = await server.register();
    const from = await listPosition();
    const cs = crossSigningKeys(alice.userId);
    await alice.post(DEVICE_SIGNING, cs.body);
    const rows = await server.hs.services.db.query(
      'SELECT visible_to FROM e2e_device_list_changes WHERE user_id = $1 AND stream_id > $2',
      [alice.userId, from],
    );
    const visibility = rows.rows.map((r: { visible_to: string | null }) => r.visible_to).sort();
    assert.deepEqual(visibility, [alice.userId, null]);
  });

  it('refuses badly signed, malformed or orphaned cross-signing keys', async () => {
    const alice = await server.register();
    const cs = crossSigningKeys(alice.userId);
    const other = crossSigningKeys(alice.userId);

    const noMaster = await alice.post(DEVICE_SIGNING, { self_signing_key: cs.body.self_signing_key });
    assert.equal(noMaster.status, 400);
    assert.equal(noMaster.body.errcode, 'M_MISSING_PARAM');

    // A self-signing key signed by a different master key than the one uploaded with it.
    const badSig = await alice.post(DEVICE_SIGNING, { master_key: cs.body.master_key, self_signing_key: other.body.self_signing_key });
    assert.equal(badSig.status, 400);
    assert.equal(badSig.body.errcode, 'M_INVALID_SIGNATURE');

    const wrongUser = await alice.post(DEVICE_SIGNING, { master_key: { ...cs.body.master_key, user_id: '@mallory:localhost' } });
    assert.equal(wrongUser.status, 400);
    assert.equal(wrongUser.body.errcode, 'M_INVALID_PARAM');

    const wrongUsage = await alice.post(DEVICE_SIGNING, { master_key: { ...cs.body.master_key, usage: ['self_signing'] } });
    assert.equal(wrongUsage.body.errcode, 'M_INVALID_PARAM');

    const twoKeys = await alice.post(DEVICE_SIGNING, {
      master_key: { ...cs.body.master_key, keys: { ...cs.body.master_key.keys, ...other.body.master_key.keys } },
    });
    assert.equal(twoKeys.body.errcode, 'M_INVALID_PARAM');

    const wrongType = await alice.post(DEVICE_SIGNING, { master_key: 'abc' });
    assert.equal(wrongType.status, 400);
    assert.equal(wrongType.body.errcode, 'M_BAD_JSON');

    const q = await alice.post(QUERY, { device_keys: { [alice.userId]: [] } });
    assert.equal(q.body.master_keys?.[alice.userId], undefined, 'nothing was stored');
  });

  it('stores a valid self-signing signature on an own device and serves it with the device', async () => {
    const { device: alice, cs } = await setUp();
    const sskId = `ed25519:${cs.selfSigning.publicKey}`;
    const signed = sign(alice.deviceKeys(), alice.client.userId, sskId, cs.selfSigning);
    const r = await alice.client.post(SIGNATURES, { [alice.client.userId]: { [alice.client.deviceId]: signed } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.failures, {});
    const bob = await server.register();
    const q = await bob.post(QUERY, { device_keys: { [alice.client.userId]: [] } });
    const device = q.body.device_keys[alice.client.userId][alice.client.deviceId];
    assert.equal(device.signatures[alice.client.userId][sskId], signed.signatures[alice.client.userId][sskId]);
    assert.equal(device.signatures[alice.client.userId][alice.keyId], alice.deviceKeys().signatures[alice.client.userId][alice.keyId]);
  });

  it('reports per-key failures for bad signatures and stores the good ones of the same request', async () => {
    const { device: alice, cs } = await setUp();
    const sskId = `ed25519:${cs.selfSigning.publicKey}`;
    const masterPub = cs.master.publicKey;
    // Signed with the wrong key (the user-signing key under the self-signing key's id).
    const forged = sign(alice.deviceKeys(), alice.client.userId, sskId, cs.userSigning);
    // The master key signed by the device: valid.
    const masterSigned = sign(cs.body.master_key, alice.client.userId, alice.keyId, alice.ed);
    // A device object that does not match what was uploaded.
    const tampered = sign({ ...alice.deviceKeys(), algorithms: ['m.megolm.v1.aes-sha2'] }, alice.client.userId, sskId, cs.selfSigning);
    const r = await alice.client.post(SIGNATURES, {
      [alice.client.userId]: { [alice.client.deviceId]: forged, [masterPub]: masterSigned, NOSUCHDEVICE: forged },
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.failures[alice.client.userId][alice.client.deviceId].errcode, 'M_INVALID_SIGNATURE');
    assert.ok(r.body.failures[alice.client.userId].NOSUCHDEVICE);
    assert.equal(r.body.failures[alice.client.userId][masterPub], undefined);
    const t = await alice.client.post(SIGNATURES, { [alice.client.userId]: { [alice.client.deviceId]: tampered } });
    assert.equal(t.body.failures[alice.client.userId][alice.client.deviceId].errcode, 'M_INVALID_PARAM');

    const bob = await server.register();
    const q = await bob.post(QUERY, { device_keys: { [alice.client.userId]: [] } });
    const device = q.body.device_keys[alice.client.userId][alice.client.deviceId];
    assert.equal(device.signatures[alice.client.userId][sskId], undefined, 'the forged signature was not stored');
    assert.equal(
      q.body.master_keys[alice.client.userId].signatures[alice.client.userId][alice.keyId],
      masterSigned.signatures[alice.client.userId][alice.keyId],
      "a device's signature on its own master key is visible to others",
    );
  });

  it("shows a signature on another user's master key to the signer only", async () => {
    const { device: alice, cs: aliceCs } = await setUp();
    const { device: bob, cs: bobCs } = await setUp();
    const carol = await server.register();
    const uskId = `ed25519:${aliceCs.userSigning.publicKey}`;
    const signed = sign(bobCs.body.master_key, alice.client.userId, uskId, aliceCs.userSigning);
    const from = await listPosition();
    const r = await alice.client.post(SIGNATURES, { [bob.client.userId]: { [bobCs.master.publicKey]: signed } });
    assert.deepEqual(r.body.failures, {});

    const byAlice = await alice.client.post(QUERY, { device_keys: { [bob.client.userId]: [] } });
    assert.equal(byAlice.body.master_keys[bob.client.userId].signatures[alice.client.userId][uskId], signed.signatures[alice.client.userId][uskId]);
    for (const viewer of [bob.client, carol]) {
      const q = await viewer.post(QUERY, { device_keys: { [bob.client.userId]: [] } });
      assert.equal(q.body.master_keys[bob.client.userId].signatures?.[alice.client.userId], undefined, `hidden from ${viewer.userId}`);
    }

    // The change is Alice's to see: Bob in her /keys/changes, in nobody else's.
    const token = (n: number) => `e0_r0_t0_a0_d0_l${n}_p0`;
    const now = await listPosition();
    const mine = await alice.client.get(`/_matrix/client/v3/keys/changes?from=${token(from)}&to=${token(now)}`);
    assert.ok(mine.body.changed.includes(bob.client.userId));
    const theirs = await carol.get(`/_matrix/client/v3/keys/changes?from=${token(from)}&to=${token(now)}`);
    assert.ok(!theirs.body.changed.includes(bob.client.userId));
  });

  it("refuses to sign another user's key that is not their master key, or without a user-signing key", async () => {
    const { device: alice, cs: aliceCs } = await setUp();
    const { device: bob, cs: bobCs } = await setUp();
    const uskId = `ed25519:${aliceCs.userSigning.publicKey}`;
    const device = sign(bob.deviceKeys(), alice.client.userId, uskId, aliceCs.userSigning);
    const r = await alice.client.post(SIGNATURES, { [bob.client.userId]: { [bob.client.deviceId]: device } });
    assert.ok(r.body.failures[bob.client.userId][bob.client.deviceId]);

    const dave = await server.register();
    const noUsk = await dave.post(SIGNATURES, {
      [bob.client.userId]: { [bobCs.master.publicKey]: sign(bobCs.body.master_key, dave.userId, 'ed25519:whatever', aliceCs.userSigning) },
    });
    assert.ok(noUsk.body.failures[bob.client.userId][bobCs.master.publicKey]);
  });

  it('answers 400 for a malformed signatures body and 401 without a token', async () => {
    const alice = await server.register();
    const bad = await alice.post(SIGNATURES, { [alice.userId]: { DEV: 'not an object' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_BAD_JSON');
    const anon = await server.anon().post(SIGNATURES, {});
    assert.equal(anon.status, 401);
    const anon2 = await server.anon().post(DEVICE_SIGNING, {});
    assert.equal(anon2.status, 401);
    assert.equal(anon2.body.errcode, 'M_MISSING_TOKEN');
  });
});
