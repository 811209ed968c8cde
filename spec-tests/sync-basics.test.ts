import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';
import type { TestClient } from './support/client.js';

async function sync(c: TestClient, params: Record<string, string> = {}) {
  const qs = new URLSearchParams(params).toString();
  const r = await c.get(`/_matrix/client/v3/sync${qs ? `?${qs}` : ''}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

describe('sync basics', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('answers an initial sync with next_batch and the default push rules', async () => {
    const alice = await server.register();
    const body = await sync(alice);
    assert.equal(typeof body.next_batch, 'string');
    const pr = body.account_data.events.find((e: any) => e.type === 'm.push_rules');
    assert.ok(pr, 'm.push_rules in account_data');
    assert.equal(pr.content.global.override[0].rule_id, '.m.rule.master');
  });

  it('shows a room message in an incremental sync', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const room = await alice.post('/_matrix/client/v3/createRoom', { invite: [bob.userId] });
    assert.equal(room.status, 200, JSON.stringify(room.body));
    const roomId = room.body.room_id;
    const first = await sync(bob);
    assert.ok(first.rooms.invite[roomId], 'invite listed');
    const j = await bob.post(`/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {});
    assert.equal(j.status, 200);
    const second = await sync(bob, { since: first.next_batch });
    assert.ok(second.rooms.join[roomId], 'joined room listed');
    const send = await alice.put(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'hello' });
    assert.equal(send.status, 200);
    const third = await sync(bob, { since: second.next_batch, timeout: '5000' });
    const events = third.rooms.join[roomId].timeline.events;
    assert.deepEqual(events.map((e: any) => e.content.body), ['hello']);
    assert.equal(third.rooms.join[roomId].unread_notifications.notification_count, 1);
  });

  it('lets guests sync and keep account data, but not edit push rules', async () => {
    const r = await server.anon().post('/_matrix/client/v3/register?kind=guest', {});
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const guest = server.anon();
    guest.token = r.body.access_token;
    guest.userId = r.body.user_id;
    await sync(guest);
    const path = `/_matrix/client/v3/user/${encodeURIComponent(guest.userId)}/account_data/org.example.guest`;
    assert.equal((await guest.put(path, { a: 1 })).status, 200);
    assert.deepEqual((await guest.get(path)).body, { a: 1 });
    const rules = await guest.put('/_matrix/client/v3/pushrules/global/content/x', { pattern: 'x', actions: [] });
    assert.equal(rules.status, 403);
    assert.equal(rules.body.errcode, 'M_GUEST_ACCESS_FORBIDDEN');
  });
});
