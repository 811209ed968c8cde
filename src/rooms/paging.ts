// Query parameters shared by the paginated room reads (history.ts, relations.ts), and the
// mapping of any pagination token to a topological position in a room.
import type { Queryable } from '../db/pool.js';
import { MatrixError } from '../http/errors.js';
import { parsePaginationToken, type PaginationToken } from './pagination-token.js';
import * as historySql from './store/history.js';

export type Position = { depth: number; stream: number };

/** Before every event of a room. */
export const BEFORE_START: Position = { depth: Number.MIN_SAFE_INTEGER, stream: Number.MIN_SAFE_INTEGER };

/** A token as a topological position in the room (stream positions mapped, see pagination-token.ts). */
export async function resolvePosition(db: Queryable, roomNid: number, t: PaginationToken): Promise<Position> {
  if (t.kind === 'topo') return { depth: t.depth, stream: t.stream };
  return (await historySql.topoAtStream(db, roomNid, t.stream)) ?? BEFORE_START;
}

/** An optional token parameter as a position; 400 M_INVALID_PARAM for a malformed one. */
export async function positionParam(db: Queryable, roomNid: number, text: string | undefined, param: string): Promise<Position | undefined> {
  if (text === undefined || text === '') return undefined;
  return resolvePosition(db, roomNid, parsePaginationToken(text, param));
}

/** A `limit` query parameter: a non-negative integer, capped. */
export function parseLimit(text: string | undefined, fallback: number, max: number): number {
  if (text === undefined) return fallback;
  if (!/^\d{1,9}$/.test(text)) throw new MatrixError('M_INVALID_PARAM', "'limit' must be a non-negative integer");
  return Math.min(Number(text), max);
}

export function parseDir(text: string | undefined, fallback: 'b' | 'f'): 'b' | 'f' {
  if (text === undefined) return fallback;
  if (text !== 'b' && text !== 'f') throw new MatrixError('M_INVALID_PARAM', "'dir' must be 'b' or 'f'");
  return text;
}
