import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PersistedEvent } from '../rooms/queue.js';
import { RecentWrites } from './recent-writes.js';

function event(stream: number, pushTo: string[] = []): PersistedEvent {
  return {
    nid: stream,
    event: { type: 'm.room.message' } as PersistedEvent['event'],
    roomNid: 1,
    stream,
    depth: stream,
    stateKeyNid: null,
    stateBefore: null,
    stateAfter: null,
    replacesNid: null,
    rejectedReason: null,
    announced: false,
    pushActions: pushTo.map((userId) => ({ userId, threadId: '', actions: ['notify'], notify: true, highlight: false })),
  };
}

test('a chain follows writes with no gap between them, and stops at the first gap', () => {
  const log = new RecentWrites();
  log.record([event(11), event(12)], { first: 11, last: 12 });
  log.record([event(13)], { first: 13, last: 13 });
  // 14 went to another process (or was rolled back): 15 does not follow 13.
  log.record([event(15)], { first: 15, last: 15 });
  assert.deepEqual(log.chainFrom(10).map((w) => [w.first, w.last]), [[11, 12], [13, 13]]);
  assert.deepEqual(log.chainFrom(12).map((w) => w.first), [13]);
  assert.deepEqual(log.chainFrom(11), [], 'no write starts at 12');
  assert.deepEqual(log.chainFrom(14).map((w) => w.first), [15]);
  assert.deepEqual(log.chainFrom(15), []);
});

test('a write without a span (positions with a gap) is not kept', () => {
  const log = new RecentWrites();
  log.record([event(11), event(13)], undefined);
  assert.deepEqual(log.chainFrom(10), []);
});

test('the oldest writes go when too many push actions are held; the last write stays', () => {
  const log = new RecentWrites();
  const members = Array.from({ length: 30_000 }, (_, i) => `@u${i}:x`);
  log.record([event(1, members)], { first: 1, last: 1 });
  log.record([event(2, members)], { first: 2, last: 2 });
  assert.deepEqual(log.chainFrom(0), [], 'the first write went');
  const [w] = log.chainFrom(1);
  assert.equal(w!.first, 2);
  assert.equal(w!.actionFor(w!.events[0]!, '@u29999:x')?.notify, true);
  assert.equal(w!.actionFor(w!.events[0]!, '@nobody:x'), undefined);
  log.record([event(3, members)], { first: 3, last: 3 });
  assert.equal(log.chainFrom(2).length, 1, 'a single write over the bound is kept');
});

test('the actions of a write of several events are found per event', () => {
  const log = new RecentWrites();
  log.record([event(5, ['@a:x']), event(6, ['@b:x'])], { first: 5, last: 6 });
  const [w] = log.chainFrom(4);
  assert.equal(w!.actionFor(w!.events[0]!, '@a:x')?.userId, '@a:x');
  assert.equal(w!.actionFor(w!.events[0]!, '@b:x'), undefined);
  assert.equal(w!.actionFor(w!.events[1]!, '@b:x')?.userId, '@b:x');
});
