// SQL of room_memberships: each user's current membership of each room.
import type { Queryable } from '../../db/pool.js';

export interface MembershipRow {
  room_id: string;
  room_nid: number;
  user_id: string;
  membership: string;
  event_nid: number;
  stream_ordering: number;
  displayname: string | null;
  avatar_url: string | null;
  forgotten: boolean;
}

export async function upsertMembership(
  db: Queryable,
  m: { roomNid: number; userId: string; membership: string; eventNid: number; stream: number; displayname: string | null; avatarUrl: string | null },
): Promise<void> {
  await db.query(
    `INSERT INTO room_memberships (room_nid, user_id, membership, event_nid, stream_ordering, displayname, avatar_url, forgotten)
     VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE)
     ON CONFLICT (room_nid, user_id) DO UPDATE SET membership = $3, event_nid = $4, stream_ordering = $5,
       displayname = $6, avatar_url = $7, forgotten = FALSE`,
    [m.roomNid, m.userId, m.membership, m.eventNid, m.stream, m.displayname, m.avatarUrl],
  );
}

const SELECT = `SELECT r.room_id, m.room_nid, m.user_id, m.membership, m.event_nid, m.stream_ordering, m.displayname, m.avatar_url, m.forgotten
  FROM room_memberships m JOIN rooms r USING (room_nid)`;

export async function getMembership(db: Queryable, roomNid: number, userId: string): Promise<MembershipRow | undefined> {
  return (await db.query<MembershipRow>(`${SELECT} WHERE m.room_nid = $1 AND m.user_id = $2`, [roomNid, userId])).rows[0];
}

export async function roomsOfUser(db: Queryable, userId: string, memberships: string[]): Promise<MembershipRow[]> {
  return (await db.query<MembershipRow>(`${SELECT} WHERE m.user_id = $1 AND m.membership = ANY($2::text[]) ORDER BY m.room_nid`, [userId, memberships])).rows;
}

export async function joinedMembers(db: Queryable, roomNid: number): Promise<MembershipRow[]> {
  return (await db.query<MembershipRow>(`${SELECT} WHERE m.room_nid = $1 AND m.membership = 'join' ORDER BY m.user_id`, [roomNid])).rows;
}

/** True when the user had a membership that may be forgotten (left or banned). */
export async function forget(db: Queryable, roomNid: number, userId: string): Promise<void> {
  await db.query('UPDATE room_memberships SET forgotten = TRUE WHERE room_nid = $1 AND user_id = $2', [roomNid, userId]);
}

/** Whether the user is joined to any of the rooms (restricted joins). */
export async function isJoinedToAny(db: Queryable, userId: string, roomIds: string[]): Promise<boolean> {
  if (roomIds.length === 0) return false;
  const res = await db.query(
    `SELECT 1 FROM room_memberships m JOIN rooms r USING (room_nid)
      WHERE m.user_id = $1 AND m.membership = 'join' AND r.room_id = ANY($2::text[]) LIMIT 1`,
    [userId, roomIds],
  );
  return (res.rowCount ?? 0) > 0;
}
