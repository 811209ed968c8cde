// A woken long-poll answers from memory, with no round trip to the database, when this process
// wrote every event since the long-poll's base (src/sync/woken.ts, recent-writes.ts): the key
// figures come from a cache, the unread counts are carried forward. Each test compares the woken
// answer with a full read from the same token, and checks which way it was answered.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { TestClient } from './support/client.js';
import { TestDevice } from './support/e2ee.js';
import { secondDevice, via } from './support/multiprocess.js';
import type { TestServer } from './support/server.js';
import { enc, send, sharedRoom, sync } from './support/sync.js';
import { KEY_FIGURES_CHANNEL } from '../src/sync/key-figures-cache.js';
import { comparable, until, woken, wokenAnswers, wokenServers } from './support/woken.js';

type Way = 'fromMemory' | 'oneStatement' | 'fullRead';

describe('woken long-polls answered from memory', () => {
  const servers = wokenServers(true);
  let one: TestServer;
  let two: TestServer;
  before(() => ({ one, two } = servers));

  const text = (c: TestClient, roomId: string, body: string) => () => send(c, roomId, { msgtype: 'm.text', body });

  /**
   * Wakes `reader`'s long-poll with `act` and checks the answer against a full read; `way`: how it
   * must have been answered. Returns the answer.
   */
  async function step(
    reader: TestClient,
    since: string,
    act: () => Promise<unknown>,
    way: Way,
    what: string,
    params: Record<string, string> = {},
    /** How the long-poll's first read, continuing from the reader's previous answer, was answered. */
    first: Way = 'fromMemory',
  ) {
    const w = await woken(one, reader, since, act, params);
    assert.deepEqual(comparable(w.res), comparable(w.fresh), what);
    assert.deepEqual({ fromMemory: w.fromMemory, oneStatement: w.oneStatement, fullRead: w.fullRead }, { fromMemory: 0, oneStatement: 0, fullRead: 0, [way]: 1 }, what);
    assert.deepEqual(w.continued, { fromMemory: 0, oneStatement: 0, fullRead: 0, [first]: 1 }, `${what}: the first read`);
    return w.res;
  }

  it('messages: from memory once the device is known, with the counts carried forward', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const roomId = await sharedRoom(alice, bob);
    await send(alice, roomId, { msgtype: 'm.text', body: 'unread before' });
    let since = (await sync(bob)).next_batch;
    // The long-poll's first read continues from the initial sync's answer, which remembered the
    // device's key figures: both answers come from memory.
    since = (await step(bob, since, text(alice, roomId, 'first'), 'fromMemory', 'first')).next_batch;
    const bobName = bob.userId.slice(1, bob.userId.indexOf(':'));
    for (const body of [`hello ${bobName}`, 'third', 'fourth']) {
      const res = await step(bob, since, text(alice, roomId, body), 'fromMemory', body);
      assert.deepEqual(res.rooms.join[roomId].timeline.events.map((e: any) => e.content.body), [body]);
      since = res.next_batch;
    }
    const res = await step(bob, since, text(alice, roomId, 'sixth'), 'fromMemory', 'sixth');
    assert.deepEqual(res.rooms.join[roomId].unread_notifications, { notification_count: 6, highlight_count: 1 });
    assert.equal(res.device_one_time_keys_count.signed_curve25519, 0);
  });

  it("the sender's own device sees its transaction id; its other device does not", async () => {
    const alice = await one.register();
    const roomId = await sharedRoom(alice);
    let since = (await sync(alice)).next_batch;
    since = (await step(alice, since, text(alice, roomId, 'warm'), 'fromMemory', 'warm')).next_batch;
    const txnId = `memory-${Date.now()}`;
    const res = await step(alice, since, () => alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/${txnId}`, { msgtype: 'm.text', body: 'mine' }), 'fromMemory', 'own');
    assert.equal(res.rooms.join[roomId].timeline.events[0].unsigned.transaction_id, txnId);

    const laptop = await secondDevice(one, alice);
    let since2 = (await sync(laptop)).next_batch;
    since2 = (await step(laptop, since2, text(alice, roomId, 'warm 2'), 'fromMemory', 'warm 2')).next_batch;
    const res2 = await step(laptop, since2, () => alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/${txnId}-2`, { msgtype: 'm.text', body: 'phone' }), 'fromMemory', 'other device');
    assert.equal(res2.rooms.join[roomId].timeline.events[0].unsigned.transaction_id, undefined);
  });

  it('threads, receipts, a redaction and a topic: counts carried forward past the receipts', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const carol = await one.register();
    const roomId = await sharedRoom(alice, bob, carol);
    const params = {
      filter: JSON.stringify({ room: { state: { lazy_load_members: true }, timeline: { unread_thread_notifications: true, limit: 5 } } }),
    };
    const root = await send(alice, roomId, { msgtype: 'm.text', body: 'root' });
    let since = (await sync(bob, params)).next_batch;
    since = (await step(bob, since, text(carol, roomId, 'warm'), 'fromMemory', 'warm', params)).next_batch;
    const inThread = (body: string) => () => send(carol, roomId, { msgtype: 'm.text', body, 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
    let replyId = '';
    since = (await step(bob, since, async () => (replyId = await inThread('reply 1')()), 'fromMemory', 'reply 1', params)).next_batch;
    since = (await step(bob, since, inThread('reply 2'), 'fromMemory', 'reply 2', params)).next_batch;
    const main = await send(carol, roomId, { msgtype: 'm.text', body: 'main' });
    since = (await sync(bob, { ...params, since })).next_batch;
    // Bob reads the main timeline up to 'main' (thread receipt), then the thread up to reply 1.
    const receipt = (eventId: string, threadId?: string) => async () => {
      const r = await bob.post(`/_matrix/client/v3/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, threadId === undefined ? {} : { thread_id: threadId });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    };
    since = (await step(bob, since, receipt(main, 'main'), 'fullRead', 'main receipt', params)).next_batch;
    since = (await step(bob, since, receipt(replyId, root), 'fullRead', 'thread receipt', params)).next_batch;
    let res = await step(bob, since, inThread('reply 3'), 'fromMemory', 'reply 3', params);
    assert.deepEqual(res.rooms.join[roomId].unread_thread_notifications, { [root]: { notification_count: 2, highlight_count: 0 } });
    since = (await step(bob, since = res.next_batch, text(carol, roomId, 'main 2'), 'fromMemory', 'main 2', params)).next_batch;
    // An unthreaded receipt covers every thread.
    since = (await step(bob, since, receipt(main), 'fullRead', 'unthreaded receipt', params)).next_batch;
    res = await step(bob, since, inThread('reply 4'), 'fromMemory', 'reply 4', params);
    since = res.next_batch;
    // A redaction changes an event an answer may hold: the statement reads it.
    since = (await step(bob, since, () => alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/redact/${enc(root)}/r${Date.now()}`, {}), 'oneStatement', 'redaction', params)).next_batch;
    // A state event other than a member event is written by a transaction; it answers from memory too.
    await step(bob, since, () => alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.topic/`, { topic: 'memory' }), 'fromMemory', 'topic', params);
  });

  it('typing alone, then a message: both from memory', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const roomId = await sharedRoom(alice, bob);
    let since = (await sync(bob)).next_batch;
    since = (await step(bob, since, text(alice, roomId, 'warm'), 'fromMemory', 'warm')).next_batch;
    const typing = () => alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/typing/${enc(alice.userId)}`, { typing: true, timeout: 30_000 });
    let res = await step(bob, since, typing, 'fromMemory', 'typing');
    assert.deepEqual(res.rooms.join[roomId].ephemeral.events, [{ type: 'm.typing', content: { user_ids: [alice.userId] } }]);
    res = await step(bob, res.next_batch, text(alice, roomId, 'typed'), 'fromMemory', 'message');
    assert.deepEqual(res.rooms.join[roomId].ephemeral?.events ?? [], [], 'typing did not change since');
  });

  it('an event another process wrote: the statement answers; the next one from memory again', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const roomId = await sharedRoom(alice, bob);
    const aliceThere = via(two, alice);
    let since = (await sync(bob)).next_batch;
    since = (await step(bob, since, text(alice, roomId, 'warm'), 'fromMemory', 'warm')).next_batch;
    since = (await step(bob, since, text(aliceThere, roomId, 'from two'), 'oneStatement', 'from the other process')).next_batch;
    await step(bob, since, text(alice, roomId, 'from one'), 'fromMemory', 'from this process');
  });

  it("key figures: the device's upload and another process's claim are seen at once", async () => {
    const alice = await one.register();
    const bob = new TestDevice(await one.register());
    const carol = via(two, await one.register());
    const roomId = await sharedRoom(alice, bob.client);
    assert.equal((await bob.upload({ device_keys: bob.deviceKeys(), one_time_keys: bob.oneTimeKeys(3) })).status, 200);
    let since = (await sync(bob.client)).next_batch;
    let res = await step(bob.client, since, text(alice, roomId, 'warm'), 'fromMemory', 'warm');
    assert.equal(res.device_one_time_keys_count.signed_curve25519, 3);
    since = (await step(bob.client, res.next_batch, text(alice, roomId, 'known'), 'fromMemory', 'known')).next_batch;

    // Carol claims one of bob's keys through the other process: its announcement reaches this one.
    const claim = await carol.post('/_matrix/client/v3/keys/claim', { one_time_keys: { [bob.client.userId]: { [bob.client.deviceId]: 'signed_curve25519' } } });
    assert.equal(claim.status, 200);
    await until(() => one.hs.services.sync.keyFigures.get(bob.client.userId, bob.client.deviceId) === undefined, 'the claim to be announced');
    // The long-poll's first read finds the figures dropped: the statement reads them again.
    res = await step(bob.client, since, text(alice, roomId, 'after the claim'), 'fromMemory', 'after the claim', {}, 'oneStatement');
    assert.equal(res.device_one_time_keys_count.signed_curve25519, 2);
    since = (await step(bob.client, res.next_batch, text(alice, roomId, 'known again'), 'fromMemory', 'known again')).next_batch;

    // The device's own upload on this process: dropped from the cache before the upload answers,
    // by this process itself (the database's announcement, which would do it too a moment
    // later, is not listened to meanwhile).
    const cached = () => one.hs.services.sync.keyFigures.get(bob.client.userId, bob.client.deviceId);
    const notifier = one.hs.services.sync.notifier;
    notifier.onChannel(KEY_FIGURES_CHANNEL, () => undefined);
    try {
      assert.equal((await bob.upload({ one_time_keys: bob.oneTimeKeys(2, 'BBBB') })).status, 200);
      assert.equal(cached(), undefined);
      res = await step(bob.client, since, text(alice, roomId, 'after the upload'), 'fromMemory', 'after the upload', {}, 'oneStatement');
      assert.equal(res.device_one_time_keys_count.signed_curve25519, 4);
      since = (await step(bob.client, res.next_batch, text(alice, roomId, 'known once more'), 'fromMemory', 'known once more')).next_batch;

      // A claim on this process, likewise.
      const carolHere = via(one, carol);
      assert.equal((await carolHere.post('/_matrix/client/v3/keys/claim', { one_time_keys: { [bob.client.userId]: { [bob.client.deviceId]: 'signed_curve25519' } } })).status, 200);
      assert.equal(cached(), undefined);
      res = await step(bob.client, since, text(alice, roomId, 'after a claim here'), 'fromMemory', 'after a claim here', {}, 'oneStatement');
      assert.equal(res.device_one_time_keys_count.signed_curve25519, 3);
    } finally {
      notifier.onChannel(KEY_FIGURES_CHANNEL, (payload) => one.hs.services.sync.keyFigures.announced(payload));
    }
  });

  it('a user who ignores someone: the statement answers (its counts leave the ignored out)', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const carol = await one.register();
    const roomId = await sharedRoom(alice, bob, carol);
    const ignore = await bob.put(`/_matrix/client/v3/user/${enc(bob.userId)}/account_data/m.ignored_user_list`, { ignored_users: { [carol.userId]: {} } });
    assert.equal(ignore.status, 200);
    let since = (await sync(bob)).next_batch;
    since = (await step(bob, since, text(alice, roomId, 'warm'), 'oneStatement', 'warm', {}, 'oneStatement')).next_batch;
    await step(bob, since, text(alice, roomId, 'again'), 'oneStatement', 'again', {}, 'oneStatement');
  });

  it('events the filter leaves out: answered from memory with nothing, the long-poll waits on', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const roomId = await sharedRoom(alice, bob);
    const params = { filter: JSON.stringify({ room: { timeline: { not_types: ['m.room.message'] } } }) };
    let since = (await sync(bob, params)).next_batch;
    since = (await step(bob, since, () => send(alice, roomId, { body: 'warm' }, 'org.example.custom'), 'fromMemory', 'warm', params)).next_batch;
    const before = wokenAnswers(one).fromMemory;
    const w = await woken(one, bob, since, async () => {
      await send(alice, roomId, { msgtype: 'm.text', body: 'filtered out' });
      await until(() => wokenAnswers(one).fromMemory > before, 'the empty answer');
      await send(alice, roomId, { body: 'shown' }, 'org.example.custom');
    }, params);
    assert.equal(w.fromMemory, 2);
    assert.equal(w.oneStatement + w.fullRead, 0);
    assert.deepEqual(w.res.rooms.join[roomId].timeline.events.map((e: any) => [e.type, e.content.body]), [['org.example.custom', 'shown']]);
    assert.deepEqual(comparable(w.res, true), comparable(w.fresh, true));
  });

  // Last: it leaves this process believing the receipts stream moved on.
  it('another stream this process saw move since the base: the full read answers, without the statement first', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const roomId = await sharedRoom(alice, bob);
    let since = (await sync(bob)).next_batch;
    since = (await step(bob, since, text(alice, roomId, 'warm'), 'fromMemory', 'warm')).next_batch;
    since = (await step(bob, since, text(alice, roomId, 'known'), 'fromMemory', 'known')).next_batch;
    // A receipt committed here, but not yet in the database's answers (a notification concerning nobody).
    const notifier = one.hs.services.sync.notifier;
    notifier.notify('receipts', notifier.heardOf('receipts') + 1_000_000, { userIds: [] });
    // The statement would find the stream moved too (what this process heard of is committed),
    // and leave the answer to the full read; it is not sent. (Here the database has no such
    // receipt: the statement would have answered, so a full read shows it was skipped.)
    await step(bob, since, text(alice, roomId, 'after'), 'fullRead', 'after', {}, 'fullRead');
  });
});
