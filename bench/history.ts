// On-demand benchmark of room history reads (never part of `npm test`):
//   npx tsx bench/history.ts [--messages N] [--members N] [--page N]
// A room with N messages (some edited, some threaded) and M members who joined during it, read
// by a member who joined half way with history_visibility `joined` (every event gets the
// per-event visibility check), paged backwards and forwards through /messages; then /context,
// /relations and /threads. Prints milliseconds per request.
import { performance } from 'node:perf_hooks';
import { numberArg, startBenchCluster } from './support.js';

const MESSAGES = numberArg('messages', 3000);
const MEMBERS = numberArg('members', 200);
const PAGE = numberArg('page', 50);

const cluster = await startBenchCluster();
const { startTestServer } = await import('../spec-tests/support/server.js');
const server = await startTestServer({ database: { url: 'postgres://unused', max_connections: 20 } });
const V3 = '/_matrix/client/v3';
try {
  const alice = await server.register();
  const roomId = (await alice.post(`${V3}/createRoom`, { preset: 'public_chat', initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'joined' } }] })).body.room_id as string;
  const r = `${V3}/rooms/${encodeURIComponent(roomId)}`;
  let reader = alice;
  const members = await Promise.all(Array.from({ length: MEMBERS }, () => server.register()));
  let txn = 0;
  let root = '';
  const started = performance.now();
  for (let i = 0; i < MESSAGES; i++) {
    if (i % Math.max(1, Math.floor(MESSAGES / MEMBERS)) === 0 && members.length > 0) {
      const m = members.pop()!;
      await m.post(`${r}/join`);
      if (i >= MESSAGES / 2 && reader === alice) reader = m;
    }
    const content: Record<string, unknown> = { msgtype: 'm.text', body: `message ${i}` };
    if (i % 10 === 1) content['m.relates_to'] = { rel_type: 'm.thread', event_id: root };
    const res = await alice.put(`${r}/send/m.room.message/b${++txn}`, content);
    if (i % 10 === 0) root = res.body.event_id;
  }
  console.log(`room: ${MESSAGES} messages, ${MEMBERS} joins, written in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  for (const [who, label] of [
    [alice, 'creator (joined throughout)'],
    [reader, 'member who joined half way'],
  ] as const) {
    for (const dir of ['b', 'f'] as const) {
      let from: string | undefined;
      let pages = 0;
      let events = 0;
      const t0 = performance.now();
      for (;;) {
        const res = await who.get(`${r}/messages?dir=${dir}&limit=${PAGE}${from ? `&from=${encodeURIComponent(from)}` : ''}`);
        pages++;
        events += res.body.chunk.length;
        if (!res.body.end) break;
        from = res.body.end;
      }
      const ms = performance.now() - t0;
      console.log(`/messages dir=${dir} limit=${PAGE}, ${label}: ${pages} pages, ${events} events, ${(ms / pages).toFixed(1)} ms/page`);
    }
  }
  const time = async (label: string, path: string, n = 50) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await alice.get(path);
    console.log(`${label}: ${((performance.now() - t0) / n).toFixed(1)} ms`);
  };
  await time('/context limit=20', `${r}/context/${encodeURIComponent(root)}?limit=20`);
  await time('/relations m.thread', `/_matrix/client/v1/rooms/${encodeURIComponent(roomId)}/relations/${encodeURIComponent(root)}/m.thread`);
  await time('/threads limit=20', `/_matrix/client/v1/rooms/${encodeURIComponent(roomId)}/threads?limit=20`);
} finally {
  await server.stop();
  await cluster.stop();
}
