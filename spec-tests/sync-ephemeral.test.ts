// Typing notifications, read receipts, read markers and unread counts, as /sync shows them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';
import { createRoom, enc, send, sharedRoom, sync, syncUntil } from './support/sync.js';

const ephemeral = (res: any, roomId: string, type: string) => (res.rooms.join[roomId]?.ephemeral.events ?? []).filter((e: any) => e.type === type);

describe('sync: typing, receipts and unread counts', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('shows typing to the room at once and stops it at the timeout', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await sharedRoom(alice, bob);
    const first = await sync(bob);
    const polling = syncUntil(bob, first.next_batch, (x) => ephemeral(x, roomId, 'm.typing').length > 0);
    const r = await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/typing/${enc(alice.userId)}`, { typing: true, timeout: 700 });
    assert.equal(r.status, 200);
    const started = performance.now();
    const res = await polling;
    assert.ok(performance.now() - started < 500);
    assert.deepEqual(ephemeral(res, roomId, 'm.typing')[0].content.user_ids, [alice.userId]);
    // No request stops it: the server expires it and wakes the waiting sync.
    const stopped = await syncUntil(bob, res.next_batch, (r) => ephemeral(r, roomId, 'm.typing').length > 0, 5000);
    assert.deepEqual(ephemeral(stopped, roomId, 'm.typing')[0].content.user_ids, []);
  });

  it('stops typing on request and refuses typing for others or outside the room', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const stranger = await server.register();
    const roomId = await sharedRoom(alice, bob);
    const path = `/_matrix/client/v3/rooms/${enc(roomId)}/typing/${enc(alice.userId)}`;
    await alice.put(path, { typing: true, timeout: 30000 });
    const first = await sync(bob);
    assert.deepEqual(ephemeral(first, roomId, 'm.typing')[0].content.user_ids, [alice.userId]);
    await alice.put(path, { typing: false });
    const second = await syncUntil(bob, first.next_batch, (r) => ephemeral(r, roomId, 'm.typing').length > 0, 5000);
    assert.deepEqual(ephemeral(second, roomId, 'm.typing')[0].content.user_ids, []);
    assert.equal((await bob.put(path, { typing: true })).status, 403);
    const own = `/_matrix/client/v3/rooms/${enc(roomId)}/typing/${enc(stranger.userId)}`;
    assert.equal((await stranger.put(own, { typing: true })).status, 403);
    const bad = await alice.put(path, { typing: 'yes' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_BAD_JSON');
  });

  it('shares m.read receipts with the room and keeps m.read.private to its owner', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await sharedRoom(alice, bob);
    const eventId = await send(alice, roomId, { msgtype: 'm.text', body: 'read me' });
    const aliceFirst = await sync(alice);
    const bobFirst = await sync(bob);
    const polling = syncUntil(alice, aliceFirst.next_batch, (res) => ephemeral(res, roomId, 'm.receipt').length > 0);
    const r = await bob.post(`/_matrix/client/v3/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, {});
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const seen = await polling;
    const receipt = ephemeral(seen, roomId, 'm.receipt')[0];
    assert.equal(typeof receipt.content[eventId]['m.read'][bob.userId].ts, 'number');

    const priv = await bob.post(`/_matrix/client/v3/rooms/${enc(roomId)}/receipt/m.read.private/${enc(eventId)}`, {});
    assert.equal(priv.status, 200);
    const bobNext = await sync(bob, { since: bobFirst.next_batch });
    const mine = ephemeral(bobNext, roomId, 'm.receipt').flatMap((e: any) => Object.keys(e.content[eventId] ?? {}));
    assert.ok(mine.includes('m.read.private'));
    const aliceNext = await sync(alice, { since: seen.next_batch, timeout: '300' });
    const theirs = ephemeral(aliceNext, roomId, 'm.receipt').flatMap((e: any) => Object.keys(e.content[eventId] ?? {}));
    assert.ok(!theirs.includes('m.read.private'));
    const full = await sync(alice);
    const all = ephemeral(full, roomId, 'm.receipt').flatMap((e: any) => Object.keys(e.content[eventId] ?? {}));
    assert.ok(all.includes('m.read') && !all.includes('m.read.private'));
  });

  it('refuses receipts for unknown events, unknown types and rooms the user is not in', async () => {
    const alice = await server.register();
    const stranger = await server.register();
    const roomId = await createRoom(alice);
    const eventId = await send(alice, roomId, { msgtype: 'm.text', body: 'x' });
    const base = `/_matrix/client/v3/rooms/${enc(roomId)}/receipt`;
    assert.equal((await alice.post(`${base}/m.read/${enc('$nope')}`, {})).status, 404);
    assert.equal((await alice.post(`${base}/m.bogus/${enc(eventId)}`, {})).status, 400);
    assert.equal((await stranger.post(`${base}/m.read/${enc(eventId)}`, {})).status, 403);
  });

  it('counts unread messages, highlights mentions and clears both with a receipt', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await sharedRoom(alice, bob);
    await send(alice, roomId, { msgtype: 'm.text', body: 'one' });
    await send(alice, roomId, { msgtype: 'm.text', body: 'two', 'm.mentions': { user_ids: [bob.userId] } });
    const last = await send(alice, roomId, { msgtype: 'm.text', body: 'three' });
    const res = await sync(bob);
    assert.deepEqual(res.rooms.join[roomId].unread_notifications, { notification_count: 3, highlight_count: 1 });
    // The sender's own messages never count for them.
    const aliceRes = await sync(alice);
    assert.deepEqual(aliceRes.rooms.join[roomId].unread_notifications, { notification_count: 0, highlight_count: 0 });
    await bob.post(`/_matrix/client/v3/rooms/${enc(roomId)}/receipt/m.read/${enc(last)}`, {});
    const after = await sync(bob, { since: res.next_batch });
    assert.deepEqual(after.rooms.join[roomId].unread_notifications, { notification_count: 0, highlight_count: 0 });
  });

  it('sets m.fully_read and receipts through read_markers', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await sharedRoom(alice, bob);
    const eventId = await send(alice, roomId, { msgtype: 'm.text', body: 'marker' });
    const r = await bob.post(`/_matrix/client/v3/rooms/${enc(roomId)}/read_markers`, { 'm.fully_read': eventId, 'm.read': eventId });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const res = await sync(bob);
    const room = res.rooms.join[roomId];
    assert.deepEqual(room.account_data.events.find((e: any) => e.type === 'm.fully_read').content, { event_id: eventId });
    assert.ok(ephemeral(res, roomId, 'm.receipt')[0].content[eventId]['m.read'][bob.userId]);
    assert.equal(room.unread_notifications.notification_count, 0);
    const get = await bob.get(`/_matrix/client/v3/user/${enc(bob.userId)}/rooms/${enc(roomId)}/account_data/m.fully_read`);
    assert.deepEqual(get.body, { event_id: eventId });
  });

  it('counts per thread when the filter asks for unread_thread_notifications', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await sharedRoom(alice, bob);
    const root = await send(alice, roomId, { msgtype: 'm.text', body: 'root' });
    await send(alice, roomId, { msgtype: 'm.text', body: 'in thread', 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
    const filter = JSON.stringify({ room: { timeline: { unread_thread_notifications: true } } });
    const res = await sync(bob, { filter });
    const room = res.rooms.join[roomId];
    assert.equal(room.unread_notifications.notification_count, 1);
    assert.equal(room.unread_thread_notifications[root].notification_count, 1);
    const plain = await sync(bob);
    assert.equal(plain.rooms.join[roomId].unread_notifications.notification_count, 2);
  });
});
