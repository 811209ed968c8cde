// History visibility in /sync timelines, redactions, and the use_state_after form of room state.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';
import { createRoom, enc, join, send, sync } from './support/sync.js';

const bodies = (room: any) => room.timeline.events.filter((e: any) => e.type === 'm.room.message').map((e: any) => e.content.body);

describe('sync: history visibility, redactions, state_after', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  for (const [visibility, expected] of [
    ['shared', ['before invite', 'after invite', 'after join']],
    ['invited', ['after invite', 'after join']],
    ['joined', ['after join']],
  ] as const) {
    it(`shows a new member only what history_visibility ${visibility} allows`, async () => {
      const alice = await server.register();
      const bob = await server.register();
      const roomId = await createRoom(alice, {
        initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: visibility } }],
      });
      await send(alice, roomId, { msgtype: 'm.text', body: 'before invite' });
      await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: bob.userId });
      await send(alice, roomId, { msgtype: 'm.text', body: 'after invite' });
      await join(bob, roomId);
      await send(alice, roomId, { msgtype: 'm.text', body: 'after join' });
      const res = await sync(bob, { filter: JSON.stringify({ room: { timeline: { limit: 50 } } }) });
      assert.deepEqual(bodies(res.rooms.join[roomId]), expected);
    });
  }

  it('sends redacted events redacted', async () => {
    const alice = await server.register();
    const roomId = await createRoom(alice);
    const eventId = await send(alice, roomId, { msgtype: 'm.text', body: 'oops' });
    const r = await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/redact/${enc(eventId)}/r1`, { reason: 'typo' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const res = await sync(alice);
    const ev = res.rooms.join[roomId].timeline.events.find((e: any) => e.event_id === eventId);
    assert.deepEqual(ev.content, {});
    assert.equal(ev.unsigned.redacted_because.type, 'm.room.redaction');
  });

  it('sends state_after instead of state when asked, including changes in the timeline', async () => {
    const alice = await server.register();
    const roomId = await createRoom(alice, { name: 'first name' });
    const first = await sync(alice, { use_state_after: 'true' });
    const room = first.rooms.join[roomId];
    assert.equal(room.state, undefined);
    assert.ok(room.state_after.events.some((e: any) => e.type === 'm.room.name' && e.content.name === 'first name'));
    await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.name/`, { name: 'second name' });
    const next = await sync(alice, { since: first.next_batch, use_state_after: 'true' });
    const after = next.rooms.join[roomId];
    assert.ok(after.timeline.events.some((e: any) => e.type === 'm.room.name'));
    assert.deepEqual(after.state_after.events.map((e: any) => [e.type, e.content.name]), [['m.room.name', 'second name']]);
    // Without the flag the change is in the timeline only.
    const plain = await sync(alice, { since: first.next_batch });
    assert.deepEqual(plain.rooms.join[roomId].state.events, []);
  });
});

describe('sync: limited timelines paginate back through /messages', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('fills the gap before a cut timeline with /messages from prev_batch, without gaps or repeats', async () => {
    const alice = await server.register();
    const roomId = await createRoom(alice);
    const filter = JSON.stringify({ room: { timeline: { limit: 3 } } });
    const first = await sync(alice, { filter });
    for (let i = 0; i < 12; i++) await send(alice, roomId, { msgtype: 'm.text', body: `n${i}` });
    const res = await sync(alice, { since: first.next_batch, filter });
    const tl = res.rooms.join[roomId].timeline;
    assert.equal(tl.limited, true);
    assert.deepEqual(bodies({ timeline: tl }), ['n9', 'n10', 'n11']);
    const older: string[] = [];
    let from = tl.prev_batch;
    for (let page = 0; page < 10 && older.length < 9; page++) {
      const r = await alice.get(`/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=4&from=${enc(from)}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      older.push(...r.body.chunk.filter((e: any) => e.type === 'm.room.message').map((e: any) => e.content.body));
      if (!r.body.end) break;
      from = r.body.end;
    }
    assert.deepEqual(older.slice(0, 9), ['n8', 'n7', 'n6', 'n5', 'n4', 'n3', 'n2', 'n1', 'n0']);
  });
});
