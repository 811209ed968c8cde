// The E2EE parts of /sync: to-device messages (delivered once, acknowledged by the next sync),
// one-time key counts, unused fallback key types and device-list changes of room members.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestDevice } from './support/e2ee.js';
import { startTestServer, type TestServer } from './support/server.js';
import { sharedRoom, sync, syncUntil } from './support/sync.js';

describe('sync: to-device and device lists', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('delivers a to-device message at once and only until acknowledged', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const first = await sync(bob);
    const polling = syncUntil(bob, first.next_batch, (r) => r.to_device.events.length > 0);
    const r = await alice.put('/_matrix/client/v3/sendToDevice/org.example.ping/txn1', {
      messages: { [bob.userId]: { [bob.deviceId]: { hello: 'bob' } } },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const res = await polling;
    assert.deepEqual(res.to_device.events, [{ sender: alice.userId, type: 'org.example.ping', content: { hello: 'bob' } }]);
    // Not acknowledged yet: syncing again from the same token gives it again.
    const again = await sync(bob, { since: first.next_batch });
    assert.equal(again.to_device.events.length, 1);
    // Syncing with the newer token acknowledges it.
    const next = await sync(bob, { since: res.next_batch });
    assert.deepEqual(next.to_device.events, []);
    const replay = await sync(bob, { since: first.next_batch });
    assert.deepEqual(replay.to_device.events, []);
  });

  it('reports one-time key counts and unused fallback key types', async () => {
    const alice = await server.register();
    const dev = new TestDevice(alice);
    const up = await dev.upload({ device_keys: dev.deviceKeys(), one_time_keys: dev.oneTimeKeys(3), fallback_keys: dev.fallbackKey() });
    assert.equal(up.status, 200, JSON.stringify(up.body));
    const res = await sync(alice);
    assert.equal(res.device_one_time_keys_count.signed_curve25519, 3);
    assert.deepEqual(res.device_unused_fallback_key_types, ['signed_curve25519']);
  });

  it('lists a room member whose device keys changed in device_lists.changed', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const stranger = await server.register();
    await sharedRoom(alice, bob);
    const first = await sync(bob);
    const polling = syncUntil(bob, first.next_batch, (r) => r.device_lists.changed.includes(alice.userId));
    const dev = new TestDevice(alice);
    assert.equal((await dev.upload({ device_keys: dev.deviceKeys() })).status, 200);
    await polling;
    // Someone who shares no room is not reported.
    const before = await sync(bob);
    const sdev = new TestDevice(stranger);
    assert.equal((await sdev.upload({ device_keys: sdev.deviceKeys() })).status, 200);
    const after = await sync(bob, { since: before.next_batch });
    assert.ok(!after.device_lists.changed.includes(stranger.userId));
  });

  it('reports users who join and leave shared rooms in changed and left', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await sharedRoom(alice);
    const first = await sync(alice);
    await alice.post(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`, { user_id: bob.userId });
    await bob.post(`/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {});
    const joined = await syncUntil(alice, first.next_batch, (r) => r.device_lists.changed.includes(bob.userId));
    await bob.post(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/leave`, {});
    await syncUntil(alice, joined.next_batch, (r) => r.device_lists.left.includes(bob.userId));
  });
});
