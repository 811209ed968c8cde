// Spaces (spec "Spaces"): GET /v1/rooms/{roomId}/hierarchy walks m.space.child events breadth
// first from a space, listing each room the user may preview; and room summaries
// (GET /v1/room_summary/{roomIdOrAlias}, MSC3266 as Synapse serves it).
//
// Only rooms this server knows are listed: children elsewhere need federation. Children of a
// room are followed only when it is a space (room_type m.space), as Synapse does, in the
// spec's order: `order` (valid strings first, by code point), then the child event's
// origin_server_ts, then room id.
import { createHash } from 'node:crypto';
import { getRoomVersion } from '../core/room-versions.js';
import type { RoomEvent } from '../core/types.js';
import { MatrixError, forbidden } from '../http/errors.js';
import type { RoomDeps } from './context.js';
import { resolveRoomIdOrAlias } from './membership.js';
import type { KnownRoom } from './read.js';
import * as directorySql from './store/directory.js';
import * as membershipsSql from './store/memberships.js';
import { mayPreview, publicChunk, summarizeRooms, type RoomSummary } from './summary.js';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 100;
const MAX_DEPTH = 10;
const MAX_ROOMS_WALKED = 2000;

function validOrder(o: unknown): o is string {
  return typeof o === 'string' && o.length <= 50 && /^[\x20-\x7e]*$/.test(o);
}

/** A child event counts only with a non-empty `via` (spec: otherwise the child is removed). */
function isValidChild(e: RoomEvent): boolean {
  const via = e.content['via'];
  return Array.isArray(via) && via.length > 0 && via.every((v) => typeof v === 'string');
}

function sortChildren(children: RoomEvent[]): RoomEvent[] {
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return [...children].sort((a, b) => {
    const oa = validOrder(a.content['order']) ? (a.content['order'] as string) : undefined;
    const ob = validOrder(b.content['order']) ? (b.content['order'] as string) : undefined;
    if (oa !== undefined && ob === undefined) return -1;
    if (oa === undefined && ob !== undefined) return 1;
    if (oa !== undefined && ob !== undefined && oa !== ob) return cmp(oa, ob);
    if (a.origin_server_ts !== b.origin_server_ts) return a.origin_server_ts - b.origin_server_ts;
    return cmp(a.state_key ?? '', b.state_key ?? '');
  });
}

async function knownRooms(d: RoomDeps, roomIds: string[]): Promise<Map<string, KnownRoom>> {
  const out = new Map<string, KnownRoom>();
  for (const row of await directorySql.roomsByIds(d.db, roomIds)) {
    const version = getRoomVersion(row.version);
    if (version) out.set(row.room_id, { row, version });
  }
  return out;
}

/** The pagination token binds the walk's parameters: a token of another walk is refused. */
function walkKey(roomId: string, suggestedOnly: boolean, maxDepth: number): string {
  return createHash('sha256').update(`${roomId}\u0000${suggestedOnly}\u0000${maxDepth}`).digest('base64url').slice(0, 12);
}

export async function getHierarchy(
  d: RoomDeps,
  userId: string,
  roomId: string,
  q: { from?: string; limit?: string; max_depth?: string; suggested_only?: string },
) {
  const int = (v: string | undefined, name: string) => {
    if (v === undefined) return undefined;
    if (!/^\d{1,9}$/.test(v)) throw new MatrixError('M_INVALID_PARAM', `'${name}' must be a non-negative integer`);
    return Number(v);
  };
  const limitQ = int(q.limit, 'limit');
  if (limitQ === 0) throw new MatrixError('M_INVALID_PARAM', "'limit' must be positive");
  const limit = Math.min(limitQ ?? DEFAULT_LIMIT, MAX_LIMIT);
  const maxDepth = Math.min(int(q.max_depth, 'max_depth') ?? MAX_DEPTH, MAX_DEPTH);
  if (q.suggested_only !== undefined && q.suggested_only !== 'true' && q.suggested_only !== 'false') {
    throw new MatrixError('M_INVALID_PARAM', "'suggested_only' must be true or false");
  }
  const suggestedOnly = q.suggested_only === 'true';
  const key = walkKey(roomId, suggestedOnly, maxDepth);
  let offset = 0;
  if (q.from !== undefined) {
    const m = /^([A-Za-z0-9_-]{12})\.(\d{1,9})$/.exec(q.from);
    if (!m || m[1] !== key) throw new MatrixError('M_INVALID_PARAM', "Invalid 'from' token for this request");
    offset = Number(m[2]);
  }

  const rootRoom = (await knownRooms(d, [roomId])).get(roomId);
  const rootSummary = rootRoom ? (await summarizeRooms(d, d.db, [rootRoom])).get(roomId) : undefined;
  if (!rootRoom || !rootSummary || !(await mayPreview(d.db, rootSummary, rootRoom.row.room_nid, userId))) {
    throw forbidden(`You cannot view or preview room ${roomId}, or it does not exist`);
  }

  // Breadth first; `listed` holds every accessible room in walk order, up to what the page needs.
  const listed: Array<{ summary: RoomSummary; children: RoomEvent[] }> = [];
  const seen = new Set<string>([roomId]);
  let queue: Array<{ room: KnownRoom; summary: RoomSummary; depth: number }> = [{ room: rootRoom, summary: rootSummary, depth: 0 }];
  let walked = 0;
  while (queue.length > 0 && listed.length <= offset + limit && walked < MAX_ROOMS_WALKED) {
    const next: typeof queue = [];
    for (const item of queue) {
      walked++;
      const isSpace = item.summary.room_type === 'm.space';
      const children = isSpace
        ? sortChildren(item.summary.extra.children.filter(isValidChild).filter((c) => !suggestedOnly || c.content['suggested'] === true))
        : [];
      listed.push({ summary: item.summary, children });
      if (item.depth >= maxDepth || children.length === 0) continue;
      const ids = children.map((c) => c.state_key!).filter((id) => !seen.has(id));
      const rooms = await knownRooms(d, ids);
      const summaries = await summarizeRooms(d, d.db, [...rooms.values()]);
      for (const id of ids) {
        seen.add(id);
        const room = rooms.get(id);
        const summary = summaries.get(id);
        if (!room || !summary || !(await mayPreview(d.db, summary, room.row.room_nid, userId))) continue;
        next.push({ room, summary, depth: item.depth + 1 });
      }
    }
    queue = next;
  }
  const page = listed.slice(offset, offset + limit);
  const more = listed.length > offset + limit || (queue.length > 0 && listed.length >= offset + limit);
  return {
    rooms: page.map(({ summary, children }) => ({
      ...publicChunk(summary),
      // Stripped state events: type, state_key, content, sender, origin_server_ts.
      children_state: children.map((c) => ({ type: c.type, state_key: c.state_key!, content: c.content, sender: c.sender, origin_server_ts: c.origin_server_ts })),
    })),
    ...(more ? { next_batch: `${key}.${offset + page.length}` } : {}),
  };
}

/** GET /v1/room_summary/{roomIdOrAlias}: 404 for rooms unknown or not previewable. */
export async function getRoomSummary(d: RoomDeps, userId: string | null, roomIdOrAlias: string) {
  const notFound = () => new MatrixError('M_NOT_FOUND', 'Room not found or is not accessible');
  let roomId: string;
  try {
    roomId = await resolveRoomIdOrAlias(d, roomIdOrAlias);
  } catch (err) {
    if (err instanceof MatrixError && err.errcode === 'M_NOT_FOUND') throw notFound();
    throw err;
  }
  const room = (await knownRooms(d, [roomId])).get(roomId);
  const summary = room ? (await summarizeRooms(d, d.db, [room])).get(roomId) : undefined;
  if (!room || !summary || !(await mayPreview(d.db, summary, room.row.room_nid, userId))) throw notFound();
  const membership = userId !== null ? (await membershipsSql.getMembership(d.db, room.row.room_nid, userId))?.membership : undefined;
  return {
    ...publicChunk(summary),
    room_version: summary.extra.roomVersion,
    ...(summary.extra.encryption ? { encryption: summary.extra.encryption } : {}),
    ...(summary.join_rule === 'restricted' || summary.join_rule === 'knock_restricted' ? { allowed_room_ids: summary.extra.allowedRoomIds } : {}),
    ...(userId !== null ? { membership: membership ?? 'leave' } : {}),
  };
}
