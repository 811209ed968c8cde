// Concurrent writes to one room are batched into one transaction (rooms/queue.ts). A refused job
// of a batch must not take the others down: state changes run in savepoints, message sends
// (refused, if at all, before their one write) without. Every accepted event lands once, on one
// chain.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';
import { enc } from './support/sync.js';

describe('batched writes to one room', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  it('refuses the outsiders and the unauthorised in a batch and keeps everyone else', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const mallory = await server.register();
    const created = await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' });
    const roomId = created.body.room_id as string;
    assert.equal((await bob.post(`/_matrix/client/v3/rooms/${enc(roomId)}/join`, {})).status, 200);
    const room = `/_matrix/client/v3/rooms/${enc(roomId)}`;

    const writes: Array<Promise<{ who: string; status: number; eventId?: string }>> = [];
    for (let i = 0; i < 12; i++) {
      const sendAs = (who: string, c: typeof alice) =>
        c.put(`${room}/send/m.room.message/batch-${who}-${i}`, { msgtype: 'm.text', body: `${who} ${i}` }).then((r) => ({ who, status: r.status, eventId: r.body.event_id }));
      writes.push(sendAs('alice', alice), sendAs('bob', bob), sendAs('mallory', mallory));
      // Bob may not change the power levels (state_default 50 in a public_chat room).
      writes.push(bob.put(`${room}/state/m.room.power_levels/`, { users: { [bob.userId]: 100 } }).then((r) => ({ who: 'bob-state', status: r.status })));
      writes.push(alice.put(`${room}/state/org.example.batch/k${i}`, { i }).then((r) => ({ who: 'alice-state', status: r.status, eventId: r.body.event_id })));
    }
    const results = await Promise.all(writes);
    for (const r of results) {
      const expected = r.who === 'mallory' || r.who === 'bob-state' ? 403 : 200;
      assert.equal(r.status, expected, `${r.who}: ${r.status}`);
    }

    const rows = await server.hs.services.db.query<{ json: string }>(
      'SELECT e.json FROM events e JOIN rooms r USING (room_nid) WHERE r.room_id = $1 ORDER BY e.stream_ordering',
      [roomId],
    );
    const events = rows.rows.map((r) => JSON.parse(r.json) as { event_id: string; prev_events: string[]; sender: string; type: string });
    for (let i = 1; i < events.length; i++) assert.deepEqual(events[i]!.prev_events, [events[i - 1]!.event_id]);
    const stored = new Set(events.map((e) => e.event_id));
    for (const r of results) if (r.status === 200) assert.ok(stored.has(r.eventId!), `${r.who}'s event was stored`);
    assert.equal(events.filter((e) => e.sender === mallory.userId).length, 0);
    assert.equal(events.filter((e) => e.type === 'm.room.message').length, 24);
    assert.equal(events.filter((e) => e.type === 'org.example.batch').length, 12);
  });
});
