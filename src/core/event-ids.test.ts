import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { decodeBase64 } from './base64.js';
import { verifyEventSignature } from './event-signing.js';
import {
  computeEventId,
  eventReference,
  eventFromWirePdu,
  EventFormatError,
  finalizeEvent,
  generateLegacyEventId,
  referenceHashToEventId,
  roomIdFromCreateEvent,
  toWirePdu,
  validateEventId,
  validateRoomId,
  type PartialPdu,
} from './event-ids.js';
import { checkContentHash, computeReferenceHash } from './hashes.js';
import { ROOM_VERSIONS } from './room-versions.js';
import { signingKeyFromSeed } from './signing.js';

const key = signingKeyFromSeed(decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1'), 'ed25519:1');
const ALL = [...ROOM_VERSIONS.keys()];

// Published events with the ids their servers gave them: a room version 1 event from a Synapse
// test server, and the create event of a version 5 room on jki.re.
const REAL_V1 = JSON.parse(
  '{"auth_events":[["$oXL79cT7fFxR7dPH:localhost",{"sha256":"abjkiDSg1RkuZrbj2jZoGMlQaaj1Ue3Jhi7I7NlKfXY"}],["$IVUsaSkm1LBAZYYh:localhost",{"sha256":"X7RUj46hM/8sUHNBIFkStbOauPvbDzjSdH4NibYWnko"}],["$VS2QT0EeArZYi8wf:localhost",{"sha256":"k9eM6utkCH8vhLW9/oRsH74jOBS/6RVK42iGDFbylno"}]],"content":{"name":"test3"},"depth":7,"event_id":"$yvN1b43rlmcOs5fY:localhost","hashes":{"sha256":"Oh1mwI1jEqZ3tgJ+V1Dmu5nOEGpCE4RFUqyJv2gQXKs"},"origin":"localhost","origin_server_ts":1510854416361,"prev_events":[["$FqI6TVvWpcbcnJ97:localhost",{"sha256":"upCsBqUhNUgT2/+zkzg8TbqdQpWWKQnZpGJc6KcbUC4"}]],"prev_state":[],"room_id":"!19Mp0U9hjajeIiw1:localhost","sender":"@test:localhost","signatures":{"localhost":{"ed25519:u9kP":"5IzSuRXkxvbTp0vZhhXYZeOe+619iG3AybJXr7zfNn/4vHz4TH7qSJVQXSaHHvcTcDodAKHnTG1WDulgO5okAQ"}},"state_key":"","type":"m.room.name"}',
);
const REAL_V5_CREATE = JSON.parse(
  '{"auth_events": [], "prev_events": [], "type": "m.room.create", "room_id": "!uXDCzlYgCTHtiWCkEx:jki.re", "sender": "@erikj:jki.re", "content": {"room_version": "5", "predecessor": {"room_id": "!gdRMqOrTFdOCYHNwOo:half-shot.uk", "event_id": "$LP7ROBc4b+cMc1UE9haIz8q5AK2AIW4eJ90FfKLvyZI"}, "creator": "@erikj:jki.re"}, "depth": 1, "prev_state": [], "state_key": "", "origin": "jki.re", "origin_server_ts": 1560284621137, "hashes": {"sha256": "IX6zuNiJpJPNf70BLleL3HSCpjKeq9Uhu7uUpyDjBmc"}, "signatures": {"jki.re": {"ed25519:auto": "O4IyFfF2PPtGp5uaDm8t57dZbdh8vc8Q64LgCwvzYRVItAMI0uisfiAFaxkVT7MRpzh6N2QNN5NMRXZKmgPYDA"}}, "unsigned": {"age": 1321650}}',
);

describe('event ids of real events', () => {
  test('v1: the id carried in the PDU', () => {
    assert.equal(computeEventId(REAL_V1, '1'), '$yvN1b43rlmcOs5fY:localhost');
    assert.equal(eventFromWirePdu(REAL_V1, '1').event_id, '$yvN1b43rlmcOs5fY:localhost');
  });
  test('v3: standard base64 of the reference hash', () => {
    assert.equal(computeEventId(REAL_V5_CREATE, '3'), '$RrGxF28UrHLmoASHndYb9Jb/1SFww2ptmtur9INS438');
  });
  test('v4+: URL-safe base64 of the reference hash', () => {
    assert.equal(computeEventId(REAL_V5_CREATE, '4'), '$RrGxF28UrHLmoASHndYb9Jb_1SFww2ptmtur9INS438');
    assert.equal(computeEventId(REAL_V5_CREATE, '5'), '$RrGxF28UrHLmoASHndYb9Jb_1SFww2ptmtur9INS438');
    assert.equal(eventFromWirePdu(REAL_V5_CREATE, '5').event_id, '$RrGxF28UrHLmoASHndYb9Jb_1SFww2ptmtur9INS438');
  });
});

describe('computeEventId', () => {
  test('v1/v2 without event_id: fresh id with serverName, error without', () => {
    const { event_id: _e, ...noId } = REAL_V1;
    const id = computeEventId(noId, '2', 'example.org');
    assert.match(id, /^\$[A-Za-z0-9]{18}:example\.org$/);
    assert.notEqual(computeEventId(noId, '2', 'example.org'), id);
    assert.throws(() => computeEventId(noId, '1'), EventFormatError);
  });

  test('referenceHashToEventId per format', () => {
    // fb ef be is 111110 111110 111110 111110: four 62s, the one digit the encodings differ on.
    const hash = new Uint8Array([...Array(10).fill([0xfb, 0xef, 0xbe]).flat(), 0xfb, 0xef]);
    assert.equal(referenceHashToEventId(hash, '3'), `$${'+'.repeat(42)}8`);
    assert.equal(referenceHashToEventId(hash, '4'), `$${'-'.repeat(42)}8`);
    assert.throws(() => referenceHashToEventId(hash, '1'));
  });

  test('generateLegacyEventId validates the server name', () => {
    assert.match(generateLegacyEventId('localhost:8448'), /^\$[A-Za-z0-9]{18}:localhost:8448$/);
    assert.throws(() => generateLegacyEventId('bad server'));
  });
});

function partial(type: string, extra: Partial<PartialPdu> = {}): PartialPdu {
  return {
    room_id: '!room:example.org',
    sender: '@alice:example.org',
    type,
    content: { body: 'hi' },
    origin_server_ts: 1700000000000,
    depth: 3,
    prev_events: [],
    auth_events: [],
    ...extra,
  };
}

describe('finalizeEvent', () => {
  for (const version of ALL) {
    test(`v${version}: hashed, signed, id in the version's format, wire form round-trips`, () => {
      const ev = finalizeEvent(partial('m.room.message'), version, 'example.org', key);
      assert.ok(validateEventId(ev.event_id, version), ev.event_id);
      assert.equal(ev.room_id, '!room:example.org');
      assert.ok(checkContentHash(ev, version));
      assert.ok(verifyEventSignature(ev, version, 'example.org', 'ed25519:1', key.publicKey));
      const wire = toWirePdu(ev, version) as Record<string, unknown>;
      if (version === '1' || version === '2') {
        assert.equal(wire.event_id, ev.event_id);
        assert.match(ev.event_id, /:example\.org$/);
      } else {
        assert.equal(wire.event_id, undefined);
        assert.equal(computeEventId(wire, version), ev.event_id);
      }
      assert.ok(checkContentHash(wire));
      assert.deepEqual(eventFromWirePdu(wire, version), ev);
    });
  }

  test('v1: the event id is written into the PDU before hashing and signing', () => {
    const ev = finalizeEvent(partial('m.room.message'), '1', 'example.org', key);
    const moved = { ...ev, event_id: '$other:example.org' };
    assert.ok(!checkContentHash(moved));
    assert.ok(!verifyEventSignature(moved, '1', 'example.org', 'ed25519:1', key.publicKey));
    // A pre-allocated id is kept.
    assert.equal(finalizeEvent(partial('m.room.message', { event_id: '$mine:example.org' }), '1', 'example.org', key).event_id, '$mine:example.org');
  });

  test('v3+: a given event_id, hashes and signatures are discarded', () => {
    const a = finalizeEvent(partial('m.room.message'), '11', 'example.org', key);
    const b = finalizeEvent(
      partial('m.room.message', { event_id: '$bogus', hashes: { sha256: 'x' }, signatures: { evil: { 'ed25519:x': 'y' } } }),
      '11',
      'example.org',
      key,
    );
    assert.deepEqual(b, a);
  });

  test('event id is the reference hash of the finished event', () => {
    const ev = finalizeEvent(partial('m.room.message'), '10', 'example.org', key);
    const expected = `$${Buffer.from(computeReferenceHash(ev, '10')).toString('base64url')}`;
    assert.equal(ev.event_id, expected);
  });

  test('v12 create event: no room_id on the wire, room id derived from the event id', () => {
    const { room_id: _r, ...create } = partial('m.room.create', {
      state_key: '',
      content: { room_version: '12' },
      depth: 1,
    });
    const ev = finalizeEvent(create as PartialPdu, '12', 'example.org', key);
    assert.equal(ev.room_id, `!${ev.event_id.slice(1)}`);
    assert.ok(validateRoomId(ev.room_id, '12'));
    assert.equal(roomIdFromCreateEvent(ev), ev.room_id);
    assert.equal(roomIdFromCreateEvent(ev, '12'), ev.room_id);
    const wire = toWirePdu(ev, '12') as Record<string, unknown>;
    assert.ok(!('room_id' in wire));
    assert.ok(!('event_id' in wire));
    assert.equal(roomIdFromCreateEvent(wire), ev.room_id);
    assert.deepEqual(eventFromWirePdu(wire, '12'), ev);
    // The room id is sha256 of the hand-assembled redacted canonical JSON.
    const expected = `{"auth_events":[],"content":{"room_version":"12"},"depth":1,"hashes":{"sha256":"${ev.hashes.sha256}"},"origin_server_ts":1700000000000,"prev_events":[],"sender":"@alice:example.org","state_key":"","type":"m.room.create"}`;
    assert.equal(ev.room_id, `!${createHash('sha256').update(expected).digest('base64url')}`);
  });

  test('v12: create with room_id is refused; other events need one', () => {
    assert.throws(
      () => finalizeEvent(partial('m.room.create', { state_key: '', content: { room_version: '12' } }), '12', 'example.org', key),
      EventFormatError,
    );
    const { room_id: _r, ...noRoom } = partial('m.room.message');
    assert.throws(() => finalizeEvent(noRoom as PartialPdu, '12', 'example.org', key), EventFormatError);
    assert.throws(() => finalizeEvent(noRoom as PartialPdu, '11', 'example.org', key), EventFormatError);
    // Before v12 a create event carries its room id like any other event.
    const v11 = finalizeEvent(partial('m.room.create', { state_key: '', content: { room_version: '11' } }), '11', 'example.org', key);
    assert.equal(v11.room_id, '!room:example.org');
    assert.equal((toWirePdu(v11, '11') as Record<string, unknown>).room_id, '!room:example.org');
  });

  test('refuses content canonical JSON cannot carry', () => {
    assert.throws(() => finalizeEvent(partial('m.room.message', { content: { n: 1.5 } }), '11', 'example.org', key));
  });
});

describe('eventReference', () => {
  test('v1/v2 cite [id, {sha256: reference hash}], v3+ the bare id', () => {
    const v1 = finalizeEvent(partial('m.room.message'), '1', 'example.org', key);
    const [id, hashes] = eventReference(v1, '1') as [string, { sha256: string }];
    assert.equal(id, v1.event_id);
    assert.equal(hashes.sha256, Buffer.from(computeReferenceHash(v1, '1')).toString('base64').replace(/=+$/, ''));
    // A later event citing it is built with those references.
    const next = finalizeEvent(partial('m.room.message', { prev_events: [eventReference(v1, '1')] }), '1', 'example.org', key);
    assert.deepEqual(next.prev_events, [[v1.event_id, { sha256: hashes.sha256 }]]);
    const v4 = finalizeEvent(partial('m.room.message'), '4', 'example.org', key);
    assert.equal(eventReference(v4, '4'), v4.event_id);
  });
});

describe('roomIdFromCreateEvent', () => {
  test('only for versions that derive room ids', () => {
    assert.throws(() => roomIdFromCreateEvent(REAL_V5_CREATE), EventFormatError);
    assert.throws(() => roomIdFromCreateEvent({ type: 'm.room.create', state_key: '', content: { room_version: '99' } }), EventFormatError);
    assert.throws(() => roomIdFromCreateEvent({ type: 'm.room.create', state_key: '', content: {} }), EventFormatError);
    assert.match(roomIdFromCreateEvent({ type: 'm.room.create', state_key: '', content: {} }, '12'), /^![A-Za-z0-9_-]{43}$/);
  });
});

describe('eventFromWirePdu', () => {
  test('rejects what the version forbids or lacks', () => {
    assert.throws(() => eventFromWirePdu(null, '11'), EventFormatError);
    assert.throws(() => eventFromWirePdu([], '11'), EventFormatError);
    const { event_id: _e, ...noId } = REAL_V1;
    assert.throws(() => eventFromWirePdu(noId, '1'), EventFormatError);
    const { room_id: _r, ...noRoom } = REAL_V5_CREATE;
    assert.throws(() => eventFromWirePdu(noRoom, '5'), EventFormatError);
    assert.throws(() => eventFromWirePdu({ ...REAL_V5_CREATE, content: { room_version: '12' } }, '12'), EventFormatError);
  });

  test('v3+: a stray event_id in the PDU is replaced by the computed one', () => {
    const ev = eventFromWirePdu({ ...REAL_V5_CREATE, event_id: '$spoofed' }, '5');
    assert.equal(ev.event_id, '$RrGxF28UrHLmoASHndYb9Jb_1SFww2ptmtur9INS438');
  });
});

describe('validateEventId / validateRoomId', () => {
  test('event ids per version', () => {
    const v3 = '$RrGxF28UrHLmoASHndYb9Jb/1SFww2ptmtur9INS438';
    const v4 = '$RrGxF28UrHLmoASHndYb9Jb_1SFww2ptmtur9INS438';
    assert.ok(validateEventId('$yvN1b43rlmcOs5fY:localhost', '1'));
    assert.ok(validateEventId('$abc:example.org:8448', '2'));
    assert.ok(!validateEventId('$abc', '1'));
    assert.ok(!validateEventId('$:example.org', '1'));
    assert.ok(!validateEventId('abc:example.org', '1'));
    assert.ok(validateEventId(v3, '3'));
    assert.ok(!validateEventId(v4, '3'));
    assert.ok(validateEventId(v4, '4'));
    assert.ok(validateEventId(v4, '12'));
    assert.ok(!validateEventId(v3, '4'));
    assert.ok(!validateEventId(`${v4}A`, '4'));
    assert.ok(!validateEventId(v4.slice(0, -1), '4'));
    assert.ok(!validateEventId('$yvN1b43rlmcOs5fY:localhost', '4'));
  });

  test('room ids per version', () => {
    assert.ok(validateRoomId('!abc:example.org', '1'));
    assert.ok(validateRoomId('!abc:example.org', '11'));
    assert.ok(!validateRoomId('!abc:example.org', '12'));
    assert.ok(validateRoomId('!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ', '12'));
    assert.ok(!validateRoomId('!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ', '11'));
    assert.ok(!validateRoomId('!Nhcu5BS+UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ', '12'));
    assert.ok(!validateRoomId('#abc:example.org', '1'));
  });
});
