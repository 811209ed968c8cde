// Reading rooms: single events, state, members, joined rooms. Every read first decides which
// state the caller may see: the current state while joined (or in a world_readable room), the
// state when they left for former members (spec: "If the user has left the room then the state
// is taken from the state of the room when they left"), nothing for anyone else. An unknown
// room and a forbidden one get the same answer.
import { getRoomVersion, type RoomVersion } from '../core/room-versions.js';
import type { RoomEvent } from '../core/types.js';
import type { Queryable } from '../db/pool.js';
import { MatrixError } from '../http/errors.js';
import { notInRoom } from './errors.js';
import type { RoomDeps } from './context.js';
import type { StoredEvent } from './events.js';
import { toClientEvent, type ClientEvent } from './format.js';
import type { StateNids } from './state-store.js';
import * as eventsSql from './store/events.js';
import * as membershipsSql from './store/memberships.js';
import * as roomsSql from './store/rooms.js';
import { readEvent } from './relations.js';
import { parsePaginationToken } from './pagination-token.js';
import * as historySql from './store/history.js';

export interface Reader {
  userId: string;
  deviceId?: string;
  /** The reader's device's transaction ids of the events, when already read (none: not sent by it). */
  txnIds?: ReadonlyMap<number, string>;
}

export interface KnownRoom {
  row: roomsSql.RoomRow;
  version: RoomVersion;
}

export { notInRoom };

export async function findRoom(db: Queryable, roomId: string): Promise<KnownRoom | undefined> {
  const row = await roomsSql.getRoom(db, roomId);
  const version = row ? getRoomVersion(row.version) : undefined;
  return row && version ? { row, version } : undefined;
}

/** Client events for stored events, with redactions, replaced state and the reader's txn ids. */
export async function serializeEvents(d: RoomDeps, db: Queryable, events: StoredEvent[], version: RoomVersion, reader?: Reader): Promise<ClientEvent[]> {
  const related = new Set<number>();
  for (const e of events) {
    if (e.redactedBy !== null) related.add(e.redactedBy);
    if (e.replacesNid !== null) related.add(e.replacesNid);
  }
  const loaded = await d.events.byNids(db, related);
  const txnIds =
    reader?.txnIds ??
    (reader?.deviceId !== undefined
      ? await roomsSql.txnIdsForEvents(db, reader.userId, reader.deviceId, events.filter((e) => e.event.sender === reader.userId).map((e) => e.nid))
      : new Map<number, string>());
  const now = Date.now();
  return events.map((e) => {
    const redactedBecause = e.redactedBy !== null ? loaded.get(e.redactedBy)?.event : undefined;
    const replaces = e.replacesNid !== null ? loaded.get(e.replacesNid)?.event : undefined;
    const transactionId = txnIds.get(e.nid);
    return toClientEvent(e.event, version, {
      now,
      ...(redactedBecause ? { redactedBecause } : {}),
      ...(replaces ? { replaces } : {}),
      ...(transactionId !== undefined ? { transactionId } : {}),
    });
  });
}

async function historyVisibility(d: RoomDeps, db: Queryable, state: StateNids): Promise<string> {
  const keyNid = await d.state.keyNid(db, 'm.room.history_visibility', '');
  const nid = keyNid === undefined ? undefined : state.get(keyNid);
  if (nid === undefined) return 'shared';
  const e = await d.events.one(db, nid, { fresh: true });
  // A redacted history_visibility event keeps its history_visibility key (redaction rules).
  const v = e?.event.content['history_visibility'];
  return typeof v === 'string' ? v : 'shared';
}

/**
 * The state snapshot the reader may see, or 403: current state when joined or the room is
 * world_readable, the state after their leave/kick/ban for former members.
 */
export async function visibleSnapshot(
  d: RoomDeps,
  db: Queryable,
  roomId: string,
  userId: string,
): Promise<{ room: KnownRoom; snapshot: number; joined: boolean; untilStream?: number }> {
  const room = await findRoom(db, roomId);
  if (!room || room.row.current_snapshot === null) throw notInRoom(roomId);
  const membership = await membershipsSql.getMembership(db, room.row.room_nid, userId);
  if (membership?.membership === 'join') return { room, snapshot: room.row.current_snapshot, joined: true };
  const current = await d.state.load(db, room.row.current_snapshot);
  if ((await historyVisibility(d, db, current)) === 'world_readable') return { room, snapshot: room.row.current_snapshot, joined: false };
  // A forgotten room is closed to its former member, as for history (visibility.ts).
  if (membership && (membership.membership === 'leave' || membership.membership === 'ban') && !membership.forgotten) {
    const ev = await d.events.one(db, membership.event_nid);
    if (ev?.stateAfter != null) return { room, snapshot: ev.stateAfter, joined: false, untilStream: membership.stream_ordering };
  }
  throw notInRoom(roomId);
}

async function stateEvents(d: RoomDeps, db: Queryable, snapshot: number, filter?: (type: string, sk: string) => boolean): Promise<StoredEvent[]> {
  const state = await d.state.load(db, snapshot);
  let nids = [...state.values()];
  if (filter) {
    const pairs = await d.state.keyPairsOf(db, state.keys());
    nids = [...state.entries()].filter(([k]) => {
      const p = pairs.get(k);
      return p !== undefined && filter(p[0], p[1]);
    }).map(([, e]) => e);
  }
  const loaded = await d.events.byNids(db, nids, { fresh: true });
  return nids.map((n) => loaded.get(n)).filter((e): e is StoredEvent => e !== undefined);
}

export async function getState(d: RoomDeps, reader: Reader, roomId: string): Promise<ClientEvent[]> {
  const { room, snapshot } = await visibleSnapshot(d, d.db, roomId, reader.userId);
  return serializeEvents(d, d.db, await stateEvents(d, d.db, snapshot), room.version, reader);
}

export async function getStateEvent(
  d: RoomDeps,
  reader: Reader,
  roomId: string,
  type: string,
  stateKey: string,
  format: 'content' | 'event',
): Promise<unknown> {
  const { room, snapshot } = await visibleSnapshot(d, d.db, roomId, reader.userId);
  const keyNid = await d.state.keyNid(d.db, type, stateKey);
  const nid = keyNid === undefined ? undefined : (await d.state.load(d.db, snapshot)).get(keyNid);
  const stored = nid === undefined ? undefined : await d.events.one(d.db, nid, { fresh: true });
  if (!stored) throw new MatrixError('M_NOT_FOUND', `No ${type} state with state_key ${JSON.stringify(stateKey)} in this room`);
  const [event] = await serializeEvents(d, d.db, [stored], room.version, reader);
  return format === 'event' ? event : event!.content;
}

/** One event, with history visibility (visibility.ts) and bundled aggregations (relations.ts). */
export async function getEvent(d: RoomDeps, reader: Reader, roomId: string, eventId: string): Promise<ClientEvent> {
  return readEvent(d, reader, roomId, eventId);
}

/**
 * The last event at or before a pagination token (pagination-token.ts: a /sync prev_batch, a
 * stream token or a /messages topological token); 400 M_INVALID_PARAM for anything else.
 */
async function eventAtToken(db: Queryable, roomNid: number, token: string): Promise<number | undefined> {
  const t = parsePaginationToken(token, 'at');
  if (t.kind === 'stream') return eventsSql.lastEventAtOrBefore(db, roomNid, t.stream);
  return (await historySql.timelinePage(db, roomNid, 'b', t, undefined, 1))[0]?.event_nid;
}

export async function getMembers(
  d: RoomDeps,
  reader: Reader,
  roomId: string,
  q: { at?: string; membership?: string; not_membership?: string },
): Promise<ClientEvent[]> {
  const visible = await visibleSnapshot(d, d.db, roomId, reader.userId);
  let snapshot = visible.snapshot;
  if (q.at !== undefined) {
    const nid = await eventAtToken(d.db, visible.room.row.room_nid, q.at);
    const ev = nid === undefined ? undefined : await d.events.one(d.db, nid);
    // Never later than what the reader may see now (a former member stays at their leave).
    if (ev?.stateAfter != null && (visible.untilStream === undefined || (ev.stream ?? 0) <= visible.untilStream)) {
      snapshot = ev.stateAfter;
    }
  }
  const events = await stateEvents(d, d.db, snapshot, (type) => type === 'm.room.member');
  const filtered = events.filter((e) => {
    const m = e.event.content['membership'];
    if (q.membership !== undefined && m !== q.membership) return false;
    if (q.not_membership !== undefined && m === q.not_membership) return false;
    return true;
  });
  return serializeEvents(d, d.db, filtered, visible.room.version, reader);
}

export async function getJoinedMembers(d: RoomDeps, reader: Reader, roomId: string): Promise<Record<string, { display_name?: string; avatar_url?: string }>> {
  const { room, joined } = await visibleSnapshot(d, d.db, roomId, reader.userId);
  if (!joined) throw notInRoom(roomId);
  const out: Record<string, { display_name?: string; avatar_url?: string }> = {};
  for (const m of await membershipsSql.joinedMembers(d.db, room.row.room_nid)) {
    out[m.user_id] = {
      ...(m.displayname !== null ? { display_name: m.displayname } : {}),
      ...(m.avatar_url !== null ? { avatar_url: m.avatar_url } : {}),
    };
  }
  return out;
}

export async function joinedRooms(d: RoomDeps, userId: string): Promise<string[]> {
  return (await membershipsSql.roomsOfUser(d.db, userId, ['join'])).map((m) => m.room_id);
}

/** The current state event of a key, or undefined (service-side checks). */
export async function currentStateEvent(d: RoomDeps, db: Queryable, snapshot: number, type: string, stateKey: string): Promise<RoomEvent | undefined> {
  const keyNid = await d.state.keyNid(db, type, stateKey);
  const nid = keyNid === undefined ? undefined : (await d.state.load(db, snapshot)).get(keyNid);
  return nid === undefined ? undefined : (await d.events.one(db, nid))?.event;
}
