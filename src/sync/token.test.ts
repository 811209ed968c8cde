import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyToken, formatSyncToken, maxToken, parseSyncToken } from './token.js';

describe('sync token', () => {
  it('round-trips every stream position', () => {
    const t = { events: 42, receipts: 7, typing: 3, accountData: 9, toDevice: 0, deviceLists: 5, presence: 2 };
    assert.equal(formatSyncToken(t), 'e42_r7_t3_a9_d0_l5_p2');
    assert.deepEqual(parseSyncToken(formatSyncToken(t)), t);
  });

  it('skips parts it does not know and reads missing parts as 0', () => {
    const t = parseSyncToken('e10_x99_zz5_r4');
    assert.equal(t.events, 10);
    assert.equal(t.receipts, 4);
    assert.equal(t.typing, 0);
    assert.equal(t.presence, 0);
  });

  it('refuses text that is not a token with M_INVALID_PARAM', () => {
    for (const bad of ['', 'hello', 's72594_4483_1934', 'e1__r2', 'e-1', 'x5', 'e99999999999999999', 'E5']) {
      assert.throws(() => parseSyncToken(bad), (err: { errcode?: string }) => err.errcode === 'M_INVALID_PARAM', bad);
    }
  });

  it('takes the later position of each stream', () => {
    const a = { ...emptyToken(), events: 5, typing: 9 };
    const b = { ...emptyToken(), events: 7, typing: 1 };
    assert.deepEqual(maxToken(a, b), { ...emptyToken(), events: 7, typing: 9 });
  });
});
