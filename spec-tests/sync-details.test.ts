// Finer points of /sync: lazy-loaded members not sent twice (include_redundant_members: false),
// m.heroes only for rooms without a name or canonical alias, room account data of left rooms,
// and unread counts that leave out events from ignored users.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestClient } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';
import { createRoom, enc, join, send, sharedRoom, sync, syncUntil } from './support/sync.js';

const lazyFilter = (redundant: boolean) => JSON.stringify({ room: { timeline: { limit: 1 }, state: { lazy_load_members: true, include_redundant_members: redundant } } });

function stateMembers(res: any, roomId: string): string[] {
  return (res.rooms.join[roomId]?.state?.events ?? []).filter((e: any) => e.type === 'm.room.member').map((e: any) => e.state_key).sort();
}

describe('sync: details', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  async function untilMessage(c: TestClient, since: string, roomId: string, body: string, filter: string): Promise<any> {
    return syncUntil(c, since, (r) => (r.rooms.join[roomId]?.timeline.events ?? []).some((e: any) => e.content?.body === body), 10_000, { filter });
  }

  it('lazy-loads each member once per device without include_redundant_members, every time with it', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const carol = await server.register();
    const dave = await server.register();
    // Named: no heroes, whose member events lazy loading would add (tested below).
    const roomId = await createRoom(alice, { name: 'Lazy', invite: [bob.userId, carol.userId, dave.userId] });
    for (const c of [bob, carol, dave]) await join(c, roomId);
    await send(carol, roomId, { msgtype: 'm.text', body: 'carol last' });

    for (const [reader, redundant] of [
      [alice, false],
      [dave, true],
    ] as const) {
      const filter = lazyFilter(redundant);
      const initial = await sync(reader, { filter });
      // Initial: the timeline's sender and the reader's own member event.
      const last = initial.rooms.join[roomId].timeline.events.at(-1).sender;
      assert.deepEqual(stateMembers(initial, roomId), [last, reader.userId].sort());

      await send(bob, roomId, { msgtype: 'm.text', body: `one for ${reader.userId}` });
      const first = await untilMessage(reader, initial.next_batch, roomId, `one for ${reader.userId}`, filter);
      // Bob is new to this device: sent in both modes.
      assert.ok(stateMembers(first, roomId).includes(bob.userId), JSON.stringify(first.rooms.join[roomId]));

      await send(bob, roomId, { msgtype: 'm.text', body: `two for ${reader.userId}` });
      const second = await untilMessage(reader, first.next_batch, roomId, `two for ${reader.userId}`, filter);
      if (redundant) assert.ok(stateMembers(second, roomId).includes(bob.userId));
      else assert.deepEqual(stateMembers(second, roomId), [], 'bob and the reader were sent already');

      // A retried older token is a response the client may never have had: members again.
      const retried = await sync(reader, { filter, since: initial.next_batch });
      assert.ok(stateMembers(retried, roomId).includes(bob.userId));
      // A new initial sync starts over.
      const again = await sync(reader, { filter });
      assert.ok(stateMembers(again, roomId).includes(bob.userId));
    }
  });

  it('lazy-loads the member events of the heroes of an unnamed room, once', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const carol = await server.register();
    const dave = await server.register();
    const roomId = await sharedRoom(alice, bob, carol);
    await send(carol, roomId, { msgtype: 'm.text', body: 'carol last' });
    const filter = lazyFilter(false);
    const initial = await sync(alice, { filter });
    assert.deepEqual(initial.rooms.join[roomId].summary['m.heroes'], [bob.userId, carol.userId]);
    assert.deepEqual(stateMembers(initial, roomId), [alice.userId, bob.userId, carol.userId].sort());
    // Dave joins: the summary changes; only the new hero's member event is new (in the timeline).
    assert.equal((await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: dave.userId })).status, 200);
    await join(dave, roomId);
    const next = await syncUntil(alice, initial.next_batch, (r) => (r.rooms.join[roomId]?.timeline.events ?? []).some((e: any) => e.state_key === dave.userId && e.content.membership === 'join'), 10_000, { filter });
    assert.deepEqual(next.rooms.join[roomId].summary['m.heroes'], [bob.userId, carol.userId, dave.userId]);
    // (Dave's invite may come as the state before his join, the timeline holding one event.)
    assert.deepEqual(stateMembers(next, roomId).filter((u) => u !== dave.userId), []);
  });

  it('sends a member again when their member event changed', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await sharedRoom(alice, bob);
    const filter = lazyFilter(false);
    await send(bob, roomId, { msgtype: 'm.text', body: 'hello' });
    const initial = await sync(alice, { filter });
    assert.ok(stateMembers(initial, roomId).includes(bob.userId));
    const r = await bob.put(`/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`, { membership: 'join', displayname: 'Bobby' });
    assert.equal(r.status, 200);
    await send(alice, roomId, { msgtype: 'm.text', body: 'a gap' });
    await send(bob, roomId, { msgtype: 'm.text', body: 'as Bobby' });
    const res = await untilMessage(alice, initial.next_batch, roomId, 'as Bobby', filter);
    const bobState = res.rooms.join[roomId].state.events.find((e: any) => e.type === 'm.room.member' && e.state_key === bob.userId);
    assert.equal(bobState?.content.displayname, 'Bobby');
  });

  it('sends m.heroes only for rooms with neither a name nor a canonical alias', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const carol = await server.register();
    const plain = await sharedRoom(alice, bob, carol);
    const named = await createRoom(alice, { name: 'Named', invite: [bob.userId] });
    const aliased = await createRoom(alice, { room_alias_name: `heroes${Date.now()}` });
    const emptyName = await createRoom(alice, { name: '' });
    const res = await sync(alice);
    const plainSummary = res.rooms.join[plain].summary;
    assert.deepEqual(plainSummary['m.heroes'], [bob.userId, carol.userId]);
    assert.equal(plainSummary['m.joined_member_count'], 3);
    const namedSummary = res.rooms.join[named].summary;
    assert.equal(namedSummary['m.heroes'], undefined);
    assert.equal(namedSummary['m.joined_member_count'], 1);
    assert.equal(namedSummary['m.invited_member_count'], 1);
    assert.equal(res.rooms.join[aliased].summary['m.heroes'], undefined);
    // An empty name names nothing.
    assert.deepEqual(res.rooms.join[emptyName].summary['m.heroes'], []);
  });

  it('falls back to members who left for the heroes of a room everyone else left', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await sharedRoom(alice, bob);
    assert.equal((await bob.post(`/_matrix/client/v3/rooms/${enc(roomId)}/leave`, {})).status, 200);
    const res = await sync(alice);
    assert.deepEqual(res.rooms.join[roomId].summary['m.heroes'], [bob.userId]);
  });

  it('sends the room account data of left rooms', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await sharedRoom(alice, bob);
    const put = (type: string, content: unknown) => bob.put(`/_matrix/client/v3/user/${enc(bob.userId)}/rooms/${enc(roomId)}/account_data/${type}`, content);
    assert.equal((await put('org.example.before', { n: 1 })).status, 200);
    const first = await sync(bob);
    assert.equal((await put('org.example.changed', { n: 2 })).status, 200);
    assert.equal((await bob.post(`/_matrix/client/v3/rooms/${enc(roomId)}/leave`, {})).status, 200);
    // Incremental: the changes since the token, with the leave.
    const inc = await syncUntil(bob, first.next_batch, (r) => !!r.rooms.leave[roomId]);
    const incTypes = inc.rooms.leave[roomId].account_data.events.map((e: any) => e.type);
    assert.deepEqual(incTypes, ['org.example.changed']);
    // Initial with include_leave: all of it.
    const all = await sync(bob, { filter: JSON.stringify({ room: { include_leave: true } }) });
    const types = all.rooms.leave[roomId].account_data.events.map((e: any) => e.type).sort();
    assert.deepEqual(types, ['org.example.before', 'org.example.changed']);
    // Without include_leave there is no leave section at all.
    const none = await sync(bob);
    assert.equal(none.rooms.leave[roomId], undefined);
  });

  it('does not count or list notifications from ignored users', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const carol = await server.register();
    const roomId = await sharedRoom(alice, bob, carol);
    const ignore = await alice.put(`/_matrix/client/v3/user/${enc(alice.userId)}/account_data/m.ignored_user_list`, { ignored_users: { [bob.userId]: {} } });
    assert.equal(ignore.status, 200);
    await send(bob, roomId, { msgtype: 'm.text', body: `hey ${alice.userId}` });
    await send(bob, roomId, { msgtype: 'm.text', body: 'from bob' });
    await send(carol, roomId, { msgtype: 'm.text', body: 'from carol' });
    const res = await sync(alice);
    assert.deepEqual(res.rooms.join[roomId].unread_notifications, { notification_count: 1, highlight_count: 0 });
    const list = await alice.get('/_matrix/client/v3/notifications');
    assert.deepEqual(list.body.notifications.map((n: any) => n.event.sender), [carol.userId]);
    // Unignoring brings them back: the rows were kept.
    await alice.put(`/_matrix/client/v3/user/${enc(alice.userId)}/account_data/m.ignored_user_list`, { ignored_users: {} });
    const after = await sync(alice);
    assert.deepEqual(after.rooms.join[roomId].unread_notifications, { notification_count: 3, highlight_count: 1 });
    // The counts of a user who ignores no one are unaffected by someone else's list.
    const bobView = await sync(carol);
    assert.equal(bobView.rooms.join[roomId].unread_notifications.notification_count, 2);
  });
});
