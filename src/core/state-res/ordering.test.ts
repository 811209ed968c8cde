import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getRoomVersion } from '../room-versions.js';
import { EventCache } from './event-cache.js';
import { mainlineSort } from './mainline.js';
import {
  BinaryHeap,
  compareCodePoints,
  compareMainlineKeys,
  lexicographicalTopologicalSort,
  powerKeyLess,
  type PowerSortKey,
} from './ordering.js';
import { senderPowerLevel } from './power.js';
import { ALICE, BOB, CHARLIE, INITIAL_EDGES, TestDag, initialEvents, powerLevels, rng, topic } from './test-dag.js';

describe('orderings', () => {
  test('event ids compare by code point, as Python strings do', () => {
    assert.ok(compareCodePoints('$a', '$b') < 0);
    assert.ok(compareCodePoints('$ab', '$a') > 0);
    assert.equal(compareCodePoints('$a', '$a'), 0);
    // U+FFFF < U+10000 by code point, although its UTF-16 unit 0xFFFF > the high surrogate 0xD800.
    assert.ok('\uffff' > '\u{10000}');
    assert.ok(compareCodePoints('\uffff', '\u{10000}') < 0);
    assert.ok(compareCodePoints('x\u{10000}', 'x\uffff') > 0);
    assert.ok(compareCodePoints('\u{10001}', '\u{10000}') > 0);
  });

  test('the heap pops in order', () => {
    const random = rng(7);
    const heap = new BinaryHeap<number>((a, b) => a < b);
    const values = Array.from({ length: 500 }, () => Math.floor(random() * 100));
    for (const v of values) heap.push(v);
    const out: number[] = [];
    while (heap.size > 0) out.push(heap.pop()!);
    assert.deepEqual(out, [...values].sort((a, b) => a - b));
  });

  test('lexicographical topological sort: auth events first, smallest candidate first', () => {
    const graph = new Map<string, Set<string>>([
      ['l', new Set(['o'])],
      ['m', new Set(['n', 'o'])],
      ['n', new Set(['o'])],
      ['o', new Set()],
      ['p', new Set(['o'])],
    ]);
    const keys = new Map([...graph.keys()].map((k) => [k, k]));
    const out = lexicographicalTopologicalSort(graph, keys, (a, b) => compareCodePoints(a, b) < 0, (k) => k);
    assert.deepEqual(out, ['o', 'l', 'n', 'm', 'p']);
  });

  test('power order: higher sender power, then earlier timestamp, then smaller id', () => {
    const k = (id: string, power: number, ts: number): PowerSortKey => ({ id, power, ts });
    assert.ok(powerKeyLess(k('$z', 100, 9), k('$a', 50, 1)));
    assert.ok(powerKeyLess(k('$z', Infinity, 9), k('$a', 100, 1)));
    assert.ok(powerKeyLess(k('$z', 50, 1), k('$a', 50, 2)));
    assert.ok(powerKeyLess(k('$a', 50, 1), k('$b', 50, 1)));
    assert.ok(!powerKeyLess(k('$b', 50, 1), k('$a', 50, 1)));
  });

  test('mainline order: older mainline position, then timestamp, then id', () => {
    const sorted = [
      { id: '$c', position: 2, ts: 1 },
      { id: '$b', position: 1, ts: 5 },
      { id: '$a', position: 1, ts: 5 },
      { id: '$d', position: 0, ts: 9 },
      { id: '$e', position: 1, ts: 3 },
    ].sort(compareMainlineKeys);
    assert.deepEqual(sorted.map((k) => k.id), ['$d', '$e', '$a', '$b', '$c']);
  });
});

describe('sender power and mainline positions from auth events', () => {
  test('sender power is read from the event\'s own auth events (users, users_default, creator)', async () => {
    for (const v of ['2', '10', '11']) {
      const version = getRoomVersion(v)!;
      const dag = new TestDag(version);
      await dag.build(
        [
          ...initialEvents(version, { users: { [ALICE]: 100, [BOB]: 50 }, users_default: 10 }).slice(0, 5),
          topic('TA', ALICE),
          topic('TB', BOB),
          topic('TC', CHARLIE),
        ],
        [INITIAL_EDGES.slice(3), ['TA', 'IMB'], ['TB', 'IMB'], ['TC', 'IMB']],
      );
      const cache = new EventCache(dag.source(), version);
      await cache.load(dag.events.keys());
      const pl = (n: string) => senderPowerLevel(dag.event(n), cache, version);
      assert.deepEqual([pl('TA'), pl('TB'), pl('TC')], [100, 50, 10], `v${v}`);
      // Before any power levels event only the creator has power (100).
      assert.deepEqual([pl('IPOWER'), pl('IMB')], [100, 50]);
      assert.equal(pl('IMA'), 100);
    }
  });

  test('mainline positions: events are sorted by the power levels event their auth chain rests on', async () => {
    const version = getRoomVersion('10')!;
    const dag = new TestDag(version);
    await dag.build(
      [
        ...initialEvents(version).slice(0, 4),
        powerLevels('P2', ALICE, { users: { [ALICE]: 100, [BOB]: 50 } }),
        powerLevels('P3', ALICE, { users: { [ALICE]: 100, [BOB]: 60 } }),
        { ...topic('T1', ALICE), ts: 900 },
        { ...topic('T2', ALICE), ts: 100 },
        { ...topic('T3', ALICE), ts: 500 },
        { ...topic('T0', ALICE), ts: 1 },
      ],
      [INITIAL_EDGES.slice(4), ['T3', 'P3', 'T2', 'P2', 'T1', 'IJR'], ['T0', 'IMA']],
    );
    const cache = new EventCache(dag.source(), version);
    await cache.load(dag.events.keys());
    const ids = ['T1', 'T2', 'T3', 'T0'].map((n) => dag.eventId(n));
    const sorted = await mainlineSort(cache, ids, dag.eventId('P3'));
    // T0 cites no power levels (position 0) so comes first whatever its timestamp; then T1
    // (IPOWER), T2 (P2), T3 (P3) despite T1 having the latest timestamp.
    assert.deepEqual(sorted.map((id) => dag.nodeOf(id)), ['T0', 'T1', 'T2', 'T3']);
  });
});
