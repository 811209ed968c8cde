// Pushers (migrations/0007_pushers.sql) and the reads their delivery needs over
// event_push_actions, receipts and rooms (read-only there).
import type { Queryable } from '../db/pool.js';
import type { Action } from './rules.js';
import { NOT_FROM_IGNORED } from './store.js';

export interface PusherRow {
  id: number;
  user_id: string;
  device_id: string | null;
  kind: string;
  app_id: string;
  pushkey: string;
  pushkey_ts: number;
  app_display_name: string;
  device_display_name: string;
  profile_tag: string;
  lang: string;
  data: Record<string, unknown>;
  last_stream_ordering: number;
  failing_since: number | null;
}

export interface NewPusher {
  userId: string;
  deviceId: string;
  kind: string;
  appId: string;
  pushkey: string;
  appDisplayName: string;
  deviceDisplayName: string;
  profileTag: string;
  lang: string;
  data: Record<string, unknown>;
  now: number;
  lastStreamOrdering: number;
}

const COLUMNS = `id, user_id, device_id, kind, app_id, pushkey, pushkey_ts, app_display_name, device_display_name, profile_tag, lang, data,
  last_stream_ordering, failing_since`;

// An update keeps the creating device (another device may edit this device's pusher, as in
// Synapse) and starts delivery afresh from now.
const UPSERT = `
  INSERT INTO pushers (user_id, device_id, kind, app_id, pushkey, pushkey_ts, app_display_name, device_display_name, profile_tag, lang, data, last_stream_ordering)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
  ON CONFLICT (app_id, pushkey, user_id) DO UPDATE SET kind = EXCLUDED.kind, pushkey_ts = EXCLUDED.pushkey_ts,
    app_display_name = EXCLUDED.app_display_name, device_display_name = EXCLUDED.device_display_name,
    profile_tag = EXCLUDED.profile_tag, lang = EXCLUDED.lang, data = EXCLUDED.data,
    last_stream_ordering = EXCLUDED.last_stream_ordering, failing_since = NULL`;

export async function upsertPusher(db: Queryable, p: NewPusher): Promise<void> {
  await db.query(UPSERT, [
    p.userId,
    p.deviceId,
    p.kind,
    p.appId,
    p.pushkey,
    p.now,
    p.appDisplayName,
    p.deviceDisplayName,
    p.profileTag,
    p.lang,
    JSON.stringify(p.data),
    p.lastStreamOrdering,
  ]);
}

export async function pushersOf(db: Queryable, userId: string): Promise<PusherRow[]> {
  return (await db.query<PusherRow>(`SELECT ${COLUMNS} FROM pushers WHERE user_id = $1 ORDER BY id`, [userId])).rows;
}

export async function pusherById(db: Queryable, id: number): Promise<PusherRow | undefined> {
  return (await db.query<PusherRow>(`SELECT ${COLUMNS} FROM pushers WHERE id = $1`, [id])).rows[0];
}

export async function deletePusher(db: Queryable, userId: string, appId: string, pushkey: string): Promise<number> {
  return (await db.query('DELETE FROM pushers WHERE user_id = $1 AND app_id = $2 AND pushkey = $3', [userId, appId, pushkey])).rowCount ?? 0;
}

/** Without append: the pair leaves every other user it was set for. */
export async function deleteForOtherUsers(db: Queryable, appId: string, pushkey: string, userId: string): Promise<number> {
  return (await db.query('DELETE FROM pushers WHERE app_id = $1 AND pushkey = $2 AND user_id <> $3', [appId, pushkey, userId])).rowCount ?? 0;
}

export async function deleteByDevices(db: Queryable, userId: string, deviceIds: string[]): Promise<number> {
  if (deviceIds.length === 0) return 0;
  return (await db.query('DELETE FROM pushers WHERE user_id = $1 AND device_id = ANY($2::text[])', [userId, deviceIds])).rowCount ?? 0;
}

export async function deleteAllOf(db: Queryable, userId: string): Promise<number> {
  return (await db.query('DELETE FROM pushers WHERE user_id = $1', [userId])).rowCount ?? 0;
}

export async function countPushers(db: Queryable): Promise<number> {
  return (await db.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM pushers')).rows[0]!.n;
}

/**
 * HTTP pushers with push actions past their position, up to `upTo`: one probe of the
 * (user_id, stream_ordering) index per pusher, so the event write path needs no further index.
 */
const WITH_WORK = `
  SELECT p.id FROM pushers p
  WHERE p.kind = 'http' AND EXISTS (
    SELECT 1 FROM event_push_actions a WHERE a.user_id = p.user_id AND a.stream_ordering > p.last_stream_ordering AND a.stream_ordering <= $1)`;

export async function pushersWithWork(db: Queryable, upTo: number): Promise<number[]> {
  return (await db.query<{ id: number }>(WITH_WORK, [upTo])).rows.map((r) => r.id);
}

/**
 * The wake-up scan: HTTP pushers with push actions for the events in (from, to], found from the
 * new events (unique index), their rooms' joined members (primary key) and those members'
 * pushers, so its cost follows the new events, not the number of pushers. Members who left
 * since are found by the periodic pushersWithWork sweep.
 */
const WORK_IN_RANGE = `
  SELECT DISTINCT p.id FROM events e
  JOIN room_memberships m ON m.room_nid = e.room_nid AND m.membership = 'join'
  JOIN pushers p ON p.user_id = m.user_id
  WHERE e.stream_ordering > $1 AND e.stream_ordering <= $2 AND p.kind = 'http' AND p.last_stream_ordering < e.stream_ordering
    AND EXISTS (SELECT 1 FROM event_push_actions a WHERE a.user_id = p.user_id AND a.stream_ordering = e.stream_ordering)`;

export async function pushersWithWorkIn(db: Queryable, from: number, to: number): Promise<number[]> {
  if (to <= from) return [];
  return (await db.query<{ id: number }>(WORK_IN_RANGE, [from, to])).rows.map((r) => r.id);
}

/** HTTP pushers of users whose read receipts moved in (from, to] (their badge may have changed). */
const READ_MOVED = `
  SELECT DISTINCT p.id FROM sync_receipts r JOIN pushers p ON p.user_id = r.user_id
  WHERE p.kind = 'http' AND r.stream_id > $1 AND r.stream_id <= $2 AND r.receipt_type IN ('m.read', 'm.read.private')`;

export async function pushersWithNewReceipts(db: Queryable, from: number, to: number): Promise<number[]> {
  if (to <= from) return [];
  return (await db.query<{ id: number }>(READ_MOVED, [from, to])).rows.map((r) => r.id);
}

export async function maxReceiptPosition(db: Queryable): Promise<number> {
  return (await db.query<{ pos: number }>('SELECT COALESCE(MAX(stream_id), 0) AS pos FROM sync_receipts')).rows[0]!.pos;
}

export async function maxStreamOrdering(db: Queryable): Promise<number> {
  return (await db.query<{ pos: number }>('SELECT COALESCE(MAX(stream_ordering), 0) AS pos FROM events')).rows[0]!.pos;
}

/** Takes (or renews) the delivery lease; undefined when another process holds it or it is gone. */
const CLAIM = `
  UPDATE pushers SET lease_owner = $2, lease_until = $3
  WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < $4)
  RETURNING ${COLUMNS}`;

export async function claim(db: Queryable, id: number, owner: string, now: number, leaseMs: number): Promise<PusherRow | undefined> {
  return (await db.query<PusherRow>(CLAIM, [id, owner, now + leaseMs, now])).rows[0];
}

export async function release(db: Queryable, id: number, owner: string): Promise<void> {
  await db.query('UPDATE pushers SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2', [id, owner]);
}

/** Moves the position past a handled notification; false when the pusher was deleted meanwhile. */
export async function advance(db: Queryable, id: number, pos: number, success: number | null): Promise<boolean> {
  const r = await db.query(
    'UPDATE pushers SET last_stream_ordering = GREATEST(last_stream_ordering, $2), last_success_ts = COALESCE($3, last_success_ts), failing_since = NULL WHERE id = $1',
    [id, pos, success],
  );
  return (r.rowCount ?? 0) > 0;
}

export async function setFailingSince(db: Queryable, id: number, since: number): Promise<void> {
  await db.query('UPDATE pushers SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL', [id, since]);
}

export interface PendingAction {
  room_id: string;
  event_id: string;
  stream_ordering: number;
  actions: Action[];
}

/**
 * The user's notifying push actions past `after`, oldest first, that are still unread (past the
 * read receipt of their room or thread, as the counts) and not from an ignored sender.
 */
const PENDING = `
  SELECT a.room_id, a.event_id, a.stream_ordering, a.actions FROM event_push_actions a
  WHERE a.user_id = $1 AND a.stream_ordering > $2 AND a.stream_ordering <= $4 AND a.notif
    AND a.stream_ordering > COALESCE(
      (SELECT MAX(event_stream_ordering) FROM sync_receipts r WHERE r.user_id = a.user_id AND r.room_id = a.room_id
         AND r.receipt_type IN ('m.read', 'm.read.private') AND (r.thread_id = '' OR r.thread_id = COALESCE(NULLIF(a.thread_id, ''), 'main'))), 0)
    AND ${NOT_FROM_IGNORED}
  ORDER BY a.stream_ordering LIMIT $3`;

export async function pendingActions(db: Queryable, userId: string, after: number, upTo: number, limit: number): Promise<PendingAction[]> {
  return (await db.query<PendingAction>(PENDING, [userId, after, limit, upTo])).rows;
}

const ROOM_INFO = `
  SELECT r.current_snapshot, m.displayname FROM rooms r LEFT JOIN room_memberships m ON m.room_nid = r.room_nid AND m.user_id = $2
  WHERE r.room_id = $1`;

/** The room's current snapshot and the sender's display name in it. */
export async function roomInfo(db: Queryable, roomId: string, sender: string): Promise<{ current_snapshot: number | null; displayname: string | null } | undefined> {
  return (await db.query(ROOM_INFO, [roomId, sender])).rows[0];
}

const JOINED = `SELECT r.room_id FROM room_memberships m JOIN rooms r USING (room_nid) WHERE m.user_id = $1 AND m.membership = 'join'`;

export async function joinedRooms(db: Queryable, userId: string): Promise<string[]> {
  return (await db.query<{ room_id: string }>(JOINED, [userId])).rows.map((r) => r.room_id);
}
