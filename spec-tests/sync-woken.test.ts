// A woken long-poll answers with one statement when new events in joined rooms woke it
// (src/sync/woken.ts), and with a full read otherwise. Each test here has a long-poll woken by
// something, then syncs again from the same token without waiting (a full read) and checks that
// both answers are the same, and which way the woken one was answered. The answers from memory
// are turned off here (they would answer most of these): sync-woken-memory.test.ts has them.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { TestClient } from './support/client.js';
import { secondDevice, via } from './support/multiprocess.js';
import type { TestServer } from './support/server.js';
import { createRoom, enc, join, send, sharedRoom, sync } from './support/sync.js';
import { comparable, until, woken, wokenAnswers, wokenServers } from './support/woken.js';

describe('woken long-polls', () => {
  const servers = wokenServers(false);
  let one: TestServer;
  let two: TestServer;
  before(() => ({ one, two } = servers));

  it('a message: the same answer as a full read, with counts, from one statement', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const roomId = await sharedRoom(alice, bob);
    await send(alice, roomId, { msgtype: 'm.text', body: 'unread before' });
    let since = (await sync(bob)).next_batch;
    const bobName = bob.userId.slice(1, bob.userId.indexOf(':'));
    for (const body of ['first', `hello ${bobName}`, 'third']) {
      const w = await woken(one, bob, since, () => send(alice, roomId, { msgtype: 'm.text', body }));
      assert.deepEqual(comparable(w.res), comparable(w.fresh));
      assert.equal(w.oneStatement, 1);
      assert.equal(w.fullRead, 0);
      assert.deepEqual(
        w.res.rooms.join[roomId].timeline.events.map((e: any) => e.content.body),
        [body],
      );
      since = w.res.next_batch;
    }
    // Four unread messages, one mentioning bob.
    const counts = (await sync(bob, { since })).rooms.join[roomId]?.unread_notifications;
    assert.equal(counts, undefined, 'nothing new past the last answer');
    const w = await woken(one, bob, since, () => send(alice, roomId, { msgtype: 'm.text', body: 'fifth' }));
    assert.deepEqual(w.res.rooms.join[roomId].unread_notifications, { notification_count: 5, highlight_count: 1 });
    assert.deepEqual(comparable(w.res), comparable(w.fresh));
  });

  it("the sender's own device sees its transaction id; its other device does not", async () => {
    const alice = await one.register();
    const roomId = await sharedRoom(alice);
    const since = (await sync(alice)).next_batch;
    const txnId = `woken-${Date.now()}`;
    const w = await woken(one, alice, since, () => alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/${txnId}`, { msgtype: 'm.text', body: 'mine' }));
    assert.equal(w.oneStatement, 1);
    assert.equal(w.res.rooms.join[roomId].timeline.events[0].unsigned.transaction_id, txnId);
    assert.deepEqual(comparable(w.res), comparable(w.fresh));

    const laptop = await secondDevice(one, alice);
    const since2 = (await sync(laptop)).next_batch;
    const w2 = await woken(one, laptop, since2, () => send(alice, roomId, { msgtype: 'm.text', body: 'from the phone' }));
    assert.equal(w2.oneStatement, 1);
    assert.equal(w2.res.rooms.join[roomId].timeline.events[0].unsigned.transaction_id, undefined);
    assert.deepEqual(comparable(w2.res), comparable(w2.fresh));
  });

  it('threads, lazy-loaded members and a redaction: the same as a full read', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const carol = await one.register();
    const roomId = await sharedRoom(alice, bob, carol);
    const params = {
      filter: JSON.stringify({ room: { state: { lazy_load_members: true }, timeline: { unread_thread_notifications: true, limit: 5 } } }),
    };
    let since = (await sync(bob, params)).next_batch;
    const root = await send(alice, roomId, { msgtype: 'm.text', body: 'root' });
    since = (await sync(bob, { ...params, since })).next_batch;
    const steps: [string, () => Promise<unknown>][] = [
      ['a reply in the thread', () => send(carol, roomId, { msgtype: 'm.text', body: 'in thread', 'm.relates_to': { rel_type: 'm.thread', event_id: root } })],
      ['a message from carol', () => send(carol, roomId, { msgtype: 'm.text', body: 'main' })],
      ['a redaction', () => alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/redact/${enc(root)}/r${Date.now()}`, {})],
      ['a topic', () => alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.topic/`, { topic: 'woken' })],
    ];
    for (const [what, act] of steps) {
      const w = await woken(one, bob, since, act, params);
      assert.equal(w.oneStatement, 1, what);
      assert.deepEqual(comparable(w.res), comparable(w.fresh), what);
      since = w.res.next_batch;
    }
    // The thread's count is carol's reply.
    const full = (await sync(bob, params)).rooms.join[roomId];
    assert.deepEqual(full.unread_thread_notifications, { [root]: { notification_count: 1, highlight_count: 0 } });
  });

  it('typing alone: answered with the room counts, the same as a full read', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const roomId = await sharedRoom(alice, bob);
    await send(alice, roomId, { msgtype: 'm.text', body: 'unread' });
    const since = (await sync(bob)).next_batch;
    const w = await woken(one, bob, since, () => alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/typing/${enc(alice.userId)}`, { typing: true, timeout: 30_000 }));
    assert.equal(w.oneStatement, 1);
    const room = w.res.rooms.join[roomId];
    assert.deepEqual(room.ephemeral.events, [{ type: 'm.typing', content: { user_ids: [alice.userId] } }]);
    assert.deepEqual(room.unread_notifications, { notification_count: 1, highlight_count: 0 });
    assert.deepEqual(comparable(w.res), comparable(w.fresh));
  });

  it('events the filter or the ignore list leave out: the long-poll keeps waiting', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const carol = await one.register();
    const roomId = await sharedRoom(alice, bob, carol);
    const ignore = await bob.put(`/_matrix/client/v3/user/${enc(bob.userId)}/account_data/m.ignored_user_list`, { ignored_users: { [carol.userId]: {} } });
    assert.equal(ignore.status, 200);
    const params = { filter: JSON.stringify({ room: { timeline: { not_types: ['m.room.message'] } } }) };
    const since = (await sync(bob, params)).next_batch;
    // Each event left out wakes the long-poll, which answers nothing and waits on.
    const answered = () => wokenAnswers(one).oneStatement;
    const sendAndWait = async (c: TestClient, content: Record<string, unknown>, type?: string) => {
      const before = answered();
      await send(c, roomId, content, type);
      await until(() => answered() > before, 'the woken answer');
    };
    const w = await woken(one, bob, since, async () => {
      await sendAndWait(alice, { msgtype: 'm.text', body: 'filtered out' });
      await sendAndWait(carol, { body: 'ignored' }, 'org.example.custom');
      await send(alice, roomId, { body: 'shown' }, 'org.example.custom');
    }, params);
    assert.deepEqual(
      w.res.rooms.join[roomId].timeline.events.map((e: any) => [e.type, e.content.body]),
      [['org.example.custom', 'shown']],
    );
    assert.equal(w.oneStatement, 3, 'each wake answered by one statement');
    assert.equal(w.fullRead, 0);
    assert.deepEqual(comparable(w.res, true), comparable(w.fresh, true));
    // Paginating back from either start finds nothing the client would be shown in between.
    const start = (r: any) => Number(/^e(\d+)/.exec(r.rooms.join[roomId].timeline.prev_batch)![1]);
    assert.ok(start(w.res) >= start(w.fresh));
  });

  it('a membership change or a receipt: a full read answers', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const carol = await one.register();
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await join(bob, roomId);
    let since = (await sync(bob)).next_batch;
    const joined = await woken(one, bob, since, () => join(carol, roomId));
    assert.equal(joined.res.rooms.join[roomId].timeline.events.at(-1).state_key, carol.userId);
    assert.equal(joined.fullRead, 1);
    assert.equal(joined.oneStatement, 0);
    assert.deepEqual(comparable(joined.res), comparable(joined.fresh));
    since = joined.res.next_batch;
    const m = await send(carol, roomId, { msgtype: 'm.text', body: 'hi' });
    since = (await sync(bob, { since })).next_batch;
    const read = await woken(one, bob, since, () => alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/receipt/m.read/${enc(m)}`, {}));
    assert.equal(read.fullRead, 1);
    assert.equal(read.res.rooms.join[roomId].ephemeral.events[0].type, 'm.receipt');
    assert.deepEqual(comparable(read.res), comparable(read.fresh));
  });

  it('after more than a thousand events elsewhere, a full read answers', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const roomId = await sharedRoom(alice, bob);
    const busy = await createRoom(alice, { preset: 'public_chat' });
    const since = (await sync(bob)).next_batch;
    const rooms = one.hs.services.rooms;
    const sender = { userId: alice.userId, deviceId: alice.deviceId };
    const w = await woken(one, bob, since, async () => {
      // Bob is not in the busy room: these wake nobody, but the woken statement scans them.
      await Promise.all(Array.from({ length: 1001 }, (_, i) => rooms.sendMessage(sender, busy, 'm.room.message', { msgtype: 'm.text', body: `busy ${i}` }, `busy${i}`)));
      await send(alice, roomId, { msgtype: 'm.text', body: 'for bob' });
    });
    assert.equal(w.fullRead, 1);
    assert.equal(w.oneStatement, 0);
    assert.deepEqual(w.res.rooms.join[roomId].timeline.events.map((e: any) => e.content.body), ['for bob']);
    assert.equal(w.res.rooms.join[busy], undefined);
    assert.deepEqual(comparable(w.res), comparable(w.fresh));
  });

  it('an event sent to another process wakes the long-poll, which answers with one statement', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const roomId = await sharedRoom(alice, bob);
    const bobThere = via(two, bob);
    const since = (await sync(bobThere)).next_batch;
    const w = await woken(two, bobThere, since, () => send(alice, roomId, { msgtype: 'm.text', body: 'across' }));
    assert.equal(w.oneStatement, 1);
    assert.deepEqual(w.res.rooms.join[roomId].timeline.events.map((e: any) => e.content.body), ['across']);
    assert.deepEqual(comparable(w.res), comparable(w.fresh));
  });
});
