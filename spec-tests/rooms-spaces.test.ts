// Spaces and room summaries: /hierarchy over a space with suggested and nested children, its
// pagination and access rules; /room_summary by id and alias, with and without a token.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestClient } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';

const V3 = '/_matrix/client/v3';
const V1 = '/_matrix/client/v1';
const room = (roomId: string) => `${V3}/rooms/${encodeURIComponent(roomId)}`;
const hierarchy = (roomId: string, qs = '') => `${V1}/rooms/${encodeURIComponent(roomId)}/hierarchy${qs}`;
let n = 0;
const unique = (p: string) => `${p}${Date.now().toString(36)}${++n}`;

async function createRoom(c: TestClient, body: Record<string, unknown> = {}): Promise<string> {
  const r = await c.post(`${V3}/createRoom`, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.room_id;
}

async function addChild(c: TestClient, space: string, child: string, content: Record<string, unknown> = {}): Promise<void> {
  const r = await c.put(`${room(space)}/state/m.space.child/${encodeURIComponent(child)}`, { via: ['localhost'], ...content });
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

const ids = (body: { rooms: Array<{ room_id: string }> }) => body.rooms.map((r) => r.room_id);

describe('spaces and summaries', () => {
  let server: TestServer;
  let alice: TestClient;
  let bob: TestClient;
  let space: string;
  let general: string;
  let random: string;
  let secret: string;
  let sub: string;
  let deep: string;
  before(async () => {
    server = await startTestServer();
    alice = await server.register();
    bob = await server.register();
    space = await createRoom(alice, { preset: 'public_chat', name: 'Space', creation_content: { type: 'm.space' } });
    general = await createRoom(alice, { preset: 'public_chat', name: 'General', topic: 'talk' });
    random = await createRoom(alice, { preset: 'public_chat', name: 'Random' });
    secret = await createRoom(alice, { preset: 'private_chat', name: 'Secret' });
    sub = await createRoom(alice, { preset: 'public_chat', name: 'Sub', creation_content: { type: 'm.space' } });
    deep = await createRoom(alice, { preset: 'public_chat', name: 'Deep' });
    await addChild(alice, space, random, { order: 'b' });
    await addChild(alice, space, general, { order: 'a', suggested: true });
    await addChild(alice, space, secret, { suggested: true });
    await addChild(alice, space, sub);
    await addChild(alice, sub, deep, { suggested: true });
    // A child event without `via` is not a child.
    await alice.put(`${room(space)}/state/m.space.child/${encodeURIComponent(deep)}`, { order: 'c' });
  });
  after(() => server.stop());

  it('walks the space breadth first in the spec order, with children_state', async () => {
    const r = await alice.get(hierarchy(space));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    // Ordered children first (a, b), then by the child event's timestamp.
    assert.deepEqual(ids(r.body), [space, general, random, secret, sub, deep]);
    const root = r.body.rooms[0];
    assert.equal(root.room_type, 'm.space');
    assert.equal(root.name, 'Space');
    assert.deepEqual(root.children_state.map((c: { state_key: string }) => c.state_key), [general, random, secret, sub]);
    assert.equal(root.children_state[0].type, 'm.space.child');
    assert.equal(typeof root.children_state[0].origin_server_ts, 'number');
    const gen = r.body.rooms[1];
    assert.equal(gen.topic, 'talk');
    assert.equal(gen.num_joined_members, 1);
    assert.equal(gen.join_rule, 'public');
    assert.deepEqual(gen.children_state, []);
    assert.equal(r.body.next_batch, undefined);
  });

  it('shows non-members only rooms they may preview', async () => {
    const r = await bob.get(hierarchy(space));
    assert.equal(r.status, 200);
    assert.deepEqual(ids(r.body), [space, general, random, sub, deep]);
    const closed = await bob.get(hierarchy(secret));
    assert.equal(closed.status, 403);
    assert.equal(closed.body.errcode, 'M_FORBIDDEN');
    assert.equal((await bob.get(hierarchy('!nope:localhost'))).status, 403);
  });

  it('honours suggested_only and max_depth', async () => {
    const suggested = await alice.get(hierarchy(space, '?suggested_only=true'));
    assert.deepEqual(ids(suggested.body), [space, general, secret]);
    const shallow = await alice.get(hierarchy(space, '?max_depth=1'));
    assert.deepEqual(ids(shallow.body), [space, general, random, secret, sub]);
    const rootOnly = await alice.get(hierarchy(space, '?max_depth=0'));
    assert.deepEqual(ids(rootOnly.body), [space]);
  });

  it('pages with `from` and refuses a token of another walk', async () => {
    const seen: string[] = [];
    let from: string | undefined;
    for (let i = 0; i < 10; i++) {
      const r = await alice.get(hierarchy(space, `?limit=2${from ? `&from=${encodeURIComponent(from)}` : ''}`));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(r.body.rooms.length <= 2);
      seen.push(...ids(r.body));
      if (!r.body.next_batch) break;
      from = r.body.next_batch;
    }
    assert.deepEqual(seen, [space, general, random, secret, sub, deep]);
    const first = await alice.get(hierarchy(space, '?limit=2'));
    const mismatched = await alice.get(hierarchy(space, `?limit=2&suggested_only=true&from=${encodeURIComponent(first.body.next_batch)}`));
    assert.equal(mismatched.status, 400);
    assert.equal(mismatched.body.errcode, 'M_INVALID_PARAM');
    assert.equal((await alice.get(hierarchy(space, '?from=junk'))).status, 400);
    assert.equal((await alice.get(hierarchy(space, '?limit=zero'))).status, 400);
  });

  it('summarises a room by id and by alias, without a token for public rooms', async () => {
    const alias = unique('sum');
    const roomId = await createRoom(alice, { preset: 'public_chat', name: 'Summary', topic: 'About', room_alias_name: alias, room_version: '11' });
    const byId = await bob.get(`${V1}/room_summary/${encodeURIComponent(roomId)}`);
    assert.equal(byId.status, 200, JSON.stringify(byId.body));
    assert.equal(byId.body.room_id, roomId);
    assert.equal(byId.body.name, 'Summary');
    assert.equal(byId.body.topic, 'About');
    assert.equal(byId.body.canonical_alias, `#${alias}:localhost`);
    assert.equal(byId.body.join_rule, 'public');
    assert.equal(byId.body.room_version, '11');
    assert.equal(byId.body.num_joined_members, 1);
    assert.equal(byId.body.membership, 'leave');
    const byAlias = await server.anon().get(`${V1}/room_summary/${encodeURIComponent(`#${alias}:localhost`)}`);
    assert.equal(byAlias.status, 200);
    assert.equal(byAlias.body.room_id, roomId);
    assert.equal(byAlias.body.membership, undefined);
    const mine = await alice.get(`${V1}/room_summary/${encodeURIComponent(roomId)}`);
    assert.equal(mine.body.membership, 'join');
    const unstable = await bob.get(`/_matrix/client/unstable/im.nheko.summary/summary/${encodeURIComponent(roomId)}`, { noSchema: true });
    assert.equal(unstable.body.room_id, roomId);
    assert.equal(unstable.body['im.nheko.summary.room_version'], '11');
    const older = await bob.get(`/_matrix/client/unstable/im.nheko.summary/rooms/${encodeURIComponent(roomId)}/summary`, { noSchema: true });
    assert.equal(older.body['im.nheko.summary.version'], '11');
    // A private room is as unknown to outsiders as a room that does not exist.
    const hidden = await bob.get(`${V1}/room_summary/${encodeURIComponent(secret)}`);
    assert.equal(hidden.status, 404);
    assert.equal(hidden.body.errcode, 'M_NOT_FOUND');
    assert.equal((await bob.get(`${V1}/room_summary/${encodeURIComponent('#nope:localhost')}`)).status, 404);
    assert.equal((await alice.get(`${V1}/room_summary/${encodeURIComponent(secret)}`)).status, 200);
  });
});
