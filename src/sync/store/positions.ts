// Stream positions of the streams sync owns. A writer calls nextPosition() inside its
// transaction: it takes the stream's advisory transaction lock first, so positions commit in
// the order they were handed out and a snapshot that sees position N sees everything below N.
import type { Queryable } from '../../db/pool.js';
import type { StreamName } from '../token.js';

export type OwnedStream = 'account_data' | 'receipts' | 'presence' | 'typing';

const SEQUENCE: Record<OwnedStream, string> = {
  account_data: 'sync_account_data_seq',
  receipts: 'sync_receipts_seq',
  presence: 'sync_presence_seq',
  typing: 'sync_typing_seq',
};
// Advisory lock keys: a fixed prefix ("sync") and one number per stream.
const LOCK_KEY: Record<OwnedStream, number> = { account_data: 1, receipts: 2, presence: 3, typing: 4 };
const LOCK_CLASS = 0x73796e63;

const NEXT_SQL = Object.fromEntries(
  Object.entries(SEQUENCE).map(([k, seq]) => [k, `SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${LOCK_KEY[k as OwnedStream]}), nextval('${seq}') AS pos`]),
) as Record<OwnedStream, string>;

/** Inside a transaction: the stream's next position, holding its lock until commit. */
export async function nextPosition(tx: Queryable, stream: OwnedStream): Promise<number> {
  const r = await tx.query<{ pos: number }>(NEXT_SQL[stream]);
  return r.rows[0]!.pos;
}

/** Outside a transaction (typing): a position with no row to order against. */
export async function nextFreePosition(db: Queryable, stream: OwnedStream): Promise<number> {
  const r = await db.query<{ pos: number }>(`SELECT nextval('${SEQUENCE[stream]}') AS pos`);
  return r.rows[0]!.pos;
}

/**
 * Each stream's latest position as a scalar SELECT (what its provider's latest() reads), for the
 * one query that reads them all at the start of a sync snapshot. Every position here is committed
 * in order, so the maximum is a position below which everything is visible.
 */
export const LATEST_SQL = {
  events: 'SELECT COALESCE(MAX(stream_ordering), 0) FROM events',
  accountData: 'SELECT COALESCE(MAX(stream_id), 0) FROM sync_account_data',
  receipts: 'SELECT COALESCE(MAX(stream_id), 0) FROM sync_receipts',
  presence: 'SELECT COALESCE(MAX(stream_id), 0) FROM sync_presence',
  // Keys' heads (src/keys/store/streams.ts `head`).
  toDevice: "SELECT position FROM e2e_stream_heads WHERE stream = 'to_device'",
  deviceLists: "SELECT position FROM e2e_stream_heads WHERE stream = 'device_lists'",
} as const satisfies Partial<Record<StreamName, string>>;

/** One statement reading the positions of `streams` (columns named after the streams). */
export function latestPositionsSql(streams: { name: StreamName; sql: string }[]): string {
  return `SELECT ${streams.map((s) => `(${s.sql}) AS "${s.name}"`).join(', ')}`;
}
