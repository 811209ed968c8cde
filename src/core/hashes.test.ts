import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  addContentHash,
  checkContentHash,
  computeContentHash,
  computeReferenceHash,
  isCreateEvent,
  toWirePdu,
} from './hashes.js';

const sha256 = (s: string) => new Uint8Array(createHash('sha256').update(Buffer.from(s, 'utf8')).digest());
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64').replace(/=+$/, '');

// Spec appendices, "Event Signing" examples.
const MINIMAL = {
  room_id: '!x:domain',
  sender: '@a:domain',
  origin: 'domain',
  origin_server_ts: 1000000,
  signatures: {},
  hashes: {},
  type: 'X',
  content: {},
  prev_events: [],
  auth_events: [],
  depth: 3,
  unsigned: { age_ts: 1000000 },
};
const REDACTABLE = {
  content: { body: 'Here is the message content' },
  event_id: '$0:domain',
  origin: 'domain',
  origin_server_ts: 1000000,
  type: 'm.room.message',
  room_id: '!r:domain',
  sender: '@u:domain',
  signatures: {},
  unsigned: { age_ts: 1000000 },
};

// Real events as published by their servers (a v1 room on a Synapse test server, and the v5
// create event of a room on jki.re), with the hashes those servers computed.
const REAL_V1 = JSON.parse(
  '{"auth_events":[["$oXL79cT7fFxR7dPH:localhost",{"sha256":"abjkiDSg1RkuZrbj2jZoGMlQaaj1Ue3Jhi7I7NlKfXY"}],["$IVUsaSkm1LBAZYYh:localhost",{"sha256":"X7RUj46hM/8sUHNBIFkStbOauPvbDzjSdH4NibYWnko"}],["$VS2QT0EeArZYi8wf:localhost",{"sha256":"k9eM6utkCH8vhLW9/oRsH74jOBS/6RVK42iGDFbylno"}]],"content":{"name":"test3"},"depth":7,"event_id":"$yvN1b43rlmcOs5fY:localhost","hashes":{"sha256":"Oh1mwI1jEqZ3tgJ+V1Dmu5nOEGpCE4RFUqyJv2gQXKs"},"origin":"localhost","origin_server_ts":1510854416361,"prev_events":[["$FqI6TVvWpcbcnJ97:localhost",{"sha256":"upCsBqUhNUgT2/+zkzg8TbqdQpWWKQnZpGJc6KcbUC4"}]],"prev_state":[],"room_id":"!19Mp0U9hjajeIiw1:localhost","sender":"@test:localhost","signatures":{"localhost":{"ed25519:u9kP":"5IzSuRXkxvbTp0vZhhXYZeOe+619iG3AybJXr7zfNn/4vHz4TH7qSJVQXSaHHvcTcDodAKHnTG1WDulgO5okAQ"}},"state_key":"","type":"m.room.name"}',
);
const REAL_V5_CREATE = JSON.parse(
  '{"auth_events": [], "prev_events": [], "type": "m.room.create", "room_id": "!uXDCzlYgCTHtiWCkEx:jki.re", "sender": "@erikj:jki.re", "content": {"room_version": "5", "predecessor": {"room_id": "!gdRMqOrTFdOCYHNwOo:half-shot.uk", "event_id": "$LP7ROBc4b+cMc1UE9haIz8q5AK2AIW4eJ90FfKLvyZI"}, "creator": "@erikj:jki.re"}, "depth": 1, "prev_state": [], "state_key": "", "origin": "jki.re", "origin_server_ts": 1560284621137, "hashes": {"sha256": "IX6zuNiJpJPNf70BLleL3HSCpjKeq9Uhu7uUpyDjBmc"}, "signatures": {"jki.re": {"ed25519:auto": "O4IyFfF2PPtGp5uaDm8t57dZbdh8vc8Q64LgCwvzYRVItAMI0uisfiAFaxkVT7MRpzh6N2QNN5NMRXZKmgPYDA"}}, "unsigned": {"age": 1321650}}',
);

describe('content hash', () => {
  test('spec appendix vectors', () => {
    assert.equal(computeContentHash(MINIMAL), '5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos');
    assert.equal(computeContentHash(REDACTABLE), 'onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g');
    assert.equal(computeContentHash(REDACTABLE, '1'), 'onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g');
  });

  test('matches hashes computed by real servers', () => {
    assert.ok(checkContentHash(REAL_V1, '1'));
    assert.ok(checkContentHash(REAL_V5_CREATE, '5'));
  });

  test('equals sha256 of the hand-written canonical form', () => {
    const ev = { type: 'm.room.message', content: { body: 'é', msgtype: 'm.text' }, depth: 2, unsigned: { a: 1 } };
    assert.equal(
      computeContentHash(ev),
      b64(sha256('{"content":{"body":"é","msgtype":"m.text"},"depth":2,"type":"m.room.message"}')),
    );
  });

  test('ignores unsigned, signatures, hashes and legacy top-level fields only', () => {
    const h = computeContentHash(MINIMAL);
    assert.equal(computeContentHash({ ...MINIMAL, unsigned: { x: 1 }, signatures: { s: { k: 'v' } }, hashes: { sha256: 'x' } }), h);
    assert.equal(computeContentHash({ ...MINIMAL, age_ts: 5, outlier: true, destinations: {} }), h);
    assert.notEqual(computeContentHash({ ...MINIMAL, content: { a: 1 } }), h);
    assert.notEqual(computeContentHash({ ...MINIMAL, extra: 1 }), h);
  });

  test('with a room version, hashes the wire form', () => {
    const withId = { ...MINIMAL, event_id: '$abc' };
    assert.equal(computeContentHash(withId, '4'), computeContentHash(MINIMAL));
    assert.notEqual(computeContentHash(withId, '1'), computeContentHash(MINIMAL));
    const create = { ...MINIMAL, type: 'm.room.create', state_key: '' };
    const { room_id: _r, ...createWire } = create;
    assert.equal(computeContentHash(create, '12'), computeContentHash(createWire));
    assert.equal(computeContentHash(create, '11'), computeContentHash(create));
  });

  test('addContentHash returns a new object and keeps other algorithms', () => {
    const input = { ...MINIMAL, hashes: { sha512: 'other' } };
    const out = addContentHash(input);
    assert.deepEqual(input.hashes, { sha512: 'other' });
    assert.deepEqual(out.hashes, { sha512: 'other', sha256: '5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos' });
    assert.ok(checkContentHash(out));
    assert.deepEqual(addContentHash({ ...MINIMAL, hashes: 'junk' }).hashes, { sha256: '5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos' });
  });

  test('checkContentHash fails closed', () => {
    const good = addContentHash(MINIMAL);
    assert.ok(checkContentHash(good));
    assert.ok(checkContentHash({ ...good, unsigned: { changed: true } }));
    assert.ok(!checkContentHash({ ...good, content: { tampered: true } }));
    assert.ok(!checkContentHash({ ...good, depth: 4 }));
    assert.ok(!checkContentHash(MINIMAL)); // hashes: {}
    assert.ok(!checkContentHash({ ...MINIMAL, hashes: undefined }));
    assert.ok(!checkContentHash({ ...MINIMAL, hashes: { sha256: 5 } }));
    assert.ok(!checkContentHash({ ...MINIMAL, hashes: { sha256: '***' } }));
    assert.ok(!checkContentHash({ ...good, content: { f: 0.5 } }));
    // URL-safe and padded base64 of the right hash are accepted.
    assert.ok(checkContentHash({ ...good, hashes: { sha256: good.hashes.sha256.replace(/\+/g, '-').replace(/\//g, '_') } }));
    assert.ok(checkContentHash({ ...good, hashes: { sha256: `${good.hashes.sha256}=` } }));
  });
});

describe('reference hash', () => {
  const message = {
    auth_events: ['$a'],
    content: { body: 'secret', msgtype: 'm.text' },
    depth: 10,
    hashes: { sha256: 'HASH' },
    origin: 'example.org',
    origin_server_ts: 1700000000000,
    prev_events: ['$p'],
    room_id: '!r:example.org',
    sender: '@u:example.org',
    signatures: { 'example.org': { 'ed25519:1': 'SIG' } },
    type: 'm.room.message',
    unsigned: { age_ts: 1 },
  };

  test('v4: sha256 of the redacted canonical form, by hand', () => {
    const expected =
      '{"auth_events":["$a"],"content":{},"depth":10,"hashes":{"sha256":"HASH"},"origin":"example.org","origin_server_ts":1700000000000,"prev_events":["$p"],"room_id":"!r:example.org","sender":"@u:example.org","type":"m.room.message"}';
    assert.deepEqual(computeReferenceHash(message, '4'), sha256(expected));
  });

  test('v11: origin is no longer covered', () => {
    const expected =
      '{"auth_events":["$a"],"content":{},"depth":10,"hashes":{"sha256":"HASH"},"origin_server_ts":1700000000000,"prev_events":["$p"],"room_id":"!r:example.org","sender":"@u:example.org","type":"m.room.message"}';
    assert.deepEqual(computeReferenceHash(message, '11'), sha256(expected));
    assert.deepEqual(computeReferenceHash({ ...message, origin: 'other' }, '11'), sha256(expected));
    assert.notDeepEqual(computeReferenceHash({ ...message, origin: 'other' }, '10'), computeReferenceHash(message, '10'));
  });

  test('v12 create event: computed without room_id and with the whole content', () => {
    const create = {
      auth_events: [],
      content: { room_version: '12', 'm.federate': true },
      depth: 1,
      hashes: { sha256: 'H' },
      origin_server_ts: 1,
      prev_events: [],
      room_id: '!derived',
      sender: '@c:example.org',
      state_key: '',
      type: 'm.room.create',
    };
    const expected =
      '{"auth_events":[],"content":{"m.federate":true,"room_version":"12"},"depth":1,"hashes":{"sha256":"H"},"origin_server_ts":1,"prev_events":[],"sender":"@c:example.org","state_key":"","type":"m.room.create"}';
    assert.deepEqual(computeReferenceHash(create, '12'), sha256(expected));
  });

  test('stable under redaction, signatures, unsigned and (v3+) event_id', () => {
    const h = computeReferenceHash(message, '4');
    assert.deepEqual(computeReferenceHash({ ...message, content: {} }, '4'), h);
    assert.deepEqual(computeReferenceHash({ ...message, signatures: {} }, '4'), h);
    assert.deepEqual(computeReferenceHash({ ...message, unsigned: { other: 1 } }, '4'), h);
    assert.deepEqual(computeReferenceHash({ ...message, event_id: '$whatever' }, '4'), h);
    assert.deepEqual(computeReferenceHash({ ...message, age_ts: 99 }, '4'), h);
    assert.notDeepEqual(computeReferenceHash({ ...message, hashes: { sha256: 'OTHER' } }, '4'), h);
    assert.notDeepEqual(computeReferenceHash({ ...message, depth: 11 }, '4'), h);
    // v1/v2 keep event_id in the PDU, so it is covered.
    assert.notDeepEqual(computeReferenceHash({ ...message, event_id: '$x:y' }, '1'), computeReferenceHash(message, '1'));
  });

  test('is a 32-byte digest', () => {
    assert.equal(computeReferenceHash(message, '4').length, 32);
  });
});

describe('toWirePdu', () => {
  const ev = { event_id: '$e', room_id: '!r', type: 'm.room.create', state_key: '', content: {}, unsigned: { a: 1 } };
  test('keeps event_id only in v1/v2 and strips room_id from v12 create events', () => {
    assert.equal(toWirePdu(ev, '1'), ev);
    assert.deepEqual(toWirePdu(ev, '2'), ev);
    assert.deepEqual(toWirePdu(ev, '3'), { room_id: '!r', type: 'm.room.create', state_key: '', content: {}, unsigned: { a: 1 } });
    assert.deepEqual(toWirePdu(ev, '11'), { room_id: '!r', type: 'm.room.create', state_key: '', content: {}, unsigned: { a: 1 } });
    assert.deepEqual(toWirePdu(ev, '12'), { type: 'm.room.create', state_key: '', content: {}, unsigned: { a: 1 } });
    const msg = { ...ev, type: 'm.room.message', state_key: undefined };
    assert.equal((toWirePdu(msg, '12') as Record<string, unknown>).room_id, '!r');
    // A create-typed event with a non-empty state key is not the room's create event.
    assert.equal((toWirePdu({ ...ev, state_key: 'x' }, '12') as Record<string, unknown>).room_id, '!r');
    assert.equal(ev.event_id, '$e'); // input untouched
  });

  test('isCreateEvent', () => {
    assert.ok(isCreateEvent({ type: 'm.room.create', state_key: '' }));
    assert.ok(!isCreateEvent({ type: 'm.room.create' }));
    assert.ok(!isCreateEvent({ type: 'm.room.member', state_key: '' }));
  });
});
