// The read-side endpoints of rooms under odd input: every answer is a Matrix error with a 4xx
// status (or a success), never a 500, and each unknown room is answered like a forbidden one.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestClient } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';

const V3 = '/_matrix/client/v3';
const V1 = '/_matrix/client/v1';

describe('rooms read side: odd input', () => {
  let server: TestServer;
  let alice: TestClient;
  let roomId: string;
  let eventId: string;
  before(async () => {
    server = await startTestServer();
    alice = await server.register();
    roomId = (await alice.post(`${V3}/createRoom`, { preset: 'public_chat' })).body.room_id;
    eventId = (await alice.put(`${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'x' })).body.event_id;
  });
  after(() => server.stop());

  const odd = [
    '',
    'x',
    't',
    't1',
    't-1--1',
    't99999999999999999-1',
    's99999999999999999',
    's-1',
    'e1_r2',
    'r2_t3',
    'e',
    '%00',
    '%E2%98%83',
    'a'.repeat(600),
    'p999999999',
    'zzzzzzzzzzzz.5',
  ];

  it('answers odd tokens, limits, directions and filters with 4xx or 200, never 500', async () => {
    const r = encodeURIComponent(roomId);
    const e = encodeURIComponent(eventId);
    const paths: string[] = [];
    for (const t of odd) {
      paths.push(
        `${V3}/rooms/${r}/messages?dir=b&from=${t}`,
        `${V3}/rooms/${r}/messages?dir=f&to=${t}`,
        `${V3}/rooms/${r}/messages?dir=${t}`,
        `${V3}/rooms/${r}/messages?dir=b&limit=${t}`,
        `${V3}/rooms/${r}/messages?dir=b&filter=${t}`,
        `${V3}/rooms/${r}/context/${e}?limit=${t}`,
        `${V3}/rooms/${r}/members?at=${t}`,
        `${V1}/rooms/${r}/relations/${e}?from=${t}`,
        `${V1}/rooms/${r}/relations/${e}/m.annotation?dir=${t}&recurse=${t}`,
        `${V1}/rooms/${r}/threads?from=${t}&include=${t}`,
        `${V1}/rooms/${r}/timestamp_to_event?ts=${t}&dir=f`,
        `${V1}/rooms/${r}/hierarchy?from=${t}&max_depth=${t}`,
        `${V3}/publicRooms?since=${t}&limit=${t}`,
        `${V3}/directory/room/${t || '%23'}`,
        `${V1}/room_summary/${t || '%21'}`,
        `/_synapse/admin/v1/event_reports?from=${t}`,
      );
    }
    paths.push(
      `${V3}/rooms/${r}/messages?dir=b&filter=${encodeURIComponent(JSON.stringify({ types: [5] }))}`,
      `${V3}/rooms/${r}/messages?dir=b&filter=${encodeURIComponent('[]')}`,
      `${V3}/rooms/${r}/messages?dir=b&filter=${encodeURIComponent(JSON.stringify({ types: ['*'], lazy_load_members: true, limit: 3 }))}`,
      `${V3}/rooms/${r}/messages?dir=b&dir=f`,
      `${V3}/rooms/${r}/messages?dir=b&limit=0`,
      `${V3}/rooms/${r}/context/${e}?limit=0`,
      `${V3}/rooms/${r}/messages?dir=b&limit=99999999`,
      `${V1}/rooms/${r}/relations/%24${'x'.repeat(300)}`,
    );
    for (const p of paths) {
      const res = await alice.get(p, { noSchema: true });
      assert.ok(res.status < 500, `${p} -> ${res.status} ${res.text.slice(0, 200)}`);
      if (res.status >= 400) assert.match(res.body?.errcode ?? '', /^M_/, p);
    }
  });

  it('answers odd bodies on the write endpoints without a 500', async () => {
    const r = encodeURIComponent(roomId);
    const e = encodeURIComponent(eventId);
    const bodies: unknown[] = [[], 'x', 5, null, { reason: 5 }, { score: 'a' }, { new_version: 12 }, { room_id: 5 }, { visibility: 'secret' }, { filter: 'x' }, { limit: -1 }];
    for (const b of bodies) {
      for (const [method, path] of [
        ['POST', `${V3}/rooms/${r}/report/${e}`],
        ['POST', `${V3}/rooms/${r}/report`],
        ['POST', `${V3}/rooms/${r}/upgrade`],
        ['PUT', `${V3}/directory/room/${encodeURIComponent('#odd:localhost')}`],
        ['PUT', `${V3}/directory/list/room/${r}`],
        ['POST', `${V3}/publicRooms`],
      ] as const) {
        const res = await alice.request(method, path, undefined, { raw: JSON.stringify(b), headers: { 'Content-Type': 'application/json' }, noSchema: true });
        assert.ok(res.status < 500, `${method} ${path} ${JSON.stringify(b)} -> ${res.status} ${res.text.slice(0, 200)}`);
      }
    }
  });
});
