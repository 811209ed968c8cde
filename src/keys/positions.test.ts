import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MatrixError } from '../http/errors.js';
import { deviceListPosition, toDevicePosition } from './positions.js';

describe('stream positions in sync tokens', () => {
  it('reads the device-list and to-device positions of a token /sync writes', () => {
    assert.equal(deviceListPosition('e42_r7_t3_a9_d4_l5_p2'), 5);
    assert.equal(toDevicePosition('e42_r7_t3_a9_d4_l5_p2'), 4);
  });

  it('reads a missing part as position 0 and skips parts of streams it does not know', () => {
    assert.equal(deviceListPosition('e42_d4'), 0);
    assert.equal(deviceListPosition('e1_zz9_l3'), 3);
  });

  it('refuses what is not a sync token with M_INVALID_PARAM', () => {
    for (const bad of ['', 's72594_4483_1934', 'l', 'l-1', 'zz9', `l${'9'.repeat(17)}`, 'l1__d2', 'x'.repeat(600)]) {
      assert.throws(() => deviceListPosition(bad), (e: unknown) => e instanceof MatrixError && e.errcode === 'M_INVALID_PARAM', bad);
    }
  });

  it('refuses positions beyond 2^53', () => {
    assert.throws(() => deviceListPosition('l9999999999999999'), MatrixError);
  });
});
