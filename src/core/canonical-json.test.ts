import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { walk } from 'canonical-json';
import {
  assertCanonicalJsonValue,
  canonicalJsonBytes,
  CanonicalJsonError,
  compareCodePoints,
  encodeCanonicalJson,
  parseJsonStrict,
} from './canonical-json.js';

describe('encodeCanonicalJson: spec appendix examples', () => {
  const cases: Array<[string, string]> = [
    ['{}', '{}'],
    ['{\n    "one": 1,\n    "two": "Two"\n}', '{"one":1,"two":"Two"}'],
    ['{\n    "b": "2",\n    "a": "1"\n}', '{"a":"1","b":"2"}'],
    ['{"b":"2","a":"1"}', '{"a":"1","b":"2"}'],
    [
      `{
    "auth": {
        "success": true,
        "mxid": "@john.doe:example.com",
        "profile": {
            "display_name": "John Doe",
            "three_pids": [
                {
                    "medium": "email",
                    "address": "john.doe@example.org"
                },
                {
                    "medium": "msisdn",
                    "address": "123456789"
                }
            ]
        }
    }
}`,
      '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}',
    ],
    ['{\n    "a": "日本語"\n}', '{"a":"日本語"}'],
    ['{\n    "本": 2,\n    "日": 1\n}', '{"日":1,"本":2}'],
    ['{\n    "a": "\\u65E5"\n}', '{"a":"日"}'],
    ['{\n    "a": null\n}', '{"a":null}'],
    ['{\n    "a": -0,\n    "b": 1e10\n}', '{"a":0,"b":10000000000}'],
  ];
  for (const [input, expected] of cases) {
    test(expected, () => {
      assert.equal(encodeCanonicalJson(JSON.parse(input)), expected);
      assert.deepEqual(canonicalJsonBytes(JSON.parse(input)), Buffer.from(expected, 'utf8'));
    });
  }
});

describe('encodeCanonicalJson: details', () => {
  test('shortest escapes only', () => {
    assert.equal(
      encodeCanonicalJson({ s: '"\\\b\f\n\r\t\u0000\u001f\u007f/\u2028é😀' }),
      '{"s":"\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f\u007f/\u2028é😀"}',
    );
  });

  test('sorts keys by code point, not UTF-16 unit', () => {
    // U+FFFD is a BMP character; U+1F600 is above it though its first UTF-16 unit (0xD83D) is lower.
    assert.equal(encodeCanonicalJson({ '😀': 1, '\uFFFD': 2, a: 3, '': 4 }), '{"":4,"a":3,"\uFFFD":2,"😀":1}');
    assert.ok(compareCodePoints('\uE000', '\u{10000}') < 0);
    assert.ok(compareCodePoints('ab', 'a') > 0);
  });

  test('integer bounds', () => {
    assert.equal(encodeCanonicalJson([9007199254740991, -9007199254740991]), '[9007199254740991,-9007199254740991]');
    assert.throws(() => encodeCanonicalJson(9007199254740992), CanonicalJsonError);
    assert.throws(() => encodeCanonicalJson({ a: -9007199254740992 }), CanonicalJsonError);
  });

  test('refuses floats, NaN, Infinity, non-JSON values and lone surrogates', () => {
    for (const bad of [1.5, NaN, Infinity, -Infinity, 10n, () => 1, Symbol('x'), new Date(0), new Map(), '\uD800', { '\uDC00': 1 }]) {
      assert.throws(() => encodeCanonicalJson(bad), CanonicalJsonError, String(typeof bad));
    }
    assert.throws(() => encodeCanonicalJson([undefined]), CanonicalJsonError);
    assert.throws(() => assertCanonicalJsonValue({ a: { b: [0.5] } }), /\$\.a\.b\[0\]/);
  });

  test('skips undefined object members, like JSON.stringify', () => {
    assert.equal(encodeCanonicalJson({ a: undefined, b: 1 }), '{"b":1}');
  });

  test('accepts null-prototype objects and keeps "__proto__" keys', () => {
    const o = Object.create(null) as Record<string, unknown>;
    o.z = 1;
    o.a = 2;
    assert.equal(encodeCanonicalJson(o), '{"a":2,"z":1}');
    assert.equal(encodeCanonicalJson(JSON.parse('{"__proto__":{"x":1},"a":1}')), '{"__proto__":{"x":1},"a":1}');
  });

  test('agrees with the canonical-json package on random values', () => {
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const chars = ['a', 'b', 'Z', '0', '"', '\\', '\n', '\u0001', 'é', '日', '😀', '\uFFFD', '\u2028', ' '];
    const str = () => Array.from({ length: Math.floor(rand() * 6) }, () => chars[Math.floor(rand() * chars.length)]).join('');
    const gen = (depth: number): unknown => {
      const r = rand();
      if (depth > 3 || r < 0.3) {
        const k = Math.floor(rand() * 5);
        return [null, true, false, Math.floor((rand() - 0.5) * 2 ** 40), str()][k];
      }
      if (r < 0.6) return Array.from({ length: Math.floor(rand() * 4) }, () => gen(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(rand() * 5); i > 0; i--) o[str()] = gen(depth + 1);
      return o;
    };
    for (let i = 0; i < 500; i++) {
      const v = gen(0);
      const chunks: string[] = [];
      walk(v, (c) => chunks.push(c), compareCodePoints);
      assert.equal(encodeCanonicalJson(v), chunks.join(''));
      // Canonical output parses back to the same value and is a fixed point.
      assert.equal(encodeCanonicalJson(parseJsonStrict(encodeCanonicalJson(v))), encodeCanonicalJson(v));
    }
  });
});

describe('parseJsonStrict', () => {
  test('parses like JSON.parse', () => {
    const text = ' {"a": [1, 2, {"b": null}], "c": "x\\"y:", "d": {"e": true, "f": false}} ';
    assert.deepEqual(parseJsonStrict(text), JSON.parse(text));
    assert.equal(parseJsonStrict('"str"'), 'str');
    assert.equal(parseJsonStrict('12'), 12);
    assert.equal(parseJsonStrict('null'), null);
    assert.deepEqual(parseJsonStrict('[]'), []);
    assert.throws(() => parseJsonStrict('{"a":1,}'), SyntaxError);
    assert.throws(() => parseJsonStrict(''), SyntaxError);
  });

  test('rejects duplicate keys at any depth', () => {
    assert.throws(() => parseJsonStrict('{"a":1,"a":2}'), CanonicalJsonError);
    assert.throws(() => parseJsonStrict('{"x":[{"b":1, "c":2, "b" : 3}]}'), CanonicalJsonError);
    assert.throws(() => parseJsonStrict('{"a":1,"\\u0061":2}'), CanonicalJsonError);
    assert.throws(() => parseJsonStrict('{"__proto__":1,"__proto__":2}'), CanonicalJsonError);
    // The same key in sibling objects is fine.
    assert.deepEqual(parseJsonStrict('[{"a":1},{"a":2}]'), [{ a: 1 }, { a: 2 }]);
  });

  test('is not fooled by colons, quotes and backslashes inside strings', () => {
    assert.deepEqual(parseJsonStrict('{"a":"b\\\\","c":"\\":"}'), { a: 'b\\', c: '":' });
    assert.deepEqual(parseJsonStrict('["a" , "b:", "\\\\\\"" ]'), ['a', 'b:', '\\"']);
    assert.deepEqual(parseJsonStrict('{"k" \n\t: ":", "k2":"k"}'), { k: ':', k2: 'k' });
  });

  test('keeps "__proto__" as an own property', () => {
    const v = parseJsonStrict('{"__proto__":{"polluted":true},"a":{"__proto__":[]}}') as Record<string, unknown>;
    assert.ok(Object.prototype.hasOwnProperty.call(v, '__proto__'));
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(Object.keys(v), ['__proto__', 'a']);
  });

  test('survives deep nesting', () => {
    const depth = 100_000;
    const text = '['.repeat(depth) + ']'.repeat(depth);
    assert.ok(Array.isArray(parseJsonStrict(text)));
  });

  test('strictNumbers refuses fractions, exponents and out-of-range integers', () => {
    const strict = { strictNumbers: true };
    for (const bad of ['1.0', '1e3', '1E3', '-0.5', '{"a":[1, 2.5]}', '{"a":9007199254740992}', '[-9007199254740992]', '1e400', '{"x":{"y":1e2}}']) {
      assert.throws(() => parseJsonStrict(bad, strict), CanonicalJsonError, bad);
    }
    for (const good of ['1', '-0', '[true, false, null, 3]', '{"e":"1.5e3","f":-9007199254740991}', '{"true":true,"false":false,"1":1}']) {
      assert.deepEqual(parseJsonStrict(good, strict), JSON.parse(good), good);
    }
    // Without the option those parse as JS numbers.
    assert.equal(parseJsonStrict('1e3'), 1000);
    assert.equal(parseJsonStrict('2.5'), 2.5);
  });
});
