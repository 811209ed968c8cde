import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';
import type { TestClient } from './support/client.js';

const VERSION = '/_matrix/client/v3/room_keys/version';
const KEYS = '/_matrix/client/v3/room_keys/keys';
const ALGORITHM = 'm.megolm_backup.v1.curve25519-aes-sha2';
const ROOM = '!room:localhost';

function session(first_message_index: number, forwarded_count: number, is_verified: boolean, tag = 'x') {
  return { first_message_index, forwarded_count, is_verified, session_data: { ephemeral: `e-${tag}`, ciphertext: `c-${tag}`, mac: `m-${tag}` } };
}

describe('keys: server-side key backup', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  async function withBackup(): Promise<{ alice: TestClient; version: string }> {
    const alice = await server.register();
    const r = await alice.post(VERSION, { algorithm: ALGORITHM, auth_data: { public_key: 'abcdefg' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return { alice, version: r.body.version };
  }

  it('answers M_NOT_FOUND when there is no backup', async () => {
    const alice = await server.register();
    const latest = await alice.get(VERSION);
    assert.equal(latest.status, 404);
    assert.equal(latest.body.errcode, 'M_NOT_FOUND');
    const put = await alice.put(`${KEYS}/${encodeURIComponent(ROOM)}/s1?version=1`, session(0, 0, false));
    assert.equal(put.status, 404);
    assert.equal(put.body.errcode, 'M_NOT_FOUND');
    const get = await alice.get(`${KEYS}?version=1`);
    assert.equal(get.status, 404);
  });

  it('round-trips keys with etag and count at every level', async () => {
    const { alice, version } = await withBackup();
    const info = await alice.get(VERSION);
    assert.deepEqual({ ...info.body, etag: undefined }, { algorithm: ALGORITHM, auth_data: { public_key: 'abcdefg' }, version, count: 0, etag: undefined });
    const etag0 = info.body.etag;
    assert.equal(typeof etag0, 'string');

    const one = await alice.put(`${KEYS}/${encodeURIComponent(ROOM)}/s1?version=${version}`, session(3, 0, true, 'a'));
    assert.equal(one.status, 200);
    assert.equal(one.body.count, 1);
    assert.notEqual(one.body.etag, etag0);
    const many = await alice.put(`${KEYS}?version=${version}`, {
      rooms: { [ROOM]: { sessions: { s2: session(0, 0, false, 'b') } }, '!other:localhost': { sessions: { s3: session(0, 1, false, 'c') } } },
    });
    assert.equal(many.body.count, 3);
    const room = await alice.put(`${KEYS}/${encodeURIComponent('!other:localhost')}?version=${version}`, { sessions: { s4: session(1, 0, false, 'd') } });
    assert.equal(room.body.count, 4);

    const all = await alice.get(`${KEYS}?version=${version}`);
    assert.deepEqual(all.body, {
      rooms: {
        [ROOM]: { sessions: { s1: session(3, 0, true, 'a'), s2: session(0, 0, false, 'b') } },
        '!other:localhost': { sessions: { s3: session(0, 1, false, 'c'), s4: session(1, 0, false, 'd') } },
      },
    });
    const byRoom = await alice.get(`${KEYS}/${encodeURIComponent(ROOM)}?version=${version}`);
    assert.deepEqual(Object.keys(byRoom.body.sessions).sort(), ['s1', 's2']);
    const bySession = await alice.get(`${KEYS}/${encodeURIComponent(ROOM)}/s1?version=${version}`);
    assert.deepEqual(bySession.body, session(3, 0, true, 'a'));
    const noRoom = await alice.get(`${KEYS}/${encodeURIComponent('!none:localhost')}?version=${version}`);
    assert.deepEqual(noRoom.body, { sessions: {} });
    const noSession = await alice.get(`${KEYS}/${encodeURIComponent(ROOM)}/nope?version=${version}`);
    assert.equal(noSession.status, 404);
    assert.equal(noSession.body.errcode, 'M_NOT_FOUND');

    const after = await alice.get(`${VERSION}/${version}`);
    assert.equal(after.body.count, 4);
    assert.equal(after.body.etag, room.body.etag);
  });

  it('keeps the better copy of a session by the spec rules', async () => {
    const { alice, version } = await withBackup();
    const path = `${KEYS}/${encodeURIComponent(ROOM)}/s?version=${version}`;
    // [stored, offered, replaced?]
    const cases: [ReturnType<typeof session>, ReturnType<typeof session>, boolean][] = [
      [session(5, 2, false, 'old'), session(9, 9, true, 'new'), true], // verified wins over everything
      [session(0, 0, true, 'old'), session(0, 0, false, 'new'), false], // unverified never replaces verified
      [session(5, 0, false, 'old'), session(4, 9, false, 'new'), true], // lower first_message_index
      [session(4, 0, false, 'old'), session(5, 0, false, 'new'), false],
      [session(4, 3, true, 'old'), session(4, 2, true, 'new'), true], // then lower forwarded_count
      [session(4, 2, true, 'old'), session(4, 2, true, 'new'), false], // a tie keeps the stored copy
    ];
    for (const [i, [stored, offered, replaced]] of cases.entries()) {
      await alice.delete(`${KEYS}/${encodeURIComponent(ROOM)}/s?version=${version}`);
      await alice.put(path, stored);
      const before = (await alice.get(`${VERSION}/${version}`)).body.etag;
      const r = await alice.put(path, offered);
      assert.equal(r.status, 200);
      const now = (await alice.get(path)).body;
      assert.deepEqual(now, replaced ? offered : stored, `case ${i}`);
      assert.equal(r.body.etag !== before, replaced, `case ${i}: the etag moves only when the stored key changes`);
    }
  });

  it('refuses writes to anything but the current version with M_WRONG_ROOM_KEYS_VERSION', async () => {
    const { alice, version } = await withBackup();
    await alice.put(`${KEYS}/${encodeURIComponent(ROOM)}/s1?version=${version}`, session(0, 0, false));
    const v2 = (await alice.post(VERSION, { algorithm: ALGORITHM, auth_data: { public_key: 'second' } })).body.version;
    assert.equal(Number(v2), Number(version) + 1);
    const old = await alice.put(`${KEYS}/${encodeURIComponent(ROOM)}/s2?version=${version}`, session(0, 0, false));
    assert.equal(old.status, 403);
    assert.equal(old.body.errcode, 'M_WRONG_ROOM_KEYS_VERSION');
    assert.equal(old.body.current_version, v2);
    const garbage = await alice.put(`${KEYS}?version=abc`, { rooms: {} });
    assert.equal(garbage.status, 403);
    assert.equal(garbage.body.current_version, v2);
    // The old version stays readable until deleted.
    const read = await alice.get(`${KEYS}?version=${version}`);
    assert.deepEqual(Object.keys(read.body.rooms[ROOM].sessions), ['s1']);
    assert.equal((await alice.get(VERSION)).body.version, v2);
  });

  it('updates auth_data only, checking the algorithm and the version in the body', async () => {
    const { alice, version } = await withBackup();
    const ok = await alice.put(`${VERSION}/${version}`, { algorithm: ALGORITHM, auth_data: { public_key: 'changed' }, version });
    assert.equal(ok.status, 200);
    assert.deepEqual((await alice.get(`${VERSION}/${version}`)).body.auth_data, { public_key: 'changed' });
    const otherAlg = await alice.put(`${VERSION}/${version}`, { algorithm: 'org.example.other', auth_data: {} });
    assert.equal(otherAlg.status, 400);
    assert.equal(otherAlg.body.errcode, 'M_INVALID_PARAM');
    const otherVersion = await alice.put(`${VERSION}/${version}`, { algorithm: ALGORITHM, auth_data: {}, version: '999' });
    assert.equal(otherVersion.status, 400);
    assert.equal(otherVersion.body.errcode, 'M_INVALID_PARAM');
    const unknown = await alice.put(`${VERSION}/999`, { algorithm: ALGORITHM, auth_data: {} });
    assert.equal(unknown.status, 404);
  });

  it('deletes sessions, rooms and whole versions; a deleted version number is never reused', async () => {
    const { alice, version } = await withBackup();
    await alice.put(`${KEYS}?version=${version}`, {
      rooms: { [ROOM]: { sessions: { a: session(0, 0, false), b: session(0, 0, false) } }, '!r2:localhost': { sessions: { c: session(0, 0, false) } } },
    });
    const one = await alice.delete(`${KEYS}/${encodeURIComponent(ROOM)}/a?version=${version}`);
    assert.equal(one.body.count, 2);
    const room = await alice.delete(`${KEYS}/${encodeURIComponent(ROOM)}?version=${version}`);
    assert.equal(room.body.count, 1);
    assert.notEqual(room.body.etag, one.body.etag);
    const all = await alice.delete(`${KEYS}?version=${version}`);
    assert.equal(all.body.count, 0);

    const v2 = (await alice.post(VERSION, { algorithm: ALGORITHM, auth_data: {} })).body.version;
    assert.equal((await alice.delete(`${VERSION}/${v2}`)).status, 200);
    assert.equal((await alice.get(`${VERSION}/${v2}`)).status, 404);
    assert.equal((await alice.get(VERSION)).body.version, version, 'the previous version is current again');
    assert.equal((await alice.delete(`${VERSION}/${v2}`)).status, 404);
    const v3 = (await alice.post(VERSION, { algorithm: ALGORITHM, auth_data: {} })).body.version;
    assert.equal(Number(v3), Number(v2) + 1);
  });

  it("keeps users' backups apart", async () => {
    const { version } = await withBackup();
    const bob = await server.register();
    assert.equal((await bob.get(`${VERSION}/${version}`)).status, 404);
    assert.equal((await bob.get(`${KEYS}?version=${version}`)).status, 404);
    assert.equal((await bob.delete(`${VERSION}/${version}`)).status, 404);
  });

  it('answers 400 for a missing version or a malformed body, and 401 without a token', async () => {
    const { alice, version } = await withBackup();
    const noVersion = await alice.get(KEYS);
    assert.equal(noVersion.status, 400);
    assert.equal(noVersion.body.errcode, 'M_MISSING_PARAM');
    const badType = await alice.put(`${KEYS}/${encodeURIComponent(ROOM)}/s?version=${version}`, { ...session(0, 0, false), first_message_index: 'zero' });
    assert.equal(badType.status, 400);
    assert.equal(badType.body.errcode, 'M_BAD_JSON');
    const missingField = await alice.put(`${KEYS}/${encodeURIComponent(ROOM)}/s?version=${version}`, { first_message_index: 0 });
    assert.equal(missingField.status, 400);
    assert.equal(missingField.body.errcode, 'M_MISSING_PARAM');
    const noAlg = await alice.post(VERSION, { auth_data: {} });
    assert.equal(noAlg.body.errcode, 'M_MISSING_PARAM');
    const anon = await server.anon().get(VERSION);
    assert.equal(anon.status, 401);
  });
});
