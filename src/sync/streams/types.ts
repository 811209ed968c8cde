// The shape every sync stream shares: latest() is the stream's position in the request's
// snapshot; full() fills an initial sync up to it, between() an incremental one for (from, to].
// Providers live in an array (src/sync/service.ts); next_batch is derived from it.
import type { Queryable } from '../../db/pool.js';
import type { CountRow } from '../../push/store.js';
import type { Filter } from '../filter.js';
import type { MembershipRow } from '../store/rooms.js';
import type { StreamName, SyncToken } from '../token.js';

export interface JoinedRoomSection {
  timeline: { events: unknown[]; limited: boolean; prev_batch?: string };
  state?: { events: unknown[] };
  /** Instead of `state` when the client asked for use_state_after (state at the timeline's end). */
  state_after?: { events: unknown[] };
  ephemeral: { events: unknown[] };
  account_data: { events: unknown[] };
  unread_notifications?: { notification_count: number; highlight_count: number };
  unread_thread_notifications?: Record<string, { notification_count: number; highlight_count: number }>;
  summary: Record<string, unknown>;
}

export interface SyncResponse {
  next_batch: string;
  rooms: {
    join: Record<string, JoinedRoomSection>;
    invite: Record<string, { invite_state: { events: unknown[] } }>;
    leave: Record<
      string,
      { timeline: { events: unknown[]; limited: boolean; prev_batch?: string }; state?: { events: unknown[] }; state_after?: { events: unknown[] }; account_data: { events: unknown[] } }
    >;
    knock: Record<string, { knock_state: { events: unknown[] } }>;
  };
  presence: { events: unknown[] };
  account_data: { events: unknown[] };
  to_device: { events: unknown[] };
  device_lists: { changed: string[]; left: string[] };
  device_one_time_keys_count: Record<string, number>;
  device_unused_fallback_key_types: string[];
}

export interface SyncContext {
  /** The request's REPEATABLE READ READ ONLY snapshot. */
  tx: Queryable;
  userId: string;
  deviceId: string;
  filter: Filter;
  fullState: boolean;
  /** use_state_after: send state_after (state at the end of the timeline) instead of state. */
  useStateAfter: boolean;
  since: SyncToken | undefined;
  /** Positions of the snapshot (what next_batch will say, before merging with since). */
  to: SyncToken;
  res: SyncResponse;
  /** Rooms the user is joined to at `to`; set by the rooms stream, which runs first. */
  joinedRooms: string[];
  /** The same rooms' membership rows (what a woken long-poll continues from). */
  joinedMemberships?: MembershipRow[];
  /** Rooms newly joined in this response (their ephemeral data is sent whole). */
  newlyJoined: Set<string>;
  /** Users the caller ignores (m.ignored_user_list). */
  ignored: Set<string>;
  /** Streams whose next_batch position must stay below the snapshot's (a cut batch). */
  cap: Partial<SyncToken>;
}

export interface StreamProvider {
  readonly name: StreamName;
  latest(tx: Queryable): Promise<number>;
  /**
   * What latest() reads, as one scalar SELECT without parameters: the service then reads the
   * positions of every stream that has one in a single query, sent with the snapshot's BEGIN.
   */
  readonly latestSql?: string | undefined;
  /** between() reads nothing from the database (a woken long-poll runs it as it is). */
  readonly inMemory?: boolean;
  full(ctx: SyncContext): Promise<void>;
  between(ctx: SyncContext, from: number, to: number): Promise<void>;
}

export function emptyResponse(): SyncResponse {
  return {
    next_batch: '',
    rooms: { join: {}, invite: {}, leave: {}, knock: {} },
    presence: { events: [] },
    account_data: { events: [] },
    to_device: { events: [] },
    device_lists: { changed: [], left: [] },
    device_one_time_keys_count: {},
    device_unused_fallback_key_types: [],
  };
}

/** The joined-room entry of a room, created on first use. */
export function joinedRoom(ctx: SyncContext, roomId: string): JoinedRoomSection {
  let r = ctx.res.rooms.join[roomId];
  if (!r) {
    r = { timeline: { events: [], limited: false }, ...(ctx.useStateAfter ? { state_after: { events: [] } } : { state: { events: [] } }), ephemeral: { events: [] }, account_data: { events: [] }, summary: {} };
    ctx.res.rooms.join[roomId] = r;
  }
  return r;
}

/** unread_notifications (and per thread when the filter asks) of every joined room in the response. */
export function applyUnreadCounts(ctx: SyncContext, rows: CountRow[]): void {
  const perThread = ctx.filter.room?.timeline?.unread_thread_notifications === true;
  for (const r of Object.values(ctx.res.rooms.join)) {
    r.unread_notifications = { notification_count: 0, highlight_count: 0 };
    if (perThread) r.unread_thread_notifications = {};
  }
  for (const row of rows) {
    const r = ctx.res.rooms.join[row.room_id];
    if (!r) continue;
    if (perThread && row.thread_id !== '') {
      r.unread_thread_notifications![row.thread_id] = { notification_count: row.notification_count, highlight_count: row.highlight_count };
    } else {
      r.unread_notifications!.notification_count += row.notification_count;
      r.unread_notifications!.highlight_count += row.highlight_count;
    }
  }
}

/** Whether the response holds anything for the caller (a long-poll keeps waiting if not). */
export function hasContent(res: SyncResponse): boolean {
  const r = res.rooms;
  return (
    Object.keys(r.join).length > 0 ||
    Object.keys(r.invite).length > 0 ||
    Object.keys(r.leave).length > 0 ||
    Object.keys(r.knock).length > 0 ||
    res.presence.events.length > 0 ||
    res.account_data.events.length > 0 ||
    res.to_device.events.length > 0 ||
    res.device_lists.changed.length > 0 ||
    res.device_lists.left.length > 0
  );
}
