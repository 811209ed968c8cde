import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { redactContent, redactEvent } from './redaction.js';
import { ROOM_VERSIONS } from './room-versions.js';

const ALL_VERSIONS = [...ROOM_VERSIONS.keys()];
const upTo = (n: number) => ALL_VERSIONS.filter((v) => Number(v) <= n);
const from = (n: number) => ALL_VERSIONS.filter((v) => Number(v) >= n);

function base(type: string, content: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    event_id: '$e:example.org',
    type,
    room_id: '!r:example.org',
    sender: '@u:example.org',
    state_key: '',
    content,
    hashes: { sha256: 'abc' },
    signatures: { 'example.org': { 'ed25519:1': 'sig' } },
    depth: 5,
    prev_events: ['$p'],
    auth_events: ['$a'],
    origin_server_ts: 1234,
    origin: 'example.org',
    membership: 'join',
    prev_state: [],
    unsigned: { age_ts: 1, redacted_because: {} },
    redacts: '$target',
    age_ts: 77,
    custom_top_level: 'x',
    ...extra,
  };
}

describe('top-level keys', () => {
  const common = [
    'auth_events',
    'content',
    'depth',
    'event_id',
    'hashes',
    'origin_server_ts',
    'prev_events',
    'room_id',
    'sender',
    'signatures',
    'state_key',
    'type',
  ];
  for (const v of upTo(10)) {
    test(`v${v} keeps origin, membership, prev_state and drops the rest`, () => {
      const out = redactEvent(base('m.room.message', { body: 'hi' }), v);
      assert.deepEqual(Object.keys(out).sort(), [...common, 'membership', 'origin', 'prev_state'].sort());
    });
  }
  for (const v of from(11)) {
    test(`v${v} drops origin, membership, prev_state (MSC2176)`, () => {
      const out = redactEvent(base('m.room.message', { body: 'hi' }), v);
      assert.deepEqual(Object.keys(out).sort(), common);
    });
  }
  test('drops unsigned, top-level redacts and age_ts in every version', () => {
    for (const v of ALL_VERSIONS) {
      const out = redactEvent(base('m.room.redaction', {}), v) as Record<string, unknown>;
      assert.equal(out.unsigned, undefined);
      assert.equal(out.redacts, undefined);
      assert.equal(out.age_ts, undefined);
    }
  });
  test('does not invent missing keys except content', () => {
    const out = redactEvent({ type: 'm.room.message', sender: '@a:b' }, '11');
    assert.deepEqual(out, { type: 'm.room.message', sender: '@a:b', content: {} });
  });
  test('does not modify its input', () => {
    const ev = base('m.room.member', { membership: 'join', displayname: 'A' });
    const snapshot = structuredClone(ev);
    redactEvent(ev, '1');
    redactEvent(ev, '11');
    assert.deepEqual(ev, snapshot);
  });
  test('accepts a RoomVersion object and rejects unknown ids', () => {
    assert.deepEqual(redactEvent(base('x', { a: 1 }), ROOM_VERSIONS.get('11')!).content, {});
    assert.throws(() => redactEvent(base('x', {}), '99'));
  });
});

describe('content per event type', () => {
  const cases: Array<{ type: string; content: Record<string, unknown>; expect: (v: number) => Record<string, unknown> }> = [
    {
      type: 'm.room.member',
      content: {
        membership: 'join',
        displayname: 'Alice',
        avatar_url: 'mxc://a/b',
        join_authorised_via_users_server: '@admin:example.org',
        third_party_invite: { display_name: 'x', signed: { mxid: '@a:b', token: 't', signatures: {} } },
      },
      expect: (v) => ({
        membership: 'join',
        ...(v >= 9 ? { join_authorised_via_users_server: '@admin:example.org' } : {}),
        ...(v >= 11 ? { third_party_invite: { signed: { mxid: '@a:b', token: 't', signatures: {} } } } : {}),
      }),
    },
    {
      type: 'm.room.create',
      content: { creator: '@u:example.org', room_version: '5', 'm.federate': false, predecessor: { room_id: '!old' } },
      expect: (v) =>
        v >= 11
          ? { creator: '@u:example.org', room_version: '5', 'm.federate': false, predecessor: { room_id: '!old' } }
          : { creator: '@u:example.org' },
    },
    {
      type: 'm.room.join_rules',
      content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: '!x' }], other: 1 },
      expect: (v) => ({
        join_rule: 'restricted',
        ...(v >= 8 ? { allow: [{ type: 'm.room_membership', room_id: '!x' }] } : {}),
      }),
    },
    {
      type: 'm.room.power_levels',
      content: {
        ban: 50,
        events: { 'm.room.name': 50 },
        events_default: 0,
        invite: 0,
        kick: 50,
        redact: 50,
        state_default: 50,
        users: { '@u:example.org': 100 },
        users_default: 0,
        notifications: { room: 50 },
      },
      expect: (v) => ({
        ban: 50,
        events: { 'm.room.name': 50 },
        events_default: 0,
        ...(v >= 11 ? { invite: 0 } : {}),
        kick: 50,
        redact: 50,
        state_default: 50,
        users: { '@u:example.org': 100 },
        users_default: 0,
      }),
    },
    {
      type: 'm.room.aliases',
      content: { aliases: ['#a:example.org'], other: 1 },
      expect: (v) => (v <= 5 ? { aliases: ['#a:example.org'] } : {}),
    },
    {
      type: 'm.room.history_visibility',
      content: { history_visibility: 'shared', other: 1 },
      expect: () => ({ history_visibility: 'shared' }),
    },
    {
      type: 'm.room.redaction',
      content: { redacts: '$target', reason: 'spam' },
      expect: (v) => (v >= 11 ? { redacts: '$target' } : {}),
    },
    {
      type: 'm.room.message',
      content: { body: 'secret', msgtype: 'm.text', 'm.relates_to': { rel_type: 'm.thread', event_id: '$t' } },
      expect: () => ({}),
    },
    {
      type: 'm.room.name',
      content: { name: 'Room' },
      expect: () => ({}),
    },
  ];
  for (const c of cases) {
    for (const v of ALL_VERSIONS) {
      test(`${c.type} in v${v}`, () => {
        assert.deepEqual(redactEvent(base(c.type, c.content), v).content, c.expect(Number(v)));
      });
    }
  }
});

describe('edge cases', () => {
  test('third_party_invite without signed keeps an empty object (v11+), non-object is dropped', () => {
    assert.deepEqual(redactContent('m.room.member', { membership: 'invite', third_party_invite: { display_name: 'x' } }, '11'), {
      membership: 'invite',
      third_party_invite: {},
    });
    assert.deepEqual(redactContent('m.room.member', { membership: 'invite', third_party_invite: 'x' }, '11'), {
      membership: 'invite',
    });
    assert.deepEqual(redactContent('m.room.member', { membership: 'invite', third_party_invite: { signed: 1 } }, '10'), {
      membership: 'invite',
    });
  });

  test('non-object content becomes {}', () => {
    for (const content of [null, 'x', 5, [1, 2]]) {
      assert.deepEqual(redactEvent({ type: 'm.room.member', content }, '11').content, {});
    }
  });

  test('protected keys with falsy values are kept', () => {
    assert.deepEqual(redactContent('m.room.power_levels', { ban: 0, users: null }, '1'), { ban: 0, users: null });
  });

  test('inherited properties are never copied', () => {
    const proto = { membership: 'join' };
    const content = Object.create(proto) as Record<string, unknown>;
    assert.deepEqual(redactContent('m.room.member', content, '1'), {});
  });

  test('a "__proto__" key in create content survives v11 as an own property', () => {
    const content = JSON.parse('{"__proto__":{"x":1},"room_version":"11"}') as Record<string, unknown>;
    const out = redactContent('m.room.create', content, '11');
    assert.ok(Object.prototype.hasOwnProperty.call(out, '__proto__'));
    // Other event types never copy it.
    assert.deepEqual(Object.keys(redactContent('m.room.member', JSON.parse('{"__proto__":1}'), '11')), []);
  });

  test('redaction is idempotent', () => {
    for (const v of ALL_VERSIONS) {
      const once = redactEvent(base('m.room.member', { membership: 'join', displayname: 'x', third_party_invite: { signed: {} } }), v);
      assert.deepEqual(redactEvent(once, v), once);
    }
  });
});
