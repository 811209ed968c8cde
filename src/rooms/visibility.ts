// History visibility (spec "Room History Visibility", server behaviour): which events a user may
// see, decided from the state of the room at each event. One module for every read path
// (messages, context, event, relations, threads, timestamp_to_event, aggregations).
//
// Two levels, as Synapse does:
//  1. room access (`roomAccess`): the user is joined, or was a member and has left (or was
//     banned) without forgetting the room, or the room is world_readable now. Anyone else gets
//     the same 403 as for a room that does not exist.
//  2. per event (`filterVisible`), the spec's rules on the state at the event:
//       world_readable -> allow; membership join -> allow; shared and the user joined at any
//       point after the event -> allow; invited and membership invite -> allow; else deny.
//     A history_visibility event counts as the more permissive of its before and after values;
//     the user's own member event counts as the more joined of their membership before and
//     after it (so everyone sees their own join, leave, invite).
//
// The state at an event is its snapshot (events.state_after; equal to state_before for
// non-state events), so it is one cached lookup per distinct snapshot; the two keys read from
// it are memoised per snapshot for the life of one RoomAccess (one request).
import type { Queryable } from '../db/pool.js';
import type { RoomDeps } from './context.js';
import { notInRoom } from './errors.js';
import type { StoredEvent } from './events.js';
import type { KnownRoom } from './read.js';
import { getRoomVersion } from '../core/room-versions.js';
import * as roomsSql from './store/rooms.js';
import * as historySql from './store/history.js';
import * as membershipsSql from './store/memberships.js';

export type HistoryVisibility = 'world_readable' | 'shared' | 'invited' | 'joined';

/** Most permissive first (index = restrictiveness). */
const VISIBILITY_ORDER: HistoryVisibility[] = ['world_readable', 'shared', 'invited', 'joined'];
/** Most joined first. */
const MEMBERSHIP_ORDER = ['join', 'invite', 'knock', 'leave', 'ban'];

export function effectiveVisibility(content: unknown): HistoryVisibility {
  const v = (content as Record<string, unknown> | undefined)?.['history_visibility'];
  // Missing or not understood: `shared` (spec).
  return typeof v === 'string' && (VISIBILITY_ORDER as string[]).includes(v) ? (v as HistoryVisibility) : 'shared';
}

function membershipOf(content: unknown): string {
  const m = (content as Record<string, unknown> | undefined)?.['membership'];
  return typeof m === 'string' && MEMBERSHIP_ORDER.includes(m) ? m : 'leave';
}

interface AtSnapshot {
  visibility: HistoryVisibility;
  membership: string | undefined;
}

export interface RoomAccess {
  room: KnownRoom;
  userId: string;
  /** The user's current membership row, if any. */
  membership: membershipsSql.MembershipRow | undefined;
  /** Whether the room's current history_visibility is world_readable. */
  worldReadableNow: boolean;
  /** @internal per-snapshot memo and the user's join positions, filled lazily. */
  memo: Map<number, AtSnapshot>;
  /**
   * The user's membership after each event filterVisible let through (`leave` when they had
   * none), for unsigned.membership (spec v1.11).
   */
  membershipAt: Map<number, string>;
  joinStreams?: number[];
}

/** The history_visibility of a state snapshot. */
export async function visibilityAt(d: RoomDeps, db: Queryable, snapshot: number | null): Promise<HistoryVisibility> {
  if (snapshot === null) return 'shared';
  const keyNid = await d.state.keyNid(db, 'm.room.history_visibility', '');
  const nid = keyNid === undefined ? undefined : (await d.state.load(db, snapshot)).get(keyNid);
  if (nid === undefined) return 'shared';
  // A redacted history_visibility event keeps its key (redaction rules), so the PDU is enough.
  return effectiveVisibility((await d.events.one(db, nid))?.event.content);
}

/** Room-level access to a room's history for `userId`, or the shared 403. */
export async function roomAccess(d: RoomDeps, db: Queryable, roomId: string, userId: string): Promise<RoomAccess> {
  const row = await roomsSql.getRoom(db, roomId);
  const version = row ? getRoomVersion(row.version) : undefined;
  if (!row || !version || row.current_snapshot === null) throw notInRoom(roomId);
  const room: KnownRoom = { row, version };
  const membership = await membershipsSql.getMembership(db, room.row.room_nid, userId);
  const worldReadableNow = (await visibilityAt(d, db, room.row.current_snapshot)) === 'world_readable';
  const access: RoomAccess = { room, userId, membership, worldReadableNow, memo: new Map(), membershipAt: new Map() };
  if (membership?.membership === 'join') return access;
  if (membership && (membership.membership === 'leave' || membership.membership === 'ban') && !membership.forgotten) return access;
  if (worldReadableNow) return access;
  throw notInRoom(roomId);
}

/** Whether the user has left (or was banned) and so sees nothing after that point. */
export function isFormerMember(access: RoomAccess): boolean {
  const m = access.membership?.membership;
  return m === 'leave' || m === 'ban';
}

async function atSnapshot(d: RoomDeps, db: Queryable, access: RoomAccess, snapshot: number): Promise<AtSnapshot> {
  const hit = access.memo.get(snapshot);
  if (hit) return hit;
  const state = await d.state.load(db, snapshot);
  const [hvKey, memberKey] = await Promise.all([
    d.state.keyNid(db, 'm.room.history_visibility', ''),
    d.state.keyNid(db, 'm.room.member', access.userId),
  ]);
  const hvNid = hvKey === undefined ? undefined : state.get(hvKey);
  const memberNid = memberKey === undefined ? undefined : state.get(memberKey);
  const loaded = await d.events.byNids(db, [hvNid, memberNid].filter((n): n is number => n !== undefined));
  const at: AtSnapshot = {
    visibility: effectiveVisibility(hvNid === undefined ? undefined : loaded.get(hvNid)?.event.content),
    membership: memberNid === undefined ? undefined : membershipOf(loaded.get(memberNid)?.event.content),
  };
  access.memo.set(snapshot, at);
  return at;
}

/** Stream positions of the user's join events in the room (for `shared`). */
async function joinStreams(d: RoomDeps, db: Queryable, access: RoomAccess): Promise<number[]> {
  if (access.joinStreams) return access.joinStreams;
  const keyNid = await d.state.keyNid(db, 'm.room.member', access.userId);
  const rows = keyNid === undefined ? [] : await historySql.stateKeyHistory(db, access.room.row.room_nid, keyNid);
  const events = await d.events.byNids(db, rows.map((r) => r.event_nid));
  access.joinStreams = rows.filter((r) => membershipOf(events.get(r.event_nid)?.event.content) === 'join').map((r) => r.stream_ordering);
  return access.joinStreams;
}

/** The events of `events` the user may see, in the given order. */
export async function filterVisible(d: RoomDeps, db: Queryable, access: RoomAccess, events: StoredEvent[]): Promise<StoredEvent[]> {
  // The previous state events of history_visibility and own member events ("before or after").
  const replaced = await d.events.byNids(
    db,
    events
      .filter((e) => e.replacesNid !== null && (e.event.type === 'm.room.history_visibility' || (e.event.type === 'm.room.member' && e.event.state_key === access.userId)))
      .map((e) => e.replacesNid!),
  );
  const out: StoredEvent[] = [];
  for (const e of events) {
    if (e.rejected !== null || e.roomNid !== access.room.row.room_nid) continue;
    const own = e.event.type === 'm.room.member' && e.event.state_key === access.userId;
    const snapshot = e.stateAfter ?? e.stateBefore;
    if (snapshot === null || e.stream === null) {
      // An outlier: no state known at it. Only the user's own membership (an invite received
      // out of band) is theirs to see.
      if (own) {
        access.membershipAt.set(e.nid, membershipOf(e.event.content));
        out.push(e);
      }
      continue;
    }
    const at = await atSnapshot(d, db, access, snapshot);
    // The snapshot is the state after the event, so this includes the event's own change.
    access.membershipAt.set(e.nid, at.membership ?? 'leave');
    let visibility = at.visibility;
    let membership = at.membership;
    if (e.event.type === 'm.room.history_visibility' && e.event.state_key === '') {
      const prev = e.replacesNid !== null ? effectiveVisibility(replaced.get(e.replacesNid)?.event.content) : 'shared';
      if (VISIBILITY_ORDER.indexOf(prev) < VISIBILITY_ORDER.indexOf(visibility)) visibility = prev;
    }
    if (own) {
      const now = membershipOf(e.event.content);
      const prev = e.replacesNid !== null ? membershipOf(replaced.get(e.replacesNid)?.event.content) : 'leave';
      membership = MEMBERSHIP_ORDER.indexOf(prev) < MEMBERSHIP_ORDER.indexOf(now) ? prev : now;
    }
    if (visibility === 'world_readable' || membership === 'join') {
      out.push(e);
      continue;
    }
    if (visibility === 'invited' && membership === 'invite') {
      out.push(e);
      continue;
    }
    if (visibility === 'shared') {
      const joins = await joinStreams(d, db, access);
      if (joins.some((s) => s >= e.stream!)) out.push(e);
    }
  }
  return out;
}

/** One event, or undefined when the user may not see it (or it is not of this room). */
export async function visibleEvent(d: RoomDeps, db: Queryable, access: RoomAccess, e: StoredEvent | undefined): Promise<StoredEvent | undefined> {
  if (!e) return undefined;
  return (await filterVisible(d, db, access, [e]))[0];
}
