// Pushers and push gateway delivery: POST /pushers/set (http, kind null to delete, append),
// GET /pushers, validation, and notifications POSTed to a push gateway run by this test (the
// Push Gateway API): fields, counts, prio, tweaks, event_id_only, retries after failures,
// rejected pushkeys, and removal on logout and deactivation.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TestClient } from './support/client.js';
import { startTestServer, type TestServer } from './support/server.js';
import { createRoom, join, send } from './support/sync.js';

interface Received {
  path: string;
  body: any;
}

/** A push gateway: records every notification; answers from a queue, then {rejected: []}. */
class Gateway {
  readonly received: Received[] = [];
  readonly replies: { status: number; body: unknown }[] = [];
  private readonly waiters: (() => void)[] = [];
  private server!: http.Server;
  url = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        const reply = this.replies.shift() ?? { status: 200, body: { rejected: [] } };
        res.writeHead(reply.status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(reply.body));
        for (const w of this.waiters.splice(0)) w();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/_matrix/push/v1/notify`;
  }

  /** Waits for a notification matching `pred` (delivery is asynchronous). */
  async waitFor(pred: (n: any) => boolean, timeoutMs = 10_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.find((r) => pred(r.body.notification));
      if (hit) return hit.body.notification;
      const left = deadline - Date.now();
      assert.ok(left > 0, `no matching notification; got ${JSON.stringify(this.received.map((r) => r.body))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

const SET = '/_matrix/client/v3/pushers/set';

function pusher(gateway: Gateway, pushkey: string, extra: Record<string, unknown> = {}, data: Record<string, unknown> = {}) {
  return {
    kind: 'http',
    app_id: 'org.example.app',
    pushkey,
    app_display_name: 'Example',
    device_display_name: 'Phone',
    lang: 'en',
    data: { url: gateway.url, ...data },
    ...extra,
  };
}

describe('pushers', () => {
  let server: TestServer;
  let gateway: Gateway;
  before(async () => {
    // The gateway is on loopback, which push gateways may not be at unless allowed.
    server = await startTestServer({ push: { ip_range_allowlist: ['127.0.0.1/32'], ip_range_blocklist: [] } });
    gateway = new Gateway();
    await gateway.start();
  });
  after(async () => {
    await server.stop();
    await gateway.stop();
  });

  async function room(owner: TestClient, ...others: TestClient[]): Promise<string> {
    const roomId = await createRoom(owner, { name: 'Pushy', invite: others.map((o) => o.userId) });
    for (const o of others) await join(o, roomId);
    return roomId;
  }

  it('sets, lists and deletes a pusher', async () => {
    const alice = await server.register();
    assert.deepEqual((await alice.get('/_matrix/client/v3/pushers')).body, { pushers: [] });
    const set = await alice.post(SET, pusher(gateway, 'key-list', { profile_tag: 'tag' }, { format: 'event_id_only', extra: 1 }));
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(set.body, {});
    const list = (await alice.get('/_matrix/client/v3/pushers')).body.pushers;
    assert.deepEqual(list, [
      {
        pushkey: 'key-list',
        kind: 'http',
        app_id: 'org.example.app',
        app_display_name: 'Example',
        device_display_name: 'Phone',
        profile_tag: 'tag',
        lang: 'en',
        data: { url: gateway.url, format: 'event_id_only', extra: 1 },
      },
    ]);
    // An update replaces the fields in place.
    assert.equal((await alice.post(SET, pusher(gateway, 'key-list', { lang: 'fr' }))).status, 200);
    const updated = (await alice.get('/_matrix/client/v3/pushers')).body.pushers;
    assert.equal(updated.length, 1);
    assert.equal(updated[0].lang, 'fr');
    assert.equal(updated[0].profile_tag, '');
    // kind null deletes; deleting again is fine.
    assert.equal((await alice.post(SET, { kind: null, app_id: 'org.example.app', pushkey: 'key-list' })).status, 200);
    assert.deepEqual((await alice.get('/_matrix/client/v3/pushers')).body, { pushers: [] });
    assert.equal((await alice.post(SET, { kind: null, app_id: 'org.example.app', pushkey: 'key-list' })).status, 200);
  });

  it('refuses bad bodies with M_MISSING_PARAM or M_INVALID_PARAM', async () => {
    const alice = await server.register();
    const base = pusher(gateway, 'key-bad');
    const without = (k: string) => Object.fromEntries(Object.entries(base).filter(([x]) => x !== k));
    const cases: [unknown, number, string][] = [
      [without('pushkey'), 400, 'M_MISSING_PARAM'],
      [without('app_id'), 400, 'M_MISSING_PARAM'],
      [without('kind'), 400, 'M_MISSING_PARAM'],
      [without('lang'), 400, 'M_MISSING_PARAM'],
      [without('data'), 400, 'M_MISSING_PARAM'],
      [without('app_display_name'), 400, 'M_MISSING_PARAM'],
      [without('device_display_name'), 400, 'M_MISSING_PARAM'],
      [{ ...base, data: {} }, 400, 'M_MISSING_PARAM'],
      [{ ...base, data: { url: 'https://push.example/notify' } }, 400, 'M_INVALID_PARAM'],
      [{ ...base, data: { url: 'not a url' } }, 400, 'M_INVALID_PARAM'],
      [{ ...base, data: { url: 'ftp://push.example/_matrix/push/v1/notify' } }, 400, 'M_INVALID_PARAM'],
      [{ ...base, data: { url: 42 } }, 400, 'M_INVALID_PARAM'],
      [{ ...base, kind: 'email' }, 400, 'M_INVALID_PARAM'],
      [{ ...base, kind: 'carrier-pigeon' }, 400, 'M_INVALID_PARAM'],
      [{ ...base, pushkey: 'x'.repeat(513) }, 400, 'M_INVALID_PARAM'],
      [{ ...base, app_id: 'a'.repeat(65) }, 400, 'M_INVALID_PARAM'],
      [{ ...base, lang: 5 }, 400, 'M_BAD_JSON'],
      [{ ...base, append: 'yes' }, 400, 'M_BAD_JSON'],
    ];
    for (const [body, status, errcode] of cases) {
      const r = await alice.post(SET, body);
      assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 200)} -> ${JSON.stringify(r.body)}`);
      assert.equal(r.body.errcode, errcode, `${JSON.stringify(body).slice(0, 200)} -> ${JSON.stringify(r.body)}`);
    }
    // Not JSON, not an object, and no token.
    const notJson = await alice.post(SET, undefined, { raw: '{"kind": "http",' });
    assert.deepEqual([notJson.status, notJson.body.errcode], [400, 'M_NOT_JSON']);
    const notObject = await alice.post(SET, undefined, { raw: '[1, 2]' });
    assert.deepEqual([notObject.status, notObject.body.errcode], [400, 'M_BAD_JSON']);
    const anon = server.anon();
    assert.deepEqual([(await anon.post(SET, base)).status, (await anon.post(SET, base)).body.errcode], [401, 'M_MISSING_TOKEN']);
    assert.equal((await anon.get('/_matrix/client/v3/pushers')).status, 401);
    assert.deepEqual((await alice.get('/_matrix/client/v3/pushers')).body, { pushers: [] });
  });

  it('POSTs a notification with the event, counts, prio and tweaks to the gateway', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const carol = await server.register();
    const roomId = await room(alice, bob, carol);
    assert.equal((await alice.post(SET, pusher(gateway, 'key-full', {}, { extra: 'kept' }))).status, 200);
    const eventId = await send(bob, roomId, { msgtype: 'm.text', body: 'hello there' });
    const n = await gateway.waitFor((x) => x.event_id === eventId);
    const path = gateway.received.find((r) => r.body.notification.event_id === eventId)!.path;
    assert.equal(path, '/_matrix/push/v1/notify');
    assert.equal(n.room_id, roomId);
    assert.equal(n.type, 'm.room.message');
    assert.equal(n.sender, bob.userId);
    assert.equal(n.room_name, 'Pushy');
    assert.deepEqual(n.content, { msgtype: 'm.text', body: 'hello there' });
    assert.equal(n.prio, 'low');
    assert.deepEqual(n.counts, { unread: 1 });
    assert.equal(n.devices.length, 1);
    const device = n.devices[0];
    assert.equal(device.app_id, 'org.example.app');
    assert.equal(device.pushkey, 'key-full');
    assert.ok(Number.isInteger(device.pushkey_ts) && Math.abs(device.pushkey_ts - Date.now() / 1000) < 120);
    assert.deepEqual(device.data, { extra: 'kept' });
    assert.equal(device.tweaks, undefined);

    // A mention highlights: high priority, the highlight and sound tweaks, the count grows.
    const mention = await send(carol, roomId, { msgtype: 'm.text', body: `hey ${alice.userId}`, 'm.mentions': { user_ids: [alice.userId] } });
    const m = await gateway.waitFor((x) => x.event_id === mention);
    assert.equal(m.prio, 'high');
    assert.equal(m.devices[0].tweaks.highlight, true);
    assert.equal(m.devices[0].tweaks.sound, 'default');
    assert.deepEqual(m.counts, { unread: 2 });
    // Alice's own messages are not pushed to her.
    const own = await send(alice, roomId, { msgtype: 'm.text', body: 'mine' });
    const later = await send(bob, roomId, { msgtype: 'm.text', body: 'after' });
    await gateway.waitFor((x) => x.event_id === later);
    assert.ok(!gateway.received.some((r) => r.body.notification.event_id === own));
  });

  it('updates the badge count alone when the user reads', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const carol = await server.register();
    const roomId = await room(alice, bob, carol);
    assert.equal((await alice.post(SET, pusher(gateway, 'key-badge'))).status, 200);
    const eventId = await send(bob, roomId, { msgtype: 'm.text', body: 'read me' });
    const n = await gateway.waitFor((x) => x.event_id === eventId);
    assert.deepEqual(n.counts, { unread: 1 });
    const r = await alice.post(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/receipt/m.read/${encodeURIComponent(eventId)}`, {});
    assert.equal(r.status, 200);
    const badge = await gateway.waitFor((x) => x.event_id === undefined && x.devices[0].pushkey === 'key-badge');
    assert.deepEqual(badge.counts, { unread: 0 });
    assert.deepEqual(badge.devices, [{ app_id: 'org.example.app', pushkey: 'key-badge', pushkey_ts: badge.devices[0].pushkey_ts, data: {} }]);
  });

  it('sends only ids and counts in the event_id_only format', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const carol = await server.register();
    const roomId = await room(alice, bob, carol);
    assert.equal((await alice.post(SET, pusher(gateway, 'key-ids', {}, { format: 'event_id_only' }))).status, 200);
    const eventId = await send(bob, roomId, { msgtype: 'm.text', body: `secret for ${alice.userId}` });
    const n = await gateway.waitFor((x) => x.event_id === eventId);
    assert.deepEqual(Object.keys(n).sort(), ['counts', 'devices', 'event_id', 'prio', 'room_id']);
    assert.equal(n.room_id, roomId);
    assert.deepEqual(n.counts, { unread: 1 });
    assert.deepEqual(n.devices, [{ app_id: 'org.example.app', pushkey: 'key-ids', pushkey_ts: n.devices[0].pushkey_ts, data: { format: 'event_id_only' } }]);
  });

  it('retries a failed notification with backoff, in order', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const carol = await server.register();
    const roomId = await room(alice, bob, carol);
    assert.equal((await alice.post(SET, pusher(gateway, 'key-retry'))).status, 200);
    gateway.replies.push({ status: 502, body: { error: 'upstream down' } });
    const first = await send(bob, roomId, { msgtype: 'm.text', body: 'one' });
    const second = await send(bob, roomId, { msgtype: 'm.text', body: 'two' });
    await gateway.waitFor((x) => x.event_id === second);
    const mine = gateway.received.filter((r) => r.body.notification.devices[0].pushkey === 'key-retry').map((r) => r.body.notification.event_id);
    // The first failed, was retried, then the second followed: no loss, no reordering.
    assert.deepEqual(mine, [first, first, second]);
  });

  it('removes a pusher whose pushkey the gateway rejects', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const carol = await server.register();
    const roomId = await room(alice, bob, carol);
    assert.equal((await alice.post(SET, pusher(gateway, 'key-rejected'))).status, 200);
    gateway.replies.push({ status: 200, body: { rejected: ['key-rejected'] } });
    const eventId = await send(bob, roomId, { msgtype: 'm.text', body: 'one' });
    await gateway.waitFor((x) => x.event_id === eventId);
    const deadline = Date.now() + 5_000;
    while ((await alice.get('/_matrix/client/v3/pushers')).body.pushers.length > 0) {
      assert.ok(Date.now() < deadline, 'the rejected pusher was not removed');
      await new Promise((r) => setTimeout(r, 50));
    }
    const next = await send(bob, roomId, { msgtype: 'm.text', body: 'two' });
    const marker = await send(carol, roomId, { msgtype: 'm.text', body: 'three' });
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!gateway.received.some((r) => [next, marker].includes(r.body.notification.event_id)));
  });

  it('moves a pushkey between users unless append, and drops pushers on logout and deactivation', async () => {
    const alice = await server.register();
    const bob = await server.register();
    assert.equal((await alice.post(SET, pusher(gateway, 'key-shared'))).status, 200);
    assert.equal((await bob.post(SET, pusher(gateway, 'key-shared', { append: true }))).status, 200);
    assert.equal((await alice.get('/_matrix/client/v3/pushers')).body.pushers.length, 1);
    assert.equal((await bob.post(SET, pusher(gateway, 'key-shared'))).status, 200);
    assert.equal((await alice.get('/_matrix/client/v3/pushers')).body.pushers.length, 0, 'without append the pushkey leaves alice');
    assert.equal((await bob.get('/_matrix/client/v3/pushers')).body.pushers.length, 1);

    // A second device of alice sets a pusher, then logs out: it goes; the first device's stays.
    const login = await server.anon().post('/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.userId }, password: alice.password });
    assert.equal(login.status, 200);
    const phone = new TestClient(server.baseUrl);
    phone.token = login.body.access_token;
    assert.equal((await phone.post(SET, pusher(gateway, 'key-phone'))).status, 200);
    assert.equal((await alice.post(SET, pusher(gateway, 'key-laptop'))).status, 200);
    // The laptop edits the phone's pusher: it stays the phone's.
    assert.equal((await alice.post(SET, pusher(gateway, 'key-phone', { lang: 'de' }))).status, 200);
    assert.equal((await phone.post('/_matrix/client/v3/logout', {})).status, 200);
    const left = (await alice.get('/_matrix/client/v3/pushers')).body.pushers.map((p: any) => p.pushkey);
    assert.deepEqual(left, ['key-laptop']);

    const auth = { type: 'm.login.password', identifier: { type: 'm.id.user', user: bob.userId }, password: bob.password };
    const started = await bob.post('/_matrix/client/v3/account/deactivate', {});
    const done = await bob.post('/_matrix/client/v3/account/deactivate', { auth: { ...auth, session: started.body.session } });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    const rows = await server.hs.services.db.query('SELECT 1 FROM pushers WHERE user_id = $1', [bob.userId]);
    assert.equal(rows.rowCount, 0);
  });

  it('does not call a gateway at a private address unless allowed', async () => {
    const strict = await startTestServer();
    try {
      const alice = await strict.register();
      const bob = await strict.register();
      const carol = await strict.register();
      const roomId = await room(alice, bob, carol);
      // Accepted (the address is only known when resolved), but never called.
      assert.equal((await alice.post(SET, pusher(gateway, 'key-private'))).status, 200);
      const eventId = await send(bob, roomId, { msgtype: 'm.text', body: 'to nowhere' });
      await new Promise((r) => setTimeout(r, 1_500));
      assert.ok(!gateway.received.some((r) => r.body.notification.event_id === eventId));
      assert.equal((await alice.get('/_matrix/client/v3/pushers')).body.pushers.length, 1);
    } finally {
      await strict.stop();
    }
  });

  it('delivers each notification once with two server processes on the database', async () => {
    const two = await startTestServer({ push: { ip_range_allowlist: ['127.0.0.1/32'], ip_range_blocklist: [] } }, { databaseUrl: server.databaseUrl });
    try {
      const alice = await server.register();
      const bob = await server.register();
      const carol = await server.register();
      const roomId = await room(alice, bob, carol);
      assert.equal((await alice.post(SET, pusher(gateway, 'key-two'))).status, 200);
      // Bob sends through the other process: its NOTIFY wakes delivery in both.
      const bobOnTwo = new TestClient(two.baseUrl);
      bobOnTwo.token = bob.token;
      const sent: string[] = [];
      for (let i = 0; i < 5; i++) sent.push(await send(bobOnTwo, roomId, { msgtype: 'm.text', body: `across ${i}` }));
      await gateway.waitFor((x) => x.event_id === sent.at(-1));
      await new Promise((r) => setTimeout(r, 500));
      const got = gateway.received.filter((r) => r.body.notification.devices[0].pushkey === 'key-two').map((r) => r.body.notification.event_id);
      assert.deepEqual(got, sent);
    } finally {
      await two.stop();
    }
  });
});
