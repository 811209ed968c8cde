import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DefaultsEvaluation, evaluate, globRegex, splitKey, type EvalContext, type EvalEvent } from './evaluate.js';
import { buildRuleset, defaultRules } from './rules.js';

const ME = '@alice:example.org';
const ctx = (over: Partial<EvalContext> = {}): EvalContext => ({
  memberCount: 5,
  displayName: 'Alice Liddell',
  senderPowerLevel: 0,
  notificationLevels: {},
  ...over,
});
const msg = (content: Record<string, unknown>, over: Partial<EvalEvent> = {}): EvalEvent => ({
  type: 'm.room.message',
  sender: '@bob:example.org',
  room_id: '!room:example.org',
  content: { msgtype: 'm.text', ...content },
  ...over,
});
const rules = defaultRules(ME);
const run = (e: EvalEvent, c = ctx()) => evaluate(rules, e, ME, c);

describe('push rule evaluation with the default rules', () => {
  it('lists the default rules in the spec order', () => {
    assert.deepEqual(
      rules.override.map((r) => r.rule_id),
      [
        '.m.rule.master',
        '.m.rule.suppress_notices',
        '.m.rule.invite_for_me',
        '.m.rule.member_event',
        '.m.rule.is_user_mention',
        '.m.rule.contains_display_name',
        '.m.rule.is_room_mention',
        '.m.rule.roomnotif',
        '.m.rule.tombstone',
        '.m.rule.reaction',
        '.m.rule.room.server_acl',
        '.m.rule.suppress_edits',
      ],
    );
    assert.deepEqual(rules.content.map((r) => r.rule_id), ['.m.rule.contains_user_name']);
    assert.deepEqual(
      rules.underride.map((r) => r.rule_id),
      ['.m.rule.call', '.m.rule.encrypted_room_one_to_one', '.m.rule.room_one_to_one', '.m.rule.message', '.m.rule.encrypted'],
    );
    assert.equal(rules.override[0]!.enabled, false);
  });

  it('notifies without highlight for a plain group message', () => {
    const o = run(msg({ body: 'lunch?' }));
    assert.equal(o.ruleId, '.m.rule.message');
    assert.deepEqual([o.notify, o.highlight], [true, false]);
  });

  it('uses the one-to-one rule with a sound in a two-member room', () => {
    const o = run(msg({ body: 'hi' }), ctx({ memberCount: 2 }));
    assert.equal(o.ruleId, '.m.rule.room_one_to_one');
    assert.ok(o.actions.some((a) => typeof a === 'object' && a.set_tweak === 'sound'));
  });

  it('does not notify for notices, reactions, edits or member events', () => {
    assert.equal(run(msg({ msgtype: 'm.notice', body: 'bot says' })).notify, false);
    assert.equal(run({ type: 'm.reaction', sender: '@bob:example.org', room_id: '!r:x', content: {} }).notify, false);
    assert.equal(run(msg({ body: '* fixed', 'm.relates_to': { rel_type: 'm.replace', event_id: '$x' } })).ruleId, '.m.rule.suppress_edits');
    assert.equal(run({ type: 'm.room.member', sender: '@bob:example.org', state_key: '@bob:example.org', room_id: '!r:x', content: { membership: 'join' } }).notify, false);
  });

  it('notifies for an invite of this user', () => {
    const o = run({ type: 'm.room.member', sender: '@bob:example.org', state_key: ME, room_id: '!r:x', content: { membership: 'invite' } });
    assert.equal(o.ruleId, '.m.rule.invite_for_me');
    assert.equal(o.notify, true);
  });

  it('highlights an m.mentions mention and ignores the body then', () => {
    const o = run(msg({ body: 'hey', 'm.mentions': { user_ids: [ME] } }));
    assert.equal(o.ruleId, '.m.rule.is_user_mention');
    assert.equal(o.highlight, true);
    // With m.mentions present, the legacy display-name and user-name rules do not apply.
    const legacy = run(msg({ body: 'Alice Liddell and alice', 'm.mentions': {} }));
    assert.equal(legacy.highlight, false);
  });

  it('highlights the display name and the localpart as whole words (legacy rules)', () => {
    assert.equal(run(msg({ body: 'ping alice liddell!' })).ruleId, '.m.rule.contains_display_name');
    assert.equal(run(msg({ body: 'thanks ALICE.' })).ruleId, '.m.rule.contains_user_name');
    assert.equal(run(msg({ body: 'malice aforethought' })).highlight, false);
  });

  it('lets @room highlight only from senders with the notification power level', () => {
    assert.equal(run(msg({ body: '@room lunch' }), ctx({ senderPowerLevel: 50 })).ruleId, '.m.rule.roomnotif');
    assert.equal(run(msg({ body: '@room lunch' }), ctx({ senderPowerLevel: 49 })).highlight, false);
    assert.equal(run(msg({ body: 'x', 'm.mentions': { room: true } }), ctx({ senderPowerLevel: 10, notificationLevels: { room: 10 } })).ruleId, '.m.rule.is_room_mention');
  });

  it('highlights a tombstone and rings for a call', () => {
    assert.equal(run({ type: 'm.room.tombstone', sender: '@bob:x', state_key: '', room_id: '!r:x', content: {} }).highlight, true);
    const call = run({ type: 'm.call.invite', sender: '@bob:x', room_id: '!r:x', content: {} });
    assert.deepEqual(call.actions, ['notify', { set_tweak: 'sound', value: 'ring' }]);
  });

  it('notifies for encrypted events, with a sound in one-to-one rooms', () => {
    assert.equal(run({ type: 'm.room.encrypted', sender: '@bob:x', room_id: '!r:x', content: {} }).ruleId, '.m.rule.encrypted');
    assert.equal(run({ type: 'm.room.encrypted', sender: '@bob:x', room_id: '!r:x', content: {} }, ctx({ memberCount: 2 })).ruleId, '.m.rule.encrypted_room_one_to_one');
  });

  it('stops everything when the master rule is enabled', () => {
    const rs = buildRuleset(ME, [], [{ kind: 'override', rule_id: '.m.rule.master', enabled: true, actions: null }]);
    const o = evaluate(rs, msg({ body: 'alice' }), ME, ctx());
    assert.equal(o.ruleId, '.m.rule.master');
    assert.equal(o.notify, false);
  });

  it('puts user rules before defaults of their kind, but after the master rule', () => {
    const rs = buildRuleset(
      ME,
      [{ kind: 'room', rule_id: '!quiet:x', conditions: null, pattern: null, actions: [], enabled: true }],
      [],
    );
    assert.equal(evaluate(rs, msg({ body: 'hi' }, { room_id: '!quiet:x' }), ME, ctx()).notify, false);
    assert.equal(evaluate(rs, msg({ body: 'hi' }, { room_id: '!loud:x' }), ME, ctx()).notify, true);
    const ov = buildRuleset(ME, [{ kind: 'override', rule_id: 'mine', conditions: [], pattern: null, actions: ['notify'], enabled: true }], []);
    assert.deepEqual(ov.override.slice(0, 2).map((r) => r.rule_id), ['.m.rule.master', 'mine']);
  });
});

describe('push conditions', () => {
  it('matches globs on whole values, case-insensitively', () => {
    assert.ok(globRegex('m.room.*', false).test('m.room.message'));
    assert.ok(globRegex('M.ROOM.MESSAGE', false).test('m.room.message'));
    assert.ok(!globRegex('m.room', false).test('m.room.message'));
    assert.ok(globRegex('c?t', false).test('cat'));
    assert.ok(!globRegex('c?t', false).test('cart'));
    assert.ok(globRegex('a.b', false).test('a.b') && !globRegex('a.b', false).test('axb'));
  });

  it('splits keys on dots, with \\. as a literal dot', () => {
    assert.deepEqual(splitKey('content.m\\.mentions.user_ids'), ['content', 'm.mentions', 'user_ids']);
    assert.deepEqual(splitKey('a\\\\.b'), ['a\\', 'b']);
  });

  it('compares event_property_is exactly and by type', () => {
    const rs = buildRuleset(
      ME,
      [{ kind: 'override', rule_id: 'is', conditions: [{ kind: 'event_property_is', key: 'content.n', value: 1 }], pattern: null, actions: ['notify'], enabled: true }],
      [],
    );
    assert.equal(evaluate(rs, msg({ n: 1 }, { type: 'x' }), ME, ctx()).ruleId, 'is');
    assert.equal(evaluate(rs, msg({ n: '1' }, { type: 'x' }), ME, ctx()).ruleId, null);
  });

  it('evaluates room_member_count comparisons', () => {
    const mk = (is: string) =>
      buildRuleset(ME, [{ kind: 'override', rule_id: 'c', conditions: [{ kind: 'room_member_count', is }], pattern: null, actions: ['notify'], enabled: true }], []);
    const e = msg({}, { type: 'x' });
    assert.equal(evaluate(mk('<=10'), e, ME, ctx({ memberCount: 10 })).ruleId, 'c');
    assert.equal(evaluate(mk('>10'), e, ME, ctx({ memberCount: 10 })).ruleId, null);
    assert.equal(evaluate(mk('==3'), e, ME, ctx({ memberCount: 3 })).ruleId, 'c');
    assert.equal(evaluate(mk('bogus'), e, ME, ctx({ memberCount: 3 })).ruleId, null);
  });

  it('never matches a condition kind it does not know', () => {
    const rs = buildRuleset(ME, [{ kind: 'override', rule_id: 'u', conditions: [{ kind: 'org.example.future' }], pattern: null, actions: ['notify'], enabled: true }], []);
    assert.notEqual(evaluate(rs, msg({ body: 'x' }), ME, ctx()).ruleId, 'u');
  });
});

describe('evaluation prepared once for members on the default rules', () => {
  // Members, with display names chosen to hit the ASCII shortcut, its non-ASCII fallback
  // (Kelvin sign, long s: code points that fold to ASCII letters), regex characters and none.
  const members: [string, string | null][] = [
    ['@alice:example.org', 'Alice Liddell'],
    ['@bob:example.org', null],
    ['@sam:example.org', 'Sam'],
    ['@kim:example.org', 'Kim (ops)'],
    ['@zoë:example.org', 'Zoë'],
    ['@x.y:example.org', 'a+b?'],
    ['@dev_2:example.org', 'dev_2'],
    ['@a*b:example.org', 'R2D2'],
  ];
  const bodies = [
    'hello all', 'ping alice liddell!', 'ALICE?', 'malice', 'ſam, are you there', 'ſ', '\u212Aim (ops) please', 'kim (ops)',
    'zoë!', 'ZOË', '@room standup', 'a+b? yes', 'x.y here', 'BOB', 'bob1', '', 'Sam\nnext line',
    'dev_2 and DEV_2x', 'dev_2x only', 'ask r2d2.', 'aXXb was here', 'a*b', '_bob_', 'bob_', '(bob)',
  ];
  const events: EvalEvent[] = [];
  for (const body of bodies) {
    events.push(msg({ body }));
    events.push(msg({ body, 'm.mentions': { user_ids: ['@sam:example.org'] } }));
    events.push(msg({ body, 'm.mentions': { user_ids: ['@bob:example.org', '@dev_2:example.org', 7] } }));
    events.push(msg({ body, msgtype: 'm.notice' }));
    events.push(msg({ body }, { type: 'm.room.encrypted' }));
  }
  events.push(msg({}, { type: 'm.room.member', state_key: '@bob:example.org', content: { membership: 'invite' } }));
  events.push(msg({}, { type: 'M.Room.Member', state_key: '@zoë:example.org', content: { membership: 'invite' } }));
  events.push(msg({}, { type: 'm.room.member', state_key: '@sam:example.org', content: { membership: 'join', body: 'sam' } }));
  events.push(msg({}, { type: 'm.room.tombstone', state_key: '', content: { body: 'moved' } }));
  events.push(msg({ 'm.mentions': { room: true } }));
  events.push(msg({ 'm.relates_to': { rel_type: 'm.replace' }, body: 'alice' }));
  events.push(msg({}, { type: 'm.call.invite' }));

  it('gives every member the outcome evaluate gives, for every event and room context', () => {
    let compared = 0;
    for (const memberCount of [2, 5]) {
      for (const senderPowerLevel of [0, 50]) {
        for (const e of events) {
          const base = ctx({ memberCount, senderPowerLevel });
          let prepared: DefaultsEvaluation | undefined;
          for (const [userId, displayName] of members) {
            const rs = defaultRules(userId);
            const c = { ...base, displayName };
            prepared ??= new DefaultsEvaluation(rs, e, c);
            assert.deepEqual(prepared.outcome(rs, userId, c), evaluate(rs, e, userId, c), `${userId} ${JSON.stringify(e.content)}`);
            compared++;
          }
        }
      }
    }
    assert.ok(compared > 400);
  });

  it('still matches names that only match through Unicode case folding', () => {
    const c = ctx({ displayName: 'Sam' });
    const rs = defaultRules('@sam:example.org');
    const e = msg({ body: 'ſam, are you there' });
    assert.equal(new DefaultsEvaluation(rs, e, c).outcome(rs, '@sam:example.org', c).ruleId, '.m.rule.contains_display_name');
  });
});
