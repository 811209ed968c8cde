// On-demand benchmark of the rooms write path and state storage (never part of `npm test`):
//   npx tsx bench/rooms.ts [--sends N] [--members N] [--changes N] [--async-commit] [--no-listeners] [--node-client]
// Starts a throwaway PostgreSQL cluster and an in-process server, then prints numbers. The
// clients sending messages run in a child process (send-load.ts): only the server is measured,
// though the load generator shares the machine (its CPU per send is printed; --node-client uses
// node:http's client instead of bare HTTP/1.1, at about twice that CPU).
// Besides the rates (which depend on what else the machine runs), each send line prints figures
// that depend little on load: the server process's CPU time (all its threads), the statements it
// sent PostgreSQL and the transactions committed, per send.
// --async-commit runs the cluster with synchronous_commit off (commits do not wait for the WAL
// flush: a crash may lose the last moments of acknowledged writes, never half of one), to show
// how much of the cost is the fsync per commit. --no-listeners unsubscribes every
// onEventsPersisted listener (sync notifier, push rule evaluation) to time the persistence path
// alone.
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { asyncCommit, numberArg, startBenchCluster } from './support.js';
import type { TestClient } from '../spec-tests/support/client.js';
import { runSendLoad, type SendJob } from './send-load.js';
import { Database } from '../src/db/pool.js';
import { StateStore } from '../src/rooms/state-store.js';
import * as roomsSql from '../src/rooms/store/rooms.js';

const SENDS = numberArg('sends', 2000);
const MEMBERS = numberArg('members', 5000);
const CHANGES = numberArg('changes', 10000);
// The load generator's HTTP client: node:http's instead of a bare connection (bench/send-load.ts).
const NODE_CLIENT = process.argv.includes('--node-client');

const cluster = await startBenchCluster();
console.log(`synchronous_commit: ${asyncCommit ? 'off' : 'on'}; load average: ${(await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' ')}`);
const { startTestServer } = await import('../spec-tests/support/server.js');
// The test support turns on the check for queries nested in a held connection (an
// AsyncLocalStorage around every write: async hooks on every promise). A server runs without it.
if (!process.env['NESTED_CHECK']) Database.refuseNestedQueries = false;
const server = await startTestServer({ database: { url: 'postgres://unused', max_connections: 20 } });

if (process.argv.includes('--no-listeners')) server.hs.services.rooms.deps.queue.listeners.length = 0;
console.log(`onEventsPersisted listeners: ${server.hs.services.rooms.deps.queue.listeners.length}`);

// Load-independent figures: statements the server sends PostgreSQL, and transactions committed.
// (The bench client talks HTTP only, so every query counted is the server's.)
let queries = 0;
const originalQuery = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  queries++;
  return (originalQuery as (...a: unknown[]) => unknown).apply(this, args);
} as typeof pg.Client.prototype.query;
async function commits(): Promise<number> {
  const r = await server.hs.services.db.query<{ n: number }>('SELECT xact_commit::bigint AS n FROM pg_stat_database WHERE datname = current_database()');
  return r.rows[0]!.n;
}
/** Runs a send load in the child process; prints its rate and what it cost the server. */
async function measured(label: string, jobs: SendJob[]): Promise<void> {
  const q0 = queries;
  const c0 = await commits();
  const cpu0 = process.cpuUsage();
  const result = await runSendLoad({ baseUrl: server.baseUrl, jobs, txnPrefix: `${label.length}-${Date.now()}-`, client: NODE_CLIENT ? 'node' : 'raw' });
  const cpu = process.cpuUsage(cpu0);
  if (result.failures.length > 0) throw new Error(`${label} ${result.failures.join('; ')}`);
  // pg_stat_database is updated when a backend reports, at most every ~500 ms (PGSTAT_MIN_INTERVAL).
  await new Promise((r) => setTimeout(r, 1100));
  const c1 = await commits();
  const n = jobs.reduce((sum, j) => sum + j.count, 0);
  const all = n + jobs.length; // with the load's one warm-up send per client
  console.log(
    `${label.padEnd(40)} ${rate(n, result.ms)}; per send: ${((cpu.user + cpu.system) / 1000 / all).toFixed(2)} ms server CPU, ${(result.clientCpuMs / n).toFixed(2)} ms client CPU, ${((queries - q0) / all).toFixed(1)} statements, ${((c1 - c0 - 1) / all).toFixed(2)} commits`,
  );
}

const V3 = '/_matrix/client/v3';

async function createRoom(c: TestClient, body: Record<string, unknown> = {}): Promise<string> {
  const r = await c.post(`${V3}/createRoom`, body);
  if (r.status !== 200) throw new Error(JSON.stringify(r.body));
  return r.body.room_id;
}

function rate(n: number, ms: number): string {
  return `${n} in ${(ms / 1000).toFixed(2)} s = ${Math.round((n * 1000) / ms)}/s`;
}

try {
  const alice = await server.register('benchalice');
  const clients = [alice];
  for (let i = 1; i < 10; i++) clients.push(await server.register(`bench${i}`));

  // 1. Sequential sends from one client (each waits for the previous answer).
  const solo = await createRoom(alice, { preset: 'public_chat' });
  const job = (c: TestClient, roomId: string, count: number): SendJob => ({ token: c.token!, roomId, count });
  await measured('sequential sends, 1 client:', [job(alice, solo, SENDS)]);

  // 2. 10 clients sending concurrently (each sequentially) into one room.
  const shared = await createRoom(alice, { preset: 'public_chat' });
  for (const c of clients.slice(1)) await c.post(`${V3}/rooms/${encodeURIComponent(shared)}/join`);
  const per = Math.ceil(SENDS / 10);
  await measured('concurrent sends, 10 clients, 1 room:', clients.map((c) => job(c, shared, per)));

  // 3. 10 clients, each in its own room.
  const own = await Promise.all(clients.map((c) => createRoom(c)));
  await measured('concurrent sends, 10 clients, 10 rooms:', clients.map((c, k) => job(c, own[k]!, per)));

  // 4. A big room: MEMBERS joins, then CHANGES state changes (through the rooms service, the
  // same persistence path as HTTP, without HTTP's overhead).
  const rooms = server.hs.services.rooms;
  const db = server.hs.services.db;
  const big = await createRoom(alice, { preset: 'public_chat' });
  const bigNid = (await roomsSql.getRoom(db, big))!.room_nid;
  const sizeOf = async () =>
    (await db.query<{ s: number; n: number }>(`SELECT pg_total_relation_size('state_snapshots')::bigint AS s, (SELECT count(*) FROM state_snapshots)::int AS n`)).rows[0]!;
  const before = await sizeOf();
  let t = performance.now();
  await Promise.all(
    Array.from({ length: 20 }, async (_, w) => {
      for (let i = w; i < MEMBERS; i += 20) await rooms.join(`@member${i}:localhost`, big);
    }),
  );
  console.log(`${'joins into one room:'.padEnd(40)} ${rate(MEMBERS, performance.now() - t)}`);
  t = performance.now();
  const sender = { userId: alice.userId, deviceId: alice.deviceId };
  await Promise.all(
    Array.from({ length: 20 }, async (_, w) => {
      for (let i = w; i < CHANGES; i += 20) {
        // Mostly updates of existing keys, some new keys: like topics, widgets, per-user state.
        await rooms.sendState(sender, big, 'org.example.bench', `k${i % 2000}`, { n: i });
      }
    }),
  );
  console.log(`${`state changes in the ${MEMBERS}-member room:`.padEnd(40)} ${rate(CHANGES, performance.now() - t)}`);
  const afterSize = await sizeOf();
  const stateChanges = MEMBERS + CHANGES;
  console.log(
    `state storage: ${afterSize.n - before.n} snapshots, ${((afterSize.s - before.s) / 1024 / 1024).toFixed(1)} MiB for ${stateChanges} state changes = ${Math.round((afterSize.s - before.s) / stateChanges)} bytes per state change (table + indexes + TOAST)`,
  );
  const entries = (
    await db.query<{ n: number; maxdepth: number }>('SELECT sum(cardinality(key_nids))::int AS n, max(depth)::int AS maxdepth FROM state_snapshots WHERE room_nid = $1', [bigNid])
  ).rows[0]!;
  console.log(`  entries stored per state change: ${(entries.n / stateChanges).toFixed(1)}, deepest chain: ${entries.maxdepth}`);

  // 5. Full state at random events of the big room, from a cold cache each time.
  const sample = (
    await db.query<{ state_after: number }>('SELECT state_after FROM events WHERE room_nid = $1 ORDER BY random() LIMIT 200', [bigNid])
  ).rows.map((r) => r.state_after);
  const times: number[] = [];
  let size = 0;
  for (const s of sample) {
    const cold = new StateStore();
    const t0 = performance.now();
    size = (await cold.load(db, s)).size;
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const pct = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(2);
  console.log(`full state (as (type,state_key)->event nids) at a random event, cold: p50 ${pct(0.5)} ms, p95 ${pct(0.95)} ms, max ${pct(1)} ms (last: ${size} entries)`);

  // And the full state as client events (what GET /state returns), warm server caches.
  const t1 = performance.now();
  const r = await alice.get(`${V3}/rooms/${encodeURIComponent(big)}/state`, { noSchema: true });
  console.log(`GET /state of the big room: ${r.body.length} events in ${(performance.now() - t1).toFixed(0)} ms`);
} finally {
  await server.stop();
  await cluster.stop();
}
