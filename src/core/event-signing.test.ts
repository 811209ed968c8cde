import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import nacl from 'tweetnacl';
import { decodeBase64 } from './base64.js';
import { eventSigningBytes, signEvent, verifyEventSignature } from './event-signing.js';
import { addContentHash } from './hashes.js';
import { redactEvent } from './redaction.js';
import { generateSigningKey, signingKeyFromSeed } from './signing.js';

// Spec appendices, "Cryptographic Test Vectors": seed, server name and key id.
const key = signingKeyFromSeed(decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1'), 'ed25519:1');

describe('spec appendix: event signing', () => {
  test('minimally-sized event', () => {
    const input = {
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
    assert.deepEqual(signEvent(addContentHash(input), '1', 'domain', key), {
      auth_events: [],
      content: {},
      depth: 3,
      hashes: { sha256: '5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos' },
      origin: 'domain',
      origin_server_ts: 1000000,
      prev_events: [],
      room_id: '!x:domain',
      sender: '@a:domain',
      signatures: {
        domain: {
          'ed25519:1': 'KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg',
        },
      },
      type: 'X',
      unsigned: { age_ts: 1000000 },
    });
  });

  test('event with redactable content', () => {
    const input = {
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
    assert.deepEqual(signEvent(addContentHash(input), '1', 'domain', key), {
      content: { body: 'Here is the message content' },
      event_id: '$0:domain',
      hashes: { sha256: 'onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g' },
      origin: 'domain',
      origin_server_ts: 1000000,
      type: 'm.room.message',
      room_id: '!r:domain',
      sender: '@u:domain',
      signatures: {
        domain: {
          'ed25519:1': 'Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA',
        },
      },
      unsigned: { age_ts: 1000000 },
    });
  });
});

describe('signEvent / verifyEventSignature', () => {
  const ev = addContentHash({
    auth_events: ['$a'],
    content: { body: 'hello', msgtype: 'm.text' },
    depth: 4,
    origin_server_ts: 1700000000000,
    prev_events: ['$p'],
    room_id: '!r:example.org',
    sender: '@u:example.org',
    type: 'm.room.message',
  });

  for (const version of ['1', '3', '10', '11', '12']) {
    test(`v${version}: verifies on the full event and on its redacted copy`, () => {
      const signed = signEvent(ev, version, 'example.org', key);
      assert.ok(verifyEventSignature(signed, version, 'example.org', 'ed25519:1', key.publicKey));
      assert.ok(verifyEventSignature(redactEvent(signed, version), version, 'example.org', 'ed25519:1', key.publicKey));
      // Content is not covered by the signature (the content hash covers it) ...
      assert.ok(verifyEventSignature({ ...signed, content: { body: 'changed' } }, version, 'example.org', 'ed25519:1', key.publicKey));
      // ... but protected fields are.
      assert.ok(!verifyEventSignature({ ...signed, depth: 5 }, version, 'example.org', 'ed25519:1', key.publicKey));
      assert.ok(!verifyEventSignature({ ...signed, hashes: { sha256: 'x' } }, version, 'example.org', 'ed25519:1', key.publicKey));
      assert.ok(!verifyEventSignature(signed, version, 'example.org', 'ed25519:1', generateSigningKey().publicKey));
      assert.ok(!verifyEventSignature(signed, version, 'other.org', 'ed25519:1', key.publicKey));
    });
  }

  test('tweetnacl verifies the signature over the redacted bytes', () => {
    const signed = signEvent(ev, '11', 'example.org', key);
    const bytes = eventSigningBytes(signed, '11');
    assert.equal(
      bytes.toString('utf8'),
      `{"auth_events":["$a"],"content":{},"depth":4,"hashes":{"sha256":"${ev.hashes.sha256}"},"origin_server_ts":1700000000000,"prev_events":["$p"],"room_id":"!r:example.org","sender":"@u:example.org","type":"m.room.message"}`,
    );
    assert.ok(nacl.sign.detached.verify(bytes, decodeBase64(signed.signatures['example.org']!['ed25519:1']!), key.publicKey));
  });

  test('v3+: an event_id on the event (a RoomEvent) does not change what is signed', () => {
    const signed = signEvent(ev, '4', 'example.org', key);
    assert.deepEqual(signEvent({ ...ev, event_id: '$computed' }, '4', 'example.org', key).signatures, signed.signatures);
    assert.ok(verifyEventSignature({ ...signed, event_id: '$anything' }, '4', 'example.org', 'ed25519:1', key.publicKey));
    // In v1 the event id is part of the signed data.
    const v1 = signEvent({ ...ev, event_id: '$1:example.org' }, '1', 'example.org', key);
    assert.ok(!verifyEventSignature({ ...v1, event_id: '$2:example.org' }, '1', 'example.org', 'ed25519:1', key.publicKey));
  });

  test('v11 drops origin from the signed data, v10 does not', () => {
    const withOrigin = { ...ev, origin: 'example.org' };
    const s11 = signEvent(withOrigin, '11', 'example.org', key);
    assert.ok(verifyEventSignature({ ...s11, origin: 'evil.org' }, '11', 'example.org', 'ed25519:1', key.publicKey));
    const s10 = signEvent(withOrigin, '10', 'example.org', key);
    assert.ok(!verifyEventSignature({ ...s10, origin: 'evil.org' }, '10', 'example.org', 'ed25519:1', key.publicKey));
  });

  test('merges with existing signatures and leaves the input alone', () => {
    const other = generateSigningKey('o');
    const first = signEvent(ev, '11', 'a.org', other);
    const snapshot = structuredClone(first);
    const both = signEvent(first, '11', 'b.org', key);
    assert.deepEqual(first, snapshot);
    assert.deepEqual(Object.keys(both.signatures).sort(), ['a.org', 'b.org']);
    assert.ok(verifyEventSignature(both, '11', 'a.org', 'ed25519:o', other.publicKey));
    assert.ok(verifyEventSignature(both, '11', 'b.org', 'ed25519:1', key.publicKey));
    const twoKeys = signEvent(both, '11', 'b.org', other);
    assert.deepEqual(Object.keys(twoKeys.signatures['b.org']!).sort(), ['ed25519:1', 'ed25519:o']);
  });

  test('malformed signatures fail without throwing', () => {
    const base = { ...ev };
    for (const signatures of [undefined, 'x', { 'example.org': 'x' }, { 'example.org': { 'ed25519:1': 5 } }, { 'example.org': { 'ed25519:1': '%%' } }]) {
      assert.equal(verifyEventSignature({ ...base, signatures }, '11', 'example.org', 'ed25519:1', key.publicKey), false);
    }
    assert.equal(
      verifyEventSignature({ ...signEvent(ev, '11', 'example.org', key), depth: 0.5 }, '11', 'example.org', 'ed25519:1', key.publicKey),
      false,
    );
  });
});
