// Every room version 1-12: created, written to (message + state) and read back, with event and
// room id formats per version, and every stored event a verifiable PDU.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { encodeBase64 } from '../src/core/base64.js';
import { checkContentHash, computeReferenceHash } from '../src/core/hashes.js';
import { referenceHashToEventId, validateEventId, validateRoomId } from '../src/core/event-ids.js';
import { verifyEventSignature } from '../src/core/event-signing.js';
import { checkEventAuth, stateLookupFromEvents } from '../src/core/auth-rules.js';
import { getRoomVersion } from '../src/core/room-versions.js';
import type { RoomEvent } from '../src/core/types.js';
import type { TestClient } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';

const V3 = '/_matrix/client/v3';

describe('rooms: every room version', () => {
  let server: TestServer;
  let alice: TestClient;
  let bob: TestClient;
  before(async () => {
    server = await startTestServer();
    alice = await server.register();
    bob = await server.register();
  });
  after(() => server.stop());

  for (const version of ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12']) {
    it(`creates and uses a room of version ${version}`, async () => {
      const created = await alice.post(`${V3}/createRoom`, { room_version: version, preset: 'public_chat', name: `v${version}` });
      assert.equal(created.status, 200, JSON.stringify(created.body));
      const roomId: string = created.body.room_id;
      assert.ok(validateRoomId(roomId, version), `room id ${roomId} for v${version}`);
      if (version === '12') assert.doesNotMatch(roomId, /:/);

      const room = `${V3}/rooms/${encodeURIComponent(roomId)}`;
      assert.equal((await bob.post(`${room}/join`)).status, 200);
      const msg = await bob.put(`${room}/send/m.room.message/v${version}`, { msgtype: 'm.text', body: `hello v${version}` });
      assert.equal(msg.status, 200, JSON.stringify(msg.body));
      assert.ok(validateEventId(msg.body.event_id, version), `event id ${msg.body.event_id} for v${version}`);
      const topic = await alice.put(`${room}/state/m.room.topic`, { topic: `topic v${version}` });
      assert.equal(topic.status, 200, JSON.stringify(topic.body));
      assert.equal((await bob.get(`${room}/state/m.room.topic`)).body.topic, `topic v${version}`);
      const ev = await alice.get(`${room}/event/${encodeURIComponent(msg.body.event_id)}`);
      assert.equal(ev.body.content.body, `hello v${version}`);
      const create = await alice.get(`${room}/state/m.room.create?format=event`);
      assert.equal(create.body.content.room_version, version);
      if (+version >= 11) assert.equal(create.body.content.creator, undefined);
      else assert.equal(create.body.content.creator, alice.userId);
      const pl = (await alice.get(`${room}/state/m.room.power_levels`)).body;
      // v12 creators have infinite power and are not listed.
      if (version === '12') assert.equal(pl.users[alice.userId], undefined);
      else assert.equal(pl.users[alice.userId], 100);
      // A default member still cannot change power levels in any version.
      const grab = await bob.put(`${room}/state/m.room.power_levels`, { ...pl, users: { ...pl.users, [bob.userId]: 100 } });
      assert.equal(grab.status, 403);
    });
  }

  it('stores every event as a full PDU: hashed, signed, ids derived, DAG-linked, authorised by its auth events', async () => {
    const db = new pg.Client({ connectionString: server.databaseUrl });
    await db.connect();
    try {
      const key = server.hs.services.signingKey;
      const rows = (
        await db.query<{ json: string; version: string; depth: string }>(
          'SELECT e.json, r.version, e.depth FROM events e JOIN rooms r USING (room_nid) ORDER BY e.stream_ordering',
        )
      ).rows;
      assert.ok(rows.length > 12 * 8);
      const byId = new Map<string, RoomEvent>();
      for (const row of rows) {
        const event = JSON.parse(row.json) as RoomEvent;
        const v = getRoomVersion(row.version)!;
        byId.set(event.event_id, event);
        assert.ok(checkContentHash(event, v), `content hash of ${event.event_id}`);
        assert.ok(verifyEventSignature(event, v, 'localhost', key.keyId, key.publicKey), `signature of ${event.event_id}`);
        if (v.eventIdFormat !== 'v1') assert.equal(event.event_id, referenceHashToEventId(computeReferenceHash(event, v), v));
        if (event.type === 'm.room.create') {
          assert.deepEqual(event.prev_events, []);
          assert.equal(event.depth, 1);
          continue;
        }
        assert.ok(event.prev_events.length >= 1);
        // v1/v2 cite events as [id, {sha256: reference hash}]; later versions by bare id.
        for (const ref of [...event.prev_events, ...event.auth_events]) {
          if (v.eventIdFormat === 'v1') {
            assert.ok(Array.isArray(ref), `v${v.id} reference is a pair`);
            const cited = byId.get(ref[0])!;
            assert.equal(ref[1].sha256, encodeBase64(computeReferenceHash(cited, v)));
          } else {
            assert.equal(typeof ref, 'string');
          }
        }
        const prevIds = event.prev_events.map((p) => (typeof p === 'string' ? p : p[0]));
        const prevs = prevIds.map((id) => byId.get(id));
        assert.ok(prevs.every((p) => p !== undefined), 'prev events stored before');
        assert.equal(event.depth, Math.max(...prevs.map((p) => p!.depth)) + 1);
        // The auth events alone authorise the event (what a receiving server checks).
        const authIds = event.auth_events.map((a) => (typeof a === 'string' ? a : a[0]));
        const authEvents = authIds.map((id) => byId.get(id)!);
        if (v.roomIdFromCreateEvent) authEvents.push(byId.get(`$${event.room_id.slice(1)}`)!);
        const verdict = checkEventAuth(event, stateLookupFromEvents(authEvents), v);
        assert.ok(verdict.allowed, `${event.event_id} (${event.type}) authorised by its auth events: ${JSON.stringify(verdict)}`);
      }
    } finally {
      await db.end();
    }
  });
});
