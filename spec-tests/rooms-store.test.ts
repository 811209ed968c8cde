// Store-level: state snapshots on real PostgreSQL (bounded deltas, exact state at any point,
// storage growing with changes rather than state size), and the per-room write lock across two
// server processes sharing one database.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { resolveConfig } from '../src/config/load.js';
import { Database } from '../src/db/pool.js';
import { migrate } from '../src/db/migrate.js';
import { startHomeserver, type Homeserver } from '../src/server.js';
import { MAX_DEPTH, StateStore } from '../src/rooms/state-store.js';
import * as roomsSql from '../src/rooms/store/rooms.js';
import { TestClient } from './support/client.js';
import { createTestDatabase, startTestServer, type TestServer } from './support/server.js';

const silent = pino({ level: 'silent' });

describe('rooms: state snapshots', () => {
  let db: Database;
  let roomNid: number;
  before(async () => {
    db = new Database(await createTestDatabase(), 4, silent);
    await migrate(db, silent);
    roomNid = await roomsSql.insertRoom(db, { roomId: '!snapshots:localhost', version: '11', creator: '@a:localhost', isPublic: false });
  });
  after(() => db.close());

  it('gives the exact state at every point of a long history, with chains never deeper than MAX_DEPTH', async () => {
    const store = new StateStore();
    // A room of 300 members, then 3,000 state changes hitting random keys (some new).
    const expected = new Map<number, number>();
    let nextEvent = 1;
    const initial = new Map<number, number>();
    for (let k = 1; k <= 300; k++) initial.set(k, nextEvent++);
    let snapshot = await store.create(db, roomNid, null, initial, { fresh: true });
    for (const [k, e] of initial) expected.set(k, e);
    const history: Array<{ id: number; state: Map<number, number> }> = [{ id: snapshot, state: new Map(expected) }];
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 3000; i++) {
      const key = rand(10) === 0 ? 300 + i : 1 + rand(300);
      const event = nextEvent++;
      snapshot = await store.create(db, roomNid, snapshot, new Map([[key, event]]), { fresh: true });
      expected.set(key, event);
      if (i % 50 === 0) history.push({ id: snapshot, state: new Map(expected) });
    }
    history.push({ id: snapshot, state: new Map(expected) });

    // Read back through a cold store (nothing cached): every sampled point is exact.
    const cold = new StateStore();
    for (const h of history) {
      const got = await cold.load(db, h.id);
      assert.deepEqual(new Map([...got].sort((a, b) => a[0] - b[0])), new Map([...h.state].sort((a, b) => a[0] - b[0])));
    }

    const depths = (await db.query<{ depth: number }>('SELECT depth FROM state_snapshots WHERE room_nid = $1', [roomNid])).rows.map((r) => r.depth);
    assert.ok(Math.max(...depths) <= MAX_DEPTH, `max depth ${Math.max(...depths)}`);

    // Storage: entries stored per state change stay small (O(log n)), far from the state size
    // (600 keys by the end) that a full copy per change would cost.
    const entries = (
      await db.query<{ n: number }>('SELECT sum(cardinality(key_nids))::int AS n FROM state_snapshots WHERE room_nid = $1', [roomNid])
    ).rows[0]!.n;
    const perChange = entries / 3001;
    assert.ok(perChange < 40, `stored ${perChange.toFixed(1)} entries per state change`);
  });

  it('stores an equal state once (hash de-duplication) and a no-op change as the parent', async () => {
    const store = new StateStore();
    const a = await store.create(db, roomNid, null, new Map([[1, 1001], [2, 1002]]));
    const b = await store.create(db, roomNid, a, new Map([[2, 1003]]));
    // Changing back to what `a` held yields `a` itself, not a new snapshot.
    const c = await store.create(db, roomNid, b, new Map([[2, 1002]]));
    assert.equal(c, a);
    assert.equal(await store.create(db, roomNid, b, new Map([[2, 1003]])), b);
    // Removing a key (state resolution can) works in a delta.
    const d = await store.create(db, roomNid, b, new Map([[1, 0]]));
    assert.deepEqual([...(await new StateStore().load(db, d))], [[2, 1003]]);
  });
});

describe('rooms: one writer per room across processes', () => {
  let server: TestServer;
  let second: Homeserver;
  let dir: string;
  before(async () => {
    server = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), 'prat-test-second-'));
    // A second homeserver process (same signing key, same database), as in a scaled deployment.
    const config = resolveConfig(
      {
        server_name: 'localhost',
        signing_key_path: server.hs.services.config.signing_key_path,
        listeners: [{ port: 0, bind_addresses: ['127.0.0.1'], resources: ['client'] }],
        database: { url: server.databaseUrl, max_connections: 10 },
        registration: { enabled: true, shared_secret: 'x', require_token: false, allow_guests: false },
        rate_limits: { enabled: false },
        log: { level: 'silent', format: 'json' },
      },
      dir,
    );
    second = await startHomeserver(config, silent, server.databaseUrl);
  });
  after(async () => {
    await second.stop();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the DAG linear when two processes send to one room concurrently', async () => {
    const alice = await server.register();
    const viaSecond = new TestClient(`http://127.0.0.1:${second.addresses[0]!.port}`);
    viaSecond.token = alice.token;
    const created = await alice.post('/_matrix/client/v3/createRoom', {});
    const roomId = created.body.room_id as string;
    const path = (c: TestClient, i: number) => c.put(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/p${i}`, { msgtype: 'm.text', body: String(i) });
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => path(i % 2 === 0 ? alice : viaSecond, i)));
    assert.ok(results.every((r) => r.status === 200));

    const db = server.hs.services.db;
    const roomNid = (await roomsSql.getRoom(db, roomId))!.room_nid;
    const extremities = await db.query('SELECT event_nid FROM forward_extremities WHERE room_nid = $1', [roomNid]);
    assert.equal(extremities.rowCount, 1);
    // Every event has exactly one prev event, and no event is the prev of two: a chain.
    const forks = await db.query(
      `SELECT prev_event_nid FROM event_edges e JOIN events ev USING (event_nid) WHERE ev.room_nid = $1
       GROUP BY prev_event_nid HAVING count(*) > 1`,
      [roomNid],
    );
    assert.equal(forks.rowCount, 0);
    const depths = await db.query<{ depth: number; n: number }>('SELECT depth, count(*)::int AS n FROM events WHERE room_nid = $1 GROUP BY depth HAVING count(*) > 1', [roomNid]);
    assert.equal(depths.rowCount, 0);
  });

  it('leaves nothing dangling when a createRoom fails half-way (its interned state keys are not reused)', async () => {
    const alice = await server.register();
    const failed = await alice.post('/_matrix/client/v3/createRoom', {
      initial_state: [
        { type: 'org.example.rolled_back', content: { n: 1 } },
        // Another user's id as state_key: the auth rules refuse it, so the whole room goes.
        { type: 'org.example.other', state_key: '@someone:localhost', content: {} },
      ],
    });
    assert.equal(failed.status, 403);
    const db = server.hs.services.db;
    assert.equal((await db.query("SELECT 1 FROM state_keys WHERE type = 'org.example.rolled_back'")).rowCount, 0);
    const ok = await alice.post('/_matrix/client/v3/createRoom', { initial_state: [{ type: 'org.example.rolled_back', content: { n: 2 } }] });
    assert.equal(ok.status, 200);
    const dangling = await db.query(
      'SELECT k FROM state_snapshots, unnest(key_nids) AS k WHERE NOT EXISTS (SELECT 1 FROM state_keys WHERE state_key_nid = k)',
    );
    assert.equal(dangling.rowCount, 0);
    const read = await alice.get(`/_matrix/client/v3/rooms/${encodeURIComponent(ok.body.room_id)}/state/org.example.rolled_back`);
    assert.deepEqual(read.body, { n: 2 });
  });

  it('refuses the bad sends of a concurrent burst without failing the good ones batched with them', async () => {
    const alice = await server.register();
    const mallory = await server.register();
    const created = await alice.post('/_matrix/client/v3/createRoom', { preset: 'private_chat' });
    const roomId = created.body.room_id as string;
    const path = (c: TestClient, i: number) => c.put(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/b${i}`, { msgtype: 'm.text', body: String(i) });
    const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => path(i % 4 === 0 ? mallory : alice, i)));
    burst.forEach((r, i) => assert.equal(r.status, i % 4 === 0 ? 403 : 200, `send ${i}: ${JSON.stringify(r.body)}`));
    const db = server.hs.services.db;
    const roomNid = (await roomsSql.getRoom(db, roomId))!.room_nid;
    const count = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE room_nid = $1 AND type = 'm.room.message'", [roomNid]);
    assert.equal(count.rows[0]!.n, 30);
    assert.equal((await db.query('SELECT 1 FROM forward_extremities WHERE room_nid = $1', [roomNid])).rowCount, 1);
  });
});
