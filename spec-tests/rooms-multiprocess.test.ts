// Two server processes writing into one room on one database. Each process remembers the room's
// head after its own writes and sends a lone message with one statement on that head (a
// compare-and-swap on rooms.head_seq); when the other process has written since, the statement
// writes nothing and the send goes the long way. Whatever the interleaving, the room's DAG must
// stay one chain: every event cites the one before it, one forward extremity, nothing lost.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient } from './support/client.js';
import { twoProcesses, via } from './support/multiprocess.js';
import { enc } from './support/sync.js';

let txn = 0;
async function send(c: TestClient, roomId: string, body: string, txnId = `mp${++txn}`): Promise<string> {
  const r = await c.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/${txnId}`, { msgtype: 'm.text', body });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.event_id;
}

describe('event writes from two server processes into one room', () => {
  const servers = twoProcesses();

  /** The room's events oldest first, each with its prev_events, and its forward extremities. */
  async function dag(roomId: string): Promise<{ events: Array<{ id: string; prev: string[]; body: unknown }>; extremities: number }> {
    const db = servers.one.hs.services.db;
    const rows = await db.query<{ json: string }>(
      'SELECT e.json FROM events e JOIN rooms r USING (room_nid) WHERE r.room_id = $1 ORDER BY e.stream_ordering',
      [roomId],
    );
    const ext = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM forward_extremities f JOIN rooms r USING (room_nid) WHERE r.room_id = $1',
      [roomId],
    );
    const events = rows.rows.map((r) => JSON.parse(r.json) as { event_id: string; prev_events: string[]; content: { body?: unknown } });
    return { events: events.map((e) => ({ id: e.event_id, prev: e.prev_events, body: e.content.body })), extremities: ext.rows[0]!.n };
  }

  function assertOneChain(events: Array<{ id: string; prev: string[] }>): void {
    for (let i = 1; i < events.length; i++) assert.deepEqual(events[i]!.prev, [events[i - 1]!.id], `event ${i} cites the one before it`);
  }

  it('keeps one chain when sends alternate between the processes', async () => {
    const alice = await servers.one.register();
    const created = await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' });
    const roomId = created.body.room_id as string;
    const aliceOnTwo = via(servers.two, alice);
    const sent: string[] = [];
    for (let i = 0; i < 10; i++) {
      sent.push(await send(alice, roomId, `one ${i}`));
      sent.push(await send(aliceOnTwo, roomId, `two ${i}`));
    }
    const { events, extremities } = await dag(roomId);
    assert.equal(extremities, 1);
    assertOneChain(events);
    assert.deepEqual(events.slice(-20).map((e) => e.id), sent);
  });

  it('keeps one chain, and loses nothing, when both processes send at once', async () => {
    const alice = await servers.one.register();
    const bob = await servers.one.register();
    const created = await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' });
    const roomId = created.body.room_id as string;
    assert.equal((await bob.post(`/_matrix/client/v3/rooms/${enc(roomId)}/join`, {})).status, 200);
    const bobOnTwo = via(servers.two, bob);
    const [fromOne, fromTwo] = await Promise.all([
      (async () => {
        const ids: string[] = [];
        for (let i = 0; i < 25; i++) ids.push(await send(alice, roomId, `alice ${i}`));
        return ids;
      })(),
      (async () => {
        const ids: string[] = [];
        for (let i = 0; i < 25; i++) ids.push(await send(bobOnTwo, roomId, `bob ${i}`));
        return ids;
      })(),
    ]);
    const { events, extremities } = await dag(roomId);
    assert.equal(extremities, 1);
    assertOneChain(events);
    const ids = new Set(events.map((e) => e.id));
    for (const id of [...fromOne, ...fromTwo]) assert.ok(ids.has(id), `${id} was stored`);
    assert.equal(ids.size, events.length, 'no event stored twice');
    // Each sender's messages keep their order.
    const bodies = events.map((e) => e.body).filter((b): b is string => typeof b === 'string');
    const order = (who: string) => bodies.filter((b) => b.startsWith(who)).map((b) => Number(b.split(' ')[1]));
    assert.deepEqual(order('alice'), [...Array(25).keys()]);
    assert.deepEqual(order('bob'), [...Array(25).keys()]);
  });

  it('answers a retried transaction id with the first event, through either process', async () => {
    const alice = await servers.one.register();
    const created = await alice.post('/_matrix/client/v3/createRoom', {});
    const roomId = created.body.room_id as string;
    const first = await send(alice, roomId, 'once', 'retried-txn');
    await send(via(servers.two, alice), roomId, 'in between');
    assert.equal(await send(alice, roomId, 'once', 'retried-txn'), first);
    assert.equal(await send(via(servers.two, alice), roomId, 'once', 'retried-txn'), first);
    const { events } = await dag(roomId);
    assert.equal(events.filter((e) => e.body === 'once').length, 1);
  });
});

describe('redactions across two server processes', () => {
  const servers = twoProcesses();

  it('shows a state event redacted through one process as redacted by the other (its cached copy too)', async () => {
    const alice = await servers.one.register();
    const created = await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat', name: 'Secret project' });
    const roomId = created.body.room_id as string;
    const nameEvent = (await alice.get(`/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.name?format=event`)).body.event_id as string;

    // Process two reads (and caches) the name event for the room's summary.
    const aliceOnTwo = via(servers.two, alice);
    const summary = async () => (await aliceOnTwo.get(`/_matrix/client/v1/room_summary/${enc(roomId)}`)).body as { name?: string };
    assert.equal((await summary()).name, 'Secret project');

    const redacted = await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/redact/${enc(nameEvent)}/r${++txn}`, {});
    assert.equal(redacted.status, 200);
    // The process that redacted it knows at once; the other as soon as the announcement comes.
    assert.equal(((await alice.get(`/_matrix/client/v1/room_summary/${enc(roomId)}`)).body as { name?: string }).name, undefined);
    const until = Date.now() + 2000;
    while ((await summary()).name !== undefined) {
      if (Date.now() > until) assert.fail('process two still shows the redacted name');
      await new Promise((r) => setTimeout(r, 20));
    }
  });
});
