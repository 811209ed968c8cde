// Room upgrades over raw HTTP and matrix-js-sdk: the new room's create event and copied state,
// aliases and the directory moved, the tombstone, the old room locked down, refusals.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { releaseProcess } from './support/sdk.js';
import { createClient } from 'matrix-js-sdk';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import type { TestClient } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';

sdkLogger.setLevel('silent');

const V3 = '/_matrix/client/v3';
const room = (roomId: string) => `${V3}/rooms/${encodeURIComponent(roomId)}`;
let n = 0;
const unique = (p: string) => `${p}${Date.now().toString(36)}${++n}`;

async function createRoom(c: TestClient, body: Record<string, unknown> = {}): Promise<string> {
  const r = await c.post(`${V3}/createRoom`, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.room_id;
}

async function state(c: TestClient, roomId: string, type: string, key = ''): Promise<any> {
  const r = await c.get(`${room(roomId)}/state/${type}/${encodeURIComponent(key)}`);
  return r.status === 200 ? r.body : undefined;
}

describe('room upgrades', () => {
  let server: TestServer;
  let alice: TestClient;
  let bob: TestClient;
  before(async () => {
    server = await startTestServer();
    alice = await server.register();
    bob = await server.register();
  });
  after(() => server.stop());

  it('upgrades a room: predecessor, copied state, moved aliases, tombstone, restricted old room', async () => {
    const alias = unique('up');
    const oldRoom = await createRoom(alice, {
      preset: 'public_chat',
      visibility: 'public',
      room_version: '10',
      name: 'Before',
      topic: 'Topic',
      room_alias_name: alias,
      initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'world_readable' } }],
    });
    await bob.post(`${room(oldRoom)}/join`);
    await alice.post(`${room(oldRoom)}/ban`, { user_id: '@spammer:localhost', reason: 'spam' });
    const pl = await state(alice, oldRoom, 'm.room.power_levels');
    await alice.put(`${room(oldRoom)}/state/m.room.power_levels/`, { ...pl, users: { ...pl.users, [bob.userId]: 42 } });

    // Bob may not: the tombstone needs 100.
    const refused = await bob.post(`${room(oldRoom)}/upgrade`, { new_version: '11' });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.errcode, 'M_FORBIDDEN');
    const unsupported = await alice.post(`${room(oldRoom)}/upgrade`, { new_version: '999' });
    assert.equal(unsupported.status, 400);
    assert.equal(unsupported.body.errcode, 'M_UNSUPPORTED_ROOM_VERSION');
    assert.equal((await alice.post(`${room(oldRoom)}/upgrade`, {})).body.errcode, 'M_MISSING_PARAM');
    assert.equal((await alice.post(`${room('!nope:localhost')}/upgrade`, { new_version: '11' })).status, 403);

    const up = await alice.post(`${room(oldRoom)}/upgrade`, { new_version: '11' });
    assert.equal(up.status, 200, JSON.stringify(up.body));
    const newRoom = up.body.replacement_room as string;
    assert.notEqual(newRoom, oldRoom);

    const create = await state(alice, newRoom, 'm.room.create');
    assert.equal(create.room_version, '11');
    assert.equal(create.predecessor.room_id, oldRoom);
    assert.equal(typeof create.predecessor.event_id, 'string');
    assert.equal((await state(alice, newRoom, 'm.room.name')).name, 'Before');
    assert.equal((await state(alice, newRoom, 'm.room.topic')).topic, 'Topic');
    assert.equal((await state(alice, newRoom, 'm.room.join_rules')).join_rule, 'public');
    assert.equal((await state(alice, newRoom, 'm.room.history_visibility')).history_visibility, 'world_readable');
    const newPl = await state(alice, newRoom, 'm.room.power_levels');
    assert.equal(newPl.users[bob.userId], 42);
    assert.equal(newPl.users[alice.userId], 100);
    assert.equal((await state(alice, newRoom, 'm.room.member', '@spammer:localhost')).membership, 'ban');
    // Members are not moved: Bob is not in the new room.
    assert.equal((await state(alice, newRoom, 'm.room.member', bob.userId)), undefined);

    const resolved = await alice.get(`${V3}/directory/room/${encodeURIComponent(`#${alias}:localhost`)}`);
    assert.equal(resolved.body.room_id, newRoom);
    assert.equal((await state(alice, newRoom, 'm.room.canonical_alias')).alias, `#${alias}:localhost`);
    assert.equal((await state(alice, oldRoom, 'm.room.canonical_alias'))?.alias, undefined);
    assert.deepEqual((await alice.get(`${V3}/directory/list/room/${encodeURIComponent(newRoom)}`)).body, { visibility: 'public' });
    assert.deepEqual((await alice.get(`${V3}/directory/list/room/${encodeURIComponent(oldRoom)}`)).body, { visibility: 'private' });

    const tomb = await state(alice, oldRoom, 'm.room.tombstone');
    assert.equal(tomb.replacement_room, newRoom);
    const oldPl = await state(alice, oldRoom, 'm.room.power_levels');
    assert.equal(oldPl.events_default, 50);
    assert.equal(oldPl.invite, 50);
    // Bob (42) can no longer talk in the old room.
    const talk = await bob.put(`${room(oldRoom)}/send/m.room.message/${unique('t')}`, { msgtype: 'm.text', body: 'hello?' });
    assert.equal(talk.status, 403);
    // He follows the tombstone.
    assert.equal((await bob.post(`${room(newRoom)}/join`)).status, 200);
  });

  it('upgrades to v12 with additional creators, who are not listed in power levels', async () => {
    const oldRoom = await createRoom(alice, { preset: 'private_chat', room_version: '11' });
    await alice.post(`${room(oldRoom)}/invite`, { user_id: bob.userId });
    await bob.post(`${room(oldRoom)}/join`);
    const up = await alice.post(`${room(oldRoom)}/upgrade`, { new_version: '12', additional_creators: [bob.userId] });
    assert.equal(up.status, 200, JSON.stringify(up.body));
    const newRoom = up.body.replacement_room as string;
    const create = await state(alice, newRoom, 'm.room.create');
    assert.deepEqual(create.additional_creators, [bob.userId]);
    assert.equal(create.predecessor.room_id, oldRoom);
    const pl = await state(alice, newRoom, 'm.room.power_levels');
    assert.equal(pl.users?.[alice.userId], undefined);
    assert.equal(pl.users?.[bob.userId], undefined);
    assert.equal((await state(alice, newRoom, 'm.room.join_rules')).join_rule, 'invite');
    // An invite-only room: the old room's members are invited, so they can follow.
    assert.equal((await state(alice, newRoom, 'm.room.member', bob.userId)).membership, 'invite');
    assert.equal((await bob.post(`${room(newRoom)}/join`)).status, 200);
  });

  it('answers two concurrent identical upgrade requests with one replacement room', async () => {
    const oldRoom = await createRoom(alice, { preset: 'public_chat', room_version: '10' });
    const [a, b] = await Promise.all([
      alice.post(`${room(oldRoom)}/upgrade`, { new_version: '11' }),
      alice.post(`${room(oldRoom)}/upgrade`, { new_version: '11' }),
    ]);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.equal(a.body.replacement_room, b.body.replacement_room);
  });

  it('upgrades through matrix-js-sdk', async () => {
    const sdk = createClient({ baseUrl: server.baseUrl, accessToken: alice.token!, userId: alice.userId, deviceId: alice.deviceId });
    const { room_id: oldRoom } = await sdk.createRoom({ room_version: '9', name: 'sdk upgrade' });
    const { replacement_room: newRoom } = await sdk.upgradeRoom(oldRoom, '11');
    const tomb = await sdk.getStateEvent(oldRoom, 'm.room.tombstone', '');
    assert.equal(tomb['replacement_room'], newRoom);
    const name = await sdk.getStateEvent(newRoom, 'm.room.name', '');
    assert.equal(name['name'], 'sdk upgrade');
    sdk.stopClient();
  });
});

// matrix-js-sdk leaves request timers behind that would hold this file's process for ~110 s.
after(() => releaseProcess());
