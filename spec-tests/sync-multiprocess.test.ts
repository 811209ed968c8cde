// Two server processes on one database: a change made through one wakes a /sync waiting on the
// other (PostgreSQL LISTEN/NOTIFY), for room messages, typing, receipts and account data.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { twoProcesses, via } from './support/multiprocess.js';
import { enc, send, sharedRoom, sync, syncUntil } from './support/sync.js';

describe('sync across two server processes on one database', () => {
  const servers = twoProcesses();

  it('wakes a sync on one process with a message sent through the other', async () => {
    const alice = await servers.one.register();
    const bob = await servers.one.register();
    const roomId = await sharedRoom(alice, bob);
    const bobOnTwo = via(servers.two, bob);
    const first = await sync(bobOnTwo);
    const polling = syncUntil(bobOnTwo, first.next_batch, (r) => !!r.rooms.join[roomId]);
    await new Promise((r) => setTimeout(r, 100));
    const sentAt = performance.now();
    await send(alice, roomId, { msgtype: 'm.text', body: 'across processes' });
    const res = await polling;
    const latency = performance.now() - sentAt;
    assert.ok(latency < 1000, `woke after ${latency} ms`);
    assert.deepEqual(res.rooms.join[roomId].timeline.events.map((e: any) => e.content.body), ['across processes']);
  });

  it('carries typing, receipts and account data across processes', async () => {
    const alice = await servers.one.register();
    const bob = await servers.one.register();
    const roomId = await sharedRoom(alice, bob);
    const eventId = await send(alice, roomId, { msgtype: 'm.text', body: 'x' });
    const bobOnTwo = via(servers.two, bob);
    const first = await sync(bobOnTwo);
    const typing = syncUntil(bobOnTwo, first.next_batch, (r) => (r.rooms.join[roomId]?.ephemeral.events ?? []).some((e: any) => e.type === 'm.typing'));
    await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/typing/${enc(alice.userId)}`, { typing: true, timeout: 20000 });
    const t = await typing;
    assert.deepEqual(t.rooms.join[roomId].ephemeral.events.find((e: any) => e.type === 'm.typing').content.user_ids, [alice.userId]);

    const receipts = syncUntil(bobOnTwo, t.next_batch, (r) => (r.rooms.join[roomId]?.ephemeral.events ?? []).some((e: any) => e.type === 'm.receipt'));
    await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, {});
    const rc = await receipts;
    assert.ok(rc.rooms.join[roomId].ephemeral.events.find((e: any) => e.type === 'm.receipt').content[eventId]);

    const data = syncUntil(bobOnTwo, rc.next_batch, (r) => r.account_data.events.length > 0);
    await bob.put(`/_matrix/client/v3/user/${enc(bob.userId)}/account_data/org.example.x`, { v: 1 });
    const ad = await data;
    assert.deepEqual(ad.account_data.events, [{ type: 'org.example.x', content: { v: 1 } }]);
  });
});
