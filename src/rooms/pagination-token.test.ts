// The pagination token formats (pagination-token.ts): each format parses, round-trips, and
// anything else is M_INVALID_PARAM naming the parameter.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MatrixError } from '../http/errors.js';
import { compareTopo, formatStreamToken, formatToken, formatTopoToken, parsePaginationToken } from './pagination-token.js';

describe('pagination tokens', () => {
  it('round-trips topological and stream tokens', () => {
    assert.deepEqual(parsePaginationToken(formatTopoToken(12, 345)), { kind: 'topo', depth: 12, stream: 345 });
    assert.deepEqual(parsePaginationToken(formatTopoToken(3, -1)), { kind: 'topo', depth: 3, stream: -1 });
    assert.deepEqual(parsePaginationToken(formatStreamToken(77)), { kind: 'stream', stream: 77 });
    assert.equal(formatStreamToken(-5), 's0');
    for (const t of ['t1-2', 's9']) assert.equal(formatToken(parsePaginationToken(t)), t);
  });

  it('reads a /sync token by its events part, whatever else it carries', () => {
    assert.deepEqual(parsePaginationToken('e42_r7_t3_a9_d0_l5_p2'), { kind: 'stream', stream: 42 });
    assert.deepEqual(parsePaginationToken('r7_e42_zz9'), { kind: 'stream', stream: 42 });
  });

  it('refuses anything else with M_INVALID_PARAM naming the parameter', () => {
    for (const bad of ['', 'x', 't', 't1', 't1-', 'tx-1', 's', 's-1', 'r7_t3', 'e', 'e1__r2', 'E1', 't99999999999999999-1', 's9999999999999999', 'x'.repeat(513)]) {
      assert.throws(
        () => parsePaginationToken(bad, 'to'),
        (err: unknown) => err instanceof MatrixError && err.errcode === 'M_INVALID_PARAM' && err.message.includes("'to'"),
        JSON.stringify(bad),
      );
    }
  });

  it('orders positions by depth, then stream', () => {
    assert.ok(compareTopo({ depth: 1, stream: 9 }, { depth: 2, stream: 1 }) < 0);
    assert.ok(compareTopo({ depth: 2, stream: 3 }, { depth: 2, stream: 1 }) > 0);
    assert.equal(compareTopo({ depth: 2, stream: 3 }, { depth: 2, stream: 3 }), 0);
  });
});
