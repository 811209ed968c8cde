// On-demand benchmark of sync (never part of `npm test`):
//   npx tsx bench/sync.ts [--idle 1000] [--samples 200] [--warmup 20] [--rooms 200] [--messages 50] [--async-commit]
//                         [--server-flags "--max-semi-space-size=4"]
// Starts a throwaway PostgreSQL cluster and the server as its own process, built and run as
// `npm start` runs it (dist/main.js), so the resident memory printed is the server's alone, then
// prints:
//  - send-to-sync latency (a PUT /send while the receiver long-polls, until its /sync returns),
//    median and p99, with `--idle` other users' long-polls open and idle;
//  - the server's resident memory at rest and with those long-polls open;
//  - an initial sync of a user in `--rooms` rooms with `--messages` messages each.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { asyncCommit, numberArg, startBenchCluster } from './support.js';

const IDLE = numberArg('idle', 1000);
const SAMPLES = numberArg('samples', 200);
const ROOMS = numberArg('rooms', 200);
const MESSAGES = numberArg('messages', 50);
const WARMUP = numberArg('warmup', 20);
// Extra node flags for the server process (to measure runtime settings, e.g. the young
// generation's size, which accounts for up to 32 MB of the resident memory).
const flagsAt = process.argv.indexOf('--server-flags');
const SERVER_FLAGS = flagsAt >= 0 ? process.argv[flagsAt + 1]!.split(' ').filter(Boolean) : [];

const cluster = await startBenchCluster();
console.log(`synchronous_commit: ${asyncCommit ? 'off' : 'on'}`);
const { createTestDatabase } = await import('../spec-tests/support/server.js');
const databaseUrl = await createTestDatabase();
const dir = mkdtempSync(join(tmpdir(), 'prat-bench-sync-'));
writeFileSync(
  join(dir, 'homeserver.yaml'),
  `server_name: localhost\ndatabase:\n  url: ${databaseUrl}\n  max_connections: 20\nregistration:\n  enabled: true\nrate_limits:\n  enabled: false\nlog:\n  level: warn\n`,
);
const port = await new Promise<number>((resolvePort) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as net.AddressInfo).port;
    s.close(() => resolvePort(p));
  });
});
if (SERVER_FLAGS.length > 0) console.log(`server node flags: ${SERVER_FLAGS.join(' ')}`);
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
const child = spawn(process.execPath, [...SERVER_FLAGS, '--enable-source-maps', 'dist/main.js', '--data-dir', dir, '--port', String(port)], {
  env: { ...process.env, NODE_OPTIONS: '' },
  stdio: ['ignore', 'pipe', 'pipe'],
});
let out = '';
child.stdout.on('data', (c: Buffer) => (out += c.toString()));
child.stderr.on('data', (c: Buffer) => (out += c.toString()));
// Ready when it answers (its log is at warn level, to keep logging out of the numbers).
for (let started = Date.now(); ; ) {
  if (child.exitCode !== null) throw new Error(`server exited:\n${out}`);
  if (Date.now() - started > 120_000) throw new Error(`server did not start:\n${out}`);
  const ok = await fetch(`http://127.0.0.1:${port}/_matrix/client/versions`).then((r) => r.ok, () => false);
  if (ok) break;
  await new Promise((r) => setTimeout(r, 200));
}
const base = `http://127.0.0.1:${port}/_matrix/client/v3`;
const statusMb = (field: string) => {
  const line = readFileSync(`/proc/${child.pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`))!;
  return Math.round(Number(line.split(/\s+/)[1]) / 1024);
};
const rssMb = () => statusMb('VmRSS');
// Anonymous memory is the process's own (heaps, stacks); file pages are mostly the node binary
// and shared libraries.
const rssSplit = () => `anonymous ${statusMb('RssAnon')} MB, file ${statusMb('RssFile')} MB`;

interface User {
  token: string;
  userId: string;
}
async function call(method: string, path: string, token: string | undefined, body?: unknown, signal?: AbortSignal): Promise<any> {
  const r = await fetch(base + path, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    ...(signal ? { signal } : {}),
  });
  const json = await r.json();
  if (r.status !== 200) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}
// The timed requests (the send and the receiver's long-poll) go through node:http on keep-alive
// connections: fetch (undici) costs the client about a millisecond more per request, which is
// the client's time, not the server's.
const agent = new http.Agent({ keepAlive: true });
function timedCall(method: string, path: string, token: string, body?: unknown): Promise<any> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${base}${path}`,
      { method, agent, headers: { Authorization: `Bearer ${token}`, ...(data !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          if (res.statusCode !== 200) reject(new Error(`${method} ${path}: ${res.statusCode} ${JSON.stringify(json)}`));
          else resolve(json);
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}
let n = 0;
const register = async (): Promise<User> => {
  const r = await call('POST', '/register', undefined, { username: `bench${++n}_${process.pid}`, password: 'bench-password', auth: { type: 'm.login.dummy' } });
  return { token: r.access_token, userId: r.user_id };
};
async function pool<T>(count: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, count) }, async () => {
    while (next < count) {
      const i = next++;
      results[i] = await fn(i);
    }
  }));
  return results;
}
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

try {
  console.log(`registering ${IDLE + 3} users...`);
  const idle = await pool(IDLE, 16, () => register());
  const [alice, bob, carol] = [await register(), await register(), await register()];
  const rest = rssMb();
  console.log(`server resident memory at rest: ${rest} MB (${rssSplit()})`);

  // Idle long-polls: each user syncs once, then waits with a long timeout.
  const stopIdle = new AbortController();
  const tokens = await pool(idle.length, 32, async (i) => (await call('GET', '/sync?set_presence=offline', idle[i]!.token)).next_batch as string);
  const polls = idle.map((u, i) => call('GET', `/sync?set_presence=offline&timeout=600000&since=${tokens[i]}`, u.token, undefined, stopIdle.signal).catch(() => undefined));
  await new Promise((r) => setTimeout(r, 3000));
  const withPolls = rssMb();
  console.log(`server resident memory with ${IDLE} idle long-polls: ${withPolls} MB (+${withPolls - rest} MB; ${rssSplit()}), 3 s after they opened`);
  // The burst of requests leaves garbage in the old generation until V8's next full collection,
  // which an idle server runs on its own after a while.
  for (const s of [10, 20, 30]) {
    await new Promise((r) => setTimeout(r, (s - (s === 10 ? 3 : 10)) * 1000));
    console.log(`  ${s} s after: ${rssMb()} MB (${rssSplit()})`);
  }
  console.log(`load average: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);

  // Send-to-sync latency.
  const { room_id: roomId } = await call('POST', '/createRoom', alice.token, { invite: [bob.userId] });
  await call('POST', `/join/${encodeURIComponent(roomId)}`, bob.token, {});
  let since = (await call('GET', '/sync?set_presence=offline', bob.token)).next_batch as string;
  const latencies: number[] = [];
  const sendTimes: number[] = [];
  // Long-polls until a response carries the room (another change, e.g. the sender's presence
  // going online at its first message, may wake the sync first), and tells when it arrived: the
  // latency is the receiver's, whether the sender's answer came before or after.
  const pollUntilMessage = async (): Promise<number> => {
    for (;;) {
      const res = await timedCall('GET', `/sync?set_presence=offline&timeout=30000&since=${since}`, bob.token);
      since = res.next_batch;
      if (res.rooms.join[roomId]) return performance.now();
    }
  };
  // The first sends of the room are not counted: the sender's first message sets its presence
  // online (a write and a wake of its own), and the code paths of a first send are cold.
  for (let i = -WARMUP; i < SAMPLES; i++) {
    const polling = pollUntilMessage();
    await new Promise((r) => setTimeout(r, 5));
    const t0 = performance.now();
    await timedCall('PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/lat${i}`, alice.token, { msgtype: 'm.text', body: `ping ${i}` });
    const put = performance.now() - t0;
    const arrived = await polling;
    if (i < 0) continue;
    sendTimes.push(put);
    latencies.push(arrived - t0);
  }
  const slowest = latencies
    .map((ms, i) => ({ ms, put: sendTimes[i]! }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 5);
  console.log(`send-to-sync latency over ${SAMPLES} sends (after ${WARMUP} not counted): median ${pct(latencies, 50).toFixed(2)} ms, p99 ${pct(latencies, 99).toFixed(2)} ms`);
  console.log(`  the slowest five: ${slowest.map((x) => `${x.ms.toFixed(1)} ms (PUT ${x.put.toFixed(1)})`).join(', ')}`);
  console.log(`  (the PUT /send alone: median ${pct(sendTimes, 50).toFixed(2)} ms, p99 ${pct(sendTimes, 99).toFixed(2)} ms)`);

  // The cost of one incremental sync with nothing new (the read a woken long-poll does).
  const empty: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = performance.now();
    await timedCall('GET', `/sync?set_presence=offline&timeout=0&since=${since}`, bob.token);
    empty.push(performance.now() - t0);
  }
  console.log(`incremental sync with nothing new: median ${pct(empty, 50).toFixed(2)} ms, p99 ${pct(empty, 99).toFixed(2)} ms`);
  console.log(`load average while measuring: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);

  // Initial sync of a user in many rooms.
  console.log(`creating ${ROOMS} rooms with ${MESSAGES} messages each...`);
  const rooms = await pool(ROOMS, 8, async () => (await call('POST', '/createRoom', carol.token, {})).room_id as string);
  let txn = 0;
  await pool(ROOMS * MESSAGES, 32, (i) =>
    call('PUT', `/rooms/${encodeURIComponent(rooms[i % ROOMS]!)}/send/m.room.message/m${++txn}`, carol.token, { msgtype: 'm.text', body: `message ${i}` }),
  );
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const res = await call('GET', '/sync?set_presence=offline', carol.token);
    times.push(performance.now() - t0);
    if (Object.keys(res.rooms.join).length < ROOMS) throw new Error('initial sync is missing rooms');
  }
  console.log(`initial sync, ${ROOMS} rooms x ${MESSAGES} messages: first ${times[0]!.toFixed(0)} ms, median of 5 ${pct(times, 50).toFixed(0)} ms`);
  console.log(`server resident memory at the end: ${rssMb()} MB`);
  stopIdle.abort();
  await Promise.all(polls);
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
}
