import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import nacl from 'tweetnacl';
import { decodeBase64, encodeBase64 } from './base64.js';
import { canonicalJsonBytes } from './canonical-json.js';
import {
  decodeSigningKeyFile,
  decodeSigningKeySeed,
  encodeSigningKeySeed,
  generateSigningKey,
  signatureKeyIds,
  signBytes,
  signingKeyFromSeed,
  signJson,
  verifyBytes,
  verifyJsonSignature,
} from './signing.js';

// Spec appendices, "Cryptographic Test Vectors".
const SEED = 'YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1';
// The spec's seed text has non-zero padding bits in its last character; decoders must accept
// that, and a re-encode of the same 32 bytes yields the canonical form ending in `0`.
const SEED_CANONICAL = 'YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0';
const key = signingKeyFromSeed(decodeBase64(SEED), 'ed25519:1');

describe('signing keys', () => {
  test('derives the public key from the seed (matches tweetnacl)', () => {
    assert.equal(key.keyId, 'ed25519:1');
    assert.equal(key.seed.length, 32);
    assert.deepEqual(key.publicKey, nacl.sign.keyPair.fromSeed(decodeBase64(SEED)).publicKey);
    assert.equal(encodeBase64(key.publicKey), 'XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI');
  });

  test('rejects wrong seed lengths and malformed key ids', () => {
    assert.throws(() => signingKeyFromSeed(new Uint8Array(31), 'ed25519:1'));
    assert.throws(() => signingKeyFromSeed(new Uint8Array(32), 'ed25519:'));
    assert.throws(() => signingKeyFromSeed(new Uint8Array(32), 'curve25519:1'));
    assert.throws(() => signingKeyFromSeed(new Uint8Array(32), 'ed25519:a b'));
  });

  test('does not alias the caller seed buffer', () => {
    const seed = decodeBase64(SEED);
    const k = signingKeyFromSeed(seed, 'ed25519:1');
    seed.fill(0);
    assert.equal(encodeBase64(k.seed), SEED_CANONICAL);
  });

  test('generates distinct keys with a valid version', () => {
    const a = generateSigningKey();
    const b = generateSigningKey();
    assert.match(a.keyId, /^ed25519:a_[A-Za-z0-9]{6}$/);
    assert.notEqual(encodeBase64(a.seed), encodeBase64(b.seed));
    assert.deepEqual(a.publicKey, nacl.sign.keyPair.fromSeed(a.seed).publicKey);
    assert.equal(generateSigningKey('v1').keyId, 'ed25519:v1');
  });

  test('Synapse signing key file format round trip', () => {
    const text = encodeSigningKeySeed(key);
    assert.equal(text, `ed25519 1 ${SEED_CANONICAL}`);
    const back = decodeSigningKeySeed(`${text}\n`);
    assert.equal(back.keyId, 'ed25519:1');
    assert.deepEqual(back.seed, key.seed);
    assert.deepEqual(back.publicKey, key.publicKey);
    // Padded base64 is accepted on input, as the spec asks.
    assert.deepEqual(decodeSigningKeySeed(`ed25519 1 ${SEED_CANONICAL}=`).seed, key.seed);
    assert.deepEqual(decodeSigningKeySeed(`ed25519 1 ${SEED}`).seed, key.seed);
    const g = generateSigningKey();
    const file = `${encodeSigningKeySeed(key)}\n\n${encodeSigningKeySeed(g)}\n`;
    assert.deepEqual(
      decodeSigningKeyFile(file).map((k) => k.keyId),
      ['ed25519:1', g.keyId],
    );
  });

  test('rejects malformed key files', () => {
    assert.throws(() => decodeSigningKeySeed('ed25519 1'));
    assert.throws(() => decodeSigningKeySeed(`rsa 1 ${SEED}`));
    assert.throws(() => decodeSigningKeySeed('ed25519 1 not*base64'));
    assert.throws(() => decodeSigningKeySeed('ed25519 1 AAAA'));
  });
});

describe('JSON signing: spec appendix vectors', () => {
  test('empty object', () => {
    assert.deepEqual(signJson({}, 'domain', key), {
      signatures: {
        domain: {
          'ed25519:1': 'K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ',
        },
      },
    });
  });

  test('object with data values', () => {
    assert.deepEqual(signJson({ one: 1, two: 'Two' }, 'domain', key), {
      one: 1,
      signatures: {
        domain: {
          'ed25519:1': 'KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw',
        },
      },
      two: 'Two',
    });
  });
});

describe('signJson', () => {
  test('ignores unsigned and existing signatures, keeps both, does not mutate', () => {
    const input: { one: number; two: string; unsigned: object; signatures: Record<string, Record<string, string>> } = {
      one: 1,
      two: 'Two',
      unsigned: { age_ts: 5 },
      signatures: { other: { 'ed25519:x': 'abc' }, domain: { 'ed25519:0': 'old' } },
    };
    const snapshot = structuredClone(input);
    const out = signJson(input, 'domain', key);
    assert.deepEqual(input, snapshot);
    assert.deepEqual(out.unsigned, { age_ts: 5 });
    assert.equal(out.signatures.other!['ed25519:x'], 'abc');
    assert.equal(out.signatures.domain!['ed25519:0'], 'old');
    // Same signature as the plain vector: unsigned/signatures are not covered.
    assert.equal(
      out.signatures.domain!['ed25519:1'],
      'KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw',
    );
  });

  test('a "__proto__" server name stays an own property', () => {
    const out = signJson({}, '__proto__', key);
    assert.ok(Object.prototype.hasOwnProperty.call(out.signatures, '__proto__'));
    assert.equal(Object.getPrototypeOf(out.signatures), Object.prototype);
    assert.ok(verifyJsonSignature(out, '__proto__', 'ed25519:1', key.publicKey));
  });
});

describe('verifyJsonSignature', () => {
  const signed = signJson({ one: 1, two: 'Two', unsigned: { x: 1 } }, 'domain', key);

  test('accepts a valid signature regardless of unsigned', () => {
    assert.ok(verifyJsonSignature(signed, 'domain', 'ed25519:1', key.publicKey));
    assert.ok(verifyJsonSignature({ ...signed, unsigned: { y: 2 } }, 'domain', 'ed25519:1', key.publicKey));
  });

  test('rejects tampering, wrong key, missing entries and malformed signatures', () => {
    assert.ok(!verifyJsonSignature({ ...signed, one: 2 }, 'domain', 'ed25519:1', key.publicKey));
    assert.ok(!verifyJsonSignature(signed, 'domain', 'ed25519:1', generateSigningKey().publicKey));
    assert.ok(!verifyJsonSignature(signed, 'other', 'ed25519:1', key.publicKey));
    assert.ok(!verifyJsonSignature(signed, 'domain', 'ed25519:2', key.publicKey));
    assert.ok(!verifyJsonSignature({ one: 1, two: 'Two' }, 'domain', 'ed25519:1', key.publicKey));
    const bad = (sig: unknown) => ({ one: 1, two: 'Two', signatures: { domain: { 'ed25519:1': sig } } });
    assert.ok(!verifyJsonSignature(bad('!!!'), 'domain', 'ed25519:1', key.publicKey));
    assert.ok(!verifyJsonSignature(bad(42), 'domain', 'ed25519:1', key.publicKey));
    assert.ok(!verifyJsonSignature(bad('AAAA'), 'domain', 'ed25519:1', key.publicKey));
    assert.ok(!verifyJsonSignature({ one: 1, signatures: 'x' }, 'domain', 'ed25519:1', key.publicKey));
    assert.ok(!verifyJsonSignature(signed, 'domain', 'ed25519:1', new Uint8Array(31)));
    // Inherited properties are not signatures.
    assert.ok(!verifyJsonSignature(signed, 'toString', 'ed25519:1', key.publicKey));
  });

  test('accepts a signature written in URL-safe base64, as Synapse does', () => {
    const std = signed.signatures.domain!['ed25519:1']!;
    const urlSafe = std.replace(/\+/g, '-').replace(/\//g, '_');
    assert.notEqual(urlSafe, std);
    const s = { ...signed, signatures: { domain: { 'ed25519:1': urlSafe } } };
    assert.ok(verifyJsonSignature(s, 'domain', 'ed25519:1', key.publicKey));
  });

  test('non-canonical content (floats) fails verification instead of throwing', () => {
    const s = { ...signed, f: 1.5 };
    assert.equal(verifyJsonSignature(s, 'domain', 'ed25519:1', key.publicKey), false);
  });

  test('lists the key ids a server signed with', () => {
    assert.deepEqual(signatureKeyIds(signed, 'domain'), ['ed25519:1']);
    assert.deepEqual(signatureKeyIds(signed, 'nobody'), []);
  });
});

describe('node:crypto and tweetnacl agree', () => {
  const message = canonicalJsonBytes({ hello: 'world', n: [1, 2, 3] });

  test('tweetnacl verifies what node:crypto signed', () => {
    const sig = signBytes(message, key);
    assert.equal(sig.length, 64);
    assert.ok(nacl.sign.detached.verify(message, sig, key.publicKey));
  });

  test('node:crypto verifies what tweetnacl signed, for many random keys', () => {
    for (let i = 0; i < 20; i++) {
      const k = generateSigningKey();
      const msg = new Uint8Array(Buffer.from(`message ${i} ${encodeBase64(k.seed)}`));
      const naclSig = nacl.sign.detached(msg, nacl.sign.keyPair.fromSeed(k.seed).secretKey);
      assert.ok(verifyBytes(msg, naclSig, k.publicKey));
      // ed25519 is deterministic: both libraries produce the identical signature.
      assert.deepEqual(signBytes(msg, k), naclSig);
      const flipped = new Uint8Array(naclSig);
      flipped[0] ^= 1;
      assert.ok(!verifyBytes(msg, flipped, k.publicKey));
      assert.ok(!nacl.sign.detached.verify(msg, flipped, k.publicKey));
    }
  });

  test('refuses what libsodium (Synapse) refuses even though OpenSSL and tweetnacl accept it', () => {
    // The identity point as public key and as R, with S = 0: [0]B = R + [h]A holds for every
    // message, so both libraries would call this a valid signature of anything.
    const identity = new Uint8Array(32);
    identity[0] = 1;
    const forged = new Uint8Array(64);
    forged.set(identity, 0);
    const msg = new Uint8Array(Buffer.from('anything at all'));
    assert.ok(nacl.sign.detached.verify(msg, forged, identity), 'tweetnacl accepts the forgery');
    assert.equal(verifyBytes(msg, forged, identity), false);
    // The same with the sign bit set on the encodings.
    const negated = new Uint8Array(identity);
    negated[31]! |= 0x80;
    assert.equal(verifyBytes(msg, forged, negated), false);
  });

  test('refuses S >= L and non-canonical public keys', () => {
    const sig = signBytes(message, key);
    // Adding L to S gives a signature tweetnacl still accepts but libsodium does not.
    const L = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex');
    const malleable = new Uint8Array(sig);
    let carry = 0;
    for (let i = 0; i < 32; i++) {
      const sum = malleable[32 + i]! + L[i]! + carry;
      malleable[32 + i] = sum & 0xff;
      carry = sum >> 8;
    }
    assert.equal(carry, 0);
    assert.ok(nacl.sign.detached.verify(message, malleable, key.publicKey), 'tweetnacl accepts S + L');
    assert.equal(verifyBytes(message, malleable, key.publicKey), false);
    // y = p + 1 (non-canonical encoding of y = 1).
    const nonCanonical = Buffer.from('eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex');
    assert.equal(verifyBytes(message, sig, new Uint8Array(nonCanonical)), false);
    const yIsP2 = Buffer.from('efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex');
    assert.equal(verifyBytes(message, sig, new Uint8Array(yIsP2)), false);
  });

  test('small-order R in an otherwise well-formed signature is refused', () => {
    const sig = new Uint8Array(signBytes(message, key));
    sig.set(Buffer.from('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', 'hex'), 0);
    assert.equal(verifyBytes(message, sig, key.publicKey), false);
  });

  test('verifyBytes rejects wrong lengths', () => {
    const sig = signBytes(message, key);
    assert.ok(!verifyBytes(message, sig.subarray(0, 63), key.publicKey));
    assert.ok(!verifyBytes(message, sig, key.publicKey.subarray(0, 31)));
  });
});
