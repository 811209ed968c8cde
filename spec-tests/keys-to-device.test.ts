import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';
import type { TestClient } from './support/client.js';

describe('keys: send-to-device', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  const inbox = (c: TestClient, from = 0, limit?: number) => server.hs.services.toDevice.toDeviceSince(c.userId, c.deviceId, from, limit);

  async function secondDevice(c: TestClient): Promise<TestClient> {
    const r = await server.anon().post('/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: c.userId },
      password: c.password,
    });
    return Object.assign(server.anon(), { token: r.body.access_token, userId: c.userId, deviceId: r.body.device_id, password: c.password });
  }

  it('queues a message for the named device, once per transaction id', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const body = { messages: { [bob.userId]: { [bob.deviceId]: { hello: 'world' } } } };
    for (let i = 0; i < 3; i++) {
      const r = await alice.put('/_matrix/client/v3/sendToDevice/m.test/txn1', body);
      assert.equal(r.status, 200);
    }
    let got = await inbox(bob);
    assert.deepEqual(got.events, [{ sender: alice.userId, type: 'm.test', content: { hello: 'world' } }]);
    // Another transaction id is another message; the same id for another event type too (the
    // path differs).
    await alice.put('/_matrix/client/v3/sendToDevice/m.test/txn2', { messages: { [bob.userId]: { [bob.deviceId]: { n: 2 } } } });
    await alice.put('/_matrix/client/v3/sendToDevice/m.other/txn1', { messages: { [bob.userId]: { [bob.deviceId]: { n: 3 } } } });
    got = await inbox(bob);
    assert.deepEqual(got.events.map((e) => e.content), [{ hello: 'world' }, { n: 2 }, { n: 3 }], 'in order of arrival');
  });

  it('scopes transaction ids to the sending device', async () => {
    const alice = await server.register();
    const alice2 = await secondDevice(alice);
    const bob = await server.register();
    const body = { messages: { [bob.userId]: { [bob.deviceId]: { same: 'txn' } } } };
    await alice.put('/_matrix/client/v3/sendToDevice/m.test/t', body);
    await alice2.put('/_matrix/client/v3/sendToDevice/m.test/t', body);
    assert.equal((await inbox(bob)).events.length, 2);
  });

  it('sends exactly once when the same transaction races', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const body = { messages: { [bob.userId]: { [bob.deviceId]: { race: true } } } };
    const rs = await Promise.all(Array.from({ length: 10 }, () => alice.put('/_matrix/client/v3/sendToDevice/m.test/race', body)));
    for (const r of rs) assert.equal(r.status, 200);
    assert.equal((await inbox(bob)).events.length, 1);
  });

  it("delivers `*` to every device of the user, and drops messages to devices that do not exist", async () => {
    const alice = await server.register();
    const bob = await server.register();
    const bob2 = await secondDevice(bob);
    await alice.put('/_matrix/client/v3/sendToDevice/m.test/star', {
      messages: { [bob.userId]: { '*': { to: 'all' } }, [alice.userId]: { NOSUCHDEVICE: { lost: true } } },
    });
    assert.deepEqual((await inbox(bob)).events.map((e) => e.content), [{ to: 'all' }]);
    assert.deepEqual((await inbox(bob2)).events.map((e) => e.content), [{ to: 'all' }]);
    const rows = await server.hs.services.db.query('SELECT count(*)::int AS n FROM to_device_inbox WHERE device_id = $1', ['NOSUCHDEVICE']);
    assert.equal(rows.rows[0].n, 0);
  });

  it('bounds a read by the limit, continues from the returned position and deletes what was acknowledged', async () => {
    const alice = await server.register();
    const bob = await server.register();
    for (let i = 0; i < 5; i++) {
      await alice.put(`/_matrix/client/v3/sendToDevice/m.test/b${i}`, { messages: { [bob.userId]: { [bob.deviceId]: { i } } } });
    }
    const first = await inbox(bob, 0, 2);
    assert.equal(first.limited, true);
    assert.deepEqual(first.events.map((e) => e.content.i), [0, 1]);
    const second = await inbox(bob, first.position, 2);
    assert.deepEqual(second.events.map((e) => e.content.i), [2, 3]);
    const third = await inbox(bob, second.position, 2);
    assert.deepEqual(third.events.map((e) => e.content.i), [4]);
    assert.equal(third.limited, false);
    assert.equal(third.position, (await server.hs.services.keys.streamHeads()).toDevice, 'unlimited reads end at the head');

    // The client synced with `first.position`: those two are delivered and go.
    const deleted = await server.hs.services.toDevice.deleteToDeviceUpTo(bob.userId, bob.deviceId, first.position);
    assert.equal(deleted, 2);
    assert.deepEqual((await inbox(bob)).events.map((e) => e.content.i), [2, 3, 4]);
    // The same acknowledgement again (a long-poll repeating its token) has nothing to delete, and
    // asks the database nothing.
    const db = server.hs.services.db;
    const query = db.query;
    let queries = 0;
    db.query = ((...args: Parameters<typeof query>) => {
      queries++;
      return query.apply(db, args);
    }) as typeof query;
    try {
      assert.equal(await server.hs.services.toDevice.deleteToDeviceUpTo(bob.userId, bob.deviceId, first.position), 0);
    } finally {
      db.query = query;
    }
    assert.equal(queries, 0);
    // A message sent since is past every acknowledged position; syncing past it deletes it.
    await alice.put('/_matrix/client/v3/sendToDevice/m.test/b5', { messages: { [bob.userId]: { [bob.deviceId]: { i: 5 } } } });
    const all = await inbox(bob);
    assert.deepEqual(all.events.map((e) => e.content.i), [2, 3, 4, 5]);
    assert.equal(await server.hs.services.toDevice.deleteToDeviceUpTo(bob.userId, bob.deviceId, all.position), 4);
    assert.deepEqual((await inbox(bob)).events, []);
  });

  it('wakes sync listeners with the new position and the recipients', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const seen: { stream: string; position: number; userIds: string[] }[] = [];
    const listener = (c: { stream: string; position: number; userIds: string[] }) => seen.push(c);
    server.hs.services.toDevice.streamListeners.push(listener);
    try {
      await alice.put('/_matrix/client/v3/sendToDevice/m.test/wake', { messages: { [bob.userId]: { [bob.deviceId]: {} } } });
      await alice.put('/_matrix/client/v3/sendToDevice/m.test/wake', { messages: { [bob.userId]: { [bob.deviceId]: {} } } });
    } finally {
      server.hs.services.toDevice.streamListeners.splice(server.hs.services.toDevice.streamListeners.indexOf(listener), 1);
    }
    const mine = seen.filter((c) => c.userIds.includes(bob.userId));
    assert.equal(mine.length, 1, 'a retried transaction wakes nobody');
    assert.equal(mine[0]!.stream, 'toDevice');
  });

  it("drops a deleted device's queue", async () => {
    const alice = await server.register();
    const bob = await server.register();
    const bob2 = await secondDevice(bob);
    await alice.put('/_matrix/client/v3/sendToDevice/m.test/gone', { messages: { [bob.userId]: { [bob2.deviceId]: { x: 1 } } } });
    assert.equal((await inbox(bob2)).events.length, 1);
    await server.hs.services.accounts.deleteDevices(bob.userId, [bob2.deviceId]);
    assert.equal((await inbox(bob2)).events.length, 0);
  });

  it('answers 400 for malformed messages and 401 without a token', async () => {
    const alice = await server.register();
    const cases: [unknown, string][] = [
      [{}, 'M_MISSING_PARAM'],
      [{ messages: [] }, 'M_BAD_JSON'],
      [{ messages: { [alice.userId]: 'x' } }, 'M_BAD_JSON'],
      [{ messages: { [alice.userId]: { [alice.deviceId]: 'not an object' } } }, 'M_BAD_JSON'],
      [{ messages: { 'not-a-user': { D: {} } } }, 'M_INVALID_PARAM'],
    ];
    for (const [i, [body, errcode]] of cases.entries()) {
      const r = await alice.put(`/_matrix/client/v3/sendToDevice/m.test/bad${i}`, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.errcode, errcode, JSON.stringify(body));
    }
    const anon = await server.anon().put('/_matrix/client/v3/sendToDevice/m.test/x', { messages: {} });
    assert.equal(anon.status, 401);
    assert.equal(anon.body.errcode, 'M_MISSING_TOKEN');
  });
});
