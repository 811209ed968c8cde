import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Lru } from './lru.js';

test('Lru: set, get, overwrite and delete', () => {
  const c = new Lru<string, number>(100);
  assert.equal(c.get('a'), undefined);
  c.set('a', 1);
  c.set('a', 2);
  assert.equal(c.get('a'), 2);
  assert.equal(c.size, 1);
  c.delete('a');
  assert.equal(c.get('a'), undefined);
  assert.equal(c.size, 0);
  c.delete('never');
});

test('Lru: holds at most its weight, and an entry used since the last turn survives it', () => {
  const c = new Lru<number, number>(10);
  for (let i = 0; i < 6; i++) c.set(i, i); // the sixth turns the generation: 0-5 are old
  assert.equal(c.get(0), 0); // used again: young
  for (let i = 6; i < 12; i++) c.set(i, i); // a second turn: 1-5 (unused) are dropped
  assert.equal(c.get(0), 0);
  for (let i = 1; i <= 5; i++) assert.equal(c.get(i), undefined, `entry ${i}`);
  assert.equal(c.get(11), 11);
  assert.equal(c.get(10), 10);
  assert.ok(c.size <= 10 + 1);
  for (let i = 0; i < 1000; i++) c.set(100 + i, i);
  assert.ok(c.size <= 10 + 1, `size ${c.size}`);
});

test('Lru: weighs entries (a heavy one pushes out many light ones), and old entries can be deleted', () => {
  const c = new Lru<string, string[]>(100, (v) => v.length);
  c.set('small', ['x']);
  c.set('big', new Array(60).fill('y')); // over half: turns the generation
  assert.equal(c.get('small')?.length, 1);
  assert.equal(c.get('big')?.length, 60);
  c.delete('big');
  assert.equal(c.get('big'), undefined);
  for (let i = 0; i < 200; i++) c.set(`k${i}`, ['z']);
  assert.ok(c.size <= 101);
});
