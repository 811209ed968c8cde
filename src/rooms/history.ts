// Room history: GET /rooms/{roomId}/messages and /rooms/{roomId}/context/{eventId}.
//
// Pages walk the room's events in topological order (depth, stream_ordering) between
// positions (pagination-token.ts). Each page reads rows from the position, drops what the
// filter or history visibility hides (consumed all the same), and stops at `limit` events:
// the next token points just past the last row consumed, so consecutive pages neither skip
// nor repeat an event, in either direction.
import type { Queryable } from '../db/pool.js';
import { MatrixError } from '../http/errors.js';
import type { RoomDeps } from './context.js';
import { parseRoomEventFilter, roomEventAllowed, type RoomEventFilter } from './event-filter.js';
import type { StoredEvent } from './events.js';
import type { ClientEvent } from './format.js';
import { formatTopoToken, parsePaginationToken } from './pagination-token.js';
import { serializeEvents, type Reader } from './read.js';
import { BEFORE_START, parseDir, parseLimit, resolvePosition, type Position } from './paging.js';
import { serializeWithRelations } from './relations.js';
import * as historySql from './store/history.js';
import { filterVisible, isFormerMember, roomAccess, visibleEvent, type RoomAccess } from './visibility.js';

/** Rows read per request at most: a page of a long invisible stretch comes back short, with `end`. */
const MAX_SCAN = 2000;

export interface PageResult {
  events: StoredEvent[];
  /** Position after the last row consumed. */
  end: Position;
  /** Whether rows may remain past `end`. */
  more: boolean;
}

/** One page from `from` in direction `dir`, bounded by `to`. */
async function page(
  d: RoomDeps,
  db: Queryable,
  access: RoomAccess,
  dir: 'b' | 'f',
  from: Position,
  to: Position | undefined,
  limit: number,
  filter: RoomEventFilter | undefined,
): Promise<PageResult> {
  const events: StoredEvent[] = [];
  let pos = from;
  let more = false;
  let scanned = 0;
  while (events.length < limit && scanned < MAX_SCAN) {
    const want = Math.min(Math.max((limit - events.length) * 2, 20), 500) + 1;
    const rows = await historySql.timelinePage(db, access.room.row.room_nid, dir, pos, to, want);
    scanned += rows.length;
    const loaded = await d.events.byNids(db, rows.map((r) => r.event_nid), { fresh: true });
    const candidates = rows.map((r) => loaded.get(r.event_nid)).filter((e): e is StoredEvent => e !== undefined);
    const shown = new Set(
      (await filterVisible(d, db, access, candidates.filter((e) => roomEventAllowed(filter, e.event)))).map((e) => e.nid),
    );
    let i = 0;
    for (; i < rows.length && events.length < limit; i++) {
      const r = rows[i]!;
      // Backwards, the position just before this event; forwards, just after it.
      pos = dir === 'b' ? { depth: r.depth, stream: r.stream_ordering - 1 } : { depth: r.depth, stream: r.stream_ordering };
      if (shown.has(r.event_nid)) events.push(loaded.get(r.event_nid)!);
    }
    more = i < rows.length || rows.length === want;
    if (rows.length < want) break;
  }
  if (scanned >= MAX_SCAN) more = true;
  return { events, end: pos, more };
}

/**
 * Lazy-loaded members (filter.lazy_load_members): the member event of each sender of `events`,
 * from the state at that sender's last event in the page, so it shows the profile they had.
 * Redundant members are always included: the server keeps no per-client record of what was
 * sent, and the spec allows sending them (include_redundant_members only forces it).
 */
async function senderMembers(d: RoomDeps, db: Queryable, events: StoredEvent[]): Promise<StoredEvent[]> {
  const lastBySender = new Map<string, StoredEvent>();
  for (const e of events) lastBySender.set(e.event.sender, e);
  const nids = new Set<number>();
  for (const [sender, e] of lastBySender) {
    const snapshot = e.stateAfter ?? e.stateBefore;
    if (snapshot === null) continue;
    const keyNid = await d.state.keyNid(db, 'm.room.member', sender);
    const nid = keyNid === undefined ? undefined : (await d.state.load(db, snapshot)).get(keyNid);
    if (nid !== undefined) nids.add(nid);
  }
  const loaded = await d.events.byNids(db, nids, { fresh: true });
  return [...nids].map((n) => loaded.get(n)).filter((e): e is StoredEvent => e !== undefined);
}

export interface MessagesQuery {
  from?: string;
  to?: string;
  dir?: string;
  limit?: string;
  filter?: string;
}

/** GET /v3/rooms/{roomId}/messages. */
export async function getMessages(d: RoomDeps, reader: Reader, roomId: string, q: MessagesQuery) {
  if (q.dir === undefined) throw new MatrixError('M_MISSING_PARAM', "'dir' is required");
  const dir = parseDir(q.dir, 'b');
  const limit = parseLimit(q.limit, 10, 1000);
  const filter = parseRoomEventFilter(q.filter);
  const fromToken = q.from !== undefined && q.from !== '' ? parsePaginationToken(q.from, 'from') : undefined;
  const toToken = q.to !== undefined && q.to !== '' ? parsePaginationToken(q.to, 'to') : undefined;
  const db = d.db;
  const access = await roomAccess(d, db, roomId, reader.userId);
  const roomNid = access.room.row.room_nid;

  // Without `from`: the end of the timeline backwards, its start forwards (spec v1.3).
  let from: Position;
  if (fromToken) from = await resolvePosition(db, roomNid, fromToken);
  else from = dir === 'b' ? ((await historySql.topoAtStream(db, roomNid, null)) ?? BEFORE_START) : BEFORE_START;
  const start = fromToken ? q.from! : formatTopoToken(from.depth, from.stream);
  const to = toToken ? await resolvePosition(db, roomNid, toToken) : undefined;

  // A former member sees nothing after they left (unless world_readable): start there rather
  // than scan everything since.
  if (dir === 'b' && isFormerMember(access) && !access.worldReadableNow) {
    const left = await d.events.one(db, access.membership!.event_nid);
    if (left && left.stream !== null && (left.depth < from.depth || (left.depth === from.depth && left.stream < from.stream))) {
      from = { depth: left.depth, stream: left.stream };
    }
  }

  const result = limit === 0 ? { events: [], end: from, more: true } : await page(d, db, access, dir, from, to, limit, filter);
  const chunk = await serializeWithRelations(d, db, access, result.events, reader);
  let state: ClientEvent[] = [];
  if (filter?.lazy_load_members && result.events.length > 0) {
    state = await serializeEvents(d, db, await senderMembers(d, db, result.events), access.room.version, reader);
  }
  return {
    chunk,
    start,
    ...(result.more || limit === 0 ? { end: formatTopoToken(result.end.depth, result.end.stream) } : {}),
    ...(state.length > 0 ? { state } : {}),
  };
}

/** GET /v3/rooms/{roomId}/context/{eventId}: the event, up to `limit` events around it, state. */
export async function getContext(d: RoomDeps, reader: Reader, roomId: string, eventId: string, q: { limit?: string; filter?: string }) {
  const limit = parseLimit(q.limit, 10, 1000);
  const filter = parseRoomEventFilter(q.filter);
  const db = d.db;
  const access = await roomAccess(d, db, roomId, reader.userId);
  const target = await visibleEvent(d, db, access, (await d.events.byIds(db, [eventId], { fresh: true })).get(eventId));
  if (!target || target.stream === null) throw new MatrixError('M_NOT_FOUND', 'Event not found');

  // Split as Synapse does: the smaller half before, the rest after.
  const beforeLimit = Math.floor(limit / 2);
  const afterLimit = limit - beforeLimit;
  const at: Position = { depth: target.depth, stream: target.stream };
  const before = beforeLimit > 0 ? await page(d, db, access, 'b', { depth: at.depth, stream: at.stream - 1 }, undefined, beforeLimit, filter) : { events: [], end: { depth: at.depth, stream: at.stream - 1 }, more: true };
  const after = afterLimit > 0 ? await page(d, db, access, 'f', at, undefined, afterLimit, filter) : { events: [], end: at, more: true };

  // State at the last event returned (the target when nothing follows it).
  const last = after.events.at(-1) ?? target;
  const snapshot = last.stateAfter ?? last.stateBefore;
  let stateEvents: StoredEvent[] = [];
  if (snapshot !== null) {
    const state = await d.state.load(db, snapshot);
    let nids = [...state.values()];
    if (filter?.lazy_load_members) {
      const senders = new Set([...before.events, target, ...after.events].map((e) => e.event.sender));
      const pairs = await d.state.keyPairsOf(db, state.keys());
      nids = [...state.entries()].filter(([k]) => {
        const p = pairs.get(k);
        return p !== undefined && (p[0] !== 'm.room.member' || senders.has(p[1]));
      }).map(([, e]) => e);
    }
    const loaded = await d.events.byNids(db, nids, { fresh: true });
    stateEvents = nids.map((n) => loaded.get(n)).filter((e): e is StoredEvent => e !== undefined);
  }
  const [event] = await serializeWithRelations(d, db, access, [target], reader);
  return {
    event: event!,
    events_before: await serializeWithRelations(d, db, access, before.events, reader),
    events_after: await serializeWithRelations(d, db, access, after.events, reader),
    start: formatTopoToken(before.end.depth, before.end.stream),
    end: formatTopoToken(after.end.depth, after.end.stream),
    state: await serializeEvents(d, db, stateEvents, access.room.version, reader),
  };
}
