// Element's direct-message flow through two matrix-js-sdk clients and their /sync loops: the
// inviter creates a trusted_private_chat room with is_direct, the invitee and encryption in
// initial_state, and records it in m.direct; the invitee sees an invite marked as direct (the
// is_direct flag rides in their own member event, in rooms.invite invite_state), joins, records
// the room in their own m.direct, and both see each other joined.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClientEvent, EventType, Preset, RoomMemberEvent, type MatrixEvent } from 'matrix-js-sdk';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { poll, releaseProcess, sdkClient, started, until, type RecordedClient } from './support/sdk.js';
import { startTestServer, type TestServer } from './support/server.js';

sdkLogger.setLevel('silent');

describe('direct messages through matrix-js-sdk', () => {
  let server: TestServer;
  const clients: RecordedClient[] = [];
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    for (const c of clients) c.client.stopClient();
    await server.stop();
    releaseProcess();
  });

  it('creates a DM the way Element does; the invitee sees it as direct, joins, and both record it in m.direct', async () => {
    const a = await server.register();
    const b = await server.register();
    const alice = sdkClient(server, a);
    const bob = sdkClient(server, b);
    clients.push(alice, bob);
    await Promise.all([started(alice.client), started(bob.client)]);

    const { room_id: roomId } = await alice.client.createRoom({
      preset: Preset.TrustedPrivateChat,
      is_direct: true,
      invite: [b.userId],
      initial_state: [{ type: EventType.RoomEncryption, state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
    });
    const aliceDirect = until<void>('m.direct at alice', (done) =>
      alice.client.on(ClientEvent.AccountData, (ev: MatrixEvent) => {
        if (ev.getType() === EventType.Direct && (ev.getContent() as Record<string, string[]>)[b.userId]?.includes(roomId)) done();
      }),
    );
    await alice.client.setAccountData(EventType.Direct, { [b.userId]: [roomId] });
    await aliceDirect;
    // Stored server-side too: a fresh read answers the same content.
    assert.deepEqual(await alice.client.getAccountDataFromServer(EventType.Direct), { [b.userId]: [roomId] });

    // The invitee's sync: the invite, with its own member event marked is_direct.
    await until<void>('the invite at bob', (done) => {
      const check = () => bob.client.getRoom(roomId)?.getMyMembership() === 'invite' && done();
      bob.client.on(ClientEvent.Room, check);
      bob.client.on(RoomMemberEvent.Membership, check);
      check();
    });
    const inviteSync = bob.requests.find((r) => r.syncBody?.rooms?.invite?.[roomId]);
    const inviteState = inviteSync!.syncBody.rooms.invite[roomId].invite_state.events as { type: string; state_key: string; sender: string; content: Record<string, unknown> }[];
    const ownMember = inviteState.find((e) => e.type === 'm.room.member' && e.state_key === b.userId);
    assert.deepEqual(ownMember?.content['is_direct'], true, 'is_direct in the invitee\'s member event');
    assert.equal(ownMember?.content['membership'], 'invite');
    assert.equal(ownMember?.sender, a.userId);
    assert.ok(inviteState.some((e) => e.type === 'm.room.encryption'), 'the invite shows the room is encrypted');
    assert.ok(inviteState.some((e) => e.type === 'm.room.create'));
    // What Element reads to show "X wants to chat": the SDK's own view of the invite.
    const room = bob.client.getRoom(roomId)!;
    assert.equal(room.getDMInviter(), a.userId);

    // Bob accepts and, as Element does for an is_direct invite, records the DM himself.
    await bob.client.joinRoom(roomId);
    await bob.client.setAccountData(EventType.Direct, { [a.userId]: [roomId] });
    await poll('both joined at alice', () => {
      const r = alice.client.getRoom(roomId);
      return r?.getMember(b.userId)?.membership === 'join' && r.getMember(a.userId)?.membership === 'join' ? true : undefined;
    });
    await poll('both joined at bob', () => {
      const r = bob.client.getRoom(roomId);
      return r?.getMyMembership() === 'join' && r.getMember(a.userId)?.membership === 'join' ? true : undefined;
    });
    await poll('m.direct at bob', () => ((bob.client.getAccountData(EventType.Direct)?.getContent() as Record<string, string[]> | undefined)?.[a.userId]?.includes(roomId) ? true : undefined));

    // trusted_private_chat: the invitee has the creator's power, and the room is encrypted and
    // invite-only with shared history.
    const bobRoom = bob.client.getRoom(roomId)!;
    const levels = bobRoom.currentState.getStateEvents(EventType.RoomPowerLevels, '')?.getContent() as { users?: Record<string, number> } | undefined;
    const createVersion = bobRoom.currentState.getStateEvents(EventType.RoomCreate, '')?.getContent()['room_version'] as string;
    if (createVersion === '12') {
      // v12: the invitee is an additional creator, outranking every power level.
      assert.ok((bobRoom.currentState.getStateEvents(EventType.RoomCreate, '')?.getContent()['additional_creators'] as string[]).includes(b.userId));
    } else {
      assert.equal(levels?.users?.[b.userId], 100);
    }
    assert.equal(bobRoom.currentState.getStateEvents(EventType.RoomEncryption, '')?.getContent()['algorithm'], 'm.megolm.v1.aes-sha2');
    assert.equal(bobRoom.getJoinRule(), 'invite');
    assert.equal(bobRoom.getHistoryVisibility(), 'shared');
    // Both member events of the DM: the joined invitee's keeps is_direct only on the invite.
    assert.equal(bobRoom.getMember(b.userId)?.events.member?.getPrevContent()['is_direct'], true);
  });

  it('delivers an m.direct change to the user\'s other sessions', async () => {
    const a = await server.register();
    const first = sdkClient(server, a);
    clients.push(first);
    await started(first.client);
    const got = until<Record<string, string[]>>('m.direct through sync', (done) =>
      first.client.on(ClientEvent.AccountData, (ev: MatrixEvent) => {
        if (ev.getType() === EventType.Direct) done(ev.getContent() as Record<string, string[]>);
      }),
    );
    const r = await a.put(`/_matrix/client/v3/user/${encodeURIComponent(a.userId)}/account_data/m.direct`, { '@someone:localhost': ['!room:localhost'] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(await got, { '@someone:localhost': ['!room:localhost'] });
  });
});
