// Account data (global and per room), tags, ignored users, filters and presence.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startTestServer, type TestServer } from './support/server.js';
import { createRoom, enc, join, send, sharedRoom, sync, syncUntil } from './support/sync.js';

describe('sync: account data, tags, ignored users, filters, presence', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('stores global account data, serves it back and shows it in sync', async () => {
    const alice = await server.register();
    const first = await sync(alice);
    const path = `/_matrix/client/v3/user/${enc(alice.userId)}/account_data/org.example.settings`;
    assert.equal((await alice.get(path)).status, 404);
    assert.equal((await alice.put(path, { theme: 'dark' })).status, 200);
    assert.deepEqual((await alice.get(path)).body, { theme: 'dark' });
    const res = await syncUntil(alice, first.next_batch, (r) => r.account_data.events.length > 0);
    assert.deepEqual(res.account_data.events, [{ type: 'org.example.settings', content: { theme: 'dark' } }]);
    const full = await sync(alice);
    assert.ok(full.account_data.events.some((e: any) => e.type === 'org.example.settings' && e.content.theme === 'dark'));
  });

  it('refuses account data of another user and server-managed types', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const other = await alice.put(`/_matrix/client/v3/user/${enc(bob.userId)}/account_data/x.y`, { a: 1 });
    assert.equal(other.status, 403);
    assert.equal((await alice.get(`/_matrix/client/v3/user/${enc(bob.userId)}/account_data/x.y`)).status, 403);
    const rules = await alice.put(`/_matrix/client/v3/user/${enc(alice.userId)}/account_data/m.push_rules`, {});
    assert.equal(rules.status, 405);
    const roomId = await createRoom(alice);
    const fr = await alice.put(`/_matrix/client/v3/user/${enc(alice.userId)}/rooms/${enc(roomId)}/account_data/m.fully_read`, { event_id: '$x' });
    assert.equal(fr.status, 405);
    const notObject = await alice.request('PUT', `/_matrix/client/v3/user/${enc(alice.userId)}/account_data/x.y`, undefined, { raw: '[1,2]', headers: { 'Content-Type': 'application/json' } });
    assert.equal(notObject.status, 400);
  });

  it('keeps room account data and tags per room, in that room of the sync', async () => {
    const alice = await server.register();
    const roomId = await createRoom(alice);
    const first = await sync(alice);
    const base = `/_matrix/client/v3/user/${enc(alice.userId)}/rooms/${enc(roomId)}`;
    assert.equal((await alice.put(`${base}/account_data/org.example.room`, { pinned: true })).status, 200);
    assert.deepEqual((await alice.get(`${base}/account_data/org.example.room`)).body, { pinned: true });
    assert.equal((await alice.put(`${base}/tags/m.favourite`, { order: 0.5 })).status, 200);
    assert.equal((await alice.put(`${base}/tags/u.work`, {})).status, 200);
    assert.deepEqual((await alice.get(`${base}/tags`)).body, { tags: { 'm.favourite': { order: 0.5 }, 'u.work': {} } });
    const res = await syncUntil(alice, first.next_batch, (r) => (r.rooms.join[roomId]?.account_data.events ?? []).some((e: any) => e.type === 'm.tag'));
    const types = res.rooms.join[roomId].account_data.events.map((e: any) => e.type).sort();
    assert.deepEqual(types, ['m.tag', 'org.example.room']);
    assert.equal((await alice.delete(`${base}/tags/m.favourite`)).status, 200);
    assert.deepEqual((await alice.get(`${base}/tags`)).body, { tags: { 'u.work': {} } });
    const bad = await alice.put(`${base}/tags/x`, { order: 'first' });
    assert.equal(bad.status, 400);
  });

  it('hides messages and invites from ignored users', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await sharedRoom(alice, bob);
    await alice.put(`/_matrix/client/v3/user/${enc(alice.userId)}/account_data/m.ignored_user_list`, { ignored_users: { [bob.userId]: {} } });
    const first = await sync(alice);
    await send(bob, roomId, { msgtype: 'm.text', body: 'ignored' });
    await send(alice, roomId, { msgtype: 'm.text', body: 'mine' });
    const res = await syncUntil(alice, first.next_batch, (r) => !!r.rooms.join[roomId]);
    const bodies = res.rooms.join[roomId].timeline.events.map((e: any) => e.content.body);
    assert.ok(bodies.includes('mine'));
    assert.ok(!bodies.includes('ignored'));
    const invited = await createRoom(bob, { invite: [alice.userId] });
    const later = await sync(alice);
    assert.equal(later.rooms.invite[invited], undefined);
    const bad = await alice.put(`/_matrix/client/v3/user/${enc(alice.userId)}/account_data/m.ignored_user_list`, { ignored_users: ['x'] });
    assert.equal(bad.status, 400);
  });

  it('stores filters, serves them back and applies them by id or inline', async () => {
    const alice = await server.register();
    const roomId = await createRoom(alice);
    for (let i = 0; i < 5; i++) await send(alice, roomId, { msgtype: 'm.text', body: `m${i}` });
    const filter = { room: { timeline: { limit: 2 }, state: { lazy_load_members: true } } };
    const created = await alice.post(`/_matrix/client/v3/user/${enc(alice.userId)}/filter`, filter);
    assert.equal(created.status, 200);
    assert.equal(typeof created.body.filter_id, 'string');
    const got = await alice.get(`/_matrix/client/v3/user/${enc(alice.userId)}/filter/${created.body.filter_id}`);
    assert.deepEqual(got.body, filter);
    assert.equal((await alice.get(`/_matrix/client/v3/user/${enc(alice.userId)}/filter/999999`)).status, 404);
    const byId = await sync(alice, { filter: created.body.filter_id });
    const tl = byId.rooms.join[roomId].timeline;
    assert.deepEqual(tl.events.map((e: any) => e.content.body), ['m3', 'm4']);
    assert.equal(tl.limited, true);
    assert.equal(typeof tl.prev_batch, 'string');
    // event_fields and the federation format deliberately leave the client event schema.
    const raw = async (f: unknown) => (await alice.get(`/_matrix/client/v3/sync?filter=${enc(JSON.stringify(f))}`, { noSchema: true })).body;
    const fields = await raw({ event_fields: ['type', 'content.body'], room: { timeline: { limit: 1 } } });
    assert.deepEqual(fields.rooms.join[roomId].timeline.events, [{ type: 'm.room.message', content: { body: 'm4' } }]);
    const fed = await raw({ event_format: 'federation', room: { timeline: { limit: 1 } } });
    const pdu = fed.rooms.join[roomId].timeline.events[0];
    assert.ok(Array.isArray(pdu.prev_events) && Array.isArray(pdu.auth_events) && typeof pdu.depth === 'number');
    const inline = await sync(alice, { filter: JSON.stringify({ room: { timeline: { types: ['m.room.create'] } } }) });
    assert.deepEqual(inline.rooms.join[roomId].timeline.events.map((e: any) => e.type), []);
    const bad = await alice.post(`/_matrix/client/v3/user/${enc(alice.userId)}/filter`, { room: { timeline: { limit: 'x' } } });
    assert.equal(bad.status, 400);
    const badInline = await alice.get(`/_matrix/client/v3/sync?filter=${enc('{not json')}`);
    assert.equal(badInline.status, 400);
    const unknown = await alice.get(`/_matrix/client/v3/sync?filter=12345`);
    assert.equal(unknown.status, 400);
  });

  it('lazy-loads members: only the timeline senders and the user, also in incremental syncs', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const carol = await server.register();
    // Named: an unnamed room's heroes come with their member events too (sync-details).
    const roomId = await createRoom(alice, { name: 'Lazy', invite: [bob.userId, carol.userId] });
    await join(bob, roomId);
    await join(carol, roomId);
    await send(carol, roomId, { msgtype: 'm.text', body: 'carol early' });
    await send(bob, roomId, { msgtype: 'm.text', body: 'bob last' });
    const filter = JSON.stringify({ room: { timeline: { limit: 1 }, state: { lazy_load_members: true } } });
    const first = await sync(alice, { filter });
    const members = (r: any) => r.rooms.join[roomId].state.events.filter((e: any) => e.type === 'm.room.member').map((e: any) => e.state_key).sort();
    assert.deepEqual(members(first), [alice.userId, bob.userId].sort());
    await send(carol, roomId, { msgtype: 'm.text', body: 'carol again' });
    const next = await syncUntil(alice, first.next_batch, (r) => !!r.rooms.join[roomId], 5000, { filter });
    assert.ok(members(next).includes(carol.userId));
  });

  it('sends the state between since and the start of a cut timeline', async () => {
    const alice = await server.register();
    const roomId = await createRoom(alice);
    const filter = JSON.stringify({ room: { timeline: { limit: 2 } } });
    const first = await sync(alice, { filter });
    await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.topic/`, { topic: 'new topic' });
    for (let i = 0; i < 4; i++) await send(alice, roomId, { msgtype: 'm.text', body: `after ${i}` });
    const res = await sync(alice, { since: first.next_batch, filter });
    const room = res.rooms.join[roomId];
    assert.equal(room.timeline.limited, true);
    assert.ok(room.state.events.some((e: any) => e.type === 'm.room.topic' && e.content.topic === 'new topic'));
  });

  it('records presence, shows it to room members and answers GET', async () => {
    const alice = await server.register();
    const bob = await server.register();
    await sharedRoom(alice, bob);
    const first = await sync(bob);
    const r = await alice.put(`/_matrix/client/v3/presence/${enc(alice.userId)}/status`, { presence: 'unavailable', status_msg: 'lunch' });
    assert.equal(r.status, 200);
    const res = await syncUntil(bob, first.next_batch, (x) => x.presence.events.some((e: any) => e.sender === alice.userId));
    const ev = res.presence.events.find((e: any) => e.sender === alice.userId);
    assert.equal(ev.content.presence, 'unavailable');
    assert.equal(ev.content.status_msg, 'lunch');
    const got = await bob.get(`/_matrix/client/v3/presence/${enc(alice.userId)}/status`);
    assert.equal(got.body.presence, 'unavailable');
    assert.equal(typeof got.body.last_active_ago, 'number');
    const stranger = await server.register();
    assert.equal((await stranger.get(`/_matrix/client/v3/presence/${enc(alice.userId)}/status`)).status, 403);
    assert.equal((await alice.put(`/_matrix/client/v3/presence/${enc(alice.userId)}/status`, { presence: 'asleep' })).status, 400);
    assert.equal((await alice.put(`/_matrix/client/v3/presence/${enc(bob.userId)}/status`, { presence: 'online' })).status, 403);
  });

  it('marks a syncing user online unless set_presence says otherwise', async () => {
    const alice = await server.register();
    await sync(alice, { set_presence: 'offline' });
    assert.equal((await alice.get(`/_matrix/client/v3/presence/${enc(alice.userId)}/status`)).body.presence, 'offline');
    await sync(alice);
    const online = await alice.get(`/_matrix/client/v3/presence/${enc(alice.userId)}/status`);
    assert.equal(online.body.presence, 'online');
    assert.equal(online.body.currently_active, true);
    await sync(alice, { set_presence: 'unavailable' });
    assert.equal((await alice.get(`/_matrix/client/v3/presence/${enc(alice.userId)}/status`)).body.presence, 'unavailable');
  });
});

describe('sync: presence timeouts', () => {
  let server: TestServer;
  let db: pg.Client;
  before(async () => {
    server = await startTestServer();
    db = new pg.Client({ connectionString: server.databaseUrl });
    await db.connect();
  });
  after(async () => {
    await db.end();
    await server.stop();
  });

  it('turns an idle user unavailable, a silent one offline, and a sender online again', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await sharedRoom(alice, bob);
    await alice.put(`/_matrix/client/v3/presence/${enc(alice.userId)}/status`, { presence: 'online' });
    const sweep = () => server.hs.services.sync.presence.sweep();
    const state = async () => (await bob.get(`/_matrix/client/v3/presence/${enc(alice.userId)}/status`)).body.presence;
    const first = await sync(bob);
    // No activity for ten minutes, but still syncing: unavailable.
    await db.query('UPDATE sync_presence SET last_active_ts = last_active_ts - 600000 WHERE user_id = $1', [alice.userId]);
    assert.deepEqual(await sweep(), [alice.userId]);
    assert.equal(await state(), 'unavailable');
    const seen = await syncUntil(bob, first.next_batch, (r) => r.presence.events.some((e: any) => e.sender === alice.userId && e.content.presence === 'unavailable'));
    // A sync does not end idleness; sending a message does.
    await sync(alice);
    assert.equal(await state(), 'unavailable');
    await send(alice, roomId, { msgtype: 'm.text', body: 'back' });
    await syncUntil(bob, seen.next_batch, (r) => r.presence.events.some((e: any) => e.sender === alice.userId && e.content.presence === 'online'));
    // Neither syncing nor active for ten minutes: offline.
    await db.query('UPDATE sync_presence SET last_active_ts = last_active_ts - 600000, last_user_sync_ts = last_user_sync_ts - 600000 WHERE user_id = $1', [alice.userId]);
    assert.deepEqual(await sweep(), [alice.userId]);
    assert.equal(await state(), 'offline');
    assert.deepEqual(await sweep(), []);
  });
});

describe('sync: presence switched off', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ presence: { enabled: false } });
  });
  after(() => server.stop());

  it('accepts PUT, answers offline and sends no presence in sync', async () => {
    const alice = await server.register();
    assert.equal((await alice.put(`/_matrix/client/v3/presence/${enc(alice.userId)}/status`, { presence: 'online' })).status, 200);
    assert.equal((await alice.get(`/_matrix/client/v3/presence/${enc(alice.userId)}/status`)).body.presence, 'offline');
    const res = await sync(alice);
    assert.deepEqual(res.presence.events, []);
  });
});
