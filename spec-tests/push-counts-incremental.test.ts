// Notification counts are remembered between syncs (push/unread-counts.ts): each sync counts only
// what arrived since the last one while the reader's receipts stay put. These tests move receipts
// (threaded and unthreaded, through another server process too) between syncs and check every
// count against the same counts made from scratch.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { notificationCounts } from '../src/push/store.js';
import { twoProcesses, via } from './support/multiprocess.js';
import { enc, send, sharedRoom, sync } from './support/sync.js';

describe('notification counts remembered between syncs', () => {
  const servers = twoProcesses();

  it('match counts made from scratch as messages, threads and receipts come and go, across processes', async () => {
    const { one, two } = servers;
    const alice = await one.register();
    const bob = await one.register();
    const bobElsewhere = via(two, bob);
    const roomId = await sharedRoom(alice, bob);
    const filter = JSON.stringify({ room: { timeline: { unread_thread_notifications: true } } });
    /** Bob's counts as /sync (process one) shows them, per thread ('' for the main timeline). */
    const shown = async (): Promise<Record<string, [number, number]>> => {
      const room = (await sync(bob, { filter })).rooms.join[roomId];
      const out: Record<string, [number, number]> = {};
      const main = room.unread_notifications ?? {};
      if (main.notification_count || main.highlight_count) out[''] = [main.notification_count, main.highlight_count];
      for (const [t, c] of Object.entries<any>(room.unread_thread_notifications ?? {})) out[t] = [c.notification_count, c.highlight_count];
      return out;
    };
    const fromScratch = async (): Promise<Record<string, [number, number]>> => {
      const out: Record<string, [number, number]> = {};
      for (const r of await notificationCounts(one.hs.services.db, bob.userId, [roomId], Number.MAX_SAFE_INTEGER)) out[r.thread_id] = [r.notification_count, r.highlight_count];
      return out;
    };
    const check = async (expected: Record<string, [number, number]>, step: string) => {
      assert.deepEqual(await shown(), expected, `${step}: /sync`);
      assert.deepEqual(await shown(), expected, `${step}: /sync again (from what it remembered)`);
      assert.deepEqual(await fromScratch(), expected, `${step}: from scratch`);
    };
    const receipt = (c: typeof bob, eventId: string, threadId?: string) =>
      c.post(`/_matrix/client/v3/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, threadId === undefined ? {} : { thread_id: threadId });

    await check({}, 'nothing yet');
    const root = await send(alice, roomId, { msgtype: 'm.text', body: 'root' });
    await send(alice, roomId, { msgtype: 'm.text', body: `hey ${bob.userId.slice(1, bob.userId.indexOf(':'))}` });
    await check({ '': [2, 1] }, 'two messages, one highlighting');
    const inThread = { msgtype: 'm.text', body: 'in the thread', 'm.relates_to': { rel_type: 'm.thread', event_id: root } };
    const t1 = await send(alice, roomId, inThread);
    await send(alice, roomId, inThread);
    const m3 = await send(alice, roomId, { msgtype: 'm.text', body: 'third' });
    await check({ '': [3, 1], [root]: [2, 0] }, 'a thread of two');
    // A threaded receipt in the thread, sent to the other process: the main timeline keeps its counts.
    assert.equal((await receipt(bobElsewhere, t1, root)).status, 200);
    await check({ '': [3, 1], [root]: [1, 0] }, 'threaded receipt');
    // A 'main' receipt covers the main timeline only.
    assert.equal((await receipt(bob, m3, 'main')).status, 200);
    await check({ [root]: [1, 0] }, "'main' receipt");
    await send(alice, roomId, { msgtype: 'm.text', body: 'fourth' });
    await send(alice, roomId, inThread);
    await check({ '': [1, 0], [root]: [2, 0] }, 'more of both');
    // An unthreaded receipt on the latest event covers every thread.
    const last = await send(alice, roomId, { msgtype: 'm.text', body: 'last' });
    assert.equal((await receipt(bobElsewhere, last)).status, 200);
    await check({}, 'unthreaded receipt');
    await send(alice, roomId, inThread);
    await check({ [root]: [1, 0] }, 'after everything was read');
  });

  it('leave out senders the reader ignores, and count them again once unignored', async () => {
    const { one } = servers;
    const alice = await one.register();
    const bob = await one.register();
    const carol = await one.register();
    const roomId = await sharedRoom(alice, bob, carol);
    const count = async () => (await sync(bob)).rooms.join[roomId].unread_notifications.notification_count;
    await send(alice, roomId, { msgtype: 'm.text', body: 'one' });
    await send(carol, roomId, { msgtype: 'm.text', body: 'two' });
    assert.equal(await count(), 2);
    const ignore = (users: string[]) =>
      bob.put(`/_matrix/client/v3/user/${enc(bob.userId)}/account_data/m.ignored_user_list`, { ignored_users: Object.fromEntries(users.map((u) => [u, {}])) });
    assert.equal((await ignore([carol.userId])).status, 200);
    assert.equal(await count(), 1);
    await send(carol, roomId, { msgtype: 'm.text', body: 'three' });
    await send(alice, roomId, { msgtype: 'm.text', body: 'four' });
    assert.equal(await count(), 2);
    assert.equal((await ignore([])).status, 200);
    assert.equal(await count(), 4);
  });
});
