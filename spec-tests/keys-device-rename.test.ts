// A device's display name is part of what /keys/query answers (unsigned.device_display_name),
// so renaming a device is a device-list change: users who share a room learn of it in /sync
// and /keys/changes, and re-query.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestDevice } from './support/e2ee.js';
import { startTestServer, type TestServer } from './support/server.js';
import { sharedRoom, sync, syncUntil } from './support/sync.js';

describe('device rename and device lists', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('reports a renamed device to room mates in sync and /keys/changes, with the new name in /keys/query', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const stranger = await server.register();
    const dev = new TestDevice(alice);
    assert.equal((await dev.upload({ device_keys: dev.deviceKeys() })).status, 200);
    await sharedRoom(alice, bob);
    const bobFirst = await sync(bob);
    const strangerFirst = await sync(stranger);

    const r = await alice.put(`/_matrix/client/v3/devices/${encodeURIComponent(alice.deviceId)}`, { display_name: 'Alice laptop' });
    assert.equal(r.status, 200, JSON.stringify(r.body));

    const seen = await syncUntil(bob, bobFirst.next_batch, (res) => res.device_lists.changed.includes(alice.userId));
    const changes = await bob.get(`/_matrix/client/v3/keys/changes?from=${encodeURIComponent(bobFirst.next_batch)}&to=${encodeURIComponent(seen.next_batch)}`);
    assert.equal(changes.status, 200, JSON.stringify(changes.body));
    assert.ok(changes.body.changed.includes(alice.userId));

    const q = await bob.post('/_matrix/client/v3/keys/query', { device_keys: { [alice.userId]: [] } });
    assert.equal(q.body.device_keys[alice.userId][alice.deviceId].unsigned.device_display_name, 'Alice laptop');

    // Someone who shares no room with alice is not told.
    const strangerNext = await sync(stranger, { since: strangerFirst.next_batch });
    assert.ok(!strangerNext.device_lists.changed.includes(alice.userId));
  });

  it('does not record a change for a device that does not exist', async () => {
    const alice = await server.register();
    const bob = await server.register();
    await sharedRoom(alice, bob);
    const before = await sync(bob);
    const r = await alice.put('/_matrix/client/v3/devices/NOSUCHDEVICE', { display_name: 'x' });
    assert.equal(r.status, 404);
    const after = await sync(bob, { since: before.next_batch });
    assert.ok(!after.device_lists.changed.includes(alice.userId));
  });
});
