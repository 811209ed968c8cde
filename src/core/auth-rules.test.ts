import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkAuthEventsList,
  checkEventAgainstAuthEvents,
  checkEventAuth,
  checkEventSizeLimits,
  checkRedactionApplies,
  checkRequiredSignatures,
  redactedEventId,
  requiredSigningServers,
} from './auth-rules.js';
import { selectAuthEvents } from './auth-events.js';
import { encodeBase64 } from './base64.js';
import { generateSigningKey, signJson } from './signing.js';
import type { AuthResult, JsonObject, RoomEvent } from './types.js';
import type { RoomVersion } from './room-versions.js';
import { ALICE, ALL_VERSIONS, BOB, CAROL, DAVE, TestRoom, creatorLevels, makeCreate, makeEvent, version, versions } from './test-fixtures.js';

function allowed(result: AuthResult, what = ''): void {
  assert.equal(result.allowed, true, `${what} expected allowed, got: ${result.allowed ? '' : result.reason}`);
}

function refused(result: AuthResult, reason?: RegExp, what = ''): void {
  assert.equal(result.allowed, false, `${what} expected refused`);
  if (reason && !result.allowed) assert.match(result.reason, reason, what);
}

function check(room: TestRoom, event: RoomEvent): AuthResult {
  return checkEventAuth(event, room.lookup, room.version);
}

const v = (id: string): RoomVersion => version(id);

describe('m.room.create', () => {
  for (const rv of ALL_VERSIONS) {
    test(`v${rv.id}: a well-formed create event is allowed`, () => {
      allowed(checkEventAuth(makeCreate(rv), () => undefined, rv));
    });

    test(`v${rv.id}: prev_events are refused`, () => {
      const create = { ...makeCreate(rv), prev_events: ['$other'] };
      refused(checkEventAuth(create, () => undefined, rv), /prev_events/);
    });

    test(`v${rv.id}: unknown room_version is refused`, () => {
      refused(checkEventAuth(makeCreate(rv, ALICE, { room_version: '99' }), () => undefined, rv), /room_version/);
      refused(checkEventAuth(makeCreate(rv, ALICE, { room_version: 11 }), () => undefined, rv), /room_version/);
    });

    test(`v${rv.id}: absent room_version is allowed (means v1)`, () => {
      const create = makeCreate(rv);
      delete create.content['room_version'];
      allowed(checkEventAuth(create, () => undefined, rv));
    });
  }

  for (const rv of versions(1, 11)) {
    test(`v${rv.id}: room_id domain must match the sender's`, () => {
      refused(checkEventAuth(makeCreate(rv, ALICE, {}, '!room:b.example'), () => undefined, rv), /domain/);
      allowed(checkEventAuth(makeCreate(rv, ALICE, {}, '!room:a.example'), () => undefined, rv));
    });
  }

  for (const rv of versions(1, 10)) {
    test(`v${rv.id}: content.creator is required`, () => {
      const create = makeCreate(rv);
      delete create.content['creator'];
      refused(checkEventAuth(create, () => undefined, rv), /creator/);
    });
  }

  for (const rv of versions(11)) {
    test(`v${rv.id}: content.creator is not required`, () => {
      const create = makeCreate(rv);
      assert.equal('creator' in create.content, false);
      allowed(checkEventAuth(create, () => undefined, rv));
    });
  }

  test('v12: a create event carrying a room_id other than its own id is refused', () => {
    const rv = v('12');
    const create = makeCreate(rv);
    refused(checkEventAuth({ ...create, room_id: '!abc:a.example' }, () => undefined, rv), /room_id/);
  });

  test('v12: additional_creators must be an array of valid user ids', () => {
    const rv = v('12');
    allowed(checkEventAuth(makeCreate(rv, ALICE, { additional_creators: [BOB, CAROL] }), () => undefined, rv));
    allowed(checkEventAuth(makeCreate(rv, ALICE, { additional_creators: [] }), () => undefined, rv));
    allowed(checkEventAuth(makeCreate(rv, ALICE, { additional_creators: ['@a:[::1]:8448', '@Old.User:1.2.3.4', '@x:h.example:80'] }), () => undefined, rv));
    for (const bad of [BOB, [BOB, 'bob'], ['@bob'], [42], ['@bob:bad_host!'], [null], ['#room:a.example'], ['@a:[::1'], ['@a:h:port'], [`@${'x'.repeat(250)}:a.example`]] as JsonObject[keyof JsonObject][]) {
      refused(
        checkEventAuth(makeCreate(rv, ALICE, { additional_creators: bad }), () => undefined, rv),
        /additional_creators/,
        JSON.stringify(bad),
      );
    }
  });

  test('v11: additional_creators means nothing and is not validated', () => {
    const rv = v('11');
    allowed(checkEventAuth(makeCreate(rv, ALICE, { additional_creators: 'nonsense' }), () => undefined, rv));
  });
});

describe('create event and room id in the auth state', () => {
  for (const rv of ALL_VERSIONS) {
    test(`v${rv.id}: an event without a create event in its auth state is refused`, () => {
      const room = TestRoom.standard(rv);
      room.remove('m.room.create', '');
      refused(check(room, room.send({ type: 'm.room.message', sender: ALICE, content: { body: 'hi' } })), /m\.room\.create/);
    });
  }

  test('v12: the room id must name the create event', () => {
    const room = TestRoom.standard(v('12'));
    const msg = room.send({ type: 'm.room.message', sender: ALICE, content: {} });
    allowed(check(room, msg));
    refused(check(room, { ...msg, room_id: '!somethingelse' }), /does not name the create event/);
  });

  for (const rv of versions(1, 11)) {
    test(`v${rv.id}: a create event of another room is refused`, () => {
      const room = TestRoom.standard(rv);
      const msg = room.send({ type: 'm.room.message', sender: ALICE, content: {} });
      allowed(check(room, msg));
      refused(check(room, { ...msg, room_id: '!other:a.example' }), /belongs to room/);
    });
  }

  test('v11: the room id is not derived from the create event', () => {
    const room = TestRoom.standard(v('11'));
    allowed(check(room, room.send({ type: 'm.room.message', sender: ALICE, content: {} })));
  });
});

describe('m.federate', () => {
  for (const rv of [v('1'), v('6'), v('11'), v('12')]) {
    test(`v${rv.id}: m.federate false refuses senders from other servers`, () => {
      const room = TestRoom.standard(rv, 'public', { createContent: { 'm.federate': false } });
      room.member(BOB, 'join');
      room.member(DAVE, 'join');
      refused(check(room, room.send({ type: 'm.room.message', sender: BOB, content: {} })), /not federated/);
      allowed(check(room, room.send({ type: 'm.room.message', sender: DAVE, content: {} })));
      // Joining is a sender-based event too.
      room.remove('m.room.member', BOB);
      refused(check(room, room.memberEvent(BOB, 'join')), /not federated/);
    });

    test(`v${rv.id}: m.federate false also refuses memberships of remote users (Synapse)`, () => {
      const room = TestRoom.standard(rv, 'public', { createContent: { 'm.federate': false } });
      refused(check(room, room.memberEvent(BOB, 'invite', ALICE)), /not federated/);
      allowed(check(room, room.memberEvent(DAVE, 'invite', ALICE)));
    });

    test(`v${rv.id}: m.federate true or absent lets remote senders in`, () => {
      for (const createContent of [{ 'm.federate': true }, {}] as JsonObject[]) {
        const room = TestRoom.standard(rv, 'public', { createContent });
        room.member(BOB, 'join');
        allowed(check(room, room.send({ type: 'm.room.message', sender: BOB, content: {} })));
      }
    });

    test(`v${rv.id}: a non-boolean m.federate does not federate (Synapse: only true does)`, () => {
      const room = TestRoom.standard(rv, 'public', { createContent: { 'm.federate': 'yes' } });
      room.member(BOB, 'join');
      refused(check(room, room.send({ type: 'm.room.message', sender: BOB, content: {} })), /not federated/);
    });
  }
});

describe('m.room.aliases', () => {
  for (const rv of versions(1, 5)) {
    test(`v${rv.id}: allowed for the sender's own server even when not joined`, () => {
      const room = TestRoom.standard(rv);
      const ev = room.send({ type: 'm.room.aliases', sender: BOB, state_key: 'b.example', content: { aliases: ['#x:b.example'] } });
      allowed(check(room, ev));
    });

    test(`v${rv.id}: refused for another server's state_key, an empty one, or none`, () => {
      const room = TestRoom.standard(rv);
      refused(check(room, room.send({ type: 'm.room.aliases', sender: ALICE, state_key: 'b.example', content: {} })), /state_key/);
      refused(check(room, room.send({ type: 'm.room.aliases', sender: ALICE, state_key: '', content: {} })), /non-empty/);
      refused(check(room, room.send({ type: 'm.room.aliases', sender: ALICE, content: {} })), /state event/);
    });
  }

  for (const rv of versions(6)) {
    test(`v${rv.id}: aliases follow the ordinary rules`, () => {
      const room = TestRoom.standard(rv);
      refused(
        check(room, room.send({ type: 'm.room.aliases', sender: BOB, state_key: 'b.example', content: {} })),
        /not joined/,
      );
      room.member(BOB, 'join');
      refused(
        check(room, room.send({ type: 'm.room.aliases', sender: BOB, state_key: 'b.example', content: {} })),
        /below the 50 required/,
      );
      allowed(check(room, room.send({ type: 'm.room.aliases', sender: ALICE, state_key: 'b.example', content: {} })));
    });
  }
});

describe('m.room.member: basics', () => {
  for (const rv of ALL_VERSIONS) {
    test(`v${rv.id}: refused without membership or state_key, or with unknown membership`, () => {
      const room = TestRoom.standard(rv);
      refused(check(room, room.send({ type: 'm.room.member', sender: BOB, state_key: BOB, content: {} })), /no membership/);
      refused(check(room, room.send({ type: 'm.room.member', sender: BOB, content: { membership: 'join' } })), /state_key/);
      room.member(BOB, 'join');
      refused(check(room, room.memberEvent(BOB, 'dance')), /unknown membership/);
    });
  }
});

describe("m.room.member: the creator's first join", () => {
  for (const rv of ALL_VERSIONS) {
    test(`v${rv.id}: the creator may join right after the create event`, () => {
      const room = new TestRoom(rv);
      allowed(check(room, room.memberEvent(ALICE, 'join', ALICE, {}, [room.create.event_id])));
    });

    test(`v${rv.id}: not when the only prev event is something else`, () => {
      const room = new TestRoom(rv);
      // Without join rules the room is invite-only, so the fallback rules refuse.
      refused(check(room, room.memberEvent(ALICE, 'join', ALICE, {}, ['$elsewhere'])), /not invited/);
      refused(check(room, room.memberEvent(ALICE, 'join', ALICE, {}, [room.create.event_id, '$x'])), /not invited/);
    });

    test(`v${rv.id}: another user cannot use the creator rule`, () => {
      const room = new TestRoom(rv);
      refused(check(room, room.memberEvent(BOB, 'join', BOB, {}, [room.create.event_id])), /not invited/);
    });
  }

  for (const rv of versions(1, 10)) {
    test(`v${rv.id}: the creator is content.creator, not the sender`, () => {
      const room = new TestRoom(rv, { createContent: { creator: BOB } });
      allowed(check(room, room.memberEvent(BOB, 'join', BOB, {}, [room.create.event_id])));
      refused(check(room, room.memberEvent(ALICE, 'join', ALICE, {}, [room.create.event_id])));
    });
  }

  for (const rv of versions(11)) {
    test(`v${rv.id}: the creator is the sender, whatever content.creator says`, () => {
      const room = new TestRoom(rv, { createContent: { creator: BOB } });
      allowed(check(room, room.memberEvent(ALICE, 'join', ALICE, {}, [room.create.event_id])));
      refused(check(room, room.memberEvent(BOB, 'join', BOB, {}, [room.create.event_id])));
    });
  }
});

describe('m.room.member: join', () => {
  for (const rv of ALL_VERSIONS) {
    test(`v${rv.id}: cannot join someone else`, () => {
      const room = TestRoom.standard(rv, 'public');
      refused(check(room, room.memberEvent(BOB, 'join', ALICE)), /cannot make/);
    });

    test(`v${rv.id}: banned users cannot join, even a public room`, () => {
      const room = TestRoom.standard(rv, 'public');
      room.member(BOB, 'ban', ALICE);
      refused(check(room, room.memberEvent(BOB, 'join')), /banned/);
    });

    test(`v${rv.id}: public rooms let anyone join`, () => {
      const room = TestRoom.standard(rv, 'public');
      allowed(check(room, room.memberEvent(BOB, 'join')));
      room.member(BOB, 'leave');
      allowed(check(room, room.memberEvent(BOB, 'join')));
    });

    test(`v${rv.id}: invite rooms need an invite (or an existing join)`, () => {
      const room = TestRoom.standard(rv, 'invite');
      refused(check(room, room.memberEvent(BOB, 'join')), /not invited/);
      room.member(BOB, 'invite', ALICE);
      allowed(check(room, room.memberEvent(BOB, 'join')));
      room.member(BOB, 'join');
      allowed(check(room, room.memberEvent(BOB, 'join', BOB, { displayname: 'Bob' })));
      room.member(BOB, 'leave');
      refused(check(room, room.memberEvent(BOB, 'join')), /not invited/);
    });

    test(`v${rv.id}: without a join rules event the room is invite-only`, () => {
      const room = TestRoom.standard(rv);
      room.remove('m.room.join_rules', '');
      refused(check(room, room.memberEvent(BOB, 'join')), /not invited/);
      room.member(BOB, 'invite', ALICE);
      allowed(check(room, room.memberEvent(BOB, 'join')));
    });

    test(`v${rv.id}: private and unknown join rules refuse even invited users`, () => {
      for (const rule of ['private', 'bogus']) {
        const room = TestRoom.standard(rv, rule);
        room.member(BOB, 'invite', ALICE);
        refused(check(room, room.memberEvent(BOB, 'join')), /does not allow/, rule);
      }
    });

    test(`v${rv.id}: a malformed join_rule (null) refuses joins, an absent one means invite`, () => {
      const room = TestRoom.standard(rv);
      room.set(room.send({ type: 'm.room.join_rules', sender: ALICE, state_key: '', content: { join_rule: null } }));
      room.member(BOB, 'invite', ALICE);
      refused(check(room, room.memberEvent(BOB, 'join')), /does not allow/);
      room.set(room.send({ type: 'm.room.join_rules', sender: ALICE, state_key: '', content: {} }));
      allowed(check(room, room.memberEvent(BOB, 'join')));
    });
  }

  for (const rv of versions(1, 6)) {
    test(`v${rv.id}: the knock join rule is unknown, so even invited users cannot join`, () => {
      const room = TestRoom.standard(rv, 'knock');
      room.member(BOB, 'invite', ALICE);
      refused(check(room, room.memberEvent(BOB, 'join')), /does not allow/);
    });
  }

  for (const rv of versions(7)) {
    test(`v${rv.id}: knock rooms behave like invite rooms for joins`, () => {
      const room = TestRoom.standard(rv, 'knock');
      refused(check(room, room.memberEvent(BOB, 'join')), /not invited/);
      room.member(BOB, 'invite', ALICE);
      allowed(check(room, room.memberEvent(BOB, 'join')));
    });
  }

  const restrictedCases: Array<[string, number]> = [
    ['restricted', 8],
    ['knock_restricted', 10],
  ];
  for (const [rule, since] of restrictedCases) {
    for (const rv of versions(since - 1, since - 1)) {
      test(`v${rv.id}: the ${rule} join rule does not exist yet`, () => {
        const room = TestRoom.standard(rv, rule);
        room.member(BOB, 'invite', ALICE);
        refused(check(room, room.memberEvent(BOB, 'join', BOB, { join_authorised_via_users_server: ALICE })), /does not allow/);
      });
    }

    for (const rv of versions(since)) {
      test(`v${rv.id}: ${rule} allows invited or joined users without an authoriser`, () => {
        const room = TestRoom.standard(rv, rule);
        room.member(BOB, 'invite', ALICE);
        allowed(check(room, room.memberEvent(BOB, 'join')));
        room.member(BOB, 'join');
        allowed(check(room, room.memberEvent(BOB, 'join')));
      });

      test(`v${rv.id}: ${rule} join via an authorising user with the invite level`, () => {
        const room = TestRoom.standard(rv, rule);
        allowed(check(room, room.memberEvent(BOB, 'join', BOB, { join_authorised_via_users_server: ALICE })));
      });

      test(`v${rv.id}: ${rule} refuses without an authoriser`, () => {
        const room = TestRoom.standard(rv, rule);
        refused(check(room, room.memberEvent(BOB, 'join')), /join_authorised_via_users_server/);
      });

      test(`v${rv.id}: ${rule} refuses an authoriser who is not joined`, () => {
        const room = TestRoom.standard(rv, rule);
        room.member(CAROL, 'leave');
        refused(check(room, room.memberEvent(BOB, 'join', BOB, { join_authorised_via_users_server: CAROL })), /not joined/);
      });

      test(`v${rv.id}: ${rule} refuses an authoriser below the invite level`, () => {
        const room = TestRoom.standard(rv, rule, { powerLevels: { users: creatorLevels(rv), invite: 50 } });
        room.member(CAROL, 'join');
        refused(check(room, room.memberEvent(BOB, 'join', BOB, { join_authorised_via_users_server: CAROL })), /below the invite level/);
        allowed(check(room, room.memberEvent(BOB, 'join', BOB, { join_authorised_via_users_server: ALICE })));
      });

      test(`v${rv.id}: ${rule} still refuses banned users`, () => {
        const room = TestRoom.standard(rv, rule);
        room.member(BOB, 'ban', ALICE);
        refused(check(room, room.memberEvent(BOB, 'join', BOB, { join_authorised_via_users_server: ALICE })), /banned/);
      });
    }
  }
});

describe('m.room.member: invite', () => {
  for (const rv of ALL_VERSIONS) {
    test(`v${rv.id}: a joined user at the invite level may invite`, () => {
      const room = TestRoom.standard(rv, 'invite');
      allowed(check(room, room.memberEvent(BOB, 'invite', ALICE)));
      room.member(BOB, 'leave');
      allowed(check(room, room.memberEvent(BOB, 'invite', ALICE)));
    });

    test(`v${rv.id}: the inviter must be joined`, () => {
      const room = TestRoom.standard(rv, 'invite');
      room.member(CAROL, 'invite', ALICE);
      refused(check(room, room.memberEvent(BOB, 'invite', CAROL)), /not joined/);
    });

    test(`v${rv.id}: joined or banned targets cannot be invited`, () => {
      const room = TestRoom.standard(rv, 'invite');
      room.member(BOB, 'join');
      refused(check(room, room.memberEvent(BOB, 'invite', ALICE)), /already joined/);
      room.member(BOB, 'ban', ALICE);
      refused(check(room, room.memberEvent(BOB, 'invite', ALICE)), /banned/);
    });

    test(`v${rv.id}: the inviter needs the invite level`, () => {
      const creator = creatorLevels(rv);
      const room = TestRoom.standard(rv, 'invite', { powerLevels: { users: { ...creator, [CAROL]: 10 }, invite: 20 } });
      room.member(CAROL, 'join');
      refused(check(room, room.memberEvent(BOB, 'invite', CAROL)), /below the invite level 20/);
      room.powerLevels({ users: { ...creator, [CAROL]: 20 }, invite: 20 });
      allowed(check(room, room.memberEvent(BOB, 'invite', CAROL)));
    });
  }
});

describe('m.room.member: third party invites', () => {
  const idServerKey = generateSigningKey('0');
  const otherKey = generateSigningKey('0');

  function tpiRoom(rv: RoomVersion, inviteContent?: JsonObject): TestRoom {
    const room = TestRoom.standard(rv, 'invite');
    room.set(
      room.send({
        type: 'm.room.third_party_invite',
        sender: ALICE,
        state_key: 'tok',
        content: inviteContent ?? { display_name: 'b...', key_validity_url: 'https://id/', public_key: encodeBase64(idServerKey.publicKey) },
      }),
    );
    return room;
  }

  function signedBlock(mxid = BOB, token = 'tok', key = idServerKey): JsonObject {
    return signJson({ mxid, token, sender: ALICE }, 'id.example', key) as unknown as JsonObject;
  }

  function tpiInvite(room: TestRoom, signed: JsonObject, sender = ALICE, target = BOB): RoomEvent {
    return room.memberEvent(target, 'invite', sender, { third_party_invite: { display_name: 'b...', signed } });
  }

  for (const rv of ALL_VERSIONS) {
    test(`v${rv.id}: a signature by the invite's public key allows the invite`, () => {
      const room = tpiRoom(rv);
      allowed(check(room, tpiInvite(room, signedBlock())));
    });

    test(`v${rv.id}: keys listed in public_keys count too, and URL-safe base64 decodes`, () => {
      const room = tpiRoom(rv, {
        public_key: encodeBase64(otherKey.publicKey),
        public_keys: [{ public_key: Buffer.from(idServerKey.publicKey).toString('base64url') }],
      });
      allowed(check(room, tpiInvite(room, signedBlock())));
    });

    test(`v${rv.id}: a signature by another key is refused`, () => {
      const room = tpiRoom(rv);
      refused(check(room, tpiInvite(room, signedBlock(BOB, 'tok', otherKey))), /no valid signature/);
    });

    test(`v${rv.id}: a tampered signed block is refused`, () => {
      const room = tpiRoom(rv);
      const signed = signedBlock();
      refused(check(room, tpiInvite(room, { ...signed, extra: 'x' })), /no valid signature/);
    });

    test(`v${rv.id}: shape checks on third_party_invite`, () => {
      const room = tpiRoom(rv);
      refused(check(room, room.memberEvent(BOB, 'invite', ALICE, { third_party_invite: 'x' })), /object/);
      refused(check(room, room.memberEvent(BOB, 'invite', ALICE, { third_party_invite: {} })), /signed/);
      refused(check(room, tpiInvite(room, { mxid: BOB })), /mxid and token/);
      refused(check(room, tpiInvite(room, signedBlock(CAROL))), /does not match state_key/);
      refused(check(room, tpiInvite(room, signedBlock(BOB, 'other'))), /no m\.room\.third_party_invite/);
    });

    test(`v${rv.id}: only the sender of the m.room.third_party_invite may use it`, () => {
      const room = tpiRoom(rv);
      room.member(CAROL, 'join');
      refused(check(room, tpiInvite(room, signedBlock(), CAROL)), /did not send/);
    });

    test(`v${rv.id}: banned targets cannot be invited by third party invite`, () => {
      const room = tpiRoom(rv);
      room.member(BOB, 'ban', ALICE);
      refused(check(room, tpiInvite(room, signedBlock())), /banned/);
    });

    test(`v${rv.id}: the inviter's membership and level do not matter for a valid third party invite`, () => {
      // The rule allows as soon as the signature checks out (spec rule "invite" 1.7).
      const room = tpiRoom(rv);
      room.member(ALICE, 'leave');
      allowed(check(room, tpiInvite(room, signedBlock())));
    });
  }
});

describe('m.room.member: leave and kick', () => {
  for (const rv of ALL_VERSIONS) {
    test(`v${rv.id}: users may leave from join or invite`, () => {
      const room = TestRoom.standard(rv);
      room.member(BOB, 'join');
      allowed(check(room, room.memberEvent(BOB, 'leave')));
      room.member(BOB, 'invite', ALICE);
      allowed(check(room, room.memberEvent(BOB, 'leave')));
    });

    test(`v${rv.id}: users cannot leave from leave, ban or nothing`, () => {
      const room = TestRoom.standard(rv);
      refused(check(room, room.memberEvent(BOB, 'leave')), /cannot leave/);
      room.member(BOB, 'leave');
      refused(check(room, room.memberEvent(BOB, 'leave')), /cannot leave/);
      room.member(BOB, 'ban', ALICE);
      refused(check(room, room.memberEvent(BOB, 'leave')), /cannot leave/);
    });

    test(`v${rv.id}: kicking needs a joined sender, the kick level and a higher level than the target`, () => {
      const creator = creatorLevels(rv);
      const room = TestRoom.standard(rv, 'public', { powerLevels: { users: { ...creator, [CAROL]: 50, [DAVE]: 50 }, kick: 50 } });
      room.member(BOB, 'join');
      room.member(CAROL, 'join');
      room.member(DAVE, 'join');
      allowed(check(room, room.memberEvent(BOB, 'leave', CAROL)));
      refused(check(room, room.memberEvent(DAVE, 'leave', CAROL)), /cannot kick/);
      refused(check(room, room.memberEvent(CAROL, 'leave', BOB)), /below the kick level/);
      room.member(CAROL, 'leave');
      refused(check(room, room.memberEvent(BOB, 'leave', CAROL)), /not joined/);
    });

    test(`v${rv.id}: unbanning needs the ban level as well as the kick level`, () => {
      const creator = creatorLevels(rv);
      const room = TestRoom.standard(rv, 'public', { powerLevels: { users: { ...creator, [CAROL]: 50 }, kick: 50, ban: 60 } });
      room.member(CAROL, 'join');
      room.member(BOB, 'ban', ALICE);
      refused(check(room, room.memberEvent(BOB, 'leave', CAROL)), /ban level 60 needed to unban/);
      room.powerLevels({ users: { ...creator, [CAROL]: 60 }, kick: 70, ban: 60 });
      refused(check(room, room.memberEvent(BOB, 'leave', CAROL)), /kick level/);
      room.powerLevels({ users: { ...creator, [CAROL]: 60 }, kick: 50, ban: 60 });
      allowed(check(room, room.memberEvent(BOB, 'leave', CAROL)));
    });
  }

  test('v6: leaving from knock does not exist (knock membership cannot be in state)', () => {
    const room = TestRoom.standard(v('6'));
    room.member(BOB, 'knock');
    refused(check(room, room.memberEvent(BOB, 'leave')), /cannot leave/);
  });

  for (const rv of versions(7)) {
    test(`v${rv.id}: a knocking user may withdraw the knock`, () => {
      const room = TestRoom.standard(rv, 'knock');
      room.member(BOB, 'knock');
      allowed(check(room, room.memberEvent(BOB, 'leave')));
    });
  }
});

describe('m.room.member: ban', () => {
  for (const rv of ALL_VERSIONS) {
    test(`v${rv.id}: banning needs a joined sender, the ban level and a higher level than the target`, () => {
      const creator = creatorLevels(rv);
      const room = TestRoom.standard(rv, 'public', { powerLevels: { users: { ...creator, [CAROL]: 50, [DAVE]: 50 }, ban: 50 } });
      room.member(CAROL, 'join');
      room.member(DAVE, 'join');
      allowed(check(room, room.memberEvent(BOB, 'ban', CAROL)), 'ban of a non-member');
      refused(check(room, room.memberEvent(DAVE, 'ban', CAROL)), /cannot ban/);
      room.powerLevels({ users: { ...creator, [CAROL]: 50 }, ban: 51 });
      refused(check(room, room.memberEvent(BOB, 'ban', CAROL)), /below the ban level 51/);
      room.member(CAROL, 'leave');
      refused(check(room, room.memberEvent(BOB, 'ban', CAROL)), /not joined/);
    });
  }
});

describe('m.room.member: knock', () => {
  for (const rv of versions(1, 6)) {
    test(`v${rv.id}: knocking does not exist`, () => {
      const room = TestRoom.standard(rv, 'knock');
      refused(check(room, room.memberEvent(BOB, 'knock')), /not supported/);
    });
  }

  for (const rv of versions(7)) {
    test(`v${rv.id}: knocking on a knock room is allowed`, () => {
      const room = TestRoom.standard(rv, 'knock');
      allowed(check(room, room.memberEvent(BOB, 'knock')));
      room.member(BOB, 'leave');
      allowed(check(room, room.memberEvent(BOB, 'knock')));
    });

    test(`v${rv.id}: knocking needs the knock rule, one's own membership, and no ban/invite/join`, () => {
      for (const rule of ['invite', 'public', 'restricted']) {
        const room = TestRoom.standard(rv, rule);
        refused(check(room, room.memberEvent(BOB, 'knock')), /does not allow knocking/, rule);
      }
      const room = TestRoom.standard(rv, 'knock');
      refused(check(room, room.memberEvent(BOB, 'knock', ALICE)), /on behalf/);
      for (const m of ['ban', 'invite', 'join']) {
        room.member(BOB, m, m === 'join' ? BOB : ALICE);
        refused(check(room, room.memberEvent(BOB, 'knock')), /cannot knock/, m);
      }
    });
  }

  for (const rv of versions(7, 9)) {
    test(`v${rv.id}: knock_restricted does not allow knocking yet`, () => {
      const room = TestRoom.standard(rv, 'knock_restricted');
      refused(check(room, room.memberEvent(BOB, 'knock')), /does not allow knocking/);
    });
  }

  for (const rv of versions(10)) {
    test(`v${rv.id}: knock_restricted allows knocking`, () => {
      const room = TestRoom.standard(rv, 'knock_restricted');
      allowed(check(room, room.memberEvent(BOB, 'knock')));
    });
  }
});

describe('other events: membership, power and state keys', () => {
  for (const rv of ALL_VERSIONS) {
    test(`v${rv.id}: the sender must be joined`, () => {
      const room = TestRoom.standard(rv);
      refused(check(room, room.send({ type: 'm.room.message', sender: BOB, content: {} })), /not joined/);
      room.member(BOB, 'invite', ALICE);
      refused(check(room, room.send({ type: 'm.room.message', sender: BOB, content: {} })), /not joined/);
      room.member(BOB, 'join');
      allowed(check(room, room.send({ type: 'm.room.message', sender: BOB, content: {} })));
    });

    test(`v${rv.id}: m.room.third_party_invite needs the invite level, not the state level`, () => {
      const creator = creatorLevels(rv);
      const room = TestRoom.standard(rv, 'public', { powerLevels: { users: creator, invite: 0, state_default: 100 } });
      room.member(BOB, 'join');
      const tpi = (): RoomEvent => room.send({ type: 'm.room.third_party_invite', sender: BOB, state_key: 'tok', content: {} });
      allowed(check(room, tpi()));
      room.powerLevels({ users: creator, invite: 10, state_default: 0 });
      refused(check(room, tpi()), /below the invite level 10/);
    });

    test(`v${rv.id}: the required power level comes from events, else events_default / state_default`, () => {
      const creator = creatorLevels(rv);
      const room = TestRoom.standard(rv, 'public', {
        powerLevels: { users: { ...creator, [BOB]: 10 }, events_default: 10, state_default: 20, events: { 'm.room.topic': 5, 'm.custom': 11 } },
      });
      room.member(BOB, 'join');
      allowed(check(room, room.send({ type: 'm.room.message', sender: BOB, content: {} })));
      refused(check(room, room.send({ type: 'm.custom', sender: BOB, content: {} })), /below the 11 required/);
      refused(check(room, room.send({ type: 'm.room.name', sender: BOB, state_key: '', content: {} })), /below the 20 required/);
      allowed(check(room, room.send({ type: 'm.room.topic', sender: BOB, state_key: '', content: {} })));
    });

    test(`v${rv.id}: without power levels only the creator may send state (state_default 50)`, () => {
      const room = new TestRoom(rv);
      room.member(ALICE, 'join');
      room.member(BOB, 'join');
      allowed(check(room, room.send({ type: 'm.room.name', sender: ALICE, state_key: '', content: {} })));
      refused(check(room, room.send({ type: 'm.room.name', sender: BOB, state_key: '', content: {} })), /below the 50 required/);
      allowed(check(room, room.send({ type: 'm.room.message', sender: BOB, content: {} })));
    });

    test(`v${rv.id}: state keys starting with @ must be the sender's own id`, () => {
      const room = TestRoom.standard(rv, 'public', { powerLevels: { users: creatorLevels(rv), state_default: 0 } });
      room.member(BOB, 'join');
      allowed(check(room, room.send({ type: 'm.custom', sender: BOB, state_key: BOB, content: {} })));
      refused(check(room, room.send({ type: 'm.custom', sender: BOB, state_key: ALICE, content: {} })), /another user/);
      allowed(check(room, room.send({ type: 'm.custom', sender: BOB, state_key: 'plain', content: {} })));
    });
  }
});

describe('m.room.power_levels', () => {
  const creatorEntry = creatorLevels;

  function plRoom(rv: RoomVersion, levels: JsonObject): TestRoom {
    const room = TestRoom.standard(rv, 'public', { powerLevels: levels });
    room.member(BOB, 'join');
    room.member(CAROL, 'join');
    return room;
  }

  const pl = (room: TestRoom, sender: string, content: JsonObject): RoomEvent =>
    room.send({ type: 'm.room.power_levels', sender, state_key: '', content });

  for (const rv of versions(1, 9)) {
    test(`v${rv.id}: string power levels are accepted`, () => {
      const room = new TestRoom(rv);
      room.member(ALICE, 'join');
      const content = { users: { [ALICE]: '100' }, ban: '50', events: { 'm.room.name': '50' }, users_default: ' +0 ' };
      allowed(check(room, pl(room, ALICE, rv.privilegedCreators ? { ...content, users: {} } : content)));
    });

    test(`v${rv.id}: users values must be integers or integer strings`, () => {
      const room = new TestRoom(rv);
      room.member(ALICE, 'join');
      refused(check(room, pl(room, ALICE, { users: { [BOB]: 'fifty' } })), /not an integer/);
      refused(check(room, pl(room, ALICE, { users: { [BOB]: null } })), /not an integer/);
      refused(check(room, pl(room, ALICE, { users: { [BOB]: '5.5' } })), /not an integer/);
    });
  }

  for (const rv of versions(10)) {
    test(`v${rv.id}: power levels must be integers`, () => {
      const room = new TestRoom(rv);
      room.member(ALICE, 'join');
      refused(check(room, pl(room, ALICE, { ban: '50' })), /"ban" must be an integer/);
      refused(check(room, pl(room, ALICE, { users_default: null })), /must be an integer/);
      refused(check(room, pl(room, ALICE, { users: { [BOB]: '50' } })), /must be an integer/);
      refused(check(room, pl(room, ALICE, { events: { 'm.room.name': '50' } })), /events\.m\.room\.name/);
      refused(check(room, pl(room, ALICE, { notifications: { room: '50' } })), /notifications/);
      refused(check(room, pl(room, ALICE, { events: [] })), /"events" must be an object/);
      refused(check(room, pl(room, ALICE, { users: { [BOB]: true } })), /must be an integer/);
      allowed(check(room, pl(room, ALICE, { ban: 50, users: { [BOB]: 50 }, events: { 'm.room.name': 50 }, notifications: { room: 50 } })));
    });
  }

  for (const rv of ALL_VERSIONS) {
    test(`v${rv.id}: users keys must be user ids, users must be an object`, () => {
      const room = new TestRoom(rv);
      room.member(ALICE, 'join');
      refused(check(room, pl(room, ALICE, { users: { bob: 50 } })), /not a valid user id/);
      refused(check(room, pl(room, ALICE, { users: [] })), /must be an object/);
    });

    test(`v${rv.id}: the first power levels event may set anything`, () => {
      const room = new TestRoom(rv);
      room.member(ALICE, 'join');
      allowed(check(room, pl(room, ALICE, { users: { ...creatorEntry(rv), [BOB]: 1000 }, ban: 1000 })));
    });

    test(`v${rv.id}: top-level levels can only move within the sender's own level`, () => {
      const room = plRoom(rv, { users: { ...creatorEntry(rv), [BOB]: 50 }, ban: 50, kick: 60 });
      // Raise ban to the sender's own level: fine; above it: refused.
      allowed(check(room, pl(room, BOB, { users: { ...creatorEntry(rv), [BOB]: 50 }, ban: 40, kick: 60 })));
      refused(check(room, pl(room, BOB, { users: { ...creatorEntry(rv), [BOB]: 50 }, ban: 51, kick: 60 })), /cannot set "ban" to 51/);
      // kick is currently above Bob, so Bob cannot touch it, even downwards or by removing it.
      refused(check(room, pl(room, BOB, { users: { ...creatorEntry(rv), [BOB]: 50 }, ban: 50, kick: 10 })), /cannot change "kick" from 60/);
      refused(check(room, pl(room, BOB, { users: { ...creatorEntry(rv), [BOB]: 50 }, ban: 50 })), /cannot change "kick" from 60/);
      // Adding a new top-level level above one's own is refused.
      refused(check(room, pl(room, BOB, { users: { ...creatorEntry(rv), [BOB]: 50 }, ban: 50, kick: 60, redact: 70 })), /"redact" to 70/);
    });

    test(`v${rv.id}: events levels follow the same rule`, () => {
      const room = plRoom(rv, { users: { ...creatorEntry(rv), [BOB]: 50 }, events: { 'm.room.name': 50, 'm.room.tombstone': 100 } });
      allowed(check(room, pl(room, BOB, { users: { ...creatorEntry(rv), [BOB]: 50 }, events: { 'm.room.name': 20, 'm.room.tombstone': 100 } })));
      refused(check(room, pl(room, BOB, { users: { ...creatorEntry(rv), [BOB]: 50 }, events: { 'm.room.name': 50 } })), /tombstone/);
      refused(
        check(room, pl(room, BOB, { users: { ...creatorEntry(rv), [BOB]: 50 }, events: { 'm.room.name': 50, 'm.room.tombstone': 100, 'm.x': 51 } })),
        /m\.x/,
      );
    });

    test(`v${rv.id}: users: others at or above one's level are untouchable, new levels at most one's own`, () => {
      const room = plRoom(rv, { users: { ...creatorEntry(rv), [BOB]: 50, [CAROL]: 50, [DAVE]: 10 } });
      const base = { ...creatorEntry(rv), [BOB]: 50, [CAROL]: 50, [DAVE]: 10 };
      allowed(check(room, pl(room, BOB, { users: { ...base, [DAVE]: 50 } })), 'promote to own level');
      allowed(check(room, pl(room, BOB, { users: { ...base, [DAVE]: 0 } })), 'demote lower user');
      allowed(check(room, pl(room, BOB, { users: { ...base, [BOB]: 0 } })), 'self-demotion');
      refused(check(room, pl(room, BOB, { users: { ...base, [DAVE]: 51 } })), /above their own/);
      refused(check(room, pl(room, BOB, { users: { ...base, [CAROL]: 10 } })), /not below theirs/);
      const { [CAROL]: _removed, ...withoutCarol } = base;
      refused(check(room, pl(room, BOB, { users: withoutCarol })), /not below theirs/, 'removing an equal');
      refused(check(room, pl(room, BOB, { users: { ...base, [BOB]: 60 } })), /above their own/, 'self-promotion');
      allowed(check(room, pl(room, BOB, { users: { ...base, '@new:x.example': 50 } })), 'add at own level');
    });

    test(`v${rv.id}: changing power levels needs the required level for m.room.power_levels`, () => {
      const room = plRoom(rv, { users: { ...creatorEntry(rv), [BOB]: 50 }, events: { 'm.room.power_levels': 100 } });
      refused(check(room, pl(room, BOB, { users: { ...creatorEntry(rv), [BOB]: 50 }, events: { 'm.room.power_levels': 100 } })), /below the 100 required/);
    });
  }

  for (const rv of versions(1, 9)) {
    test(`v${rv.id}: "50" and 50 are the same level, so unchanged`, () => {
      const room = plRoom(rv, { users: { ...creatorEntry(rv), [BOB]: '50', [CAROL]: '50' }, kick: '60' });
      allowed(check(room, pl(room, BOB, { users: { ...creatorEntry(rv), [BOB]: 50, [CAROL]: 50 }, kick: 60 })));
    });
  }

  for (const rv of versions(1, 5)) {
    test(`v${rv.id}: notifications are not policed`, () => {
      const room = plRoom(rv, { users: { ...creatorEntry(rv), [BOB]: 50 }, notifications: { room: 100 } });
      allowed(check(room, pl(room, BOB, { users: { ...creatorEntry(rv), [BOB]: 50 }, notifications: { room: 0 } })));
    });
  }

  for (const rv of versions(6)) {
    test(`v${rv.id}: notifications follow the events rule`, () => {
      const room = plRoom(rv, { users: { ...creatorEntry(rv), [BOB]: 50 }, notifications: { room: 100 } });
      refused(check(room, pl(room, BOB, { users: { ...creatorEntry(rv), [BOB]: 50 }, notifications: { room: 0 } })), /notifications/);
      const room2 = plRoom(rv, { users: { ...creatorEntry(rv), [BOB]: 50 } });
      allowed(check(room2, pl(room2, BOB, { users: { ...creatorEntry(rv), [BOB]: 50 }, notifications: { room: 50 } })));
      refused(check(room2, pl(room2, BOB, { users: { ...creatorEntry(rv), [BOB]: 50 }, notifications: { room: 51 } })), /notifications/);
    });
  }

  test('v12: creators may not appear in users', () => {
    const rv = v('12');
    const room = TestRoom.standard(rv, 'public', { createContent: { additional_creators: [BOB] } });
    refused(check(room, pl(room, ALICE, { users: { [ALICE]: 100 } })), /room creator @alice/);
    refused(check(room, pl(room, ALICE, { users: { [BOB]: 100 } })), /room creator @bob/);
    allowed(check(room, pl(room, ALICE, { users: { [CAROL]: 100 } })));
  });

  test('v11: the creator may appear in users', () => {
    const room = TestRoom.standard(v('11'));
    allowed(check(room, pl(room, ALICE, { users: { [ALICE]: 100, [BOB]: 100 } })));
  });

  test('v12: a creator can change anything, including demoting a 100 admin', () => {
    const rv = v('12');
    const room = TestRoom.standard(rv, 'public', { powerLevels: { users: { [CAROL]: 100 }, events: { 'm.room.power_levels': 100 } } });
    room.member(CAROL, 'join');
    allowed(check(room, pl(room, ALICE, { users: { [CAROL]: 0 }, ban: 9000, events: {} })));
    refused(check(room, pl(room, CAROL, { users: { [CAROL]: 100, [DAVE]: 101 } })), /above their own/);
  });

  test('v11: with an admin at the creator\'s level, the creator cannot demote them', () => {
    const rv = v('11');
    const room = TestRoom.standard(rv, 'public', { powerLevels: { users: { [ALICE]: 100, [CAROL]: 100 } } });
    room.member(CAROL, 'join');
    refused(check(room, pl(room, ALICE, { users: { [ALICE]: 100, [CAROL]: 0 } })), /not below theirs/);
  });
});

describe('v12 room creators', () => {
  const rv = v('12');

  test('additional creators have infinite power: they can ban a 100 admin', () => {
    const room = TestRoom.standard(rv, 'public', {
      createContent: { additional_creators: [BOB] },
      powerLevels: { users: { [CAROL]: 100 }, ban: 100 },
    });
    room.member(BOB, 'join');
    room.member(CAROL, 'join');
    allowed(check(room, room.memberEvent(CAROL, 'ban', BOB)));
    refused(check(room, room.memberEvent(BOB, 'ban', CAROL)), /cannot ban/);
    refused(check(room, room.memberEvent(BOB, 'leave', CAROL)), /cannot kick/);
  });

  test('creators cannot kick or ban each other', () => {
    const room = TestRoom.standard(rv, 'public', { createContent: { additional_creators: [BOB] } });
    room.member(BOB, 'join');
    refused(check(room, room.memberEvent(BOB, 'ban', ALICE)), /cannot ban/);
    refused(check(room, room.memberEvent(ALICE, 'leave', BOB)), /cannot kick/);
  });

  test('creators pass any required level, even without a power levels entry', () => {
    const room = TestRoom.standard(rv, 'public', {
      createContent: { additional_creators: [BOB] },
      powerLevels: { users: {}, events: { 'm.room.tombstone': 150 }, users_default: 0 },
    });
    room.member(BOB, 'join');
    allowed(check(room, room.send({ type: 'm.room.tombstone', sender: BOB, state_key: '', content: {} })));
    room.member(CAROL, 'join');
    refused(check(room, room.send({ type: 'm.room.tombstone', sender: CAROL, state_key: '', content: {} })), /below the 150/);
  });

  test('v11: additional_creators grants nothing', () => {
    const room = TestRoom.standard(v('11'), 'public', { createContent: { additional_creators: [BOB] } });
    room.member(BOB, 'join');
    refused(check(room, room.send({ type: 'm.room.name', sender: BOB, state_key: '', content: {} })), /below the 50/);
  });
});

describe('m.room.redaction', () => {
  for (const rv of versions(1, 2)) {
    test(`v${rv.id}: below the redact level, only same-server redactions are allowed`, () => {
      const room = TestRoom.standard(rv);
      room.member(BOB, 'join');
      const redaction = (redacts: string): RoomEvent =>
        room.send({ type: 'm.room.redaction', sender: BOB, content: {}, redacts, event_id: '$red1:b.example' });
      allowed(check(room, redaction('$target:b.example')));
      refused(check(room, redaction('$target:a.example')), /redact level/);
      allowed(check(room, room.send({ type: 'm.room.redaction', sender: ALICE, content: {}, redacts: '$t:b.example', event_id: '$r:a.example' })));
    });
  }

  for (const rv of versions(3)) {
    test(`v${rv.id}: redactions pass the auth rules; the redact level is checked when applying`, () => {
      const room = TestRoom.standard(rv);
      room.member(BOB, 'join');
      const redaction = rv.updatedRedactionRules
        ? room.send({ type: 'm.room.redaction', sender: BOB, content: { redacts: '$other' } })
        : room.send({ type: 'm.room.redaction', sender: BOB, content: {}, redacts: '$other' });
      allowed(check(room, redaction));
    });

    test(`v${rv.id}: an events level for m.room.redaction still applies`, () => {
      const room = TestRoom.standard(rv, 'public', {
        powerLevels: { users: creatorLevels(rv), events: { 'm.room.redaction': 10 } },
      });
      room.member(BOB, 'join');
      refused(check(room, room.send({ type: 'm.room.redaction', sender: BOB, content: { redacts: '$x' }, redacts: '$x' })), /below the 10/);
    });
  }
});

describe('applying redactions', () => {
  for (const rv of versions(3)) {
    test(`v${rv.id}: same-server redactions apply; cross-server ones need the redact level`, () => {
      const room = TestRoom.standard(rv, 'public', { powerLevels: { users: { ...creatorLevels(rv), [CAROL]: 50 }, redact: 50 } });
      room.member(BOB, 'join');
      room.member(CAROL, 'join');
      room.member(DAVE, 'join');
      const target = room.send({ type: 'm.room.message', sender: ALICE, content: {} });
      const redaction = (sender: string): RoomEvent => room.send({ type: 'm.room.redaction', sender, content: { redacts: target.event_id }, redacts: target.event_id });
      allowed(checkRedactionApplies(redaction(DAVE), target, room.lookup, rv), 'same server as the target');
      allowed(checkRedactionApplies(redaction(CAROL), target, room.lookup, rv), 'moderator');
      refused(checkRedactionApplies(redaction(BOB), target, room.lookup, rv), /redact level 50/);
      refused(checkRedactionApplies({ ...redaction(CAROL), room_id: '!elsewhere' }, target, room.lookup, rv), /in room/);
    });
  }

  for (const rv of versions(1, 2)) {
    test(`v${rv.id}: accepted redactions apply (the auth rules decided)`, () => {
      const room = TestRoom.standard(rv);
      room.member(BOB, 'join');
      const target = room.send({ type: 'm.room.message', sender: ALICE, content: {} });
      const redaction = room.send({ type: 'm.room.redaction', sender: BOB, content: {}, redacts: target.event_id });
      allowed(checkRedactionApplies(redaction, target, room.lookup, rv));
    });
  }

  test('redactedEventId reads content.redacts from v11, the top level before', () => {
    const e = { content: { redacts: '$c' }, redacts: '$t' };
    assert.equal(redactedEventId(e, v('10')), '$t');
    assert.equal(redactedEventId(e, v('11')), '$c');
    assert.equal(redactedEventId({ content: {} }, v('12')), undefined);
  });
});

describe('checkAuthEventsList', () => {
  function setup(rv: RoomVersion): { room: TestRoom; pl: RoomEvent; aliceJoin: RoomEvent; jr: RoomEvent } {
    const room = new TestRoom(rv);
    const aliceJoin = room.member(ALICE, 'join');
    const pl = room.powerLevels(rv.privilegedCreators ? {} : { users: { [ALICE]: 100 } });
    const jr = room.joinRule('public');
    return { room, pl, aliceJoin, jr };
  }

  for (const rv of ALL_VERSIONS) {
    test(`v${rv.id}: the selected auth events are accepted`, () => {
      const { room, pl, aliceJoin, jr } = setup(rv);
      const cites = rv.roomIdFromCreateEvent ? [pl, aliceJoin] : [room.create, pl, aliceJoin];
      const msg = room.send({ type: 'm.room.message', sender: ALICE, content: {}, auth_events: cites.map((e) => e.event_id) });
      allowed(checkAuthEventsList(msg, [...cites, jr], rv));
      allowed(checkEventAgainstAuthEvents(msg, [...cites, jr], rv, { createEvent: room.create }));
    });

    test(`v${rv.id}: duplicates, unexpected types, other rooms, rejected and missing events are refused`, () => {
      const { room, pl, aliceJoin, jr } = setup(rv);
      const base = rv.roomIdFromCreateEvent ? [pl, aliceJoin] : [room.create, pl, aliceJoin];
      const msg = (cites: RoomEvent[]): RoomEvent =>
        room.send({ type: 'm.room.message', sender: ALICE, content: {}, auth_events: cites.map((e) => e.event_id) });
      const pl2 = room.send({ type: 'm.room.power_levels', sender: ALICE, state_key: '', content: {} });
      refused(checkAuthEventsList(msg([...base, pl2]), [...base, pl2], rv), /duplicate/);
      refused(checkAuthEventsList(msg([...base, jr]), [...base, jr], rv), /not one the auth events selection allows/);
      const foreign = { ...pl, event_id: '$foreign', room_id: '!other:a.example' };
      refused(checkAuthEventsList(msg([...base.filter((e) => e !== pl), foreign]), [...base, foreign], rv), /belongs to room/);
      refused(checkAuthEventsList(msg(base), base, rv, (id) => id === pl.event_id), /itself rejected/);
      refused(checkAuthEventsList(msg(base), base.slice(0, -1), rv), /not supplied/);
    });
  }

  for (const rv of versions(1, 11)) {
    test(`v${rv.id}: the create event must be cited`, () => {
      const { room, pl, aliceJoin } = setup(rv);
      const msg = room.send({ type: 'm.room.message', sender: ALICE, content: {}, auth_events: [pl.event_id, aliceJoin.event_id] });
      refused(checkAuthEventsList(msg, [pl, aliceJoin], rv), /no m\.room\.create/);
    });
  }

  for (const rv of versions(7)) {
    test(`v${rv.id}: a restricted join may cite the authoriser's membership only from v8`, () => {
      const room = TestRoom.standard(rv, 'restricted');
      const carolJoin = room.member(CAROL, 'join');
      const pl = room.lookup('m.room.power_levels', '')!;
      const jr = room.lookup('m.room.join_rules', '')!;
      const cites = rv.roomIdFromCreateEvent ? [pl, jr, carolJoin] : [room.create, pl, jr, carolJoin];
      const join = room.send({
        type: 'm.room.member',
        sender: BOB,
        state_key: BOB,
        content: { membership: 'join', join_authorised_via_users_server: CAROL },
        auth_events: cites.map((e) => e.event_id),
      });
      if (rv.restrictedJoinRule) {
        allowed(checkEventAgainstAuthEvents(join, cites, rv, { createEvent: room.create }));
      } else {
        refused(checkAuthEventsList(join, cites, rv), /not one the auth events selection allows/);
      }
    });
  }

  test('v12: citing the create event is refused', () => {
    const rv = v('12');
    const { room, pl, aliceJoin } = setup(rv);
    const cites = [room.create, pl, aliceJoin];
    const msg = room.send({ type: 'm.room.message', sender: ALICE, content: {}, auth_events: cites.map((e) => e.event_id) });
    refused(checkAuthEventsList(msg, cites, rv), /not one the auth events selection allows/);
  });

  test('v12: the create event named by the room id must not be rejected', () => {
    const rv = v('12');
    const { room, pl, aliceJoin } = setup(rv);
    const cites = [pl, aliceJoin];
    const msg = room.send({ type: 'm.room.message', sender: ALICE, content: {}, auth_events: cites.map((e) => e.event_id) });
    allowed(checkEventAgainstAuthEvents(msg, cites, rv, { createEvent: room.create, isRejected: () => false }));
    refused(
      checkEventAgainstAuthEvents(msg, cites, rv, { createEvent: room.create, isRejected: (id) => id === room.create.event_id }),
      /create event .* was rejected/,
    );
    refused(checkEventAgainstAuthEvents(msg, cites, rv), /no m\.room\.create/);
  });

  test('the rules run against the cited auth events only', () => {
    const rv = v('10');
    const { room, pl } = setup(rv);
    // Alice's membership is not cited, so she is not joined as far as the rules can see.
    const msg = room.send({ type: 'm.room.message', sender: ALICE, content: {}, auth_events: [room.create.event_id, pl.event_id] });
    refused(checkEventAgainstAuthEvents(msg, [room.create, pl], rv), /not joined/);
  });

  test('create events are decided by rule 1 alone', () => {
    const rv = v('10');
    const create = makeCreate(rv);
    allowed(checkAuthEventsList(create, [], rv));
    allowed(checkAuthEventsList({ ...create, auth_events: ['$x'] }, [], rv));
  });
});

describe('checkEventSizeLimits', () => {
  const rv = v('10');
  const base = (): RoomEvent => makeEvent(rv, '!r:a.example', { type: 'm.room.message', sender: ALICE, content: {} });

  test('accepts a normal event and one just under 64 KiB', () => {
    allowed(checkEventSizeLimits(base()));
    const e = base();
    const overhead = Buffer.byteLength(JSON.stringify({ ...e, content: { body: '' } }));
    e.content = { body: 'x'.repeat(65536 - overhead) };
    allowed(checkEventSizeLimits(e));
    e.content = { body: 'x'.repeat(65536 - overhead + 1) };
    refused(checkEventSizeLimits(e), /65536/);
  });

  test('with the room version, the wire form is measured (no v3+ event_id)', () => {
    const e = base();
    const wireOverhead = Buffer.byteLength(JSON.stringify({ ...e, event_id: undefined, content: { body: '' } }));
    e.content = { body: 'x'.repeat(65536 - wireOverhead) };
    allowed(checkEventSizeLimits(e, rv));
    refused(checkEventSizeLimits(e), /65536/);
    const v1 = v('1');
    allowed(checkEventSizeLimits({ ...e, event_id: '$a:a.example', content: {} }, v1));
  });

  test('limits ids and keys to 255 bytes, counting UTF-8 bytes', () => {
    for (const field of ['sender', 'room_id', 'state_key', 'type', 'event_id'] as const) {
      const ok = { ...base(), [field]: 'a'.repeat(255) };
      allowed(checkEventSizeLimits(ok), field);
      refused(checkEventSizeLimits({ ...base(), [field]: 'a'.repeat(256) }), new RegExp(field));
      // 128 two-byte characters: 128 code points but 256 bytes.
      refused(checkEventSizeLimits({ ...base(), [field]: 'é'.repeat(128) }), new RegExp(field));
    }
  });

  test('v1 events with floats are still measured', () => {
    const e = makeEvent(v('1'), '!r:a.example', { type: 'm.room.message', sender: ALICE, content: { n: 1.5 } });
    allowed(checkEventSizeLimits(e));
    e.content = { n: 1.5, body: 'x'.repeat(70000) };
    refused(checkEventSizeLimits(e), /65536/);
  });
});

describe('checkRequiredSignatures', () => {
  test("the sender's server must sign; v1/v2 also the event id's server", () => {
    const rv1 = v('1');
    const e = makeEvent(rv1, '!r:a.example', { type: 'm.room.message', sender: ALICE, content: {}, event_id: '$x:b.example' });
    assert.deepEqual(requiredSigningServers(e, rv1), ['a.example', 'b.example']);
    refused(checkRequiredSignatures({ ...e, signatures: { 'a.example': { 'ed25519:1': 'sig' } } }, rv1), /b\.example/);
    allowed(checkRequiredSignatures({ ...e, signatures: { 'a.example': { 'ed25519:1': 's' }, 'b.example': { 'ed25519:1': 's' } } }, rv1));
    const rv3 = v('3');
    assert.deepEqual(requiredSigningServers({ ...e, event_id: '$abc' }, rv3), ['a.example']);
  });

  test('third party invites need not be signed by the sender, restricted joins need the authoriser', () => {
    const rv = v('10');
    const invite = makeEvent(rv, '!r:a.example', {
      type: 'm.room.member',
      sender: ALICE,
      state_key: BOB,
      content: { membership: 'invite', third_party_invite: {} },
    });
    assert.deepEqual(requiredSigningServers(invite, rv), []);
    const join = makeEvent(rv, '!r:a.example', {
      type: 'm.room.member',
      sender: BOB,
      state_key: BOB,
      content: { membership: 'join', join_authorised_via_users_server: CAROL },
      signatures: { 'b.example': { 'ed25519:1': 's' } },
    });
    assert.deepEqual(requiredSigningServers(join, rv), ['b.example', 'c.example']);
    refused(checkRequiredSignatures(join, rv), /c\.example/);
    assert.deepEqual(requiredSigningServers(join, v('7')), ['b.example']);
  });
});

describe('a room history, selected and checked like a receiving server would', () => {
  for (const rv of ALL_VERSIONS) {
    test(`v${rv.id}: each event cites selectAuthEvents and is checked against them`, () => {
      const room = new TestRoom(rv);
      const create = room.create;
      const events = new Map<string, RoomEvent>([[create.event_id, create]]);
      const submit = (fields: Parameters<TestRoom['send']>[0]): AuthResult => {
        const draft = room.send(fields);
        draft.auth_events = selectAuthEvents(draft, room.lookup, rv);
        const result = checkEventAgainstAuthEvents(
          draft,
          draft.auth_events.map((id) => events.get(id as string)!),
          rv,
          { createEvent: create },
        );
        if (result.allowed) {
          events.set(draft.event_id, draft);
          if (draft.state_key !== undefined) room.set(draft);
        }
        return result;
      };
      const member = (user: string, membership: string, sender = user): AuthResult =>
        submit({ type: 'm.room.member', sender, state_key: user, content: { membership } });

      allowed(checkEventAuth(create, () => undefined, rv), 'create');
      allowed(submit({ type: 'm.room.member', sender: ALICE, state_key: ALICE, content: { membership: 'join' }, prev_events: [create.event_id] }), 'creator join');
      allowed(submit({ type: 'm.room.power_levels', sender: ALICE, state_key: '', content: { users: creatorLevels(rv) } }), 'power levels');
      allowed(submit({ type: 'm.room.join_rules', sender: ALICE, state_key: '', content: { join_rule: 'invite' } }), 'join rules');
      refused(member(BOB, 'join'), /not invited/);
      allowed(member(BOB, 'invite', ALICE), 'invite');
      allowed(member(BOB, 'join'), 'join after invite');
      refused(submit({ type: 'm.room.name', sender: BOB, state_key: '', content: { name: 'x' } }), /below the 50/);
      allowed(submit({ type: 'm.room.message', sender: BOB, content: { body: 'hi' } }), 'message');
      allowed(member(BOB, 'ban', ALICE), 'ban');
      refused(submit({ type: 'm.room.message', sender: BOB, content: { body: 'hi' } }), /not joined/);
      refused(member(BOB, 'join'), /banned/);
      allowed(member(BOB, 'leave', ALICE), 'unban');
      allowed(submit({ type: 'm.room.join_rules', sender: ALICE, state_key: '', content: { join_rule: 'knock' } }), 'knock rule');
      if (rv.knockJoinRule) allowed(member(BOB, 'knock'), 'knock');
      else refused(member(BOB, 'knock'), /not supported/);
    });
  }
});
