// Rooms over raw HTTP: creation presets, membership, sends, state, redaction, reads.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestClient } from './support/client.js';
import { TXN_ID_LIFETIME_MS } from '../src/rooms/service.js';
import { type TestServer, startServerWithUsers } from './support/server.js';

const V3 = '/_matrix/client/v3';
let txnCounter = 0;
const txn = () => `t${Date.now()}_${++txnCounter}`;

async function createRoom(c: TestClient, body: Record<string, unknown> = {}): Promise<string> {
  const r = await c.post(`${V3}/createRoom`, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.room_id;
}

async function send(c: TestClient, roomId: string, body: Record<string, unknown> = { msgtype: 'm.text', body: 'hi' }, type = 'm.room.message') {
  return c.put(`${V3}/rooms/${encodeURIComponent(roomId)}/send/${type}/${txn()}`, body);
}

function room(roomId: string) {
  return `${V3}/rooms/${encodeURIComponent(roomId)}`;
}

describe('rooms', () => {
  let server: TestServer;
  let alice: TestClient, bob: TestClient, carol: TestClient;
  before(async () => ({ server, users: [alice, bob, carol] } = await startServerWithUsers(3)));
  after(() => server.stop());

  it('creates a public room that another user joins by id and by alias, and both can talk', async () => {
    const r = await alice.post(`${V3}/createRoom`, { preset: 'public_chat', name: 'Lobby', topic: 'Say hi', room_alias_name: 'lobby' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const roomId = r.body.room_id as string;
    assert.match(roomId, /^!.+:localhost$/);

    const joinRules = await alice.get(`${room(roomId)}/state/m.room.join_rules`);
    assert.deepEqual(joinRules.body, { join_rule: 'public' });
    const hv = await alice.get(`${room(roomId)}/state/m.room.history_visibility/`);
    assert.deepEqual(hv.body, { history_visibility: 'shared' });
    assert.equal((await alice.get(`${room(roomId)}/state/m.room.name`)).body.name, 'Lobby');
    assert.equal((await alice.get(`${room(roomId)}/state/m.room.topic`)).body.topic, 'Say hi');
    assert.equal((await alice.get(`${room(roomId)}/state/m.room.canonical_alias`)).body.alias, '#lobby:localhost');
    // Public rooms do not let guests in by default.
    assert.equal((await alice.get(`${room(roomId)}/state/m.room.guest_access`)).status, 404);

    const byAlias = await bob.post(`${V3}/join/${encodeURIComponent('#lobby:localhost')}`);
    assert.equal(byAlias.status, 200, JSON.stringify(byAlias.body));
    assert.equal(byAlias.body.room_id, roomId);
    const byId = await carol.post(`${room(roomId)}/join`);
    assert.equal(byId.status, 200);

    const sent = await send(bob, roomId, { msgtype: 'm.text', body: 'hello' });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const ev = await alice.get(`${room(roomId)}/event/${encodeURIComponent(sent.body.event_id)}`);
    assert.equal(ev.status, 200, JSON.stringify(ev.body));
    assert.equal(ev.body.sender, bob.userId);
    assert.equal(ev.body.content.body, 'hello');
    assert.equal(ev.body.room_id, roomId);
    assert.equal(typeof ev.body.unsigned.age, 'number');

    const joined = await alice.get(`${room(roomId)}/joined_members`);
    assert.deepEqual(Object.keys(joined.body.joined).sort(), [alice.userId, bob.userId, carol.userId].sort());
    assert.equal(joined.body.joined[bob.userId].display_name, bob.userId.slice(1, bob.userId.indexOf(':')));
    const rooms = await bob.get(`${V3}/joined_rooms`);
    assert.ok(rooms.body.joined_rooms.includes(roomId));
  });

  it('gives the creator power level 100 and the spec initial state in order', async () => {
    const roomId = await createRoom(alice, { preset: 'private_chat', name: 'n' });
    const state = await alice.get(`${room(roomId)}/state`);
    assert.equal(state.status, 200);
    const types = (state.body as Array<{ type: string }>).map((e) => e.type).sort();
    assert.deepEqual(types, [
      'm.room.create',
      'm.room.guest_access',
      'm.room.history_visibility',
      'm.room.join_rules',
      'm.room.member',
      'm.room.name',
      'm.room.power_levels',
    ]);
    const pl = await alice.get(`${room(roomId)}/state/m.room.power_levels`);
    assert.equal(pl.body.users[alice.userId], 100);
    // private_chat lets members invite.
    assert.equal(pl.body.invite, 0);
    const create = await alice.get(`${room(roomId)}/state/m.room.create?format=event`);
    assert.equal(create.body.sender, alice.userId);
    assert.equal(create.body.content.room_version, '11');
  });

  it('refuses the uninvited in a private room, then lets an invited user join', async () => {
    const roomId = await createRoom(alice, { preset: 'private_chat' });
    const refused = await bob.post(`${room(roomId)}/join`);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.errcode, 'M_FORBIDDEN');
    assert.match(refused.body.error, /not invited/);

    const invite = await alice.post(`${room(roomId)}/invite`, { user_id: bob.userId, reason: 'come along' });
    assert.equal(invite.status, 200, JSON.stringify(invite.body));
    const member = await alice.get(`${room(roomId)}/state/m.room.member/${encodeURIComponent(bob.userId)}`);
    assert.equal(member.body.membership, 'invite');
    assert.equal(member.body.reason, 'come along');

    const joined = await bob.post(`${room(roomId)}/join`);
    assert.equal(joined.status, 200);
    assert.equal((await send(bob, roomId)).status, 200);
  });

  it('refuses non-members reading or writing, the same as for a room that does not exist', async () => {
    const roomId = await createRoom(alice, { preset: 'private_chat' });
    const missing = '!doesnotexist:localhost';
    for (const id of [roomId, missing]) {
      const s = await send(carol, id);
      assert.equal(s.status, 403, `send to ${id}`);
      assert.equal(s.body.errcode, 'M_FORBIDDEN');
      const st = await carol.get(`${room(id)}/state`);
      assert.equal(st.status, 403);
      const m = await carol.get(`${room(id)}/members`);
      assert.equal(m.status, 403);
      const put = await carol.put(`${room(id)}/state/m.room.topic`, { topic: 'x' });
      assert.equal(put.status, 403);
    }
    const a = await send(carol, roomId);
    const b = await send(carol, missing);
    assert.equal(a.body.error.replace(roomId, 'X'), b.body.error.replace(missing, 'X'));
  });

  it('kicks, bans and unbans, with power checks', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await bob.post(`${room(roomId)}/join`);
    await carol.post(`${room(roomId)}/join`);

    // Default members (level 0) cannot kick.
    const notAllowed = await bob.post(`${room(roomId)}/kick`, { user_id: carol.userId });
    assert.equal(notAllowed.status, 403);
    assert.match(notAllowed.body.error, /power level/);

    const kick = await alice.post(`${room(roomId)}/kick`, { user_id: bob.userId, reason: 'spam' });
    assert.equal(kick.status, 200, JSON.stringify(kick.body));
    const after = await alice.get(`${room(roomId)}/state/m.room.member/${encodeURIComponent(bob.userId)}`);
    assert.equal(after.body.membership, 'leave');
    assert.equal(after.body.reason, 'spam');
    assert.equal((await send(bob, roomId)).status, 403);
    // A kicked user may rejoin a public room.
    assert.equal((await bob.post(`${room(roomId)}/join`)).status, 200);

    const ban = await alice.post(`${room(roomId)}/ban`, { user_id: bob.userId });
    assert.equal(ban.status, 200);
    const rejoin = await bob.post(`${room(roomId)}/join`);
    assert.equal(rejoin.status, 403);
    assert.match(rejoin.body.error, /banned/);
    // Unbanning someone not banned is refused; unbanning bob works and lets him back in.
    assert.equal((await alice.post(`${room(roomId)}/unban`, { user_id: carol.userId })).status, 403);
    assert.equal((await alice.post(`${room(roomId)}/unban`, { user_id: bob.userId })).status, 200);
    assert.equal((await bob.post(`${room(roomId)}/join`)).status, 200);
    // Kicking someone not in the room is refused.
    const stranger = await server.register();
    assert.equal((await alice.post(`${room(roomId)}/kick`, { user_id: stranger.userId })).status, 403);
  });

  it('refuses a default member changing power levels or sending protected state', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await bob.post(`${room(roomId)}/join`);
    const pl = (await bob.get(`${room(roomId)}/state/m.room.power_levels`)).body;
    const r = await bob.put(`${room(roomId)}/state/m.room.power_levels`, { ...pl, users: { ...pl.users, [bob.userId]: 100 } });
    assert.equal(r.status, 403);
    assert.equal(r.body.errcode, 'M_FORBIDDEN');
    assert.match(r.body.error, /power level/);
    const name = await bob.put(`${room(roomId)}/state/m.room.name`, { name: 'mine now' });
    assert.equal(name.status, 403);
    // The creator can.
    const ok = await alice.put(`${room(roomId)}/state/m.room.power_levels`, { ...pl, users: { ...pl.users, [bob.userId]: 50 } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal((await bob.put(`${room(roomId)}/state/m.room.name`, { name: 'now allowed' })).status, 200);
  });

  it('answers the same event_id for a repeated txnId, and a new event from another device', async () => {
    const roomId = await createRoom(alice);
    const path = `${room(roomId)}/send/m.room.message/same-txn`;
    const first = await alice.put(path, { msgtype: 'm.text', body: 'once' });
    const second = await alice.put(path, { msgtype: 'm.text', body: 'once' });
    assert.equal(first.status, 200);
    assert.equal(first.body.event_id, second.body.event_id);
    // Concurrent retries too.
    const racing = await Promise.all([1, 2, 3].map(() => alice.put(`${room(roomId)}/send/m.room.message/race`, { body: 'x', msgtype: 'm.text' })));
    assert.equal(new Set(racing.map((r) => r.body.event_id)).size, 1);

    // The same user on another device (a new login) gets a new event for the same txnId.
    const login = await server.anon().post(`${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.userId }, password: alice.password });
    const other = server.anon();
    other.token = login.body.access_token;
    const third = await other.put(path, { msgtype: 'm.text', body: 'once' });
    assert.equal(third.status, 200);
    assert.notEqual(third.body.event_id, first.body.event_id);

    // A retry after the sender left answers with the original event, not a refusal.
    const pub = await createRoom(alice, { preset: 'public_chat' });
    await bob.post(`${room(pub)}/join`);
    const sentBefore = await bob.put(`${room(pub)}/send/m.room.message/before-leaving`, { msgtype: 'm.text', body: 'x' });
    await bob.post(`${room(pub)}/leave`);
    const retried = await bob.put(`${room(pub)}/send/m.room.message/before-leaving`, { msgtype: 'm.text', body: 'x' });
    assert.equal(retried.status, 200);
    assert.equal(retried.body.event_id, sentBefore.body.event_id);
    assert.equal((await bob.put(`${room(pub)}/send/m.room.message/after-leaving`, { msgtype: 'm.text', body: 'x' })).status, 403);

    // The sending device sees its transaction_id; the other device does not.
    const mine = await alice.get(`${room(roomId)}/event/${encodeURIComponent(first.body.event_id)}`);
    assert.equal(mine.body.unsigned.transaction_id, 'same-txn');
    const theirs = await other.get(`${room(roomId)}/event/${encodeURIComponent(first.body.event_id)}`);
    assert.equal(theirs.body.unsigned.transaction_id, undefined);
  });

  it('forgets transaction ids after a day: a retry that late is a new event', async () => {
    const roomId = await createRoom(alice);
    const path = `${room(roomId)}/send/m.room.message/day-old`;
    const first = await alice.put(path, { msgtype: 'm.text', body: 'old' });
    const fresh = await alice.put(`${room(roomId)}/send/m.room.message/fresh`, { msgtype: 'm.text', body: 'new' });
    const db = server.hs.services.db;
    await db.query('UPDATE event_txn_ids SET created_ts = created_ts - $1 WHERE txn_id = $2', [TXN_ID_LIFETIME_MS + 1000, 'day-old']);
    assert.ok((await server.hs.services.rooms.expireTxnIds(Date.now())) >= 1);
    const late = await alice.put(path, { msgtype: 'm.text', body: 'old' });
    assert.equal(late.status, 200);
    assert.notEqual(late.body.event_id, first.body.event_id);
    // A recent one still answers with its event.
    assert.equal((await alice.put(`${room(roomId)}/send/m.room.message/fresh`, { msgtype: 'm.text', body: 'new' })).body.event_id, fresh.body.event_id);
  });

  it('redacts an event: content stripped on read, redacted_because set, v11 redacts in content', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await bob.post(`${room(roomId)}/join`);
    const sent = await send(bob, roomId, { msgtype: 'm.text', body: 'oops' });
    // Another default member may not redact bob's event.
    await carol.post(`${room(roomId)}/join`);
    const refused = await carol.put(`${room(roomId)}/redact/${encodeURIComponent(sent.body.event_id)}/${txn()}`, {});
    assert.equal(refused.status, 403);

    const red = await bob.put(`${room(roomId)}/redact/${encodeURIComponent(sent.body.event_id)}/${txn()}`, { reason: 'typo' });
    assert.equal(red.status, 200, JSON.stringify(red.body));
    const ev = await alice.get(`${room(roomId)}/event/${encodeURIComponent(sent.body.event_id)}`);
    assert.deepEqual(ev.body.content, {});
    assert.equal(ev.body.unsigned.redacted_because.event_id, red.body.event_id);
    const redaction = await alice.get(`${room(roomId)}/event/${encodeURIComponent(red.body.event_id)}`);
    assert.equal(redaction.body.content.redacts, sent.body.event_id);
    assert.equal(redaction.body.content.reason, 'typo');
    // A moderator (alice, 100) may redact others' events.
    const other = await send(carol, roomId);
    assert.equal((await alice.put(`${room(roomId)}/redact/${encodeURIComponent(other.body.event_id)}/${txn()}`, {})).status, 200);
  });

  it('authorises against the redacted form of a redacted power levels event (v10 drops invite)', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat', room_version: '10' });
    await bob.post(`${room(roomId)}/join`);
    const dave = await server.register();
    assert.equal((await bob.post(`${room(roomId)}/invite`, { user_id: dave.userId })).status, 403);
    const pl = await alice.get(`${room(roomId)}/state/m.room.power_levels?format=event`);
    const red = await alice.put(`${room(roomId)}/redact/${encodeURIComponent(pl.body.event_id)}/${txn()}`, {});
    assert.equal(red.status, 200);
    // Redaction keeps users, events and the other levels but not `invite` before v11, so the
    // invite level falls back to its default, 0.
    const after = await alice.get(`${room(roomId)}/state/m.room.power_levels`);
    assert.equal(after.body.invite, undefined);
    assert.equal(after.body.users[alice.userId], 100);
    assert.equal((await bob.post(`${room(roomId)}/invite`, { user_id: dave.userId })).status, 200);
  });

  it('reads state with and without the trailing slash, and a missing key is 404', async () => {
    const roomId = await createRoom(alice);
    const put = await alice.put(`${room(roomId)}/state/org.example.thing/`, { value: 1 });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual((await alice.get(`${room(roomId)}/state/org.example.thing`)).body, { value: 1 });
    assert.deepEqual((await alice.get(`${room(roomId)}/state/org.example.thing/`)).body, { value: 1 });
    const keyed = await alice.put(`${room(roomId)}/state/org.example.thing/k1`, { value: 2 });
    assert.equal(keyed.status, 200);
    assert.deepEqual((await alice.get(`${room(roomId)}/state/org.example.thing/k1`)).body, { value: 2 });
    const missing = await alice.get(`${room(roomId)}/state/org.example.none`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.errcode, 'M_NOT_FOUND');
    // Setting the same state again is not a new event.
    const again = await alice.put(`${room(roomId)}/state/org.example.thing`, { value: 1 });
    assert.equal(again.body.event_id, put.body.event_id);
    // State keys that are other users' ids are refused.
    const forged = await alice.put(`${room(roomId)}/state/org.example.thing/${encodeURIComponent(bob.userId)}`, { v: 1 });
    assert.equal(forged.status, 403);
  });

  it('refuses floats, duplicate keys and oversized events as M_BAD_JSON and M_TOO_LARGE, never 500', async () => {
    const roomId = await createRoom(alice);
    const path = `${room(roomId)}/send/m.room.message/`;
    const float = await alice.put(path + txn(), undefined, { raw: '{"body": 1.5}', headers: { 'Content-Type': 'application/json' } });
    assert.equal(float.status, 400);
    assert.equal(float.body.errcode, 'M_BAD_JSON');
    const dup = await alice.put(path + txn(), undefined, { raw: '{"a": 1, "a": 2}', headers: { 'Content-Type': 'application/json' } });
    assert.equal(dup.body.errcode, 'M_BAD_JSON');
    const notJson = await alice.put(path + txn(), undefined, { raw: '{nope', headers: { 'Content-Type': 'application/json' } });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.errcode, 'M_NOT_JSON');
    const array = await alice.put(path + txn(), undefined, { raw: '[1]', headers: { 'Content-Type': 'application/json' } });
    assert.equal(array.body.errcode, 'M_BAD_JSON');
    const big = await alice.put(path + txn(), { msgtype: 'm.text', body: 'x'.repeat(70_000) });
    assert.equal(big.status, 413);
    assert.equal(big.body.errcode, 'M_TOO_LARGE');
    const bigState = await alice.put(`${room(roomId)}/state/x.big`, { v: 'y'.repeat(66_000) });
    assert.equal(bigState.body.errcode, 'M_TOO_LARGE');
    const floatCreate = await alice.post(`${V3}/createRoom`, undefined, { raw: '{"initial_state":[{"type":"x","content":{"n":0.5}}]}', headers: { 'Content-Type': 'application/json' } });
    assert.equal(floatCreate.status, 400);
    assert.equal(floatCreate.body.errcode, 'M_BAD_JSON');
    const bigInt = await alice.put(path + txn(), undefined, { raw: '{"n": 9007199254740993}', headers: { 'Content-Type': 'application/json' } });
    assert.equal(bigInt.body.errcode, 'M_BAD_JSON');
  });

  it('accepts a canonical alias only when it points to the room (M_BAD_ALIAS otherwise)', async () => {
    const roomId = await createRoom(alice, { room_alias_name: 'canon' });
    const other = await createRoom(alice, { room_alias_name: 'elsewhere' });
    assert.ok(other);
    const path = `${room(roomId)}/state/m.room.canonical_alias`;
    const wrong = await alice.put(path, { alias: '#canon:localhost', alt_aliases: ['#elsewhere:localhost'] });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.errcode, 'M_BAD_ALIAS');
    const unknown = await alice.put(path, { alias: '#nobody:localhost' });
    assert.equal(unknown.body.errcode, 'M_BAD_ALIAS');
    const invalid = await alice.put(path, { alias: 'not an alias' });
    assert.equal(invalid.body.errcode, 'M_INVALID_PARAM');
    assert.equal((await alice.put(path, { alias: '#canon:localhost', alt_aliases: [] })).status, 200);
    assert.equal((await alice.put(path, {})).status, 200);
  });

  it('lets guests into rooms with guest_access can_join only, and only to send messages', async () => {
    const reg = await server.anon().post(`${V3}/register?kind=guest`, {});
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    const guest = server.anon();
    guest.token = reg.body.access_token;
    const open = await createRoom(alice, { preset: 'public_chat', initial_state: [{ type: 'm.room.guest_access', content: { guest_access: 'can_join' } }] });
    const closed = await createRoom(alice, { preset: 'public_chat' });
    const refused = await guest.post(`${room(closed)}/join`);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.errcode, 'M_GUEST_ACCESS_FORBIDDEN');
    assert.equal((await guest.post(`${room(open)}/join`)).status, 200);
    assert.equal((await send(guest, open)).status, 200);
    const custom = await send(guest, open, { a: 1 }, 'org.example.custom');
    assert.equal(custom.status, 403);
    assert.equal(custom.body.errcode, 'M_GUEST_ACCESS_FORBIDDEN');
    assert.equal((await guest.get(`${room(open)}/state`)).status, 200);
    // Endpoints outside the guest list stay closed to guests.
    assert.equal((await guest.post(`${V3}/createRoom`, {})).body.errcode, 'M_GUEST_ACCESS_FORBIDDEN');
    assert.equal((await guest.post(`${room(open)}/leave`)).status, 200);
  });

  it('applies power_level_content_override, and refuses one that leaves the creator out', async () => {
    const roomId = await createRoom(alice, { power_level_content_override: { events_default: 20, users: { [alice.userId]: 100, [bob.userId]: 30 } } });
    const pl = (await alice.get(`${room(roomId)}/state/m.room.power_levels`)).body;
    assert.equal(pl.events_default, 20);
    assert.equal(pl.users[bob.userId], 30);
    assert.equal(pl.invite, 0);
    const bad = await alice.post(`${V3}/createRoom`, { power_level_content_override: { users: { [bob.userId]: 100 } } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_INVALID_PARAM');
    const v12 = await alice.post(`${V3}/createRoom`, { room_version: '12', power_level_content_override: { users: { [alice.userId]: 100 } } });
    assert.equal(v12.status, 400);
  });

  it('refuses an unknown room version with M_UNSUPPORTED_ROOM_VERSION', async () => {
    const r = await alice.post(`${V3}/createRoom`, { room_version: '999' });
    assert.equal(r.status, 400);
    assert.equal(r.body.errcode, 'M_UNSUPPORTED_ROOM_VERSION');
  });

  it('refuses a taken alias with M_ROOM_IN_USE', async () => {
    await createRoom(alice, { room_alias_name: 'taken' });
    const r = await bob.post(`${V3}/createRoom`, { room_alias_name: 'taken' });
    assert.equal(r.status, 400);
    assert.equal(r.body.errcode, 'M_ROOM_IN_USE');
  });

  it('creates a DM with is_direct on the invite, and trusted_private_chat makes the invitee an admin', async () => {
    const roomId = await createRoom(alice, { preset: 'trusted_private_chat', is_direct: true, invite: [bob.userId] });
    const invite = await alice.get(`${room(roomId)}/state/m.room.member/${encodeURIComponent(bob.userId)}`);
    assert.equal(invite.body.membership, 'invite');
    assert.equal(invite.body.is_direct, true);
    const pl = await alice.get(`${room(roomId)}/state/m.room.power_levels`);
    assert.equal(pl.body.users[bob.userId], 100);
    assert.equal((await bob.post(`${room(roomId)}/join`)).status, 200);
  });

  it('lists members with membership filters and at a past token', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await bob.post(`${room(roomId)}/join`);
    await alice.post(`${room(roomId)}/invite`, { user_id: carol.userId });
    const all = await alice.get(`${room(roomId)}/members`);
    assert.equal(all.body.chunk.length, 3);
    const joined = await alice.get(`${room(roomId)}/members?membership=join`);
    assert.deepEqual(joined.body.chunk.map((e: { state_key: string }) => e.state_key).sort(), [alice.userId, bob.userId].sort());
    const notJoined = await alice.get(`${room(roomId)}/members?not_membership=join`);
    assert.deepEqual(notJoined.body.chunk.map((e: { state_key: string }) => e.state_key), [carol.userId]);
    // Bob leaves; he still sees the members as of his leave, not later changes.
    await bob.post(`${room(roomId)}/leave`);
    await carol.post(`${room(roomId)}/join`);
    const bobView = await bob.get(`${room(roomId)}/members`);
    assert.equal(bobView.status, 200);
    const carolSeen = bobView.body.chunk.find((e: { state_key: string }) => e.state_key === carol.userId);
    assert.equal(carolSeen.content.membership, 'invite');
  });

  it('forgets a room only after leaving it', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await bob.post(`${room(roomId)}/join`);
    const early = await bob.post(`${room(roomId)}/forget`);
    assert.equal(early.status, 400);
    await bob.post(`${room(roomId)}/leave`);
    assert.equal((await bob.post(`${room(roomId)}/forget`)).status, 200);
    const rooms = await bob.get(`${V3}/joined_rooms`);
    assert.ok(!rooms.body.joined_rooms.includes(roomId));
  });

  it('knocks on a knock room (v7+), and the knocker can be invited in', async () => {
    const roomId = await createRoom(alice, { room_version: '10', initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'knock' } }] });
    const knock = await bob.post(`${V3}/knock/${encodeURIComponent(roomId)}`, { reason: 'let me in' });
    assert.equal(knock.status, 200, JSON.stringify(knock.body));
    const m = await alice.get(`${room(roomId)}/state/m.room.member/${encodeURIComponent(bob.userId)}`);
    assert.equal(m.body.membership, 'knock');
    assert.equal(m.body.reason, 'let me in');
    assert.equal((await alice.post(`${room(roomId)}/invite`, { user_id: bob.userId })).status, 200);
    assert.equal((await bob.post(`${room(roomId)}/join`)).status, 200);
    // Knocking is not possible in a version 6 room.
    const old = await createRoom(alice, { room_version: '6' });
    assert.equal((await carol.post(`${V3}/knock/${encodeURIComponent(old)}`)).status, 403);
  });

  it('lets only members of the allowed room join a restricted room (v8+)', async () => {
    const space = await createRoom(alice, { preset: 'private_chat', invite: [bob.userId] });
    await bob.post(`${room(space)}/join`);
    const restricted = await createRoom(alice, {
      room_version: '10',
      initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: space }] } }],
    });
    const outsider = await carol.post(`${room(restricted)}/join`);
    assert.equal(outsider.status, 403);
    assert.match(outsider.body.error, /not invited/);
    const member = await bob.post(`${room(restricted)}/join`);
    assert.equal(member.status, 200, JSON.stringify(member.body));
    const ev = await alice.get(`${room(restricted)}/state/m.room.member/${encodeURIComponent(bob.userId)}`);
    assert.equal(ev.body.membership, 'join');
    assert.equal(ev.body.join_authorised_via_users_server, alice.userId);
  });

  it('updates member events in every joined room when the profile changes', async () => {
    const dave = await server.register();
    const r1 = await createRoom(alice, { preset: 'public_chat' });
    const r2 = await createRoom(alice, { preset: 'public_chat' });
    await dave.post(`${room(r1)}/join`);
    await dave.post(`${room(r2)}/join`);
    const set = await dave.put(`${V3}/profile/${encodeURIComponent(dave.userId)}/displayname`, { displayname: 'Dave Prime' });
    assert.equal(set.status, 200);
    for (const r of [r1, r2]) {
      const m = await alice.get(`${room(r)}/state/m.room.member/${encodeURIComponent(dave.userId)}`);
      assert.equal(m.body.displayname, 'Dave Prime');
      assert.equal(m.body.membership, 'join');
    }
    const jm = await alice.get(`${room(r1)}/joined_members`);
    assert.equal(jm.body.joined[dave.userId].display_name, 'Dave Prime');
  });

  it('makes a deactivated user leave every room they were in or invited to', async () => {
    const frank = await server.register();
    const r1 = await createRoom(alice, { preset: 'public_chat' });
    const r2 = await createRoom(alice, { preset: 'private_chat', invite: [frank.userId] });
    await frank.post(`${room(r1)}/join`);
    const d = await frank.post(`${V3}/account/deactivate`, { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: frank.userId }, password: frank.password } });
    assert.equal(d.status, 200, JSON.stringify(d.body));
    for (const r of [r1, r2]) {
      const m = await alice.get(`${room(r)}/state/m.room.member/${encodeURIComponent(frank.userId)}`);
      assert.equal(m.body.membership, 'leave', r);
    }
  });

  it('hides events from before a user joined in a joined-only room', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat', initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'joined' } }] });
    const early = await send(alice, roomId);
    const erin = await server.register();
    await erin.post(`${room(roomId)}/join`);
    const late = await send(alice, roomId);
    assert.equal((await erin.get(`${room(roomId)}/event/${encodeURIComponent(early.body.event_id)}`)).status, 404);
    assert.equal((await erin.get(`${room(roomId)}/event/${encodeURIComponent(late.body.event_id)}`)).status, 200);
  });
});
