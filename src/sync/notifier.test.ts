import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Notifier } from './notifier.js';

function notifier(): { n: Notifier; published: string[] } {
  const published: string[] = [];
  const pool = { query: async (_text: string, values?: unknown[]) => published.push(String(values?.[1])) };
  return { n: new Notifier(pool, 'postgres://unused', pino({ level: 'silent' })), published };
}

describe('notifier', () => {
  it('remembers the furthest position of each stream it heard of', () => {
    const { n } = notifier();
    assert.equal(n.heardOf('receipts'), 0);
    n.notify('receipts', 5, { userIds: [] });
    n.announced('events', 9, { roomId: '!r:x' });
    n.notify('receipts', 3, { userIds: ['@a:x'] });
    assert.equal(n.heardOf('receipts'), 5);
    assert.equal(n.heardOf('events'), 9);
  });

  it('wakes a waiter of a named user at once', async () => {
    const { n } = notifier();
    const started = performance.now();
    const wait = n.wait('@a:x', [], n.seq, 10_000);
    n.notify('receipts', 1, { userIds: ['@a:x'] });
    assert.equal(await wait, true);
    assert.ok(performance.now() - started < 50);
    assert.equal(n.waiting, 0);
  });

  it('wakes the waiters of a room and no one else', async () => {
    const { n } = notifier();
    let otherWoken = false;
    const inRoom = n.wait('@a:x', ['!r:x'], n.seq, 10_000);
    const other = n.wait('@b:x', ['!s:x'], n.seq, 200).then((w) => (otherWoken = w));
    n.notify('events', 5, { roomId: '!r:x' });
    assert.equal(await inRoom, true);
    await other;
    assert.equal(otherWoken, false);
  });

  it('resolves false at the timeout', async () => {
    const { n } = notifier();
    const started = performance.now();
    assert.equal(await n.wait('@a:x', [], n.seq, 100), false);
    assert.ok(performance.now() - started >= 95);
  });

  it('does not miss a change made between reading and waiting', async () => {
    const { n } = notifier();
    const seq = n.seq;
    n.notify('typing', 1, { roomId: '!r:x' });
    assert.equal(await n.wait('@a:x', ['!r:x'], seq, 10_000), true);
    // An unrelated change since the read does not wake.
    const seq2 = n.seq;
    n.notify('typing', 2, { roomId: '!other:x' });
    assert.equal(await n.wait('@a:x', ['!r:x'], seq2, 50), false);
  });

  it('ends waits when the signal aborts', async () => {
    const { n } = notifier();
    const ac = new AbortController();
    const wait = n.wait('@a:x', ['!r:x'], n.seq, 10_000, ac.signal);
    ac.abort();
    assert.equal(await wait, false);
    assert.equal(n.waiting, 0);
  });

  it('publishes a change for the other processes, splitting long user lists', async () => {
    const { n, published } = notifier();
    const users = Array.from({ length: 2000 }, (_, i) => `@user${i}:example.org`);
    n.notify('presence', 3, { userIds: users });
    await new Promise((r) => setImmediate(r));
    assert.ok(published.length > 1);
    for (const p of published) assert.ok(Buffer.byteLength(p) < 8000);
    const all = published.flatMap((p) => JSON.parse(p.slice(p.indexOf('|') + 1)).u);
    assert.deepEqual(all, users);
  });
});
