// Event relationships (spec "Forming relationships between events", "Aggregations of child
// events", event replacements, threading, reference relations): the /relations and /threads
// endpoints and the aggregations bundled into `unsigned.m.relations` of events served to
// clients. Relations are indexed by a trigger as events are written
// (migrations/0006_rooms_read.sql); redacted children are left out when read.
import type { JsonObject } from '../core/types.js';
import type { Queryable } from '../db/pool.js';
import { MatrixError } from '../http/errors.js';
import type { RoomDeps } from './context.js';
import type { StoredEvent } from './events.js';
import type { ClientEvent } from './format.js';
import { formatStreamToken, formatTopoToken, parsePaginationToken } from './pagination-token.js';
import { parseDir, parseLimit, positionParam } from './paging.js';
import { serializeEvents, type Reader } from './read.js';
import * as historySql from './store/history.js';
import { filterVisible, roomAccess, visibleEvent, type RoomAccess } from './visibility.js';

/**
 * Client events with their bundled aggregations: m.replace (the latest valid edit), m.thread
 * (latest event, count, current_user_participated) and m.reference (the referencing ids).
 * Redacted events and state events get none (an edit of a redacted event is meaningless, and
 * Synapse bundles nothing for state either).
 */
export async function serializeWithRelations(
  d: RoomDeps,
  db: Queryable,
  access: RoomAccess,
  events: StoredEvent[],
  reader: Reader,
  depth = 0,
): Promise<ClientEvent[]> {
  const out = await serializeEvents(d, db, events, access.room.version, reader);
  events.forEach((e, i) => {
    const m = access.membershipAt.get(e.nid);
    if (m !== undefined) out[i]!.unsigned['membership'] = m;
  });
  const parents = events.filter((e) => e.redactedBy === null && typeof e.event.state_key !== 'string');
  if (parents.length === 0) return out;
  const parentNids = parents.map((e) => e.nid);
  const [threads, edits, refs] = await Promise.all([
    historySql.threadSummaries(db, parentNids, reader.userId),
    historySql.editCandidates(db, parentNids),
    historySql.referenceChildren(db, parentNids),
  ]);
  const related = await d.events.byNids(db, [...threads.map((t) => t.latest_nid), ...edits.map((e) => e.event_nid)], { fresh: true });
  const visible = new Set((await filterVisible(d, db, access, [...related.values()])).map((e) => e.nid));

  const bundles = new Map<number, JsonObject>();
  const bundle = (nid: number) => {
    let b = bundles.get(nid);
    if (!b) bundles.set(nid, (b = {}));
    return b;
  };
  // An edit of an edit is not valid, and the edit must carry m.new_content (unless encrypted,
  // where the server cannot see it).
  const isEdit = (e: StoredEvent) => (e.event.content['m.relates_to'] as JsonObject | undefined)?.['rel_type'] === 'm.replace';
  const parentByNid = new Map(parents.map((p) => [p.nid, p]));
  for (const c of edits) {
    const parent = parentByNid.get(c.parent_nid)!;
    if (bundles.get(c.parent_nid)?.['m.replace'] !== undefined || isEdit(parent)) continue;
    const edit = related.get(c.event_nid);
    if (!edit || !visible.has(edit.nid)) continue;
    const newContent = edit.event.content['m.new_content'];
    if (edit.event.type !== 'm.room.encrypted' && (typeof newContent !== 'object' || newContent === null || Array.isArray(newContent))) continue;
    const [shown] = await serializeEvents(d, db, [edit], access.room.version, reader);
    bundle(c.parent_nid)['m.replace'] = shown as unknown as JsonObject;
  }
  for (const t of threads) {
    const latest = related.get(t.latest_nid);
    if (!latest || !visible.has(latest.nid)) continue;
    // The latest event carries its own aggregations (its edits), one level down only.
    const [shown] = depth < 1 ? await serializeWithRelations(d, db, access, [latest], reader, depth + 1) : await serializeEvents(d, db, [latest], access.room.version, reader);
    const root = parentByNid.get(t.parent_nid)!;
    bundle(t.parent_nid)['m.thread'] = {
      latest_event: shown as unknown as JsonObject,
      count: t.count,
      current_user_participated: t.participated || root.event.sender === reader.userId,
    };
  }
  const refsByParent = new Map<number, string[]>();
  for (const r of refs) refsByParent.set(r.parent_nid, [...(refsByParent.get(r.parent_nid) ?? []), r.event_id]);
  for (const [nid, ids] of refsByParent) bundle(nid)['m.reference'] = { chunk: ids.map((event_id) => ({ event_id })) };

  events.forEach((e, i) => {
    const b = bundles.get(e.nid);
    if (b) out[i]!.unsigned['m.relations'] = b;
  });
  return out;
}

/**
 * GET /rooms/{roomId}/event/{eventId}: one event with its aggregations. Every refusal (no such
 * room, no access, no such event, not visible) is the same 404.
 */
export async function readEvent(d: RoomDeps, reader: Reader, roomId: string, eventId: string): Promise<ClientEvent> {
  const notFound = () => new MatrixError('M_NOT_FOUND', 'Event not found');
  let access: RoomAccess;
  try {
    access = await roomAccess(d, d.db, roomId, reader.userId);
  } catch (err) {
    if (err instanceof MatrixError && err.errcode === 'M_FORBIDDEN') throw notFound();
    throw err;
  }
  const stored = await visibleEvent(d, d.db, access, (await d.events.byIds(d.db, [eventId], { fresh: true })).get(eventId));
  if (!stored) throw notFound();
  return (await serializeWithRelations(d, d.db, access, [stored], reader))[0]!;
}

export interface RelationsQuery {
  relType?: string;
  eventType?: string;
  from?: string;
  to?: string;
  limit?: string;
  dir?: string;
  recurse?: string;
}

/** GET /v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]. */
export async function getRelations(d: RoomDeps, reader: Reader, roomId: string, eventId: string, q: RelationsQuery) {
  const dir = parseDir(q.dir, 'b');
  const limit = parseLimit(q.limit, 5, 1000);
  // Tokens are validated before access is checked, so a bad token is 400 for anyone.
  if (q.from !== undefined) parsePaginationToken(q.from, 'from');
  if (q.to !== undefined) parsePaginationToken(q.to, 'to');
  if (q.recurse !== undefined && q.recurse !== 'true' && q.recurse !== 'false') throw new MatrixError('M_INVALID_PARAM', "'recurse' must be true or false");
  const recurse = q.recurse === 'true';
  const access = await roomAccess(d, d.db, roomId, reader.userId);
  const parent = await visibleEvent(d, d.db, access, (await d.events.byIds(d.db, [eventId])).get(eventId));
  if (!parent) throw new MatrixError('M_NOT_FOUND', 'Event not found');
  // Children are ordered like the timeline, so any timeline token (relations' own, /messages'
  // or /sync's) names a position among them.
  const from = await positionParam(d.db, access.room.row.room_nid, q.from, 'from');
  const to = await positionParam(d.db, access.room.row.room_nid, q.to, 'to');

  // Pages are topological from `from`; rows the reader may not see are skipped but consumed.
  const chunk: StoredEvent[] = [];
  let pos = from;
  let more = false;
  for (let scanned = 0; chunk.length < limit && scanned < 5000; ) {
    const want = Math.max(limit - chunk.length + 1, 20);
    const rows = await historySql.relationsPage(d.db, {
      parentNid: parent.nid,
      roomNid: access.room.row.room_nid,
      ...(q.relType !== undefined ? { relType: q.relType } : {}),
      ...(q.eventType !== undefined ? { eventType: q.eventType } : {}),
      maxLevel: recurse ? historySql.MAX_RELATION_DEPTH : 1,
      dir,
      ...(pos ? { from: pos } : {}),
      ...(to ? { to } : {}),
      limit: want,
    });
    scanned += rows.length;
    const loaded = await d.events.byNids(d.db, rows.map((r) => r.event_nid), { fresh: true });
    const visible = new Set((await filterVisible(d, d.db, access, [...loaded.values()])).map((e) => e.nid));
    let i = 0;
    for (; i < rows.length && chunk.length < limit; i++) {
      const r = rows[i]!;
      pos = dir === 'b' ? { depth: r.depth, stream: r.stream_ordering - 1 } : { depth: r.depth, stream: r.stream_ordering };
      if (visible.has(r.event_nid)) chunk.push(loaded.get(r.event_nid)!);
    }
    more = i < rows.length || rows.length === want;
    if (rows.length < want) break;
  }
  const events = await serializeWithRelations(d, d.db, access, chunk, reader);
  return {
    chunk: events,
    ...(more && pos ? { next_batch: formatTopoToken(pos.depth, pos.stream) } : {}),
    ...(q.from !== undefined ? { prev_batch: q.from } : {}),
    ...(recurse ? { recursion_depth: historySql.MAX_RELATION_DEPTH } : {}),
  };
}

/** GET /v1/rooms/{roomId}/threads: roots by latest thread activity, newest first. */
export async function getThreads(d: RoomDeps, reader: Reader, roomId: string, q: { include?: string; from?: string; limit?: string }) {
  const include = q.include ?? 'all';
  if (include !== 'all' && include !== 'participated') throw new MatrixError('M_INVALID_PARAM', "'include' must be 'all' or 'participated'");
  const limit = parseLimit(q.limit, 5, 100);
  let before: number | null = null;
  if (q.from !== undefined) {
    const t = parsePaginationToken(q.from, 'from');
    if (t.kind !== 'stream') throw new MatrixError('M_INVALID_PARAM', "Invalid 'from' token");
    before = t.stream;
  }
  const access = await roomAccess(d, d.db, roomId, reader.userId);
  const chunk: StoredEvent[] = [];
  // `before` moves past each root consumed; one extra row per round tells whether more exist.
  let next: number | null = null;
  outer: for (let rounds = 0; rounds < 20; rounds++) {
    const want = limit - chunk.length + 1;
    const rows = await historySql.threadRoots(d.db, access.room.row.room_nid, before, include === 'participated' ? reader.userId : null, want);
    const loaded = await d.events.byNids(d.db, rows.map((r) => r.parent_nid), { fresh: true });
    const visible = new Set((await filterVisible(d, d.db, access, [...loaded.values()])).map((e) => e.nid));
    for (const r of rows) {
      if (chunk.length === limit) {
        next = before;
        break outer;
      }
      before = r.latest;
      if (visible.has(r.parent_nid)) chunk.push(loaded.get(r.parent_nid)!);
    }
    if (rows.length < want) break;
  }
  const events = await serializeWithRelations(d, d.db, access, chunk, reader);
  return { chunk: events, ...(next !== null ? { next_batch: formatStreamToken(next) } : {}) };
}

/** GET /v1/rooms/{roomId}/timestamp_to_event: the closest visible event in a direction. */
export async function timestampToEvent(d: RoomDeps, reader: Reader, roomId: string, q: { ts?: string; dir?: string }) {
  if (q.ts === undefined || !/^\d{1,16}$/.test(q.ts)) throw new MatrixError(q.ts === undefined ? 'M_MISSING_PARAM' : 'M_INVALID_PARAM', "'ts' must be a timestamp in milliseconds");
  if (q.dir === undefined) throw new MatrixError('M_MISSING_PARAM', "'dir' is required");
  const dir = parseDir(q.dir, 'f');
  const access = await roomAccess(d, d.db, roomId, reader.userId);
  // Invisible candidates are skipped, a bounded number of them.
  for (let skip = 0; skip < 50; skip++) {
    const nid = await historySql.eventNearTimestamp(d.db, access.room.row.room_nid, Number(q.ts), dir, skip);
    if (nid === undefined) break;
    const e = await visibleEvent(d, d.db, access, await d.events.one(d.db, nid));
    if (e) return { event_id: e.event.event_id, origin_server_ts: e.event.origin_server_ts };
  }
  throw new MatrixError('M_NOT_FOUND', `No event found ${dir === 'f' ? 'after' : 'before'} ${q.ts}`);
}

