// Account data rows, global (room_id '') and per room.
import type { Queryable } from '../../db/pool.js';

export interface AccountDataRow {
  room_id: string;
  data_type: string;
  content: Record<string, unknown>;
  stream_id: number;
}

const UPSERT = `
  INSERT INTO sync_account_data (user_id, room_id, data_type, content, stream_id)
  VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (user_id, room_id, data_type) DO UPDATE SET content = EXCLUDED.content, stream_id = EXCLUDED.stream_id`;
const SELECT_ONE = 'SELECT content FROM sync_account_data WHERE user_id = $1 AND room_id = $2 AND data_type = $3';
const SELECT_ALL = 'SELECT room_id, data_type, content, stream_id FROM sync_account_data WHERE user_id = $1 AND stream_id <= $2';
const SELECT_BETWEEN =
  'SELECT room_id, data_type, content, stream_id FROM sync_account_data WHERE user_id = $1 AND stream_id > $2 AND stream_id <= $3';
const MAX = 'SELECT COALESCE(MAX(stream_id), 0) AS pos FROM sync_account_data';

export async function upsertAccountData(tx: Queryable, userId: string, roomId: string, type: string, content: unknown, pos: number): Promise<void> {
  await tx.query(UPSERT, [userId, roomId, type, JSON.stringify(content), pos]);
}

export async function getAccountData(db: Queryable, userId: string, roomId: string, type: string): Promise<Record<string, unknown> | undefined> {
  const r = await db.query<{ content: Record<string, unknown> }>(SELECT_ONE, [userId, roomId, type]);
  return r.rows[0]?.content;
}

export async function accountDataUpTo(db: Queryable, userId: string, to: number): Promise<AccountDataRow[]> {
  return (await db.query<AccountDataRow>(SELECT_ALL, [userId, to])).rows;
}

export async function accountDataBetween(db: Queryable, userId: string, from: number, to: number): Promise<AccountDataRow[]> {
  return (await db.query<AccountDataRow>(SELECT_BETWEEN, [userId, from, to])).rows;
}

export async function maxAccountDataPosition(db: Queryable): Promise<number> {
  return (await db.query<{ pos: number }>(MAX)).rows[0]!.pos;
}
