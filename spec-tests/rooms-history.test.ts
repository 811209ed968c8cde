// Room history over raw HTTP: /messages pagination in both directions, filters, lazy-loaded
// members, /context, history visibility at each setting's boundary, relations, threads,
// bundled aggregations, timestamp_to_event, and the unhappy paths.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { releaseProcess } from './support/sdk.js';
import { createClient, Direction } from 'matrix-js-sdk';
import pg from 'pg';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import type { TestClient } from './support/client.js';
import { type TestServer, startServerWithUsers } from './support/server.js';

sdkLogger.setLevel('silent');

const V3 = '/_matrix/client/v3';
const V1 = '/_matrix/client/v1';
let txnCounter = 0;
const txn = () => `h${Date.now()}_${++txnCounter}`;

async function createRoom(c: TestClient, body: Record<string, unknown> = {}): Promise<string> {
  const r = await c.post(`${V3}/createRoom`, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.room_id;
}

const room = (roomId: string) => `${V3}/rooms/${encodeURIComponent(roomId)}`;
const roomV1 = (roomId: string) => `${V1}/rooms/${encodeURIComponent(roomId)}`;

async function send(c: TestClient, roomId: string, content: Record<string, unknown> = { msgtype: 'm.text', body: 'hi' }, type = 'm.room.message'): Promise<string> {
  const r = await c.put(`${room(roomId)}/send/${type}/${txn()}`, content);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.event_id;
}

async function setVisibility(c: TestClient, roomId: string, v: string): Promise<string> {
  const r = await c.put(`${room(roomId)}/state/m.room.history_visibility/`, { history_visibility: v });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.event_id;
}

/** Every event id /messages returns walking the whole room in one direction, page by page. */
async function walk(c: TestClient, roomId: string, dir: 'b' | 'f', limit: number, filter?: unknown): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let from: string | undefined;
  for (let pages = 1; pages < 1000; pages++) {
    const qs = new URLSearchParams({ dir, limit: String(limit) });
    if (from !== undefined) qs.set('from', from);
    if (filter !== undefined) qs.set('filter', JSON.stringify(filter));
    const r = await c.get(`${room(roomId)}/messages?${qs}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(r.body.chunk.length <= limit);
    ids.push(...r.body.chunk.map((e: { event_id: string }) => e.event_id));
    if (r.body.end === undefined) return { ids, pages };
    assert.notEqual(r.body.end, from, 'a page must move the position');
    from = r.body.end;
  }
  throw new Error('pagination did not end');
}

async function visibleIds(c: TestClient, roomId: string): Promise<string[]> {
  return (await walk(c, roomId, 'b', 50)).ids;
}

describe('room history', () => {
  let server: TestServer;
  let alice: TestClient, bob: TestClient, carol: TestClient;
  before(async () => ({ server, users: [alice, bob, carol] } = await startServerWithUsers(3)));
  after(() => server.stop());

  describe('/messages', () => {
    let roomId: string;
    const sent: string[] = [];
    before(async () => {
      roomId = await createRoom(alice, { preset: 'public_chat' });
      await bob.post(`${room(roomId)}/join`);
      for (let i = 0; i < 120; i++) sent.push(await send(i % 3 === 0 ? bob : alice, roomId, { msgtype: 'm.text', body: `m${i}` }));
    });

    it('pages backwards by 7 from the end with no gaps or duplicates, newest first', async () => {
      const { ids } = await walk(alice, roomId, 'b', 7);
      assert.equal(new Set(ids).size, ids.length, 'no duplicates');
      const messages = ids.filter((id) => sent.includes(id));
      assert.deepEqual(messages, [...sent].reverse());
      // The room's creation events come last, the create event at the very end.
      const last = await alice.get(`${room(roomId)}/event/${encodeURIComponent(ids.at(-1)!)}`);
      assert.equal(last.body.type, 'm.room.create');
    });

    it('pages forwards by 7 from the start and sees exactly the backwards walk reversed', async () => {
      const back = (await walk(alice, roomId, 'b', 7)).ids;
      const fwd = (await walk(alice, roomId, 'f', 7)).ids;
      assert.deepEqual(fwd, [...back].reverse());
      assert.deepEqual(fwd.filter((id) => sent.includes(id)), sent);
    });

    it('continues from a token in the other direction without repeating the page', async () => {
      const first = await alice.get(`${room(roomId)}/messages?dir=b&limit=5`);
      const second = await alice.get(`${room(roomId)}/messages?dir=b&limit=5&from=${encodeURIComponent(first.body.end)}`);
      // Forwards from the second page's end returns the second page again, oldest first.
      const back = await alice.get(`${room(roomId)}/messages?dir=f&limit=5&from=${encodeURIComponent(second.body.end)}`);
      assert.deepEqual(back.body.chunk.map((e: { event_id: string }) => e.event_id), [...second.body.chunk.map((e: { event_id: string }) => e.event_id)].reverse());
      assert.deepEqual(first.body.chunk.map((e: { event_id: string }) => e.event_id), sent.slice(-5).reverse());
    });

    it('stops at the `to` token', async () => {
      const first = await alice.get(`${room(roomId)}/messages?dir=b&limit=3`);
      const upTo = await alice.get(`${room(roomId)}/messages?dir=f&limit=50&from=${encodeURIComponent(first.body.end)}`);
      assert.equal(upTo.body.chunk.length, 3);
      const bounded = await alice.get(
        `${room(roomId)}/messages?dir=b&limit=50&to=${encodeURIComponent(first.body.end)}`,
      );
      assert.deepEqual(bounded.body.chunk.map((e: { event_id: string }) => e.event_id), sent.slice(-3).reverse());
    });

    it('accepts a sync token as `from` and pages back from that point', async () => {
      const sync = await alice.get(`${V3}/sync?timeout=0`);
      assert.equal(sync.status, 200);
      const mid = await alice.get(`${room(roomId)}/messages?dir=b&limit=2&from=${encodeURIComponent(sync.body.next_batch)}`);
      assert.equal(mid.status, 200, JSON.stringify(mid.body));
      assert.deepEqual(mid.body.chunk.map((e: { event_id: string }) => e.event_id), sent.slice(-2).reverse());
      const prev = sync.body.rooms?.join?.[roomId]?.timeline?.prev_batch;
      if (prev !== undefined) {
        const timeline = sync.body.rooms.join[roomId].timeline.events.map((e: { event_id: string }) => e.event_id);
        const older = await alice.get(`${room(roomId)}/messages?dir=b&limit=3&from=${encodeURIComponent(prev)}`);
        assert.equal(older.status, 200);
        const olderIds = older.body.chunk.map((e: { event_id: string }) => e.event_id);
        // No overlap with what /sync already gave, and directly before it.
        assert.ok(olderIds.every((id: string) => !timeline.includes(id)));
        assert.equal(sent.indexOf(olderIds[0]) + 1, sent.indexOf(timeline[0]));
      }
    });

    it('applies a RoomEventFilter: senders, not_types, contains_url', async () => {
      const bobs = (await walk(alice, roomId, 'b', 7, { senders: [bob.userId] })).ids;
      assert.deepEqual(bobs.filter((id) => sent.includes(id)), sent.filter((_, i) => i % 3 === 0).reverse());
      // Bob's join is his only other event.
      assert.equal(bobs.length, 41);
      const notMessages = (await walk(alice, roomId, 'f', 7, { not_types: ['m.room.message'] })).ids;
      assert.ok(notMessages.every((id) => !sent.includes(id)));
      assert.ok(notMessages.length >= 6);
      const withUrl = await alice.get(`${room(roomId)}/messages?dir=b&filter=${encodeURIComponent(JSON.stringify({ contains_url: true }))}`);
      assert.deepEqual(withUrl.body.chunk, []);
      assert.equal(withUrl.body.end, undefined);
      const wildcard = (await walk(alice, roomId, 'f', 50, { types: ['m.room.c*'] })).ids;
      assert.equal(wildcard.length, 1, 'only m.room.create matches m.room.c*');
    });

    it('returns the senders\' member events in `state` with lazy_load_members', async () => {
      const r = await alice.get(`${room(roomId)}/messages?dir=b&limit=4&filter=${encodeURIComponent(JSON.stringify({ lazy_load_members: true }))}`);
      assert.equal(r.status, 200);
      const senders = new Set(r.body.chunk.map((e: { sender: string }) => e.sender));
      const members = r.body.state.map((e: { type: string; state_key: string }) => {
        assert.equal(e.type, 'm.room.member');
        return e.state_key;
      });
      assert.deepEqual(new Set(members), senders);
      const plain = await alice.get(`${room(roomId)}/messages?dir=b&limit=4`);
      assert.equal(plain.body.state, undefined);
    });

    it('reads /members at a /messages token and at a /sync token', async () => {
      const late = await server.register();
      const page = await alice.get(`${room(roomId)}/messages?dir=b&limit=1`);
      const sync = await alice.get(`${V3}/sync?timeout=0`);
      await late.post(`${room(roomId)}/join`);
      const members = async (at: string) =>
        (await alice.get(`${room(roomId)}/members?at=${encodeURIComponent(at)}&membership=join`)).body.chunk.map((e: { state_key: string }) => e.state_key);
      for (const at of [page.body.end, page.body.start, sync.body.next_batch]) {
        const before1 = await members(at);
        assert.ok(before1.includes(bob.userId));
        assert.ok(!before1.includes(late.userId), `${late.userId} joined after ${at}`);
      }
      assert.ok((await members((await alice.get(`${room(roomId)}/messages?dir=b&limit=1`)).body.start)).includes(late.userId));
      assert.equal((await alice.get(`${room(roomId)}/members?at=bogus`)).status, 400);
      await late.post(`${room(roomId)}/leave`);
    });

    it('pages through matrix-js-sdk in both directions', async () => {
      const sdk = createClient({ baseUrl: server.baseUrl, accessToken: alice.token!, userId: alice.userId, deviceId: alice.deviceId });
      const back: string[] = [];
      let from: string | null = null;
      for (;;) {
        const r = await sdk.createMessagesRequest(roomId, from, 25, Direction.Backward);
        back.push(...r.chunk.map((e) => e.event_id));
        if (!r.end) break;
        from = r.end;
      }
      assert.deepEqual(back.filter((id) => sent.includes(id)), [...sent].reverse());
      const first = await sdk.createMessagesRequest(roomId, null, 3, Direction.Forward);
      assert.equal(first.chunk.length, 3);
      assert.equal(first.chunk[0]!.type, 'm.room.create');
      const ts = await sdk.timestampToEvent(roomId, 0, Direction.Forward);
      assert.equal(ts.event_id, first.chunk[0]!.event_id);
      sdk.stopClient();
    });

    it('refuses bad parameters with 400 and the right code', async () => {
      const bad = [
        ['dir=x', 'M_INVALID_PARAM'],
        ['', 'M_MISSING_PARAM'],
        ['dir=b&from=nonsense', 'M_INVALID_PARAM'],
        ['dir=b&to=t1', 'M_INVALID_PARAM'],
        ['dir=b&limit=-1', 'M_INVALID_PARAM'],
        ['dir=b&filter=%7Bnot%20json', 'M_INVALID_PARAM'],
        ['dir=b&filter=%7B%22types%22%3A5%7D', 'M_BAD_JSON'],
      ] as const;
      for (const [qs, errcode] of bad) {
        const r = await alice.get(`${room(roomId)}/messages?${qs}`);
        assert.equal(r.status, 400, qs);
        assert.equal(r.body.errcode, errcode, qs);
      }
    });

    it('answers an unknown room and a room the caller is not in the same way', async () => {
      const unknown = await carol.get(`${room('!nope:localhost')}/messages?dir=b`);
      const privateRoom = await createRoom(alice, { preset: 'private_chat' });
      const notMember = await carol.get(`${room(privateRoom)}/messages?dir=b`);
      assert.equal(unknown.status, 403);
      assert.equal(notMember.status, 403);
      assert.equal(unknown.body.errcode, notMember.body.errcode);
      assert.equal((await carol.get(`${room('!nope:localhost')}/context/%24x`)).status, 403);
    });
  });

  describe('history visibility', () => {
    it('joined: a later joiner sees nothing from before their join, then everything after', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      const change = await setVisibility(alice, roomId, 'joined');
      const before1 = await send(alice, roomId);
      await bob.post(`${room(roomId)}/join`);
      const after1 = await send(alice, roomId);
      const seen = await visibleIds(bob, roomId);
      assert.ok(!seen.includes(before1));
      assert.ok(seen.includes(after1));
      // Events from while the room was `shared` stay visible (visibility applies as it was when
      // each event was sent), the change itself too; the next thing Bob sees is his own join.
      const chronological = [...seen].reverse();
      const next = chronological[chronological.indexOf(change) + 1]!;
      const joinEvent = await bob.get(`${room(roomId)}/event/${encodeURIComponent(next)}`);
      assert.equal(joinEvent.body.type, 'm.room.member');
      assert.equal(joinEvent.body.state_key, bob.userId);
      // The creator, joined throughout, sees everything.
      assert.ok((await visibleIds(alice, roomId)).includes(before1));
      assert.equal((await bob.get(`${room(roomId)}/event/${encodeURIComponent(before1)}`)).status, 404);
      const ctx = await bob.get(`${room(roomId)}/context/${encodeURIComponent(before1)}`);
      assert.equal(ctx.status, 404);
    });

    it('invited: an invitee sees from the invite on, not before', async () => {
      const roomId = await createRoom(alice, { preset: 'private_chat' });
      await setVisibility(alice, roomId, 'invited');
      const beforeInvite = await send(alice, roomId);
      await alice.post(`${room(roomId)}/invite`, { user_id: bob.userId });
      const afterInvite = await send(alice, roomId);
      await bob.post(`${room(roomId)}/join`);
      const seen = await visibleIds(bob, roomId);
      assert.ok(!seen.includes(beforeInvite));
      assert.ok(seen.includes(afterInvite));
    });

    it('shared: a new member sees history from before they joined, and a leaver nothing after leaving', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      const early = await send(alice, roomId);
      await bob.post(`${room(roomId)}/join`);
      assert.ok((await visibleIds(bob, roomId)).includes(early));
      await bob.post(`${room(roomId)}/leave`);
      const afterLeave = await send(alice, roomId);
      const seen = await visibleIds(bob, roomId);
      assert.ok(seen.includes(early), 'history while a member stays visible');
      // unsigned.membership: Bob's membership after each event.
      const page = await bob.get(`${room(roomId)}/messages?dir=b&limit=50`);
      const membershipOf = (id: string) => page.body.chunk.find((e: { event_id: string }) => e.event_id === id)?.unsigned.membership;
      assert.equal(membershipOf(early), 'leave', 'before he joined');
      const own = page.body.chunk.filter((e: { type: string; state_key?: string }) => e.type === 'm.room.member' && e.state_key === bob.userId);
      assert.deepEqual(own.map((e: { unsigned: { membership: string } }) => e.unsigned.membership), ['leave', 'join']);
      assert.ok(!seen.includes(afterLeave));
      assert.equal((await bob.get(`${room(roomId)}/event/${encodeURIComponent(afterLeave)}`)).status, 404);
      // Someone who never joined sees nothing at all.
      assert.equal((await carol.get(`${room(roomId)}/messages?dir=b`)).status, 403);
      // The state and members as they were when Bob left, not later changes.
      await alice.put(`${room(roomId)}/state/m.room.name`, { name: 'renamed after bob left' });
      const state = await bob.get(`${room(roomId)}/state`);
      assert.equal(state.status, 200);
      assert.ok(!state.body.some((e: { type: string }) => e.type === 'm.room.name'));
      // Once forgotten, the room is closed to him on every read path.
      assert.equal((await bob.post(`${room(roomId)}/forget`)).status, 200);
      assert.equal((await bob.get(`${room(roomId)}/messages?dir=b`)).status, 403);
      assert.equal((await bob.get(`${room(roomId)}/state`)).status, 403);
      assert.equal((await bob.get(`${room(roomId)}/members`)).status, 403);
      assert.equal((await bob.get(`${room(roomId)}/event/${encodeURIComponent(early)}`)).status, 404);
    });

    it('world_readable: a non-member reads the history, but only while it was world_readable', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      const shared = await send(alice, roomId);
      const change = await setVisibility(alice, roomId, 'world_readable');
      const open = await send(alice, roomId);
      const seen = await visibleIds(carol, roomId);
      assert.ok(seen.includes(open));
      assert.ok(!seen.includes(shared));
      const ev = await carol.get(`${room(roomId)}/event/${encodeURIComponent(open)}`);
      assert.equal(ev.status, 200);
      const ctx = await carol.get(`${room(roomId)}/context/${encodeURIComponent(open)}`);
      assert.equal(ctx.status, 200);
      const state = await carol.get(`${room(roomId)}/state`);
      assert.equal(state.status, 200);
      const members = await carol.get(`${room(roomId)}/members`);
      assert.equal(members.status, 200);
      // The change to world_readable is itself visible (the value after it allows it).
      assert.ok(seen.includes(change));
    });
  });

  it('hides relations and threads of events the reader may not see', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await setVisibility(alice, roomId, 'joined');
    const root = await send(alice, roomId, { msgtype: 'm.text', body: 'before' });
    await send(alice, roomId, { msgtype: 'm.text', body: 'in thread', 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
    const dave = await server.register();
    await dave.post(`${room(roomId)}/join`);
    const late = await send(alice, roomId, { msgtype: 'm.text', body: 'after', 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
    const rel = await dave.get(`${roomV1(roomId)}/relations/${encodeURIComponent(root)}`);
    assert.equal(rel.status, 404, 'the parent is invisible to dave');
    const threads = await dave.get(`${roomV1(roomId)}/threads`);
    assert.deepEqual(threads.body.chunk, []);
    const aliceThreads = await alice.get(`${roomV1(roomId)}/threads`);
    assert.deepEqual(aliceThreads.body.chunk.map((e: { event_id: string }) => e.event_id), [root]);
    assert.equal(aliceThreads.body.chunk[0].unsigned['m.relations']['m.thread'].latest_event.event_id, late);
    assert.equal(aliceThreads.body.chunk[0].unsigned['m.relations']['m.thread'].count, 2);
    const ts = await dave.get(`${roomV1(roomId)}/timestamp_to_event?ts=0&dir=f`);
    // The oldest event Dave may see is from when the room was still `shared`, never `root`.
    assert.notEqual(ts.body.event_id, root);
  });

  describe('/context', () => {
    it('returns the event, events before and after, state and tokens that continue', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat', name: 'ctx' });
      const ids: string[] = [];
      for (let i = 0; i < 9; i++) ids.push(await send(alice, roomId, { msgtype: 'm.text', body: `c${i}` }));
      const r = await alice.get(`${room(roomId)}/context/${encodeURIComponent(ids[4]!)}?limit=4`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.event.event_id, ids[4]);
      assert.deepEqual(r.body.events_before.map((e: { event_id: string }) => e.event_id), [ids[3], ids[2]]);
      assert.deepEqual(r.body.events_after.map((e: { event_id: string }) => e.event_id), [ids[5], ids[6]]);
      assert.ok(r.body.state.some((e: { type: string }) => e.type === 'm.room.name'));
      const older = await alice.get(`${room(roomId)}/messages?dir=b&limit=2&from=${encodeURIComponent(r.body.start)}`);
      assert.deepEqual(older.body.chunk.map((e: { event_id: string }) => e.event_id), [ids[1], ids[0]]);
      const newer = await alice.get(`${room(roomId)}/messages?dir=f&limit=5&from=${encodeURIComponent(r.body.end)}`);
      assert.deepEqual(newer.body.chunk.map((e: { event_id: string }) => e.event_id), [ids[7], ids[8]]);
      const missing = await alice.get(`${room(roomId)}/context/${encodeURIComponent('$missing')}`);
      assert.equal(missing.status, 404);
      assert.equal(missing.body.errcode, 'M_NOT_FOUND');
    });
  });

  describe('relations', () => {
    let roomId: string;
    let root: string;
    before(async () => {
      roomId = await createRoom(alice, { preset: 'public_chat' });
      await bob.post(`${room(roomId)}/join`);
      root = await send(alice, roomId, { msgtype: 'm.text', body: 'root' });
    });

    it('bundles the latest valid edit, ignoring edits by someone else', async () => {
      await send(alice, roomId, { msgtype: 'm.text', body: '* v2', 'm.new_content': { msgtype: 'm.text', body: 'v2' }, 'm.relates_to': { rel_type: 'm.replace', event_id: root } });
      const v3 = await send(alice, roomId, { msgtype: 'm.text', body: '* v3', 'm.new_content': { msgtype: 'm.text', body: 'v3' }, 'm.relates_to': { rel_type: 'm.replace', event_id: root } });
      await send(bob, roomId, { msgtype: 'm.text', body: '* hijack', 'm.new_content': { msgtype: 'm.text', body: 'hijack' }, 'm.relates_to': { rel_type: 'm.replace', event_id: root } });
      const ev = await alice.get(`${room(roomId)}/event/${encodeURIComponent(root)}`);
      assert.equal(ev.body.unsigned['m.relations']['m.replace'].event_id, v3);
      assert.equal(ev.body.content.body, 'root', 'the original content is left intact');
      // In /messages too.
      const page = await alice.get(`${room(roomId)}/messages?dir=b&limit=50`);
      const inPage = page.body.chunk.find((e: { event_id: string }) => e.event_id === root);
      assert.equal(inPage.unsigned['m.relations']['m.replace'].event_id, v3);
      // Redacting the latest edit falls back to the one before.
      const red = await alice.put(`${room(roomId)}/redact/${encodeURIComponent(v3)}/${txn()}`, {});
      assert.equal(red.status, 200);
      const after1 = await alice.get(`${room(roomId)}/event/${encodeURIComponent(root)}`);
      assert.notEqual(after1.body.unsigned['m.relations']['m.replace'].event_id, v3);
      assert.equal(after1.body.unsigned['m.relations']['m.replace'].content['m.new_content'].body, 'v2');
    });

    it('aggregates a thread: latest event, count, participation; lists it in /threads', async () => {
      const t1 = await send(bob, roomId, { msgtype: 'm.text', body: 't1', 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
      const t2 = await send(bob, roomId, { msgtype: 'm.text', body: 't2', 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
      const forAlice = await alice.get(`${room(roomId)}/event/${encodeURIComponent(root)}`);
      const thread = forAlice.body.unsigned['m.relations']['m.thread'];
      assert.equal(thread.count, 2);
      assert.equal(thread.latest_event.event_id, t2);
      // Alice sent the root: she participated.
      assert.equal(thread.current_user_participated, true);
      const forCarol = await carol.get(`${room(roomId)}/event/${encodeURIComponent(root)}`);
      assert.equal(forCarol.status, 404, 'carol is not in the room');
      await carol.post(`${room(roomId)}/join`);
      const carolView = await carol.get(`${room(roomId)}/event/${encodeURIComponent(root)}`);
      assert.equal(carolView.body.unsigned['m.relations']['m.thread'].current_user_participated, false);

      const rel = await alice.get(`${roomV1(roomId)}/relations/${encodeURIComponent(root)}/m.thread`);
      assert.deepEqual(rel.body.chunk.map((e: { event_id: string }) => e.event_id), [t2, t1]);
      const threads = await alice.get(`${roomV1(roomId)}/threads`);
      assert.equal(threads.status, 200, JSON.stringify(threads.body));
      assert.deepEqual(threads.body.chunk.map((e: { event_id: string }) => e.event_id), [root]);
      const mine = await carol.get(`${roomV1(roomId)}/threads?include=participated`);
      assert.deepEqual(mine.body.chunk, []);
      const bobs = await bob.get(`${roomV1(roomId)}/threads?include=participated`);
      assert.deepEqual(bobs.body.chunk.map((e: { event_id: string }) => e.event_id), [root]);
    });

    it('pages /relations with tokens, filters by type, and recurses', async () => {
      const target = await send(alice, roomId, { msgtype: 'm.text', body: 'react to me' });
      const reactions: string[] = [];
      for (const key of ['👍', '🎉', '❤️', '🚀', '👀']) {
        reactions.push(await send(bob, roomId, { 'm.relates_to': { rel_type: 'm.annotation', event_id: target, key } }, 'm.reaction'));
      }
      // The same reaction twice is refused (as Synapse does).
      const dup = await bob.put(`${room(roomId)}/send/m.reaction/${txn()}`, { 'm.relates_to': { rel_type: 'm.annotation', event_id: target, key: '👍' } });
      assert.equal(dup.status, 400);
      assert.equal(dup.body.errcode, 'M_DUPLICATE_ANNOTATION');
      const other = await createRoom(alice, { preset: 'public_chat' });
      const elsewhere = await alice.put(`${room(other)}/send/m.reaction/${txn()}`, { 'm.relates_to': { rel_type: 'm.annotation', event_id: target, key: '👍' } });
      assert.equal(elsewhere.status, 400, 'a relation to an event of another room');
      const ref = await send(alice, roomId, { msgtype: 'm.text', body: 'see above', 'm.relates_to': { rel_type: 'm.reference', event_id: target } });
      const reply = await send(alice, roomId, { msgtype: 'm.text', body: 'reply', 'm.relates_to': { 'm.in_reply_to': { event_id: target } } });
      const nested = await send(bob, roomId, { 'm.relates_to': { rel_type: 'm.annotation', event_id: ref, key: '👍' } }, 'm.reaction');

      const pages: string[] = [];
      let from: string | undefined;
      for (let i = 0; i < 10; i++) {
        const r = await alice.get(`${roomV1(roomId)}/relations/${encodeURIComponent(target)}/m.annotation?limit=2${from ? `&from=${encodeURIComponent(from)}` : ''}`);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        pages.push(...r.body.chunk.map((e: { event_id: string }) => e.event_id));
        if (!r.body.next_batch) break;
        from = r.body.next_batch;
      }
      assert.deepEqual(pages, [...reactions].reverse());
      const forwards = await alice.get(`${roomV1(roomId)}/relations/${encodeURIComponent(target)}/m.annotation/m.reaction?dir=f&limit=10`);
      assert.deepEqual(forwards.body.chunk.map((e: { event_id: string }) => e.event_id), reactions);
      // A /messages or /sync token names a position among the children too.
      const sync = await alice.get(`${V3}/sync?timeout=0`);
      const fromSync = await alice.get(`${roomV1(roomId)}/relations/${encodeURIComponent(target)}/m.annotation?limit=10&from=${encodeURIComponent(sync.body.next_batch)}`);
      assert.deepEqual(fromSync.body.chunk.map((e: { event_id: string }) => e.event_id), [...reactions].reverse());
      const msgs = await alice.get(`${room(roomId)}/messages?dir=b&limit=4`);
      const older = await alice.get(`${roomV1(roomId)}/relations/${encodeURIComponent(target)}/m.annotation?limit=10&from=${encodeURIComponent(msgs.body.end)}`);
      // The last four events were the reference, the reply and the nested reaction and the fifth reaction.
      assert.deepEqual(older.body.chunk.map((e: { event_id: string }) => e.event_id), reactions.slice(0, 4).reverse());
      const none = await alice.get(`${roomV1(roomId)}/relations/${encodeURIComponent(target)}/m.annotation/m.room.message`);
      assert.deepEqual(none.body.chunk, []);
      const all = await alice.get(`${roomV1(roomId)}/relations/${encodeURIComponent(target)}?limit=50`);
      const allIds = all.body.chunk.map((e: { event_id: string }) => e.event_id);
      assert.ok(allIds.includes(ref) && !allIds.includes(reply) && !allIds.includes(nested), 'a reply is not a relation; nesting needs recurse');
      assert.equal(all.body.recursion_depth, undefined);
      const sdk = createClient({ baseUrl: server.baseUrl, accessToken: alice.token!, userId: alice.userId, deviceId: alice.deviceId });
      const viaSdk = await sdk.fetchRelations(roomId, target, 'm.annotation', 'm.reaction', { dir: Direction.Forward, limit: 3 });
      assert.deepEqual(viaSdk.chunk.map((e) => e.event_id), reactions.slice(0, 3));
      assert.ok(viaSdk.next_batch);
      sdk.stopClient();
      const deep = await alice.get(`${roomV1(roomId)}/relations/${encodeURIComponent(target)}?limit=50&recurse=true`);
      assert.ok(deep.body.chunk.map((e: { event_id: string }) => e.event_id).includes(nested));
      assert.equal(typeof deep.body.recursion_depth, 'number');
      // m.reference is bundled.
      const ev = await alice.get(`${room(roomId)}/event/${encodeURIComponent(target)}`);
      assert.deepEqual(ev.body.unsigned['m.relations']['m.reference'], { chunk: [{ event_id: ref }] });

      const badDir = await alice.get(`${roomV1(roomId)}/relations/${encodeURIComponent(target)}?dir=sideways`);
      assert.equal(badDir.status, 400);
      assert.equal(badDir.body.errcode, 'M_INVALID_PARAM');
      const badFrom = await alice.get(`${roomV1(roomId)}/relations/${encodeURIComponent(target)}?from=zzz`);
      assert.equal(badFrom.status, 400);
      const unknownParent = await alice.get(`${roomV1(roomId)}/relations/${encodeURIComponent('$nope')}`);
      assert.equal(unknownParent.status, 404);
    });

    it('refuses a thread rooted at an event that itself relates to another', async () => {
      const edit = await send(alice, roomId, { msgtype: 'm.text', body: '* x', 'm.new_content': { msgtype: 'm.text', body: 'x' }, 'm.relates_to': { rel_type: 'm.replace', event_id: root } });
      const r = await alice.put(`${room(roomId)}/send/m.room.message/${txn()}`, { msgtype: 'm.text', body: 'nested', 'm.relates_to': { rel_type: 'm.thread', event_id: edit } });
      assert.equal(r.status, 400);
      assert.equal(r.body.errcode, 'M_UNKNOWN');
    });

    it('re-indexes stored events exactly as the trigger indexed them (the migration backfill)', async () => {
      const db = new pg.Client({ connectionString: server.databaseUrl });
      await db.connect();
      try {
        const read = async () => (await db.query('SELECT * FROM event_relations ORDER BY event_nid')).rows;
        const indexed = await read();
        assert.ok(indexed.length >= 10, `${indexed.length} relations`);
        await db.query('DELETE FROM event_relations');
        await db.query(`SELECT index_event_relation_row(e) FROM events e WHERE position('m.relates_to' in json) > 0 ORDER BY stream_ordering`);
        assert.deepEqual(await read(), indexed);
      } finally {
        await db.end();
      }
    });

    it('finds the event closest to a timestamp in either direction', async () => {
      const r2 = await createRoom(alice, { preset: 'public_chat' });
      const a = await send(alice, r2);
      const ts = (await alice.get(`${room(r2)}/event/${encodeURIComponent(a)}`)).body.origin_server_ts as number;
      await new Promise((res) => setTimeout(res, 5));
      const b = await send(alice, r2);
      const fwd = await alice.get(`${roomV1(r2)}/timestamp_to_event?ts=${ts + 1}&dir=f`);
      assert.equal(fwd.status, 200, JSON.stringify(fwd.body));
      assert.equal(fwd.body.event_id, b);
      const back = await alice.get(`${roomV1(r2)}/timestamp_to_event?ts=${ts}&dir=b`);
      assert.equal(back.body.event_id, a);
      const none = await alice.get(`${roomV1(r2)}/timestamp_to_event?ts=${Date.now() + 60_000}&dir=f`);
      assert.equal(none.status, 404);
      assert.equal((await alice.get(`${roomV1(r2)}/timestamp_to_event?ts=1`)).body.errcode, 'M_MISSING_PARAM');
      assert.equal((await carol.get(`${roomV1(r2)}/timestamp_to_event?ts=1&dir=f`)).status, 403);
    });
  });
});

// matrix-js-sdk leaves request timers behind that would hold this file's process for ~110 s.
after(() => releaseProcess());
