// Rooms through matrix-js-sdk (as Element talks to a server), without /sync: each call is the
// SDK's own request shape and response parsing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { releaseProcess } from './support/sdk.js';
import { createClient, Preset, Visibility, type MatrixClient } from 'matrix-js-sdk';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import type { TestClient } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';

sdkLogger.setLevel('silent');

function sdk(server: TestServer, c: TestClient): MatrixClient {
  return createClient({ baseUrl: server.baseUrl, accessToken: c.token!, userId: c.userId, deviceId: c.deviceId });
}

async function refused(p: Promise<unknown>, errcode = 'M_FORBIDDEN'): Promise<void> {
  await assert.rejects(p, (err: { errcode?: string; httpStatus?: number }) => {
    assert.equal(err.errcode, errcode);
    return true;
  });
}

describe('rooms through matrix-js-sdk', () => {
  let server: TestServer;
  let alice: MatrixClient;
  let bob: MatrixClient;
  let aliceId: string;
  let bobId: string;
  before(async () => {
    server = await startTestServer();
    const a = await server.register();
    const b = await server.register();
    aliceId = a.userId;
    bobId = b.userId;
    alice = sdk(server, a);
    bob = sdk(server, b);
  });
  after(async () => {
    alice.stopClient();
    bob.stopClient();
    await server.stop();
  });

  it('creates a public room with an alias that another user joins and talks in', async () => {
    const { room_id: roomId } = await alice.createRoom({ preset: Preset.PublicChat, visibility: Visibility.Public, name: 'SDK lobby', room_alias_name: 'sdk-lobby' });
    const joined = await bob.joinRoom('#sdk-lobby:localhost');
    assert.equal(joined.roomId, roomId);
    const { event_id: eventId } = await bob.sendTextMessage(roomId, 'hello from the sdk');
    const ev = await alice.fetchRoomEvent(roomId, eventId);
    assert.equal(ev.content!['body'], 'hello from the sdk');
    assert.equal(ev.sender, bobId);
    const members = await alice.getJoinedRoomMembers(roomId);
    assert.deepEqual(Object.keys(members.joined).sort(), [aliceId, bobId].sort());
    assert.ok((await bob.getJoinedRooms()).joined_rooms.includes(roomId));
    const name = await bob.getStateEvent(roomId, 'm.room.name', '');
    assert.equal(name['name'], 'SDK lobby');
  });

  it('keeps the uninvited out of a private room until invited', async () => {
    const { room_id: roomId } = await alice.createRoom({ preset: Preset.PrivateChat });
    await refused(bob.joinRoom(roomId));
    await alice.invite(roomId, bobId);
    await bob.joinRoom(roomId);
    await bob.sendTextMessage(roomId, 'in');
  });

  it('kicks, bans and unbans', async () => {
    const { room_id: roomId } = await alice.createRoom({ preset: Preset.PublicChat });
    await bob.joinRoom(roomId);
    await alice.kick(roomId, bobId, 'bye');
    await refused(bob.sendTextMessage(roomId, 'still here?'));
    await bob.joinRoom(roomId);
    await alice.ban(roomId, bobId, 'really bye');
    await refused(bob.joinRoom(roomId));
    await alice.unban(roomId, bobId);
    await bob.joinRoom(roomId);
    await refused(bob.sendStateEvent(roomId, 'm.room.power_levels' as never, { users: { [bobId]: 100 } } as never, ''));
  });

  it('sends with the same txnId idempotently and redacts', async () => {
    const { room_id: roomId } = await alice.createRoom({});
    const content = { msgtype: 'm.text', body: 'once' };
    const first = await alice.sendEvent(roomId, 'm.room.message' as never, content as never, 'fixed-txn');
    const second = await alice.sendEvent(roomId, 'm.room.message' as never, content as never, 'fixed-txn');
    assert.equal(first.event_id, second.event_id);
    const red = await alice.redactEvent(roomId, first.event_id, undefined, { reason: 'gone' });
    const ev = await alice.fetchRoomEvent(roomId, first.event_id);
    assert.deepEqual(ev.content, {});
    assert.equal((ev.unsigned as Record<string, { event_id: string }>)['redacted_because']!.event_id, red.event_id);
  });

  it('creates a DM whose invite is marked is_direct', async () => {
    const { room_id: roomId } = await alice.createRoom({ preset: Preset.TrustedPrivateChat, is_direct: true, invite: [bobId] });
    const member = await alice.getStateEvent(roomId, 'm.room.member', bobId);
    assert.equal(member['membership'], 'invite');
    assert.equal(member['is_direct'], true);
    await bob.joinRoom(roomId);
    await bob.leave(roomId);
    await bob.forget(roomId);
  });
});

// matrix-js-sdk leaves request timers behind that would hold this file's process for ~110 s.
after(() => releaseProcess());
