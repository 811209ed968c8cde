// Long-polling: a waiting /sync returns as soon as something arrives for the caller, and waits
// out its timeout when nothing does.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';
import { enc, send, sharedRoom, sync, syncUntil } from './support/sync.js';

describe('sync long-polling', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('returns within milliseconds of a message sent to a shared room', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const roomId = await sharedRoom(alice, bob);
    let since = (await sync(bob)).next_batch;
    for (let i = 0; i < 3; i++) {
      // The sender going online (presence) may wake the sync too; wait for the message itself.
      const polling = syncUntil(bob, since, (r) => !!r.rooms.join[roomId], 20_000);
      await new Promise((r) => setTimeout(r, 100));
      // Measured from the send's answer (the event is committed by then): the wake-up itself,
      // not the send path. Generous, since test machines run many suites at once.
      let returnedAt = 0;
      const timed = polling.then((res) => ((returnedAt = performance.now()), res));
      await send(alice, roomId, { msgtype: 'm.text', body: `ping ${i}` });
      const sentAt = performance.now();
      const res = await timed;
      const latency = returnedAt - sentAt;
      assert.ok(latency < 300, `woke ${latency} ms after the send was answered`);
      const bodies = res.rooms.join[roomId].timeline.events.map((e: any) => e.content.body);
      assert.deepEqual(bodies, [`ping ${i}`]);
      since = res.next_batch;
    }
  });

  it('waits out its timeout when nothing happens, and returns an empty response', async () => {
    const alice = await server.register();
    const first = await sync(alice);
    const started = performance.now();
    const res = await sync(alice, { since: first.next_batch, timeout: '1000' });
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 950, `returned after ${elapsed} ms`);
    assert.ok(elapsed < 3000, `returned after ${elapsed} ms`);
    assert.deepEqual(res.rooms.join, {});
    assert.equal(typeof res.next_batch, 'string');
  });

  it('is not woken by a room it is not in', async () => {
    const alice = await server.register();
    const carol = await server.register();
    const other = await server.register();
    const theirRoom = await sharedRoom(carol, other);
    const first = await sync(alice);
    const polling = sync(alice, { since: first.next_batch, timeout: '800' });
    await send(carol, theirRoom, { msgtype: 'm.text', body: 'not for alice' });
    const started = performance.now();
    const res = await polling;
    assert.ok(performance.now() - started > 400, 'kept waiting');
    assert.deepEqual(res.rooms.join, {});
  });

  it('returns at once without a since token, and at once with full_state', async () => {
    const alice = await server.register();
    const started = performance.now();
    const first = await sync(alice, { timeout: '10000' });
    await sync(alice, { since: first.next_batch, timeout: '10000', full_state: 'true' });
    assert.ok(performance.now() - started < 3000);
  });

  it('refuses a malformed since token, timeout or full_state with 400 M_INVALID_PARAM', async () => {
    const alice = await server.register();
    for (const q of ['since=garbage', 'timeout=soon', 'full_state=maybe', 'set_presence=dancing']) {
      const r = await alice.get(`/_matrix/client/v3/sync?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.errcode, 'M_INVALID_PARAM', q);
    }
  });

  it('shows the sender its own transaction id and every event an age', async () => {
    const alice = await server.register();
    const roomId = await sharedRoom(alice);
    const first = await sync(alice);
    const r = await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/my-txn-1`, { msgtype: 'm.text', body: 'mine' });
    assert.equal(r.status, 200);
    const res = await sync(alice, { since: first.next_batch, timeout: '5000' });
    const ev = res.rooms.join[roomId].timeline.events.find((e: any) => e.event_id === r.body.event_id);
    assert.equal(ev.unsigned.transaction_id, 'my-txn-1');
    assert.equal(typeof ev.unsigned.age, 'number');
  });
});

describe('sync long-polling at shutdown', () => {
  it('ends waiting long-polls when the server stops, without waiting out their timeout', async () => {
    const server = await startTestServer();
    const alice = await server.register();
    const first = await sync(alice);
    const polling = alice.get(`/_matrix/client/v3/sync?since=${first.next_batch}&timeout=60000`).then(
      (r) => r.status,
      () => 'closed',
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(server.hs.services.sync.notifier.waiting, 1);
    const started = performance.now();
    await server.stop();
    const outcome = await polling;
    assert.ok(performance.now() - started < 5000, 'stop did not wait for the long-poll');
    // The waiting request is answered (an empty sync) or its connection closed; never left hanging.
    assert.ok(outcome === 200 || outcome === 'closed', String(outcome));
    assert.equal(server.hs.services.sync.notifier.waiting, 0);
  });
});
