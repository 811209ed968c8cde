import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UnreadCounts } from './unread-counts.js';

/** Remembers counts of !r for @u up to 10 (main timeline 2 notifications, thread $t 1 highlight), with receipts read at 7. */
function remembered(): UnreadCounts {
  const counts = new UnreadCounts();
  const known = counts.known('@u:x', ['!r:x'], false);
  counts.absorb(
    '@u:x',
    ['!r:x'],
    known,
    [
      { room_id: '!r:x', thread_id: '', notification_count: 2, highlight_count: 0, receipts: '=5', delta: false },
      { room_id: '!r:x', thread_id: '$t', notification_count: 1, highlight_count: 1, receipts: '=5', delta: false },
    ],
    10,
    false,
    7,
  );
  return counts;
}

test('counts carried forward add the actions after the remembered position', () => {
  const counts = remembered();
  let asked: number | undefined;
  const rows = counts.carryForward('@u:x', '!r:x', 7, 12, (after) => {
    asked = after;
    return [
      { stream: 11, threadId: '', notify: true, highlight: true },
      { stream: 12, threadId: '$t', notify: true, highlight: false },
      { stream: 13, threadId: '', notify: true, highlight: false },
    ];
  });
  assert.equal(asked, 10);
  assert.deepEqual(rows, [
    { room_id: '!r:x', thread_id: '', notification_count: 3, highlight_count: 1 },
    { room_id: '!r:x', thread_id: '$t', notification_count: 2, highlight_count: 1 },
  ]);
  // Remembered up to 12: the next carry starts there.
  counts.carryForward('@u:x', '!r:x', 7, 12, (after) => {
    asked = after;
    return [];
  });
  assert.equal(asked, 12);
});

test('nothing carried forward from receipts older than the caller knows, past the position asked, or without the actions', () => {
  const counts = remembered();
  assert.equal(counts.carryForward('@u:x', '!r:x', 8, 12, () => []), undefined, 'receipts may have moved since 7');
  assert.equal(counts.carryForward('@u:x', '!r:x', 7, 9, () => []), undefined, 'remembered past 9');
  assert.equal(counts.carryForward('@u:x', '!r:x', 7, 12, () => undefined), undefined);
  assert.equal(counts.carryForward('@u:x', '!other:x', 0, 12, () => []), undefined);
  assert.equal(counts.carryForward('@v:x', '!r:x', 0, 12, () => []), undefined);
});

test('counts made outside a sync snapshot are never carried forward', () => {
  const counts = new UnreadCounts();
  counts.absorb('@u:x', ['!r:x'], counts.known('@u:x', ['!r:x'], false), [{ room_id: '!r:x', thread_id: '', notification_count: 1, highlight_count: 0, receipts: '', delta: false }], 10, false);
  assert.equal(counts.carryForward('@u:x', '!r:x', 0, 12, () => []), undefined);
});
