// Presence: the latest state of each user.
import type { Queryable } from '../../db/pool.js';

export interface PresenceRow {
  user_id: string;
  state: 'online' | 'offline' | 'unavailable' | 'busy';
  status_msg: string | null;
  last_active_ts: number;
  last_user_sync_ts: number;
  stream_id: number;
}

const COLUMNS = 'user_id, state, status_msg, last_active_ts, last_user_sync_ts, stream_id';
const SELECT_ONE = `SELECT ${COLUMNS} FROM sync_presence WHERE user_id = $1`;
const SELECT_ONE_FOR_UPDATE = `SELECT ${COLUMNS} FROM sync_presence WHERE user_id = $1 FOR UPDATE`;
const UPSERT = `
  INSERT INTO sync_presence (user_id, state, status_msg, last_active_ts, last_user_sync_ts, stream_id)
  VALUES ($1, $2, $3, $4, $5, $6)
  ON CONFLICT (user_id) DO UPDATE SET state = EXCLUDED.state, status_msg = EXCLUDED.status_msg,
    last_active_ts = EXCLUDED.last_active_ts, last_user_sync_ts = EXCLUDED.last_user_sync_ts, stream_id = EXCLUDED.stream_id`;
const TOUCH = 'UPDATE sync_presence SET last_user_sync_ts = $2 WHERE user_id = $1';
const OF_USERS_UP_TO = `SELECT ${COLUMNS} FROM sync_presence WHERE user_id = ANY($1) AND stream_id <= $2`;
const OF_USERS_BETWEEN = `SELECT ${COLUMNS} FROM sync_presence WHERE user_id = ANY($1) AND stream_id > $2 AND stream_id <= $3`;
const MAX = 'SELECT COALESCE(MAX(stream_id), 0) AS pos FROM sync_presence';

export async function getPresence(db: Queryable, userId: string, forUpdate = false): Promise<PresenceRow | undefined> {
  return (await db.query<PresenceRow>(forUpdate ? SELECT_ONE_FOR_UPDATE : SELECT_ONE, [userId])).rows[0];
}

export async function upsertPresence(tx: Queryable, row: PresenceRow): Promise<void> {
  await tx.query(UPSERT, [row.user_id, row.state, row.status_msg, row.last_active_ts, row.last_user_sync_ts, row.stream_id]);
}

/** Records activity without a stream position: it changes no visible field by itself. */
export async function touchPresence(db: Queryable, userId: string, ts: number): Promise<void> {
  await db.query(TOUCH, [userId, ts]);
}

export async function presenceUpTo(db: Queryable, users: string[], to: number): Promise<PresenceRow[]> {
  return (await db.query<PresenceRow>(OF_USERS_UP_TO, [users, to])).rows;
}

export async function presenceBetween(db: Queryable, users: string[], from: number, to: number): Promise<PresenceRow[]> {
  return (await db.query<PresenceRow>(OF_USERS_BETWEEN, [users, from, to])).rows;
}

export async function maxPresencePosition(db: Queryable): Promise<number> {
  return (await db.query<{ pos: number }>(MAX)).rows[0]!.pos;
}
