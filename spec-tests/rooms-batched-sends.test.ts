// Concurrent message sends to one room are batched: one transaction, and one statement writes
// all the batch's messages (src/rooms/queue.ts, MessageBatch). What a client sees must not
// change: each send answers with its own event, a retried transaction id with the first
// event, a refused send with its error, and the room's history stays one linear chain.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';
import { sendMessage } from '../src/rooms/send.js';
import { createRoom, enc, join, sendText } from './support/sync.js';

describe('batched message sends', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ presence: { enabled: false } });
  });
  after(() => server.stop());

  const put = sendText;

  /** The room's events as stored, in stream order: id, prev events, depth, body. */
  async function chain(roomId: string): Promise<{ id: string; prev: string[]; depth: number; body?: string; sender: string }[]> {
    const rows = await server.hs.services.db.query<{ json: string }>(
      `SELECT e.json FROM events e JOIN rooms r USING (room_nid) WHERE r.room_id = $1 ORDER BY e.stream_ordering`,
      [roomId],
    );
    return rows.rows.map((r) => {
      const e = JSON.parse(r.json);
      return { id: e.event_id, prev: e.prev_events, depth: e.depth, body: e.content?.body, sender: e.sender };
    });
  }

  it('answer each send with its own event, retries with the first, refusals with 403, in one linear history', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const carol = await server.register();
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await join(bob, roomId);
    const queue = server.hs.services.rooms.deps.queue;
    const before = { ...queue.batched };

    const sends = [
      ...Array.from({ length: 12 }, (_, i) => ({ who: alice, txn: `a${i}`, body: `alice ${i}` })),
      ...Array.from({ length: 12 }, (_, i) => ({ who: bob, txn: `b${i}`, body: `bob ${i}` })),
      // Retries racing their first attempts (same device, same transaction id).
      ...Array.from({ length: 4 }, (_, i) => ({ who: alice, txn: `a${i}`, body: `alice ${i}` })),
      // Not in the room.
      ...Array.from({ length: 4 }, (_, i) => ({ who: carol, txn: `c${i}`, body: `carol ${i}` })),
    ];
    const answers = await Promise.all(sends.map((s) => put(s.who, roomId, s.txn, s.body)));

    const ids = new Map<string, string>();
    answers.forEach((r, i) => {
      const s = sends[i]!;
      if (s.who === carol) {
        assert.equal(r.status, 403, JSON.stringify(r.body));
        assert.equal(r.body.errcode, 'M_FORBIDDEN');
        return;
      }
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const key = `${s.who.userId}/${s.txn}`;
      const first = ids.get(key);
      if (first === undefined) ids.set(key, r.body.event_id);
      else assert.equal(r.body.event_id, first, `the retry of ${key} answers with the first event`);
    });
    assert.equal(ids.size, 24);

    // Stored: every message once, each built on the one before it.
    const events = await chain(roomId);
    const messages = events.filter((e) => e.body !== undefined && e.body !== '');
    assert.equal(messages.length, 24);
    assert.deepEqual(new Set(messages.map((m) => m.id)), new Set(ids.values()));
    for (let i = 1; i < events.length; i++) {
      assert.deepEqual(events[i]!.prev, [events[i - 1]!.id], `event ${i} follows the one before it`);
      assert.equal(events[i]!.depth, events[i - 1]!.depth + 1);
    }
    // Each sender's messages in the order sent.
    for (const who of ['alice', 'bob']) {
      const mine = messages.filter((m) => m.body!.startsWith(who)).map((m) => Number(m.body!.split(' ')[1]));
      assert.deepEqual(mine, [...mine].sort((a, b) => a - b));
    }
    const extremities = await server.hs.services.db.query(
      'SELECT f.event_nid FROM forward_extremities f JOIN rooms r USING (room_nid) WHERE r.room_id = $1',
      [roomId],
    );
    assert.equal(extremities.rows.length, 1);

    // The batches wrote messages together.
    assert.ok(queue.batched.batches > before.batches, 'some sends were batched');
    assert.ok(queue.batched.messages - before.messages >= 2 * (queue.batched.batches - before.batches));

    // Clients see the same: /messages forwards has all 24 once, in stream order.
    const page = await alice.get(`/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=100`);
    assert.equal(page.status, 200);
    const seen = (page.body.chunk as any[]).filter((e) => e.type === 'm.room.message').map((e) => e.event_id).reverse();
    assert.deepEqual(seen, messages.map((m) => m.id));

    // A retry after the batch answers with the first event too.
    const late = await put(bob, roomId, 'b3', 'bob 3');
    assert.equal(late.body.event_id, ids.get(`${bob.userId}/b3`));
    assert.equal((await chain(roomId)).length, events.length);
  });

  it('a transaction id repeated within one batch makes one event', async () => {
    const alice = await server.register();
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    const deps = server.hs.services.rooms.deps;
    const sender = { userId: alice.userId, deviceId: alice.deviceId };
    const before = { ...deps.queue.batched };
    const message = (i: number) => ({ msgtype: 'm.text', body: `same ${i}` });
    // Queued in one tick: the first runs alone, the rest wait for it and run as one batch.
    const ids = await Promise.all([
      sendMessage(deps, sender, roomId, 'm.room.message', message(0), 'r0'),
      ...[1, 1, 2, 1, 2, 3].map((i) => sendMessage(deps, sender, roomId, 'm.room.message', message(i), `r${i}`)),
    ]);
    assert.equal(ids[1], ids[2]);
    assert.equal(ids[1], ids[4]);
    assert.equal(ids[3], ids[5]);
    assert.equal(new Set(ids).size, 4);
    assert.ok(deps.queue.batched.batches > before.batches, 'the waiting sends ran as a batch');
    const stored = (await chain(roomId)).filter((e) => e.body?.startsWith('same'));
    assert.deepEqual(stored.map((e) => e.id), [ids[0], ids[1], ids[3], ids[6]]);
  });

  it('a batch on a head this process does not remember runs in a transaction, with the same outcome', async () => {
    const alice = await server.register();
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    const deps = server.hs.services.rooms.deps;
    const sender = { userId: alice.userId, deviceId: alice.deviceId };
    // As if another process had written: every write forgets the room's head once announced.
    const forget = () => {
      (deps.queue as unknown as { heads: { delete(k: string): void } }).heads.delete(roomId);
    };
    deps.queue.listeners.push(forget);
    try {
      await sendMessage(deps, sender, roomId, 'm.room.message', { msgtype: 'm.text', body: 'earlier' }, 't0');
      const before = { ...deps.queue.batched };
      const ids = await Promise.all(
        [1, 2, 3, 0, 4].map((i) => sendMessage(deps, sender, roomId, 'm.room.message', { msgtype: 'm.text', body: `t${i}` }, `t${i}`)),
      );
      // The first send may run alone or with the others (which depends on when the previous
      // send's queue let go of the room); either way the waiting ones are one batch, and t0,
      // used before, is not written again.
      assert.equal(deps.queue.batched.batches - before.batches, 1, 'the waiting sends were written as one batch');
      assert.ok([3, 4].includes(deps.queue.batched.messages - before.messages));
      const stored = (await chain(roomId)).filter((e) => e.body?.startsWith('t') || e.body === 'earlier');
      assert.deepEqual(stored.map((e) => e.id), [ids[3], ids[0], ids[1], ids[2], ids[4]]);
    } finally {
      deps.queue.listeners.splice(deps.queue.listeners.indexOf(forget), 1);
    }
  });

  it('relations sent in a batch are indexed: replies in a thread, reactions', async () => {
    const alice = await server.register();
    const deps = server.hs.services.rooms.deps;
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    const root = (await put(alice, roomId, 'root', 'root')).body.event_id as string;
    const sender = { userId: alice.userId, deviceId: alice.deviceId };
    const before = { ...deps.queue.batched };
    const thread = { rel_type: 'm.thread', event_id: root };
    await Promise.all([
      sendMessage(deps, sender, roomId, 'm.room.message', { msgtype: 'm.text', body: 'first' }, 'rel0'),
      ...[1, 2, 3].map((i) => sendMessage(deps, sender, roomId, 'm.room.message', { msgtype: 'm.text', body: `reply ${i}`, 'm.relates_to': thread }, `rel${i}`)),
      sendMessage(deps, sender, roomId, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: root, key: '👍' } }, 'rel4'),
    ]);
    assert.ok(deps.queue.batched.messages - before.messages >= 2, 'written as a batch');
    const replies = await alice.get(`/_matrix/client/v1/rooms/${enc(roomId)}/relations/${enc(root)}/m.thread`);
    assert.equal(replies.status, 200);
    assert.deepEqual((replies.body.chunk as any[]).map((e) => e.content.body).sort(), ['reply 1', 'reply 2', 'reply 3']);
    const reactions = await alice.get(`/_matrix/client/v1/rooms/${enc(roomId)}/relations/${enc(root)}/m.annotation`);
    assert.equal(reactions.body.chunk.length, 1);
    const event = await alice.get(`/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(root)}`);
    assert.equal(event.body.unsigned['m.relations']['m.thread'].count, 3);
  });

  it('a sync sees every batched message once, with its stream position, and the sender its transaction ids', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await join(bob, roomId);
    const since = (await bob.get('/_matrix/client/v3/sync')).body.next_batch;
    const aliceSince = (await alice.get('/_matrix/client/v3/sync')).body.next_batch;
    const sent = await Promise.all(Array.from({ length: 20 }, (_, i) => put(i % 2 ? alice : bob, roomId, `s${i}`, `m${i}`)));
    const order = (await chain(roomId)).filter((e) => e.body?.startsWith('m')).map((e) => e.id);
    assert.equal(order.length, 20);
    const res = await bob.get(`/_matrix/client/v3/sync?since=${since}&filter=${enc(JSON.stringify({ room: { timeline: { limit: 50 } } }))}`);
    const timeline = (res.body.rooms.join[roomId].timeline.events as any[]).filter((e) => e.type === 'm.room.message');
    assert.deepEqual(timeline.map((e) => e.event_id), order);
    const mine = await alice.get(`/_matrix/client/v3/sync?since=${aliceSince}&filter=${enc(JSON.stringify({ room: { timeline: { limit: 50 } } }))}`);
    const txnIds = new Map((mine.body.rooms.join[roomId].timeline.events as any[]).map((e) => [e.event_id, e.unsigned?.transaction_id]));
    sent.forEach((r, i) => assert.equal(txnIds.get(r.body.event_id), i % 2 ? `s${i}` : undefined));
  });
});
