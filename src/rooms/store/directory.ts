// SQL of the room directory and aliases (tables of migrations/0003_rooms.sql), and of event
// reports (0006).
import type { Queryable } from '../../db/pool.js';
import type { RoomRow } from './rooms.js';

export async function joinedCounts(db: Queryable, roomNids: number[]): Promise<Map<number, number>> {
  if (roomNids.length === 0) return new Map();
  const res = await db.query<{ room_nid: number; n: number }>(
    `SELECT room_nid, count(*)::int AS n FROM room_memberships WHERE room_nid = ANY($1::bigint[]) AND membership = 'join' GROUP BY room_nid`,
    [roomNids],
  );
  return new Map(res.rows.map((r) => [r.room_nid, r.n]));
}

/** Rooms listed in the public directory. */
export async function publicRooms(db: Queryable): Promise<RoomRow[]> {
  return (
    await db.query<RoomRow>('SELECT room_nid, room_id, version, creator, is_public, current_snapshot FROM rooms WHERE is_public ORDER BY room_nid')
  ).rows;
}

export async function roomsByIds(db: Queryable, roomIds: string[]): Promise<RoomRow[]> {
  if (roomIds.length === 0) return [];
  return (
    await db.query<RoomRow>('SELECT room_nid, room_id, version, creator, is_public, current_snapshot FROM rooms WHERE room_id = ANY($1::text[])', [
      roomIds,
    ])
  ).rows;
}

export async function aliasRow(db: Queryable, alias: string): Promise<{ room_id: string; room_nid: number; creator: string } | undefined> {
  const res = await db.query<{ room_id: string; room_nid: number; creator: string }>(
    'SELECT r.room_id, a.room_nid, a.creator FROM room_aliases a JOIN rooms r USING (room_nid) WHERE a.room_alias = $1',
    [alias],
  );
  return res.rows[0];
}

export async function deleteAlias(db: Queryable, alias: string): Promise<boolean> {
  return ((await db.query('DELETE FROM room_aliases WHERE room_alias = $1', [alias])).rowCount ?? 0) > 0;
}

/** Room upgrades: every local alias of the old room now points at the new one. */
export async function moveAliases(db: Queryable, fromRoomNid: number, toRoomNid: number): Promise<string[]> {
  const res = await db.query<{ room_alias: string }>('UPDATE room_aliases SET room_nid = $2 WHERE room_nid = $1 RETURNING room_alias', [fromRoomNid, toRoomNid]);
  return res.rows.map((r) => r.room_alias).sort();
}

// ---- reports -----------------------------------------------------------------------------

export async function insertReport(
  db: Queryable,
  r: { roomId: string; eventId: string | null; userId: string; reason: string | null; score: number | null },
): Promise<void> {
  await db.query('INSERT INTO event_reports (received_ts, room_id, event_id, user_id, reason, score) VALUES ($1, $2, $3, $4, $5, $6)', [
    Date.now(),
    r.roomId,
    r.eventId,
    r.userId,
    r.reason,
    r.score,
  ]);
}

export interface ReportRow {
  id: number;
  received_ts: number;
  room_id: string;
  event_id: string | null;
  user_id: string;
  reason: string | null;
  score: number | null;
}

/** A page of reports, newest first (dir b) or oldest first (dir f), filtered, with the total. */
export async function listReports(
  db: Queryable,
  q: { from: number; limit: number; dir: 'b' | 'f'; userId?: string; roomId?: string },
): Promise<{ rows: ReportRow[]; total: number }> {
  const params: unknown[] = [q.userId ?? null, q.roomId ?? null];
  const where = `($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR room_id = $2)`;
  const total = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM event_reports WHERE ${where}`, params)).rows[0]!.n;
  const rows = (
    await db.query<ReportRow>(
      `SELECT id, received_ts, room_id, event_id, user_id, reason, score FROM event_reports WHERE ${where}
        ORDER BY received_ts ${q.dir === 'b' ? 'DESC' : 'ASC'}, id ${q.dir === 'b' ? 'DESC' : 'ASC'} OFFSET $3 LIMIT $4`,
      [...params, q.from, q.limit],
    )
  ).rows;
  return { rows, total };
}

export async function getReport(db: Queryable, id: number): Promise<ReportRow | undefined> {
  return (await db.query<ReportRow>('SELECT id, received_ts, room_id, event_id, user_id, reason, score FROM event_reports WHERE id = $1', [id])).rows[0];
}

export async function deleteReport(db: Queryable, id: number): Promise<boolean> {
  return ((await db.query('DELETE FROM event_reports WHERE id = $1', [id])).rowCount ?? 0) > 0;
}
