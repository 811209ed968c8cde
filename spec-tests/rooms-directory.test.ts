// Aliases, the public room directory and reports: raw HTTP and matrix-js-sdk.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { releaseProcess } from './support/sdk.js';
import { createClient, Preset, Visibility, type MatrixClient } from 'matrix-js-sdk';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { registerWithSharedSecret } from './support/admin.js';
import type { TestClient } from './support/client.js';
import { type TestServer, startServerWithUsers } from './support/server.js';

sdkLogger.setLevel('silent');

const V3 = '/_matrix/client/v3';
const room = (roomId: string) => `${V3}/rooms/${encodeURIComponent(roomId)}`;
const dirRoom = (alias: string) => `${V3}/directory/room/${encodeURIComponent(alias)}`;
let n = 0;
const unique = (p: string) => `${p}${Date.now().toString(36)}${++n}`;

async function createRoom(c: TestClient, body: Record<string, unknown> = {}): Promise<string> {
  const r = await c.post(`${V3}/createRoom`, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.room_id;
}

describe('aliases, directory and reports', () => {
  let server: TestServer;
  let alice: TestClient, bob: TestClient, carol: TestClient;
  before(async () => ({ server, users: [alice, bob, carol] } = await startServerWithUsers(3)));
  after(() => server.stop());

  it('finds a public channel in the directory through matrix-js-sdk and joins it by alias', async () => {
    const sdk = (c: TestClient): MatrixClient => createClient({ baseUrl: server.baseUrl, accessToken: c.token!, userId: c.userId, deviceId: c.deviceId });
    const a = sdk(alice);
    const b = sdk(bob);
    const term = unique('chan');
    const { room_id: roomId } = await a.createRoom({ preset: Preset.PublicChat, visibility: Visibility.Public, name: `Channel ${term}`, topic: 'all welcome', room_alias_name: term });
    const found = await b.publicRooms({ filter: { generic_search_term: term } });
    assert.equal(found.chunk.length, 1);
    const entry = found.chunk[0]!;
    assert.equal(entry.room_id, roomId);
    assert.equal(entry.name, `Channel ${term}`);
    assert.equal(entry.topic, 'all welcome');
    assert.equal(entry.canonical_alias, `#${term}:localhost`);
    assert.equal(entry.num_joined_members, 1);
    assert.equal(entry.world_readable, false);
    assert.equal(entry.guest_can_join, false);
    assert.equal(entry.join_rule, 'public');
    const resolved = await b.getRoomIdForAlias(entry.canonical_alias!);
    assert.equal(resolved.room_id, roomId);
    const joined = await b.joinRoom(entry.canonical_alias!);
    assert.equal(joined.roomId, roomId);
    const again = await b.publicRooms({ filter: { generic_search_term: term } });
    assert.equal(again.chunk[0]!.num_joined_members, 2);
    a.stopClient();
    b.stopClient();
  });

  it('creates, resolves, lists and deletes aliases with the spec\'s errors', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    const alias = `#${unique('al')}:localhost`;
    assert.equal((await alice.put(dirRoom(alias), { room_id: roomId })).status, 200);
    const taken = await bob.put(dirRoom(alias), { room_id: roomId });
    assert.ok(taken.status === 409 || taken.status === 403, `${taken.status}`);
    await bob.post(`${room(roomId)}/join`);
    const dup = await bob.put(dirRoom(alias), { room_id: roomId });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.errcode, 'M_UNKNOWN');
    const foreign = await alice.put(dirRoom(`#x:elsewhere.example`), { room_id: roomId });
    assert.equal(foreign.status, 400);
    assert.equal((await alice.put(dirRoom('not-an-alias'), { room_id: roomId })).body.errcode, 'M_INVALID_PARAM');
    assert.equal((await alice.put(dirRoom(`#${unique('z')}:localhost`), {})).body.errcode, 'M_MISSING_PARAM');

    const got = await server.anon().get(dirRoom(alias));
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, { room_id: roomId, servers: ['localhost'] });
    const list = await bob.get(`${room(roomId)}/aliases`);
    assert.deepEqual(list.body.aliases, [alias]);
    assert.equal((await carol.get(`${room(roomId)}/aliases`)).status, 403);

    // Bob (default power) neither created it nor moderates: refused. Alice (creator of the
    // alias and admin of the room) may.
    const refused = await bob.delete(dirRoom(alias));
    assert.equal(refused.status, 403);
    assert.equal(refused.body.errcode, 'M_FORBIDDEN');
    assert.equal((await alice.delete(dirRoom(alias))).status, 200);
    const gone = await alice.get(dirRoom(alias));
    assert.equal(gone.status, 404);
    assert.equal(gone.body.errcode, 'M_NOT_FOUND');
    assert.equal((await alice.delete(dirRoom(alias))).status, 404);
  });

  it('lets the alias creator delete it, and drops it from the canonical alias', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat', room_alias_name: unique('canon') });
    const canonical = (await alice.get(`${room(roomId)}/state/m.room.canonical_alias`)).body.alias as string;
    await bob.post(`${room(roomId)}/join`);
    const bobs = `#${unique('bobs')}:localhost`;
    assert.equal((await bob.put(dirRoom(bobs), { room_id: roomId })).status, 200);
    assert.equal((await bob.delete(dirRoom(bobs))).status, 200);
    assert.equal((await alice.delete(dirRoom(canonical))).status, 200);
    const after1 = await alice.get(`${room(roomId)}/state/m.room.canonical_alias`);
    assert.equal(after1.body.alias, undefined);
  });

  it('validates m.room.canonical_alias: every alias must point at the room', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    const other = await createRoom(alice, { preset: 'public_chat', room_alias_name: unique('other') });
    const otherAlias = (await alice.get(`${room(other)}/state/m.room.canonical_alias`)).body.alias;
    const mine = `#${unique('mine')}:localhost`;
    await alice.put(dirRoom(mine), { room_id: roomId });
    const ok = await alice.put(`${room(roomId)}/state/m.room.canonical_alias`, { alias: mine });
    assert.equal(ok.status, 200);
    const wrongRoom = await alice.put(`${room(roomId)}/state/m.room.canonical_alias`, { alias: otherAlias });
    assert.equal(wrongRoom.status, 400);
    assert.equal(wrongRoom.body.errcode, 'M_BAD_ALIAS');
    const missing = await alice.put(`${room(roomId)}/state/m.room.canonical_alias`, { alias: mine, alt_aliases: [`#${unique('nope')}:localhost`] });
    assert.equal(missing.body.errcode, 'M_BAD_ALIAS');
    const invalid = await alice.put(`${room(roomId)}/state/m.room.canonical_alias`, { alias: 'nonsense' });
    assert.equal(invalid.body.errcode, 'M_INVALID_PARAM');
    // createRoom's initial_state is held to the same rule.
    const viaCreate = await alice.post(`${V3}/createRoom`, { initial_state: [{ type: 'm.room.canonical_alias', content: { alias: otherAlias } }] });
    assert.equal(viaCreate.status, 400);
    assert.equal(viaCreate.body.errcode, 'M_BAD_ALIAS');
    // Clearing it is always fine.
    assert.equal((await alice.put(`${room(roomId)}/state/m.room.canonical_alias`, {})).status, 200);
  });

  it('publishes and unpublishes a room; only a moderator may', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat', name: unique('pub') });
    const url = `${V3}/directory/list/room/${encodeURIComponent(roomId)}`;
    assert.deepEqual((await server.anon().get(url)).body, { visibility: 'private' });
    assert.equal((await server.anon().get(`${V3}/directory/list/room/${encodeURIComponent('!nope:localhost')}`)).status, 404);
    await bob.post(`${room(roomId)}/join`);
    assert.equal((await bob.put(url, { visibility: 'public' })).status, 403);
    assert.equal((await alice.put(url, { visibility: 'public' })).status, 200);
    assert.deepEqual((await alice.get(url)).body, { visibility: 'public' });
    const listed = await server.anon().get(`${V3}/publicRooms?limit=500`);
    assert.ok(listed.body.chunk.some((r: { room_id: string }) => r.room_id === roomId));
    assert.equal((await alice.put(url, { visibility: 'private' })).status, 200);
    const unlisted = await server.anon().get(`${V3}/publicRooms?limit=500`);
    assert.ok(!unlisted.body.chunk.some((r: { room_id: string }) => r.room_id === roomId));
  });

  it('pages /publicRooms with since tokens, counts, filters room_types', async () => {
    const tag = unique('page');
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add(await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: `${tag} ${i}` }));
    const space = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: `${tag} space`, creation_content: { type: 'm.space' } });
    const seen: string[] = [];
    let since: string | undefined;
    for (let i = 0; i < 10; i++) {
      const r = await alice.post(`${V3}/publicRooms`, { limit: 2, filter: { generic_search_term: tag }, ...(since ? { since } : {}) });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(r.body.total_room_count_estimate >= 6);
      seen.push(...r.body.chunk.map((c: { room_id: string }) => c.room_id));
      if (i > 0) assert.ok(r.body.prev_batch);
      if (!r.body.next_batch) break;
      since = r.body.next_batch;
    }
    assert.equal(seen.length, 6);
    assert.equal(new Set(seen).size, 6);
    const spaces = await alice.post(`${V3}/publicRooms`, { filter: { generic_search_term: tag, room_types: ['m.space'] } });
    assert.deepEqual(spaces.body.chunk.map((c: { room_id: string }) => c.room_id), [space]);
    assert.equal(spaces.body.chunk[0].room_type, 'm.space');
    const plain = await alice.post(`${V3}/publicRooms`, { filter: { generic_search_term: tag, room_types: [null] } });
    assert.deepEqual(new Set(plain.body.chunk.map((c: { room_id: string }) => c.room_id)), ids);
    assert.equal((await alice.get(`${V3}/publicRooms?since=garbage`)).body.errcode, 'M_INVALID_PARAM');
    assert.equal((await alice.get(`${V3}/publicRooms?server=elsewhere.example`)).status, 400);
    assert.equal((await alice.get(`${V3}/publicRooms?server=localhost&limit=1`)).status, 200);
  });

  it('stores reports of events and rooms and lists them to admins only', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat', name: 'Reported' });
    await bob.post(`${room(roomId)}/join`);
    const ev = await alice.put(`${room(roomId)}/send/m.room.message/${unique('t')}`, { msgtype: 'm.text', body: 'offensive' });
    const eventId = ev.body.event_id as string;
    const rep = await bob.post(`${room(roomId)}/report/${encodeURIComponent(eventId)}`, { reason: 'rude', score: -100 });
    assert.equal(rep.status, 200, JSON.stringify(rep.body));
    // Not joined, unknown event: the same 404.
    assert.equal((await carol.post(`${room(roomId)}/report/${encodeURIComponent(eventId)}`, { reason: 'x' })).status, 404);
    assert.equal((await bob.post(`${room(roomId)}/report/${encodeURIComponent('$nope')}`, { reason: 'x' })).body.errcode, 'M_NOT_FOUND');
    assert.equal((await bob.post(`${room(roomId)}/report/${encodeURIComponent(eventId)}`, { score: 5 })).status, 400);
    // A room may be reported by anyone; an unknown room is 404.
    assert.equal((await carol.post(`${room(roomId)}/report`, { reason: 'spam room' })).status, 200);
    assert.equal((await carol.post(`${room('!nope:localhost')}/report`, { reason: 'x' })).status, 404);

    assert.equal((await bob.get('/_synapse/admin/v1/event_reports')).status, 403);
    const admin = await registerWithSharedSecret(server.baseUrl, unique('admin'), 'pw', true);
    const all = await admin.get(`/_synapse/admin/v1/event_reports?room_id=${encodeURIComponent(roomId)}`);
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.equal(all.body.total, 2);
    const [roomReport, eventReport] = all.body.event_reports;
    assert.equal(roomReport.user_id, carol.userId);
    assert.equal(roomReport.event_id, null);
    assert.equal(eventReport.event_id, eventId);
    assert.equal(eventReport.reason, 'rude');
    assert.equal(eventReport.score, -100);
    assert.equal(eventReport.sender, alice.userId);
    assert.equal(eventReport.name, 'Reported');
    const paged = await admin.get(`/_synapse/admin/v1/event_reports?room_id=${encodeURIComponent(roomId)}&limit=1`);
    assert.equal(paged.body.event_reports.length, 1);
    assert.equal(paged.body.next_token, 1);
    const one = await admin.get(`/_synapse/admin/v1/event_reports/${eventReport.id}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.event_json.event_id, eventId);
    assert.equal(one.body.event_json.content.body, 'offensive');
    assert.equal((await bob.get(`/_synapse/admin/v1/event_reports/${eventReport.id}`)).status, 403);
    assert.equal((await admin.delete(`/_synapse/admin/v1/event_reports/${eventReport.id}`)).status, 200);
    assert.equal((await admin.get(`/_synapse/admin/v1/event_reports/${eventReport.id}`)).status, 404);
    assert.equal((await admin.get('/_synapse/admin/v1/event_reports/abc')).status, 400);
  });
});

// matrix-js-sdk leaves request timers behind that would hold this file's process for ~110 s.
after(() => releaseProcess());
