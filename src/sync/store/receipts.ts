// Read receipts. m.read.private rows are returned only for their owner.
import type { Queryable } from '../../db/pool.js';

export interface ReceiptRow {
  room_id: string;
  receipt_type: string;
  user_id: string;
  thread_id: string;
  event_id: string;
  data: Record<string, unknown>;
  stream_id: number;
}

const UPSERT = `
  INSERT INTO sync_receipts (room_id, receipt_type, user_id, thread_id, event_id, event_stream_ordering, data, stream_id)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
  ON CONFLICT (room_id, receipt_type, user_id, thread_id) DO UPDATE
    SET event_id = EXCLUDED.event_id, event_stream_ordering = EXCLUDED.event_stream_ordering,
        data = EXCLUDED.data, stream_id = EXCLUDED.stream_id
  -- A receipt never moves backwards in the room (the spec: receipts only move forward).
  WHERE sync_receipts.event_stream_ordering IS NULL OR EXCLUDED.event_stream_ordering IS NULL
     OR EXCLUDED.event_stream_ordering > sync_receipts.event_stream_ordering
  RETURNING stream_id`;

const COLUMNS = 'room_id, receipt_type, user_id, thread_id, event_id, data, stream_id';
const VISIBLE = `(receipt_type <> 'm.read.private' OR user_id = $2)`;
const IN_ROOMS_UP_TO = `SELECT ${COLUMNS} FROM sync_receipts WHERE room_id = ANY($1) AND ${VISIBLE} AND stream_id <= $3`;
const IN_ROOMS_BETWEEN = `SELECT ${COLUMNS} FROM sync_receipts WHERE room_id = ANY($1) AND ${VISIBLE} AND stream_id > $3 AND stream_id <= $4`;
const MAX = 'SELECT COALESCE(MAX(stream_id), 0) AS pos FROM sync_receipts';
const READ_UP_TO = `
  SELECT room_id, thread_id, MAX(event_stream_ordering) AS pos FROM sync_receipts
  WHERE user_id = $1 AND room_id = ANY($2) AND receipt_type IN ('m.read', 'm.read.private')
  GROUP BY room_id, thread_id`;

/** Stores a receipt; returns false when it would move an existing receipt backwards. */
export async function upsertReceipt(
  tx: Queryable,
  r: { roomId: string; type: string; userId: string; threadId: string; eventId: string; eventStreamOrdering: number | null; data: unknown; pos: number },
): Promise<boolean> {
  const res = await tx.query(UPSERT, [r.roomId, r.type, r.userId, r.threadId, r.eventId, r.eventStreamOrdering, JSON.stringify(r.data), r.pos]);
  return (res.rowCount ?? 0) > 0;
}

export async function receiptsUpTo(db: Queryable, rooms: string[], viewer: string, to: number): Promise<ReceiptRow[]> {
  return (await db.query<ReceiptRow>(IN_ROOMS_UP_TO, [rooms, viewer, to])).rows;
}

export async function receiptsBetween(db: Queryable, rooms: string[], viewer: string, from: number, to: number): Promise<ReceiptRow[]> {
  return (await db.query<ReceiptRow>(IN_ROOMS_BETWEEN, [rooms, viewer, from, to])).rows;
}

export async function maxReceiptPosition(db: Queryable): Promise<number> {
  return (await db.query<{ pos: number }>(MAX)).rows[0]!.pos;
}

/** The room-stream position each (room, thread) has been read up to by this user. */
export async function readPositions(db: Queryable, userId: string, rooms: string[]): Promise<{ room_id: string; thread_id: string; pos: number | null }[]> {
  return (await db.query(READ_UP_TO, [userId, rooms])).rows;
}
