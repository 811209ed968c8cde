import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyFiguresCache } from './key-figures-cache.js';

const figures = { counts: { signed_curve25519: 3 }, fallback: ['signed_curve25519'] };

test('figures read before a change are not remembered after it', () => {
  const cache = new KeyFiguresCache();
  const ticket = cache.ticket();
  cache.changed('@a:x', 'D');
  cache.remember('@a:x', 'D', figures, ticket);
  assert.equal(cache.get('@a:x', 'D'), undefined);
  cache.remember('@a:x', 'D', figures, cache.ticket());
  assert.deepEqual(cache.get('@a:x', 'D'), figures);
});

test("a change drops the device's entry; an announcement names it as JSON", () => {
  const cache = new KeyFiguresCache();
  cache.remember('@a:x', 'D', figures, cache.ticket());
  cache.remember('@b:x', 'E|F', figures, cache.ticket());
  cache.announced(JSON.stringify(['@b:x', 'E|F']));
  assert.equal(cache.get('@b:x', 'E|F'), undefined);
  assert.deepEqual(cache.get('@a:x', 'D'), figures);
  cache.changed('@a:x', 'D');
  assert.equal(cache.get('@a:x', 'D'), undefined);
});

test('an announcement that does not parse, or a reconnect, clears everything', () => {
  const cache = new KeyFiguresCache();
  cache.remember('@a:x', 'D', figures, cache.ticket());
  cache.announced('not json');
  assert.equal(cache.get('@a:x', 'D'), undefined);
  cache.remember('@a:x', 'D', figures, cache.ticket());
  cache.clear();
  assert.equal(cache.get('@a:x', 'D'), undefined);
});
