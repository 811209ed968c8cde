import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LazyMembersCache } from './lazy-members.js';

describe('LazyMembersCache', () => {
  it('counts a member as sent only from the position of the response that carried it', () => {
    const cache = new LazyMembersCache();
    const d = cache.forDevice('@a:x', 'D', true, 1000);
    d.record('!r:x', '@b:x', 7, 50);
    assert.equal(d.has('!r:x', '@b:x', 7, 49), false, 'a token before that response');
    assert.equal(d.has('!r:x', '@b:x', 7, 50), true);
    assert.equal(d.has('!r:x', '@b:x', 8, 60), false, 'another member event');
    assert.equal(d.has('!other:x', '@b:x', 7, 60), false, 'another room');
    // A retried older token carrying it again keeps the earliest position.
    d.record('!r:x', '@b:x', 7, 40);
    assert.equal(d.has('!r:x', '@b:x', 7, 45), true);
  });

  it('starts over on an initial sync, after the idle expiry, and past its device bound', () => {
    const cache = new LazyMembersCache({ perDevice: 10, maxDevices: 2, ttlMs: 1000 });
    cache.forDevice('@a:x', 'D', false, 0).record('!r:x', '@b:x', 1, 1);
    assert.equal(cache.forDevice('@a:x', 'D', false, 500).has('!r:x', '@b:x', 1, 5), true);
    assert.equal(cache.forDevice('@a:x', 'D', true, 600).has('!r:x', '@b:x', 1, 5), false, 'initial sync');
    cache.forDevice('@a:x', 'D', false, 700).record('!r:x', '@b:x', 1, 1);
    assert.equal(cache.forDevice('@a:x', 'D', false, 1800).has('!r:x', '@b:x', 1, 5), false, 'idle longer than the ttl');
    cache.forDevice('@a:x', 'D', false, 1900).record('!r:x', '@b:x', 1, 1);
    cache.forDevice('@c:x', 'E', false, 1901);
    cache.forDevice('@d:x', 'F', false, 1902);
    assert.equal(cache.size, 2);
    assert.equal(cache.forDevice('@a:x', 'D', false, 1903).has('!r:x', '@b:x', 1, 5), false, 'evicted as least recent');
  });
});
