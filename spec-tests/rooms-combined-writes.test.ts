// Message writes of several rooms waiting at once go to PostgreSQL as one statement
// (src/rooms/combined-writes.ts). Each room must come out as if written alone: every send
// answers with its own event, each room's history stays one linear chain, and a room that
// cannot be written (its head moved, a transaction id was used) takes the long way without
// holding back the rooms written with it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { Response as TestResponse } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';
import { STREAM_LOCK } from '../src/rooms/queue.js';
import { createRoom, sendText } from './support/sync.js';

describe('message writes combined across rooms', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ presence: { enabled: false } });
  });
  after(() => server.stop());

  const put = sendText;

  /** The room's messages as stored, in stream order: id, prev events, body. */
  async function chain(roomId: string): Promise<{ id: string; prev: string[]; body?: string; type: string }[]> {
    const rows = await server.hs.services.db.query<{ json: string }>(
      `SELECT e.json FROM events e JOIN rooms r USING (room_nid) WHERE r.room_id = $1 ORDER BY e.stream_ordering`,
      [roomId],
    );
    return rows.rows.map((r) => {
      const e = JSON.parse(r.json);
      return { id: e.event_id, prev: e.prev_events, body: e.content?.body, type: e.type };
    });
  }

  /** Each event cites the one before it: one linear history. */
  function assertLinear(events: { id: string; prev: string[] }[]): void {
    for (let i = 1; i < events.length; i++) assert.deepEqual(events[i]!.prev, [events[i - 1]!.id], `event ${i} follows event ${i - 1}`);
  }

  /**
   * Runs `fn` while the stream lock is held by another connection: the first write sent stays
   * in flight, so the writes after it wait in the combiner and go together once it is let go.
   */
  async function withWritesHeld<T>(fn: () => Promise<T>): Promise<T> {
    const holder = new pg.Client({ connectionString: server.databaseUrl });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1, $2)', STREAM_LOCK);
      const running = fn();
      // Long enough for every send to be built and queued behind the held write.
      await new Promise((r) => setTimeout(r, 300));
      await holder.query('SELECT pg_advisory_unlock($1, $2)', STREAM_LOCK);
      return await running;
    } finally {
      await holder.end();
    }
  }

  /** Runs `fn`, recording which rooms the combined writes wrote (true) or left unwritten (false). */
  async function outcomes<T>(fn: () => Promise<T>): Promise<{ value: T; written: Map<string, boolean[]> }> {
    const combined = server.hs.services.rooms.deps.queue.combined;
    const write = combined.write.bind(combined);
    const written = new Map<string, boolean[]>();
    combined.write = async (room, db) => {
      const placed = await write(room, db);
      written.set(room.roomId, [...(written.get(room.roomId) ?? []), placed !== null]);
      return placed;
    };
    try {
      return { value: await fn(), written };
    } finally {
      combined.write = write;
    }
  }

  /**
   * Sends `first`, then, while its write is held in flight, `waiting`: all answered 200, the
   * waiting ones written by one more statement. Which rooms that statement wrote, and the answers.
   */
  async function behindOneWrite(first: () => Promise<TestResponse>, waiting: () => Promise<TestResponse>[]) {
    const combined = server.hs.services.rooms.deps.queue.combined;
    const before = { ...combined.counts };
    const { value: answers, written } = await outcomes(() =>
      withWritesHeld(async () => {
        const inFlight = first();
        await new Promise((r) => setTimeout(r, 50));
        return Promise.all([inFlight, ...waiting()]);
      }),
    );
    for (const r of answers) assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(combined.counts.statements - before.statements, 2, 'the waiting writes went together');
    return { answers, written };
  }

  it('writes waiting sends of several rooms with one statement, each room a linear history', async () => {
    const users = await Promise.all(Array.from({ length: 4 }, () => server.register()));
    const rooms = await Promise.all(users.map((u) => createRoom(u)));
    const combined = server.hs.services.rooms.deps.queue.combined;
    const before = { ...combined.counts };
    const answers = await withWritesHeld(() =>
      Promise.all(users.flatMap((u, k) => [0, 1, 2].map((i) => put(u, rooms[k]!, `c${i}`, `room ${k} message ${i}`)))),
    );
    for (const r of answers) assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(combined.counts.rooms - before.rooms > combined.counts.statements - before.statements, 'some statement carried several rooms');
    for (let k = 0; k < rooms.length; k++) {
      const events = await chain(rooms[k]!);
      assertLinear(events);
      const messages = events.filter((e) => e.type === 'm.room.message');
      assert.deepEqual(messages.map((e) => e.id), answers.slice(3 * k, 3 * k + 3).map((r) => r.body.event_id));
      assert.deepEqual(messages.map((e) => e.body), [0, 1, 2].map((i) => `room ${k} message ${i}`));
    }
    // Stream positions are unique across all of them.
    const positions = await server.hs.services.db.query<{ n: number; d: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT stream_ordering)::int AS d FROM events e JOIN rooms r USING (room_nid) WHERE r.room_id = ANY($1)`,
      [rooms],
    );
    assert.equal(positions.rows[0]!.n, positions.rows[0]!.d);
  });

  it('more rooms writing at once than the pool has connections: every send is answered', async () => {
    // Each writer holds a connection while it waits for the combined statement, which must not
    // need one more: with the pool this small, it would wait for ever.
    const small = await startTestServer({ presence: { enabled: false }, database: { url: 'postgres://unused', max_connections: 3 } });
    try {
      const users = await Promise.all(Array.from({ length: 12 }, () => small.register()));
      const rooms = await Promise.all(users.map((u) => createRoom(u)));
      const sends = Promise.all(users.flatMap((u, k) => [0, 1, 2].map((i) => put(u, rooms[k]!, `p${i}`, `message ${i}`))));
      let timer: NodeJS.Timeout | undefined;
      const answers = await Promise.race([
        sends,
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the sends were not answered within 20 s')), 20_000))),
      ]).finally(() => clearTimeout(timer));
      for (const r of answers) assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(new Set(answers.map((r) => r.body.event_id)).size, answers.length);
    } finally {
      await small.stop();
    }
  });

  it('a room whose head moved is written the long way, and the rooms with it are written', async () => {
    const [alice, bob, carol] = await Promise.all([server.register(), server.register(), server.register()]);
    const [first, moved, other] = await Promise.all([createRoom(alice), createRoom(bob), createRoom(carol)]);
    // What a write by another process leaves: the head moved on, this process does not know.
    await server.hs.services.db.query('UPDATE rooms SET head_seq = head_seq + 1 WHERE room_id = $1', [moved]);
    const { answers, written } = await behindOneWrite(
      () => put(alice, first, 'h0', 'in flight'),
      () => [put(bob, moved, 'h1', 'moved'), put(carol, other, 'h2', 'other')],
    );
    assert.deepEqual(written.get(moved), [false], 'nothing of the moved room was written by the combined statement');
    assert.deepEqual(written.get(other), [true], 'the room with it was');
    for (const [roomId, answer, body] of [[moved, answers[1]!, 'moved'], [other, answers[2]!, 'other']] as const) {
      const events = await chain(roomId);
      assertLinear(events);
      assert.deepEqual(events.filter((e) => e.type === 'm.room.message').map((e) => [e.id, e.body]), [[answer.body.event_id, body]]);
    }
  });

  it('a room whose write fails does not fail the rooms written with it', async () => {
    const [alice, bob, carol] = await Promise.all([server.register(), server.register(), server.register()]);
    const [first, broken, other] = await Promise.all([createRoom(alice), createRoom(bob), createRoom(carol)]);
    const db = server.hs.services.db;
    // A database that refuses this room's events (a stand-in for any failure of one room's write).
    const nid = Number((await db.query('SELECT room_nid FROM rooms WHERE room_id = $1', [broken])).rows[0].room_nid);
    await db.query(`CREATE FUNCTION refuse_room_events() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.room_nid = ${nid} THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$`);
    await db.query('CREATE TRIGGER refuse_room_events BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_room_events()');
    try {
      const combined = server.hs.services.rooms.deps.queue.combined;
      const before = { ...combined.counts };
      const { value: answers, written } = await outcomes(() =>
        withWritesHeld(async () => {
          const inFlight = put(alice, first, 'f0', 'in flight');
          await new Promise((r) => setTimeout(r, 50));
          return Promise.all([inFlight, put(bob, broken, 'f1', 'refused'), put(carol, other, 'f2', 'other')]);
        }),
      );
      assert.equal(combined.counts.statements - before.statements, 2, 'the waiting writes went together');
      assert.deepEqual([written.get(broken), written.get(other)], [[false], [false]], 'the failed statement sent both the long way');
      assert.equal(answers[0]!.status, 200);
      assert.equal(answers[1]!.status, 500);
      assert.equal(answers[1]!.body.errcode, 'M_UNKNOWN');
      assert.equal(answers[2]!.status, 200, JSON.stringify(answers[2]!.body));
      const others = (await chain(other)).filter((e) => e.type === 'm.room.message');
      assert.deepEqual(others.map((e) => [e.id, e.body]), [[answers[2]!.body.event_id, 'other']]);
      assert.deepEqual((await chain(broken)).filter((e) => e.type === 'm.room.message'), []);
    } finally {
      await db.query('DROP TRIGGER refuse_room_events ON events; DROP FUNCTION refuse_room_events()');
    }
  });

  it('a used transaction id answers with its event; the rooms written with it are not held back', async () => {
    const [alice, bob, carol] = await Promise.all([server.register(), server.register(), server.register()]);
    const [first, retried, other] = await Promise.all([createRoom(alice), createRoom(bob), createRoom(carol)]);
    const original = await put(bob, retried, 'once', 'original');
    assert.equal(original.status, 200);
    const { answers, written } = await behindOneWrite(
      () => put(alice, first, 'u0', 'in flight'),
      () => [put(bob, retried, 'once', 'original'), put(carol, other, 'u1', 'other')],
    );
    assert.deepEqual(written.get(retried), [false]);
    assert.deepEqual(written.get(other), [true]);
    assert.equal(answers[1]!.body.event_id, original.body.event_id);
    assert.deepEqual((await chain(retried)).filter((e) => e.type === 'm.room.message').map((e) => e.id), [original.body.event_id]);
    const others = (await chain(other)).filter((e) => e.type === 'm.room.message');
    assert.deepEqual(others.map((e) => [e.id, e.body]), [[answers[2]!.body.event_id, 'other']]);
  });
});
