import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { authEventTypesFor, selectAuthEvents } from './auth-events.js';
import { ALICE, ALL_VERSIONS, BOB, CAROL, TestRoom, version, versions } from './test-fixtures.js';

const CREATE: [string, string] = ['m.room.create', ''];
const PL: [string, string] = ['m.room.power_levels', ''];
const JR: [string, string] = ['m.room.join_rules', ''];
const member = (u: string): [string, string] => ['m.room.member', u];

describe('authEventTypesFor', () => {
  test('create events have no auth events', () => {
    for (const rv of ALL_VERSIONS) {
      assert.deepEqual(authEventTypesFor({ type: 'm.room.create', sender: ALICE, state_key: '', content: {} }, rv), []);
    }
  });

  for (const rv of ALL_VERSIONS) {
    const withCreate = (rest: Array<[string, string]>): Array<[string, string]> => (rv.roomIdFromCreateEvent ? rest : [CREATE, ...rest]);

    test(`v${rv.id}: ordinary events cite create (not in v12), power levels, sender's membership`, () => {
      assert.deepEqual(authEventTypesFor({ type: 'm.room.message', sender: BOB, content: {} }, rv), withCreate([PL, member(BOB)]));
      assert.deepEqual(
        authEventTypesFor({ type: 'm.room.topic', sender: BOB, state_key: '', content: {} }, rv),
        withCreate([PL, member(BOB)]),
      );
    });

    test(`v${rv.id}: memberships add the target, and join rules for join/invite/knock`, () => {
      for (const m of ['join', 'invite', 'knock']) {
        assert.deepEqual(
          authEventTypesFor({ type: 'm.room.member', sender: ALICE, state_key: BOB, content: { membership: m } }, rv),
          withCreate([PL, member(ALICE), member(BOB), JR]),
          m,
        );
      }
      for (const m of ['leave', 'ban']) {
        assert.deepEqual(
          authEventTypesFor({ type: 'm.room.member', sender: ALICE, state_key: BOB, content: { membership: m } }, rv),
          withCreate([PL, member(ALICE), member(BOB)]),
          m,
        );
      }
      // Own membership: the sender and target entries coincide.
      assert.deepEqual(
        authEventTypesFor({ type: 'm.room.member', sender: BOB, state_key: BOB, content: { membership: 'join' } }, rv),
        withCreate([PL, member(BOB), JR]),
      );
    });

    test(`v${rv.id}: third party invites add the m.room.third_party_invite by token`, () => {
      const content = { membership: 'invite', third_party_invite: { signed: { token: 'abc', mxid: BOB } } };
      assert.deepEqual(
        authEventTypesFor({ type: 'm.room.member', sender: ALICE, state_key: BOB, content }, rv),
        withCreate([PL, member(ALICE), member(BOB), JR, ['m.room.third_party_invite', 'abc']]),
      );
      // Malformed ones cite nothing extra (the auth rules reject them).
      assert.deepEqual(
        authEventTypesFor({ type: 'm.room.member', sender: ALICE, state_key: BOB, content: { membership: 'invite', third_party_invite: {} } }, rv),
        withCreate([PL, member(ALICE), member(BOB), JR]),
      );
    });
  }

  for (const rv of versions(1, 7)) {
    test(`v${rv.id}: join_authorised_via_users_server is not cited`, () => {
      const content = { membership: 'join', join_authorised_via_users_server: CAROL };
      assert.deepEqual(
        authEventTypesFor({ type: 'm.room.member', sender: BOB, state_key: BOB, content }, rv),
        [CREATE, PL, member(BOB), JR],
      );
    });
  }

  for (const rv of versions(8)) {
    test(`v${rv.id}: restricted joins cite the authorising user's membership`, () => {
      const content = { membership: 'join', join_authorised_via_users_server: CAROL };
      const expected: Array<[string, string]> = [PL, member(BOB), JR, member(CAROL)];
      assert.deepEqual(
        authEventTypesFor({ type: 'm.room.member', sender: BOB, state_key: BOB, content }, rv),
        rv.roomIdFromCreateEvent ? expected : [CREATE, ...expected],
      );
      // Only for joins.
      assert.deepEqual(
        authEventTypesFor({ type: 'm.room.member', sender: BOB, state_key: BOB, content: { ...content, membership: 'leave' } }, rv).length,
        rv.roomIdFromCreateEvent ? 2 : 3,
      );
    });
  }
});

describe('selectAuthEvents', () => {
  test('picks the ids of the present state, skipping absent keys', () => {
    const rv = version('10');
    const room = TestRoom.standard(rv, 'invite');
    const pl = room.lookup('m.room.power_levels', '')!;
    const jr = room.lookup('m.room.join_rules', '')!;
    const aliceJoin = room.lookup('m.room.member', ALICE)!;
    const ids = selectAuthEvents({ type: 'm.room.member', sender: ALICE, state_key: BOB, content: { membership: 'invite' } }, room.lookup, rv);
    assert.deepEqual(ids, [room.create.event_id, pl.event_id, aliceJoin.event_id, jr.event_id]);
    const bobInvite = room.member(BOB, 'invite', ALICE);
    const joinIds = selectAuthEvents({ type: 'm.room.member', sender: BOB, state_key: BOB, content: { membership: 'join' } }, room.lookup, rv);
    assert.deepEqual(joinIds, [room.create.event_id, pl.event_id, bobInvite.event_id, jr.event_id]);
  });

  test('v12 never selects the create event', () => {
    const rv = version('12');
    const room = TestRoom.standard(rv);
    const ids = selectAuthEvents({ type: 'm.room.message', sender: ALICE, content: {} }, room.lookup, rv);
    assert.equal(ids.includes(room.create.event_id), false);
    assert.deepEqual(ids, [room.lookup('m.room.power_levels', '')!.event_id, room.lookup('m.room.member', ALICE)!.event_id]);
  });
});
