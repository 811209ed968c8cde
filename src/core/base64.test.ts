import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBase64, decodeBase64Any, decodeBase64Url, encodeBase64, encodeBase64Url } from './base64.js';

const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

describe('unpadded base64 (spec appendix examples)', () => {
  const examples: Array<[string, string]> = [
    ['', ''],
    ['f', 'Zg'],
    ['fo', 'Zm8'],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg'],
    ['fooba', 'Zm9vYmE'],
    ['foobar', 'Zm9vYmFy'],
  ];
  for (const [plain, encoded] of examples) {
    test(`"${plain}" <-> "${encoded}"`, () => {
      assert.equal(encodeBase64(bytes(plain)), encoded);
      assert.deepEqual(decodeBase64(encoded), bytes(plain));
      // Decoders accept padding too.
      assert.deepEqual(decodeBase64(encoded.padEnd(Math.ceil(encoded.length / 4) * 4, '=')), bytes(plain));
    });
  }
});

describe('alphabets', () => {
  const data = new Uint8Array([0xfb, 0xff, 0xbf, 0x00]);
  test('standard uses + and /, URL-safe uses - and _', () => {
    assert.equal(encodeBase64(data), '+/+/AA');
    assert.equal(encodeBase64Url(data), '-_-_AA');
    assert.deepEqual(decodeBase64('+/+/AA'), data);
    assert.deepEqual(decodeBase64Url('-_-_AA'), data);
  });
  test('each decoder refuses the other alphabet and junk', () => {
    assert.throws(() => decodeBase64('-_-_AA'));
    assert.throws(() => decodeBase64Url('+/+/AA'));
    assert.throws(() => decodeBase64('ab c'));
    assert.throws(() => decodeBase64('a'));
    assert.throws(() => decodeBase64('Zg==='));
  });
  test('decodeBase64Any takes both alphabets, mixed, padded or not', () => {
    assert.deepEqual(decodeBase64Any('+/+/AA'), data);
    assert.deepEqual(decodeBase64Any('-_-_AA'), data);
    assert.deepEqual(decodeBase64Any('-/+_AA=='), data);
    assert.throws(() => decodeBase64Any('ab c'));
    assert.throws(() => decodeBase64Any('a'));
    assert.throws(() => decodeBase64Any('a*bc'));
  });
  test('encodes subarrays by their own bounds', () => {
    const buf = new Uint8Array([1, 2, 3, 0x66, 0x6f, 0x6f, 9]);
    assert.equal(encodeBase64(buf.subarray(3, 6)), 'Zm9v');
  });
});
