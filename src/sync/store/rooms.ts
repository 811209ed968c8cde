// Read-only queries sync needs over the rooms schema (migrations/0003_rooms.sql), in bulk: one
// query per section for all of a user's rooms, not one per room. Writes to these tables belong
// to src/rooms; nothing here changes them.
import type { NamedQuery, Queryable } from '../../db/pool.js';
import { EVENT_COLUMNS, type EventRow } from '../../rooms/store/events.js';

export interface MembershipRow {
  room_id: string;
  room_nid: number;
  /** The room's version. */
  version: string;
  membership: string;
  event_nid: number;
  stream_ordering: number;
  forgotten: boolean;
}

// Every sync runs this, the timeline and the membership changes: prepared once per connection
// (their planning took longer than their execution).
const MEMBERSHIPS: NamedQuery = {
  name: 'sync_memberships',
  text: `SELECT r.room_id, m.room_nid, r.version, m.membership, m.event_nid, m.stream_ordering, m.forgotten
  FROM room_memberships m JOIN rooms r USING (room_nid)
  WHERE m.user_id = $1 AND m.stream_ordering <= $2`,
};

/** The user's membership of every room they have one in, as of stream position `to`. */
export async function membershipsOf(db: Queryable, userId: string, to: number): Promise<MembershipRow[]> {
  return (await db.query<MembershipRow>(MEMBERSHIPS, [userId, to])).rows;
}

const MEMBERSHIP_ONE = `
  SELECT m.membership FROM room_memberships m JOIN rooms r USING (room_nid) WHERE r.room_id = $1 AND m.user_id = $2`;

export async function membershipIn(db: Queryable, roomId: string, userId: string): Promise<string | null> {
  return (await db.query<{ membership: string }>(MEMBERSHIP_ONE, [roomId, userId])).rows[0]?.membership ?? null;
}

const EVENT_IN_ROOM = `
  SELECT e.stream_ordering, e.json FROM event_nids n JOIN events e USING (event_nid) JOIN rooms r ON r.room_nid = e.room_nid
  WHERE n.event_id = $2 AND r.room_id = $1 AND e.stream_ordering IS NOT NULL AND e.rejected_reason IS NULL`;

export async function eventInRoom(db: Queryable, roomId: string, eventId: string): Promise<{ stream_ordering: number; json: string } | undefined> {
  return (await db.query(EVENT_IN_ROOM, [roomId, eventId])).rows[0];
}

const SHARING = `
  SELECT DISTINCT o.user_id FROM room_memberships mine JOIN room_memberships o ON o.room_nid = mine.room_nid
  WHERE mine.user_id = $1 AND mine.membership = 'join' AND o.membership = 'join'`;

export async function usersSharingRooms(db: Queryable, userId: string): Promise<string[]> {
  return (await db.query<{ user_id: string }>(SHARING, [userId])).rows.map((r) => r.user_id);
}

const JOINED = `SELECT r.room_id FROM room_memberships m JOIN rooms r USING (room_nid) WHERE m.user_id = $1 AND m.membership = 'join'`;

export async function joinedRooms(db: Queryable, userId: string): Promise<string[]> {
  return (await db.query<{ room_id: string }>(JOINED, [userId])).rows.map((r) => r.room_id);
}

/**
 * The newest events of each room in (from, to], at most `limit` + 1 per room (the extra one tells
 * whether the timeline was cut), newest first, whole rows (EventLoader.fromRows: no second read
 * by nid). One index range scan per room (LATERAL).
 */
const TIMELINE: NamedQuery = {
  name: 'sync_timeline',
  text: `SELECT l.*
  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS x(room_nid, from_pos, to_pos)
  CROSS JOIN LATERAL (
    SELECT ${EVENT_COLUMNS.split(', ').map((c) => `e.${c}`).join(', ')} FROM events e
    WHERE e.room_nid = x.room_nid AND e.stream_ordering > x.from_pos AND e.stream_ordering <= x.to_pos
      AND e.rejected_reason IS NULL
    ORDER BY e.stream_ordering DESC LIMIT $4
  ) l`,
};

/** A timeline row; read with the syncing device's transaction id by the woken statement. */
export type TimelineRow = EventRow & { txn_id?: string | null };

/** Where a timeline event is, and its transaction id for the syncing device (the timeline's own rows, or known from memory). */
export interface TimelinePlace {
  event_nid: number;
  room_nid: number;
  stream_ordering: number | null;
  txn_id?: string | null;
}

export async function timelineSlices(
  db: Queryable,
  ranges: { roomNid: number; from: number; to: number }[],
  limitPlusOne: number,
): Promise<EventRow[]> {
  if (ranges.length === 0) return [];
  return (
    await db.query(TIMELINE, [ranges.map((r) => r.roomNid), ranges.map((r) => r.from), ranges.map((r) => r.to), limitPlusOne])
  ).rows;
}

/** The newest event of each room at or before a position (the state at a sync token). */
const LAST_AT = `
  SELECT x.room_nid, l.event_nid FROM unnest($1::bigint[], $2::bigint[]) AS x(room_nid, pos)
  CROSS JOIN LATERAL (
    SELECT e.event_nid FROM events e WHERE e.room_nid = x.room_nid AND e.stream_ordering <= x.pos AND e.rejected_reason IS NULL
    ORDER BY e.stream_ordering DESC LIMIT 1
  ) l`;

export async function lastEventsAt(db: Queryable, at: { roomNid: number; pos: number }[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  if (at.length === 0) return out;
  const r = await db.query<{ room_nid: number; event_nid: number }>(LAST_AT, [at.map((a) => a.roomNid), at.map((a) => a.pos)]);
  for (const row of r.rows) out.set(row.room_nid, row.event_nid);
  return out;
}

const ROOMS = 'SELECT room_nid, room_id, version, current_snapshot FROM rooms WHERE room_nid = ANY($1::bigint[])';

export async function roomsByNid(db: Queryable, nids: number[]): Promise<{ room_nid: number; room_id: string; version: string; current_snapshot: number | null }[]> {
  if (nids.length === 0) return [];
  return (await db.query(ROOMS, [nids])).rows;
}

const MEMBER_COUNTS = `
  SELECT room_nid, membership, COUNT(*)::int AS n FROM room_memberships
  WHERE room_nid = ANY($1::bigint[]) AND membership IN ('join', 'invite') GROUP BY room_nid, membership`;

export async function memberCounts(db: Queryable, nids: number[]): Promise<Map<number, { joined: number; invited: number }>> {
  const out = new Map<number, { joined: number; invited: number }>();
  for (const n of nids) out.set(n, { joined: 0, invited: 0 });
  if (nids.length === 0) return out;
  for (const r of (await db.query<{ room_nid: number; membership: string; n: number }>(MEMBER_COUNTS, [nids])).rows) {
    const c = out.get(r.room_nid)!;
    if (r.membership === 'join') c.joined = r.n;
    else c.invited = r.n;
  }
  return out;
}

/**
 * m.heroes, as Synapse picks them: up to 5 other members, joined ones first then invited ones,
 * each in the order their membership took effect; only when there are none of those, the members
 * who left or were banned.
 */
const HEROES = `
  SELECT x.room_nid, l.user_id, l.membership FROM unnest($1::bigint[]) AS x(room_nid)
  CROSS JOIN LATERAL (
    SELECT m.user_id, m.membership, CASE m.membership WHEN 'join' THEN 0 WHEN 'invite' THEN 1 ELSE 2 END AS rank, m.stream_ordering
    FROM room_memberships m
    WHERE m.room_nid = x.room_nid AND m.user_id <> $2 AND m.membership IN ('join', 'invite', 'leave', 'ban')
    ORDER BY rank, m.stream_ordering LIMIT 5
  ) l
  ORDER BY x.room_nid, l.rank, l.stream_ordering`;

export async function heroes(db: Queryable, nids: number[], userId: string): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  if (nids.length === 0) return out;
  const present = new Set<number>();
  const rows = (await db.query<{ room_nid: number; user_id: string; membership: string }>(HEROES, [nids, userId])).rows;
  for (const r of rows) if (r.membership === 'join' || r.membership === 'invite') present.add(r.room_nid);
  for (const r of rows) {
    // Rows come sorted joined, invited, gone: the gone ones count only when nobody else is here.
    if (present.has(r.room_nid) && r.membership !== 'join' && r.membership !== 'invite') continue;
    const list = out.get(r.room_nid) ?? [];
    list.push(r.user_id);
    out.set(r.room_nid, list);
  }
  return out;
}

/** The current member event of each (room, user) pair (lazy loading: the heroes' events). */
const MEMBER_EVENTS = `
  SELECT m.room_nid, m.user_id, m.event_nid FROM room_memberships m
  JOIN unnest($1::bigint[], $2::text[]) AS x(room_nid, user_id) ON m.room_nid = x.room_nid AND m.user_id = x.user_id`;

export async function memberEventNids(db: Queryable, pairs: { roomNid: number; userId: string }[]): Promise<{ room_nid: number; user_id: string; event_nid: number }[]> {
  if (pairs.length === 0) return [];
  return (await db.query(MEMBER_EVENTS, [pairs.map((p) => p.roomNid), pairs.map((p) => p.userId)])).rows;
}

/** Joined local and remote members of a room with their display names (push evaluation). */
const MEMBERS = `SELECT m.user_id, m.displayname FROM room_memberships m JOIN rooms r USING (room_nid) WHERE r.room_id = $1 AND m.membership = 'join'`;

export async function joinedMembersOf(db: Queryable, roomId: string): Promise<{ user_id: string; displayname: string | null }[]> {
  return (await db.query(MEMBERS, [roomId])).rows;
}

/** Users whose membership in a room shared with `userId` changed in (from, to] (device lists). */
const MEMBERSHIP_CHANGES = `
  SELECT DISTINCT o.user_id, o.membership FROM room_memberships mine JOIN room_memberships o ON o.room_nid = mine.room_nid
  WHERE mine.user_id = $1 AND (mine.membership IN ('join', 'leave', 'ban'))
    AND (o.stream_ordering > $2 AND o.stream_ordering <= $3 OR mine.stream_ordering > $2 AND mine.stream_ordering <= $3)`;

/** The users of MEMBERSHIP_CHANGES, each with whether they share a room with `$1` now (one round trip). */
const MEMBERSHIP_CHANGES_SHARING: NamedQuery = {
  name: 'sync_membership_changes',
  text: `WITH changed AS (${MEMBERSHIP_CHANGES}), sharing AS (${SHARING})
  SELECT DISTINCT c.user_id, c.user_id IN (SELECT user_id FROM sharing) AS shares_now FROM changed c WHERE c.user_id <> $1`,
};

export async function membershipChangesSharing(db: Queryable, userId: string, from: number, to: number): Promise<{ user_id: string; shares_now: boolean }[]> {
  return (await db.query(MEMBERSHIP_CHANGES_SHARING, [userId, from, to])).rows;
}

const MAX_STREAM = 'SELECT COALESCE(MAX(stream_ordering), 0) AS pos FROM events';

export async function maxStreamOrdering(db: Queryable): Promise<number> {
  return (await db.query<{ pos: number }>(MAX_STREAM)).rows[0]!.pos;
}
