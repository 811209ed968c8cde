// matrix-js-sdk clients syncing against the server: they see each other's messages, typing
// and receipts live, through the SDK's own /sync loop and parsing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { releaseProcess } from './support/sdk.js';
import { ClientEvent, createClient, RoomEvent, RoomMemberEvent, type MatrixClient, type MatrixEvent, type Room } from 'matrix-js-sdk';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import type { TestClient } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';

sdkLogger.setLevel('silent');

function sdk(server: TestServer, c: TestClient): MatrixClient {
  return createClient({ baseUrl: server.baseUrl, accessToken: c.token!, userId: c.userId, deviceId: c.deviceId });
}

async function started(client: MatrixClient): Promise<void> {
  await new Promise<void>((resolve) => {
    client.once(ClientEvent.Sync, (state) => {
      if (state === 'PREPARED') resolve();
    });
    void client.startClient({ initialSyncLimit: 20 });
  });
}

function until<T>(what: string, register: (done: (v: T) => void) => void, ms = 10_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    register((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}

describe('sync through matrix-js-sdk', () => {
  let server: TestServer;
  const clients: MatrixClient[] = [];
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    for (const c of clients) c.stopClient();
    await server.stop();
  });

  it('three clients see each other\'s messages, typing and receipts live', async () => {
    const [a, b, c] = [await server.register(), await server.register(), await server.register()];
    const [alice, bob, carol] = [sdk(server, a), sdk(server, b), sdk(server, c)];
    clients.push(alice, bob, carol);
    await Promise.all([started(alice), started(bob), started(carol)]);
    const { room_id: roomId } = await alice.createRoom({ invite: [b.userId, c.userId] });
    const invited = (client: MatrixClient) =>
      until<void>('invite', (done) => {
        const check = () => client.getRoom(roomId)?.getMyMembership() === 'invite' && done();
        client.on(ClientEvent.Room, check);
        client.on(RoomMemberEvent.Membership, check);
        check();
      });
    await Promise.all([invited(bob), invited(carol)]);
    await bob.joinRoom(roomId);
    await carol.joinRoom(roomId);

    // A message from each reaches the other two.
    const seen = (client: MatrixClient, body: string) =>
      until<MatrixEvent>(`message ${body}`, (done) =>
        client.on(RoomEvent.Timeline, (ev: MatrixEvent, room: Room | undefined) => {
          if (room?.roomId === roomId && ev.getContent()['body'] === body) done(ev);
        }),
      );
    const fromAlice = [seen(bob, 'from alice'), seen(carol, 'from alice')];
    await alice.sendTextMessage(roomId, 'from alice');
    await Promise.all(fromAlice);
    const fromBob = [seen(alice, 'from bob'), seen(carol, 'from bob')];
    await bob.sendTextMessage(roomId, 'from bob');
    await Promise.all(fromBob);

    // Typing.
    const typing = until<void>('typing', (done) =>
      alice.on(RoomMemberEvent.Typing, (_ev, member) => {
        if (member.userId === c.userId && member.typing) done();
      }),
    );
    await carol.sendTyping(roomId, true, 10000);
    await typing;

    // A read receipt for a newer message reaches its sender.
    const later = seen(bob, 'read this');
    const { event_id: readThis } = await alice.sendTextMessage(roomId, 'read this');
    const ev = await later;
    const receipt = until<void>('receipt', (done) =>
      alice.on(RoomEvent.Receipt, (r: MatrixEvent) => {
        const content = r.getContent() as Record<string, Record<string, Record<string, unknown>>>;
        if (content[readThis]?.['m.read']?.[b.userId]) done();
      }),
    );
    await bob.sendReadReceipt(ev);
    await receipt;
    assert.ok(alice.getRoom(roomId)!.getUsersReadUpTo(alice.getRoom(roomId)!.findEventById(readThis)!).includes(b.userId));
  });
});

// matrix-js-sdk leaves request timers behind that would hold this file's process for ~110 s.
after(() => releaseProcess());
