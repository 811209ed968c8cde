// The decisive E2EE test: two matrix-js-sdk clients with their Rust crypto (the wasm build of
// matrix-sdk-crypto, as Element Web runs it) make an encrypted DM the way Element does, and
// each decrypts the other's message. That needs every part of the key server and /sync working
// together: device keys uploaded and queried, one-time keys claimed, the Megolm session sent
// as an Olm-encrypted to-device message, and device-list changes reported. Then the invitee
// logs in on a second device: the other side learns of it through device_lists.changed and
// encrypts the next message for it too.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClientEvent, EventType, MatrixEventEvent, Preset, RoomEvent, RoomMemberEvent, type MatrixClient, type MatrixEvent, type Room } from 'matrix-js-sdk';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { poll, releaseProcess, sdkClient, secondDevice, started, until, type RecordedClient } from './support/sdk.js';
import type { TestClient } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';

sdkLogger.setLevel('silent');
// initRustCrypto turns the wasm crate's tracing on at debug level (console.debug/info).
console.debug = () => {};
console.info = () => {};

/** Resolves with the decrypted text of the first encrypted message in `roomId` whose body is `body`. */
function decrypted(client: MatrixClient, roomId: string, body: string): Promise<MatrixEvent> {
  return until<MatrixEvent>(`decrypted "${body}" at ${client.getUserId()}/${client.getDeviceId()}`, (done) => {
    const check = (ev: MatrixEvent) => {
      if (ev.getRoomId() === roomId && ev.isEncrypted() && ev.getType() === 'm.room.message' && ev.getContent()['body'] === body) done(ev);
    };
    // An event may arrive already decrypted, or be decrypted after it lands in the timeline.
    client.on(RoomEvent.Timeline, (ev: MatrixEvent, room: Room | undefined) => {
      if (room?.roomId === roomId) check(ev);
    });
    client.on(MatrixEventEvent.Decrypted, (ev: MatrixEvent) => check(ev));
  }, 30_000);
}

describe('encrypted DMs between matrix-js-sdk clients with Rust crypto', () => {
  let server: TestServer;
  const started_: MatrixClient[] = [];
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    for (const c of started_) c.stopClient();
    await server.stop();
    releaseProcess();
  });

  async function cryptoClient(c: TestClient): Promise<RecordedClient> {
    const rc = sdkClient(server, c);
    started_.push(rc.client);
    await rc.client.initRustCrypto({ useIndexedDB: false });
    await started(rc.client);
    return rc;
  }

  it('each side decrypts the other, and a new device of the invitee receives the next message', async () => {
    const a = await server.register();
    const b = await server.register();
    const alice = await cryptoClient(a);
    const bob = await cryptoClient(b);

    // Element's DM: trusted_private_chat, is_direct, the invitee, encryption from the start.
    const { room_id: roomId } = await alice.client.createRoom({
      preset: Preset.TrustedPrivateChat,
      is_direct: true,
      invite: [b.userId],
      initial_state: [{ type: EventType.RoomEncryption, state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
    });
    await alice.client.setAccountData(EventType.Direct, { [b.userId]: [roomId] });

    await until<void>('the invite at bob', (done) => {
      const check = () => bob.client.getRoom(roomId)?.getMyMembership() === 'invite' && done();
      bob.client.on(ClientEvent.Room, check);
      bob.client.on(RoomMemberEvent.Membership, check);
      check();
    });
    await bob.client.joinRoom(roomId);
    await poll('alice to see bob joined', () => (alice.client.getRoom(roomId)?.getMember(b.userId)?.membership === 'join' ? true : undefined));
    assert.equal(await alice.client.getCrypto()!.isEncryptionEnabledInRoom(roomId), true);

    const bobGets = decrypted(bob.client, roomId, 'hello bob, encrypted');
    await alice.client.sendTextMessage(roomId, 'hello bob, encrypted');
    const atBob = await bobGets;
    assert.equal(atBob.getWireType(), 'm.room.encrypted', 'sent encrypted');
    assert.equal(atBob.getSender(), a.userId);
    assert.equal(atBob.decryptionFailureReason, null);

    const aliceGets = decrypted(alice.client, roomId, 'hello alice, encrypted too');
    await bob.client.sendTextMessage(roomId, 'hello alice, encrypted too');
    await aliceGets;

    // The server never saw plaintext: what it stores is the ciphertext.
    const raw = await b.get(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(atBob.getId()!)}`);
    assert.equal(raw.body.type, 'm.room.encrypted');
    assert.ok(!JSON.stringify(raw.body).includes('hello bob'));

    // Bob logs in on a second device (which uploads its keys when its crypto starts).
    const b2 = await secondDevice(server, b);
    const aliceSyncsBefore = alice.requests.length;
    const bob2 = await cryptoClient(b2);
    // Alice's /sync reports bob in device_lists.changed ...
    await poll('device_lists.changed with bob in alice\'s sync', () =>
      alice.requests.slice(aliceSyncsBefore).some((r) => r.syncBody?.device_lists?.changed?.includes(b.userId)) ? true : undefined,
    );
    // ... and her OlmMachine, having re-queried, knows the new device.
    const devices = await poll('alice to know bob\'s second device', async () => {
      const d = (await alice.client.getCrypto()!.getUserDeviceInfo([b.userId])).get(b.userId);
      return d?.has(b2.deviceId) ? d : undefined;
    });
    assert.ok(devices.has(b.deviceId) && devices.has(b2.deviceId));

    // The next message is encrypted for the new device too: it decrypts it.
    await poll('bob2 to see the room', () => (bob2.client.getRoom(roomId) ? true : undefined));
    const bob2Gets = decrypted(bob2.client, roomId, 'for both of your devices');
    const bobGetsAgain = decrypted(bob.client, roomId, 'for both of your devices');
    await alice.client.sendTextMessage(roomId, 'for both of your devices');
    await Promise.all([bob2Gets, bobGetsAgain]);
  });
});
