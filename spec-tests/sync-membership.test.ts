// Rooms sections of /sync: invites with their stripped state, leaves, kicks and bans with the
// timeline up to the leave, knocks, summaries; and many concurrent messages arriving exactly once,
// in order, across incremental syncs.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';
import { createRoom, enc, join, send, sharedRoom, sync, syncUntil } from './support/sync.js';

describe('sync: membership sections', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('lists an invite with stripped state including the create event', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const first = await sync(bob);
    const roomId = await createRoom(alice, { name: 'Invite me', invite: [bob.userId] });
    const res = await syncUntil(bob, first.next_batch, (r) => !!r.rooms.invite[roomId]);
    const types = res.rooms.invite[roomId].invite_state.events.map((e: any) => e.type);
    assert.ok(types.includes('m.room.create'));
    assert.ok(types.includes('m.room.name'));
    const me = res.rooms.invite[roomId].invite_state.events.find((e: any) => e.type === 'm.room.member');
    assert.equal(me.state_key, bob.userId);
    assert.equal(me.content.membership, 'invite');
    assert.equal(me.sender, alice.userId);
  });

  it('moves a room to join with its state, summary and timeline once joined', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await createRoom(alice, { name: 'Join me', invite: [bob.userId] });
    await send(alice, roomId, { msgtype: 'm.text', body: 'before bob' });
    const first = await sync(bob);
    await join(bob, roomId);
    const res = await syncUntil(bob, first.next_batch, (r) => !!r.rooms.join[roomId]);
    const room = res.rooms.join[roomId];
    const all = [...room.state.events, ...room.timeline.events];
    assert.ok(all.some((e: any) => e.type === 'm.room.create'));
    assert.ok(all.some((e: any) => e.type === 'm.room.name'));
    assert.equal(room.summary['m.joined_member_count'], 2);
    // A named room has no heroes (clients show the name); see sync-details for unnamed rooms.
    assert.equal(room.summary['m.heroes'], undefined);
    assert.equal(res.rooms.invite[roomId], undefined);
  });

  it('lists a left room under rooms.leave with the timeline up to the leave, then no more', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await sharedRoom(alice, bob);
    const first = await sync(bob);
    await send(alice, roomId, { msgtype: 'm.text', body: 'before leaving' });
    assert.equal((await bob.post(`/_matrix/client/v3/rooms/${enc(roomId)}/leave`, {})).status, 200);
    await send(alice, roomId, { msgtype: 'm.text', body: 'after leaving' });
    const res = await sync(bob, { since: first.next_batch });
    assert.equal(res.rooms.join[roomId], undefined);
    const left = res.rooms.leave[roomId];
    const bodies = left.timeline.events.map((e: any) => e.content.body).filter(Boolean);
    assert.deepEqual(bodies, ['before leaving']);
    assert.equal(left.timeline.events.at(-1).content.membership, 'leave');
    const later = await sync(bob, { since: res.next_batch });
    assert.equal(later.rooms.leave[roomId], undefined);
    // An initial sync shows left rooms only when the filter asks.
    assert.equal((await sync(bob)).rooms.leave[roomId], undefined);
    const withLeave = await sync(bob, { filter: JSON.stringify({ room: { include_leave: true } }) });
    assert.ok(withLeave.rooms.leave[roomId]);
  });

  it('shows kicks and bans in rooms.leave', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const carol = await server.register();
    const roomId = await sharedRoom(alice, bob, carol);
    const bobFirst = await sync(bob);
    const carolFirst = await sync(carol);
    assert.equal((await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/kick`, { user_id: bob.userId, reason: 'out' })).status, 200);
    assert.equal((await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/ban`, { user_id: carol.userId })).status, 200);
    const kicked = await syncUntil(bob, bobFirst.next_batch, (r) => !!r.rooms.leave[roomId]);
    const kick = kicked.rooms.leave[roomId].timeline.events.at(-1);
    assert.equal(kick.content.membership, 'leave');
    assert.equal(kick.sender, alice.userId);
    const banned = await syncUntil(carol, carolFirst.next_batch, (r) => !!r.rooms.leave[roomId]);
    assert.equal(banned.rooms.leave[roomId].timeline.events.at(-1).content.membership, 'ban');
  });

  it('lists a knock under rooms.knock', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await createRoom(alice, { room_version: '10', initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }] });
    const first = await sync(bob);
    const k = await bob.post(`/_matrix/client/v3/knock/${enc(roomId)}`, { reason: 'let me in' });
    assert.equal(k.status, 200, JSON.stringify(k.body));
    const res = await syncUntil(bob, first.next_batch, (r) => !!r.rooms.knock[roomId]);
    const types = res.rooms.knock[roomId].knock_state.events.map((e: any) => e.type);
    assert.ok(types.includes('m.room.join_rules'));
  });

  it('delivers 300 messages sent concurrently by three users exactly once, in order', async () => {
    const users = [await server.register(), await server.register(), await server.register()];
    const reader = await server.register();
    const roomId = await sharedRoom(users[0]!, users[1]!, users[2]!, reader);
    let token = (await sync(reader)).next_batch;
    // Three senders at once, each sending its 100 in order (so each sender's order is defined).
    const sends = users.map(async (u, ui) => {
      const ids: string[] = [];
      for (let i = 0; i < 100; i++) ids.push(await send(u, roomId, { msgtype: 'm.text', body: `${ui}:${i}` }));
      return ids;
    });
    const got: any[] = [];
    const filter = JSON.stringify({ room: { timeline: { limit: 1000 } } });
    const all = Promise.all(sends);
    while (got.length < 300) {
      const res = await sync(reader, { since: token, timeout: '10000', filter });
      token = res.next_batch;
      got.push(...(res.rooms.join[roomId]?.timeline.events ?? []).filter((e: any) => e.type === 'm.room.message'));
    }
    const ids = (await all).flat();
    assert.equal(got.length, 300);
    assert.equal(new Set(got.map((e) => e.event_id)).size, 300);
    assert.deepEqual(new Set(got.map((e) => e.event_id)), new Set(ids));
    // Each sender's messages arrive in the order sent.
    for (let ui = 0; ui < 3; ui++) {
      const mine = got.filter((e) => e.content.body.startsWith(`${ui}:`)).map((e) => Number(e.content.body.split(':')[1]));
      assert.deepEqual(mine, Array.from({ length: 100 }, (_, i) => i));
    }
    const again = await sync(reader, { since: token });
    assert.equal(again.rooms.join[roomId], undefined);
  });
});
