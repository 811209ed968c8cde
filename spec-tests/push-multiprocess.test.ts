// Push rules are cached by every process that evaluates events (src/push/rules-cache.ts). A rule
// changed through one process must apply to the next event persisted by another at once: the
// database announces the change (a trigger, NOTIFY prat_push_rules) and each process drops its
// copy. Without that, the other process would go on counting with the old rules for a minute.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient } from './support/client.js';
import { twoProcesses, via } from './support/multiprocess.js';
import { enc, send, sharedRoom, sync } from './support/sync.js';

describe('push rules across two server processes', () => {
  const servers = twoProcesses();

  const countsOf = async (c: TestClient, roomId: string) => (await sync(c)).rooms.join[roomId].unread_notifications;

  it('applies a rule changed through one process to events persisted by the other', async () => {
    const alice = await servers.one.register();
    const bob = await servers.one.register();
    const carol = await servers.one.register();
    // Three members: not a one-to-one room, so messages notify through .m.rule.message.
    const roomId = await sharedRoom(alice, bob, carol);
    const aliceOnTwo = via(servers.two, alice);

    await send(aliceOnTwo, roomId, { msgtype: 'm.text', body: 'counted' });
    assert.equal((await countsOf(bob, roomId)).notification_count, 1);

    // Bob mutes the room through process one; process two evaluated (and cached) his rules.
    const muted = await bob.put(`/_matrix/client/v3/pushrules/global/room/${enc(roomId)}`, { actions: [] });
    assert.equal(muted.status, 200, JSON.stringify(muted.body));
    await new Promise((r) => setTimeout(r, 300));
    await send(aliceOnTwo, roomId, { msgtype: 'm.text', body: 'not counted' });
    assert.equal((await countsOf(bob, roomId)).notification_count, 1);

    // And unmuted again, counted again.
    assert.equal((await bob.delete(`/_matrix/client/v3/pushrules/global/room/${enc(roomId)}`)).status, 200);
    await new Promise((r) => setTimeout(r, 300));
    await send(aliceOnTwo, roomId, { msgtype: 'm.text', body: 'counted again' });
    assert.equal((await countsOf(bob, roomId)).notification_count, 2);
  });
});
