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
const TOUCH_ACTIVE = 'UPDATE sync_presence SET last_user_sync_ts = $2, last_active_ts = $2 WHERE user_id = $1';
const OF_USERS_UP_TO = `SELECT ${COLUMNS} FROM sync_presence WHERE user_id = ANY($1) AND stream_id <= $2`;
const OF_USERS_BETWEEN = `SELECT ${COLUMNS} FROM sync_presence WHERE user_id = ANY($1) AND stream_id > $2 AND stream_id <= $3`;
const MAX = 'SELECT COALESCE(MAX(stream_id), 0) AS pos FROM sync_presence';

export async function getPresence(db: Queryable, userId: string, forUpdate = false): Promise<PresenceRow | undefined> {
  return (await db.query<PresenceRow>(forUpdate ? SELECT_ONE_FOR_UPDATE : SELECT_ONE, [userId])).rows[0];
}

export async function upsertPresence(tx: Queryable, row: PresenceRow): Promise<void> {
  await tx.query(UPSERT, [row.user_id, row.state, row.status_msg, row.last_active_ts, row.last_user_sync_ts, row.stream_id]);
}

/**
 * Records that the user is around (and, when `active`, active) without a stream position:
 * last_active_ago is computed at read time, so this changes no field a client was sent.
 */
export async function touchPresence(db: Queryable, userId: string, ts: number, active: boolean): Promise<void> {
  await db.query(active ? TOUCH_ACTIVE : TOUCH, [userId, ts]);
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

/**
 * Users whose presence has gone stale, as of `now`: online with no activity for `idleMs`
 * become unavailable; online or unavailable with no sync or request for `goneMs` become
 * offline. Rows change at one new position (`pos`); returns the users changed.
 */
const SWEEP = `
  UPDATE sync_presence SET
    state = CASE WHEN last_user_sync_ts < $1 THEN 'offline' ELSE 'unavailable' END,
    stream_id = $3
  WHERE (state IN ('online', 'unavailable', 'busy') AND last_user_sync_ts < $1)
     OR (state = 'online' AND last_active_ts < $2)
  RETURNING user_id`;
const ANY_STALE = `
  SELECT 1 FROM sync_presence
  WHERE (state IN ('online', 'unavailable', 'busy') AND last_user_sync_ts < $1) OR (state = 'online' AND last_active_ts < $2) LIMIT 1`;

export async function anyStale(db: Queryable, goneBefore: number, idleBefore: number): Promise<boolean> {
  return ((await db.query(ANY_STALE, [goneBefore, idleBefore])).rowCount ?? 0) > 0;
}

export async function sweepStale(tx: Queryable, goneBefore: number, idleBefore: number, pos: number): Promise<string[]> {
  return (await tx.query<{ user_id: string }>(SWEEP, [goneBefore, idleBefore, pos])).rows.map((r) => r.user_id);
}
