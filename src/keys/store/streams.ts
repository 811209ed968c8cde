// The two streams keys owns (to-device, device lists): their heads and the device-list change log.
import type { Queryable } from '../../db/pool.js';

export type KeysStream = 'to_device' | 'device_lists';

const SQL = {
  // The row lock taken here is held until the caller's transaction commits: positions commit in
  // the order they are handed out (see migrations/0004_keys.sql).
  advance: 'UPDATE e2e_stream_heads SET position = position + 1 WHERE stream = $1 RETURNING position',
  head: 'SELECT position FROM e2e_stream_heads WHERE stream = $1',
  insertChanges: `INSERT INTO e2e_device_list_changes (stream_id, user_id, visible_to)
    SELECT $1, u, v FROM unnest($2::text[], $3::text[]) AS t(u, v)`,
  changedUsers: `SELECT DISTINCT user_id FROM e2e_device_list_changes
    WHERE stream_id > $1 AND stream_id <= $2
      AND ((visible_to IS NULL AND user_id = ANY($3::text[])) OR visible_to = $4)`,
  changedUsersAnyone: `SELECT DISTINCT user_id FROM e2e_device_list_changes
    WHERE stream_id > $1 AND stream_id <= $2 AND (visible_to IS NULL OR visible_to = $3)`,
} as const;

/** Inside a transaction: the stream's next position, its head locked until commit. */
export async function advance(tx: Queryable, stream: KeysStream): Promise<number> {
  return (await tx.query<{ position: number }>(SQL.advance, [stream])).rows[0]!.position;
}

/** The committed head: every row at or below it is visible to the same snapshot. */
export async function head(db: Queryable, stream: KeysStream): Promise<number> {
  return (await db.query<{ position: number }>(SQL.head, [stream])).rows[0]!.position;
}

export interface DeviceListChange {
  userId: string;
  /** Only this user may learn of the change; absent: everyone who shares a room with userId. */
  visibleTo?: string;
}

/** Records changes at one new device-list position (inside the transaction of the change). */
export async function recordDeviceListChanges(tx: Queryable, changes: DeviceListChange[]): Promise<number> {
  const pos = await advance(tx, 'device_lists');
  // One row per (user, audience): readers only ask whether a user changed, not how often.
  const unique = [...new Map(changes.map((c) => [`${c.userId}\u0000${c.visibleTo ?? ''}`, c])).values()];
  await tx.query(SQL.insertChanges, [pos, unique.map((c) => c.userId), unique.map((c) => c.visibleTo ?? null)]);
  return pos;
}

/**
 * Users whose keys changed in (from, to] as `viewer` may see them: public changes of users in
 * `among` (null: any user), and changes only the viewer may see.
 */
export async function changedUsers(db: Queryable, viewer: string, from: number, to: number, among: string[] | null): Promise<string[]> {
  const r =
    among === null
      ? await db.query<{ user_id: string }>(SQL.changedUsersAnyone, [from, to, viewer])
      : await db.query<{ user_id: string }>(SQL.changedUsers, [from, to, among, viewer]);
  return r.rows.map((row) => row.user_id);
}
