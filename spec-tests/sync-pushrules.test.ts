// Push rules: the default ruleset, CRUD with before/after, enabled and actions, the counts they
// produce, and GET /notifications.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';
import { enc, send, sharedRoom, sync, syncUntil } from './support/sync.js';

const R = '/_matrix/client/v3/pushrules';

describe('push rules', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('lists the spec default rules in order', async () => {
    const alice = await server.register();
    const r = await alice.get(`${R}/`);
    assert.equal(r.status, 200);
    const g = r.body.global;
    assert.deepEqual(Object.keys(g).sort(), ['content', 'override', 'room', 'sender', 'underride']);
    assert.equal(g.override[0].rule_id, '.m.rule.master');
    assert.equal(g.override[0].enabled, false);
    assert.equal(g.override.at(-1).rule_id, '.m.rule.suppress_edits');
    assert.equal(g.content[0].pattern, alice.userId.slice(1, alice.userId.indexOf(':')));
    assert.deepEqual(g.underride.map((x: any) => x.rule_id), ['.m.rule.call', '.m.rule.encrypted_room_one_to_one', '.m.rule.room_one_to_one', '.m.rule.message', '.m.rule.encrypted']);
    const invite = g.override.find((x: any) => x.rule_id === '.m.rule.invite_for_me');
    assert.ok(invite.conditions.some((c: any) => c.key === 'state_key' && c.pattern === alice.userId));
  });

  it('adds, orders, reads, edits and deletes user rules', async () => {
    const alice = await server.register();
    const put = (kind: string, id: string, body: unknown, q = '') => alice.put(`${R}/global/${kind}/${enc(id)}${q}`, body);
    assert.equal((await put('content', 'cake', { pattern: 'cake', actions: ['notify'] })).status, 200);
    assert.equal((await put('content', 'pie', { pattern: 'pie', actions: ['notify'] })).status, 200);
    assert.equal((await put('content', 'tart', { pattern: 'tart', actions: [] }, '?after=cake')).status, 200);
    assert.equal((await put('content', 'bun', { pattern: 'bun', actions: [] }, '?before=pie')).status, 200);
    const content = (await alice.get(`${R}/`)).body.global.content.map((x: any) => x.rule_id);
    assert.deepEqual(content, ['bun', 'pie', 'cake', 'tart', '.m.rule.contains_user_name']);

    const one = await alice.get(`${R}/global/content/cake`);
    assert.deepEqual(one.body, { rule_id: 'cake', default: false, enabled: true, actions: ['notify'], pattern: 'cake' });
    assert.equal((await alice.put(`${R}/global/content/cake/enabled`, { enabled: false })).status, 200);
    assert.deepEqual((await alice.get(`${R}/global/content/cake/enabled`)).body, { enabled: false });
    const tweak = ['notify', { set_tweak: 'sound', value: 'cake.wav' }];
    assert.equal((await alice.put(`${R}/global/content/cake/actions`, { actions: tweak })).status, 200);
    assert.deepEqual((await alice.get(`${R}/global/content/cake/actions`)).body, { actions: tweak });
    assert.equal((await alice.delete(`${R}/global/content/cake`)).status, 200);
    assert.equal((await alice.get(`${R}/global/content/cake`)).status, 404);
    assert.equal((await alice.delete(`${R}/global/content/cake`)).status, 404);

    const room = '!some:room';
    assert.equal((await put('room', room, { actions: [] })).status, 200);
    const roomRule = (await alice.get(`${R}/global/room/${enc(room)}`)).body;
    assert.equal(roomRule.rule_id, room);
    assert.equal((await put('override', 'ov', { conditions: [{ kind: 'event_match', key: 'type', pattern: 'x.y' }], actions: ['notify'] })).status, 200);
    const override = (await alice.get(`${R}/`)).body.global.override.map((x: any) => x.rule_id);
    assert.deepEqual(override.slice(0, 2), ['.m.rule.master', 'ov']);
  });

  it('toggles and changes the actions of a default rule, but never deletes one', async () => {
    const alice = await server.register();
    assert.equal((await alice.put(`${R}/global/override/.m.rule.master/enabled`, { enabled: true })).status, 200);
    assert.deepEqual((await alice.get(`${R}/global/override/.m.rule.master/enabled`)).body, { enabled: true });
    assert.equal((await alice.put(`${R}/global/underride/.m.rule.message/actions`, { actions: [] })).status, 200);
    assert.deepEqual((await alice.get(`${R}/global/underride/.m.rule.message/actions`)).body, { actions: [] });
    assert.equal((await alice.delete(`${R}/global/override/.m.rule.master`)).status, 400);
    assert.equal((await alice.put(`${R}/global/override/.m.rule.mine`, { actions: [] })).status, 400);
  });

  it('refuses bad requests with 4xx, never 500', async () => {
    const alice = await server.register();
    const cases: [string, string, unknown][] = [
      ['PUT', `${R}/global/content/x`, { actions: ['notify'] }],
      ['PUT', `${R}/global/content/x`, { pattern: 'x' }],
      ['PUT', `${R}/global/content/x`, { pattern: 'x', actions: ['dance'] }],
      ['PUT', `${R}/global/nonsense/x`, { actions: [] }],
      ['PUT', `${R}/device/override/x`, { actions: [] }],
      ['PUT', `${R}/global/override/x?before=missing`, { actions: [] }],
      ['PUT', `${R}/global/override/x`, { actions: [], conditions: ['nope'] }],
      ['PUT', `${R}/global/override/x/enabled`, { enabled: 'yes' }],
      ['GET', `${R}/global/override/nope`, undefined],
      ['PUT', `${R}/global/override/nope/enabled`, { enabled: true }],
      ['PUT', `${R}/global/override/.m.rule.bogus/actions`, { actions: [] }],
    ];
    for (const [method, path, body] of cases) {
      const r = await alice.request(method, path, body);
      assert.ok(r.status >= 400 && r.status < 500, `${method} ${path}: ${r.status}`);
      assert.equal(typeof r.body.errcode, 'string');
    }
  });

  it('sends the new rules as m.push_rules account data after a change', async () => {
    const alice = await server.register();
    const first = await sync(alice);
    await alice.put(`${R}/global/sender/${enc('@spam:x')}`, { actions: [] });
    const res = await syncUntil(alice, first.next_batch, (r) => r.account_data.events.some((e: any) => e.type === 'm.push_rules'));
    const rules = res.account_data.events.find((e: any) => e.type === 'm.push_rules').content;
    assert.equal(rules.global.sender[0].rule_id, '@spam:x');
    // The account data endpoint serves the same rules.
    const got = await alice.get(`/_matrix/client/v3/user/${enc(alice.userId)}/account_data/m.push_rules`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, rules);
  });

  it('counts nothing in a muted room, highlights mentions, and lists notifications', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const muted = await sharedRoom(alice, bob);
    const loud = await sharedRoom(alice, bob);
    await bob.put(`${R}/global/room/${enc(muted)}`, { actions: [] });
    await send(alice, muted, { msgtype: 'm.text', body: 'shh' });
    await send(alice, loud, { msgtype: 'm.text', body: 'hello' });
    const mention = await send(alice, loud, { msgtype: 'm.text', body: 'hey you', 'm.mentions': { user_ids: [bob.userId] } });
    const res = await sync(bob);
    assert.deepEqual(res.rooms.join[muted].unread_notifications, { notification_count: 0, highlight_count: 0 });
    assert.deepEqual(res.rooms.join[loud].unread_notifications, { notification_count: 2, highlight_count: 1 });

    const all = await bob.get('/_matrix/client/v3/notifications');
    assert.equal(all.status, 200);
    assert.equal(all.body.notifications.length, 2);
    assert.equal(all.body.notifications[0].event.event_id, mention);
    assert.equal(all.body.notifications[0].read, false);
    const highlights = await bob.get('/_matrix/client/v3/notifications?only=highlight');
    assert.deepEqual(highlights.body.notifications.map((n: any) => n.event.event_id), [mention]);
    const page = await bob.get('/_matrix/client/v3/notifications?limit=1');
    assert.equal(page.body.notifications.length, 1);
    const next = await bob.get(`/_matrix/client/v3/notifications?limit=1&from=${page.body.next_token}`);
    assert.equal(next.body.notifications.length, 1);
    assert.notEqual(next.body.notifications[0].event.event_id, page.body.notifications[0].event.event_id);
    await bob.post(`/_matrix/client/v3/rooms/${enc(loud)}/receipt/m.read/${enc(mention)}`, {});
    const afterRead = await bob.get('/_matrix/client/v3/notifications');
    assert.ok(afterRead.body.notifications.every((n: any) => n.read === true));
    assert.equal((await bob.get('/_matrix/client/v3/notifications?limit=x')).status, 400);
  });

  it('notifies members of joins only through a rule of their own (the defaults silence membership events)', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const dave = await server.register();
    const carol = await server.register();
    const roomId = await sharedRoom(alice, bob, dave);
    // Bob wants to hear of every membership change; Dave keeps the defaults.
    const rule = { conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.room.member' }], actions: ['notify'] };
    assert.equal((await bob.put(`${R}/global/override/joins`, rule)).status, 200);
    const countOf = async (c: typeof bob) => (await sync(c)).rooms.join[roomId].unread_notifications.notification_count;
    const bobBefore = await countOf(bob);
    const daveBefore = await countOf(dave);
    // (An invite and a join: two membership events.)
    assert.equal((await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: carol.userId })).status, 200);
    assert.equal((await carol.post(`/_matrix/client/v3/rooms/${enc(roomId)}/join`, {})).status, 200);
    assert.equal(await countOf(bob), bobBefore + 2);
    assert.equal(await countOf(dave), daveBefore);
    // Dave turns the default member rule off: nothing notifies him of a join still (no underride matches).
    assert.equal((await dave.put(`${R}/global/override/.m.rule.member_event/enabled`, { enabled: false })).status, 200);
    assert.equal((await carol.post(`/_matrix/client/v3/rooms/${enc(roomId)}/leave`, {})).status, 200);
    assert.equal(await countOf(bob), bobBefore + 3);
    assert.equal(await countOf(dave), daveBefore);
  });

  it("highlights a member's display name as it is now, through joins, renames and leaves", async () => {
    const alice = await server.register();
    const bob = await server.register();
    const carol = await server.register();
    const roomId = await sharedRoom(alice, bob, carol);
    const highlights = async () => (await sync(bob)).rooms.join[roomId].unread_notifications.highlight_count;
    assert.equal((await bob.put(`/_matrix/client/v3/profile/${enc(bob.userId)}/displayname`, { displayname: 'Bartholomew' })).status, 200);
    await send(alice, roomId, { msgtype: 'm.text', body: 'ping Bartholomew' });
    assert.equal(await highlights(), 1);
    // Another member's change in between, then Bob renames again: the old name no longer highlights.
    assert.equal((await carol.post(`/_matrix/client/v3/rooms/${enc(roomId)}/leave`, {})).status, 200);
    assert.equal((await bob.put(`/_matrix/client/v3/profile/${enc(bob.userId)}/displayname`, { displayname: 'Zebedee' })).status, 200);
    await send(alice, roomId, { msgtype: 'm.text', body: 'ping Bartholomew again' });
    assert.equal(await highlights(), 1);
    await send(alice, roomId, { msgtype: 'm.text', body: 'ping Zebedee' });
    assert.equal(await highlights(), 2);
  });

  it('evaluates an event without a body once for every member on the default rules, and apart for the others', async () => {
    const alice = await server.register();
    const bob = await server.register();
    const dave = await server.register();
    const erin = await server.register();
    const roomId = await sharedRoom(alice, bob, dave, erin);
    // Bob hears of widgets; Erin has a rule of her own that does not concern them; Dave has the defaults.
    const widgets = { conditions: [{ kind: 'event_match', key: 'type', pattern: 'im.vector.modular.widgets' }], actions: ['notify'] };
    assert.equal((await bob.put(`${R}/global/override/widgets`, widgets)).status, 200);
    assert.equal((await erin.put(`${R}/global/content/cake`, { pattern: 'cake', actions: ['notify'] })).status, 200);
    const countOf = async (c: typeof bob) => (await sync(c)).rooms.join[roomId].unread_notifications.notification_count;
    const before = [await countOf(bob), await countOf(dave), await countOf(erin)];
    const widget = await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/state/im.vector.modular.widgets/w1`, { type: 'm.custom', url: 'https://example.org' });
    assert.equal(widget.status, 200);
    assert.deepEqual([await countOf(bob), await countOf(dave), await countOf(erin)], [before[0]! + 1, before[1], before[2]]);
    // A message with a body is still evaluated per member: Erin's content rule fires.
    await send(alice, roomId, { msgtype: 'm.text', body: 'cake' });
    assert.deepEqual([await countOf(bob), await countOf(dave), await countOf(erin)], [before[0]! + 2, before[1]! + 1, before[2]! + 1]);
  });
});
