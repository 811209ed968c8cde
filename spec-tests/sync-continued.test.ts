// A client syncs again with the token of its previous answer. What that answer was built on
// (the user's joined rooms at its positions, the ignored users) is then the base of the woken
// path (src/sync/service.ts `lastAnswers`, woken.ts): only what came after it is read, from
// memory where this process wrote it. Each test compares such an answer with a full read from
// the same token (once the device has a newer answer, that token is read in full), and checks
// which way it was answered.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { TestClient } from './support/client.js';
import { secondDevice, via } from './support/multiprocess.js';
import type { TestServer } from './support/server.js';
import { createRoom, enc, send, sharedRoom, sync } from './support/sync.js';
import { comparable, continuedAnswers, minus, until, wokenServers } from './support/woken.js';

type Way = 'fromMemory' | 'oneStatement' | 'fullRead' | 'none';

describe('syncs continuing from the previous answer', () => {
  const servers = wokenServers(true);
  let one: TestServer;
  let two: TestServer;
  before(() => ({ one, two } = servers));

  /**
   * `reader` syncs from `since` without waiting; `way`: how the continuation answered ('none':
   * it did not continue, a full read answered). Checks the answer against a full read.
   */
  async function continued(reader: TestClient, since: string, way: Way, what: string, params: Record<string, string> = {}) {
    const before = continuedAnswers(one);
    const res = await sync(reader, { ...params, since });
    const after = continuedAnswers(one);
    assert.deepEqual(minus(after, before), { fromMemory: 0, oneStatement: 0, fullRead: 0, ...(way === 'none' ? {} : { [way]: 1 }) }, what);
    if (res.next_batch !== since) {
      const fresh = await sync(reader, { ...params, since });
      assert.deepEqual(continuedAnswers(one), after, `${what}: the comparison is a full read`);
      assert.deepEqual(comparable(res), comparable(fresh), what);
    }
    return res;
  }

  it('messages after the previous answer: from memory', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const roomId = await sharedRoom(alice, bob);
    let since = (await sync(bob)).next_batch;
    await send(alice, roomId, { msgtype: 'm.text', body: 'one' });
    // The initial sync remembered the device's key figures.
    let res = await continued(bob, since, 'fromMemory', 'first');
    assert.deepEqual(res.rooms.join[roomId].timeline.events.map((e: any) => e.content.body), ['one']);
    for (const body of ['two', 'three']) {
      await send(alice, roomId, { msgtype: 'm.text', body });
      res = await continued(bob, res.next_batch, 'fromMemory', body);
      assert.deepEqual(res.rooms.join[roomId].timeline.events.map((e: any) => e.content.body), [body]);
    }
    assert.deepEqual(res.rooms.join[roomId].unread_notifications, { notification_count: 3, highlight_count: 0 });
    // Nothing new: an empty answer from memory.
    since = res.next_batch;
    res = await continued(bob, since, 'fromMemory', 'nothing new');
    assert.deepEqual(res.rooms.join, {});
  });

  it('an older token, another device or full_state: read in full', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const roomId = await sharedRoom(alice, bob);
    const first = (await sync(bob)).next_batch;
    await send(alice, roomId, { msgtype: 'm.text', body: 'one' });
    const second = (await continued(bob, first, 'fromMemory', 'second')).next_batch;
    await send(alice, roomId, { msgtype: 'm.text', body: 'two' });
    const older = await continued(bob, first, 'none', 'an older token');
    assert.deepEqual(older.rooms.join[roomId].timeline.events.map((e: any) => e.content.body), ['one', 'two']);
    // The older token's answer is now the device's last; the second token is not.
    await continued(bob, second, 'none', 'the token before the last answer');

    const laptop = await secondDevice(one, bob);
    await continued(laptop, older.next_batch, 'none', 'another device');
    const last = (await sync(bob, { since: older.next_batch })).next_batch;
    await send(alice, roomId, { msgtype: 'm.text', body: 'three' });
    const full = await continued(bob, last, 'none', 'full_state', { full_state: 'true' });
    assert.ok(full.rooms.join[roomId].state.events.some((e: any) => e.type === 'm.room.create'));
  });

  it('an invite, a join and a leave since: the full read answers', async () => {
    const alice = await one.register();
    const bob = await one.register();
    await sharedRoom(alice, bob);
    const since = (await sync(bob)).next_batch;
    const other = await createRoom(alice, { invite: [bob.userId] });
    let res = await continued(bob, since, 'fullRead', 'invite');
    assert.ok(res.rooms.invite[other]);
    assert.equal((await bob.post(`/_matrix/client/v3/join/${enc(other)}`, {})).status, 200);
    res = await continued(bob, res.next_batch, 'fullRead', 'join');
    assert.ok(res.rooms.join[other]);
    // The base now holds the new room: its messages come from memory.
    await send(alice, other, { msgtype: 'm.text', body: 'in the joined room' });
    res = await continued(bob, res.next_batch, 'fromMemory', 'in the joined room');
    assert.deepEqual(res.rooms.join[other].timeline.events.map((e: any) => e.content.body), ['in the joined room']);
    assert.equal((await bob.post(`/_matrix/client/v3/rooms/${enc(other)}/leave`, {})).status, 200);
    res = await continued(bob, res.next_batch, 'fullRead', 'leave');
    assert.ok(res.rooms.leave[other]);
  });

  it('a receipt since (another stream): the full read answers, without the statement first', async () => {
    const alice = await one.register();
    const bob = await one.register();
    const roomId = await sharedRoom(alice, bob);
    const eventId = await send(alice, roomId, { msgtype: 'm.text', body: 'read me' });
    let res = await continued(bob, (await sync(bob)).next_batch, 'fromMemory', 'warm');
    const receipt = await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, {});
    assert.equal(receipt.status, 200);
    res = await continued(bob, res.next_batch, 'fullRead', 'receipt');
    const ephemeral = res.rooms.join[roomId].ephemeral.events.find((e: any) => e.type === 'm.receipt');
    assert.ok(ephemeral.content[eventId]['m.read'][alice.userId]);
  });

  it("an event another process wrote: the statement answers, then this process's from memory", async () => {
    const alice = await one.register();
    const bob = await one.register();
    const roomId = await sharedRoom(alice, bob);
    let since = (await continued(bob, (await sync(bob)).next_batch, 'fromMemory', 'warm')).next_batch;
    const aliceThere = via(two, alice);
    const notifier = one.hs.services.sync.notifier;
    const heard = notifier.heardOf('events');
    await send(aliceThere, roomId, { msgtype: 'm.text', body: 'from two' });
    await until(() => notifier.heardOf('events') > heard, 'the other process to announce its write');
    let res = await continued(bob, since, 'oneStatement', 'from the other process');
    assert.deepEqual(res.rooms.join[roomId].timeline.events.map((e: any) => e.content.body), ['from two']);
    since = res.next_batch;
    await send(alice, roomId, { msgtype: 'm.text', body: 'from one' });
    res = await continued(bob, since, 'fromMemory', 'from this process');
    assert.deepEqual(res.rooms.join[roomId].timeline.events.map((e: any) => e.content.body), ['from one']);
  });
});
