// Pagination tokens of a room's timeline (/messages `from`/`to`, /context `start`/`end`,
// /relations and /threads batches).
//
// A token names a position *between* events. Events are ordered topologically by
// (depth, stream_ordering) (migrations/0003_rooms.sql, index events_room_topo); stream
// orderings are unique, so the order is total.
//
// Formats:
//   t<depth>-<stream>  topological: just after the event (depth, stream); every event with
//                      (depth, stream) <= the pair is before the position, every other after.
//                      /messages and /context produce these.
//   s<stream>          stream: just after stream position <stream> (every event with
//                      stream_ordering <= <stream> is before it).
//   a /sync token      (`e42_r7_...`, src/sync/token.ts): its `e` part is read as s<e>. So
//                      /sync's `prev_batch` works as /messages `from` as it is; /sync may also
//                      emit `formatStreamToken(firstTimelineStream - 1)`.
//
// A stream position is turned into a topological one per room (see history.ts): the topological
// maximum of the room's events at or before the stream position. In a linear history (every
// local room: each event cites the previous one) the two orders agree, so nothing is skipped or
// repeated; when federation forks the DAG, an event that arrived late with a lower depth may be
// returned by both /sync and /messages, never by neither.
import { MatrixError } from '../http/errors.js';

export type PaginationToken = { kind: 'topo'; depth: number; stream: number } | { kind: 'stream'; stream: number };

const TOPO = /^t(-?\d{1,16})-(-?\d{1,16})$/;
const STREAM = /^s(\d{1,16})$/;
const SYNC_PART = /^([a-z]+)(\d{1,16})$/;

export function formatTopoToken(depth: number, stream: number): string {
  return `t${depth}-${stream}`;
}

export function formatStreamToken(stream: number): string {
  return `s${Math.max(0, stream)}`;
}

export function formatToken(t: PaginationToken): string {
  return t.kind === 'topo' ? formatTopoToken(t.depth, t.stream) : formatStreamToken(t.stream);
}

/** Parses any of the formats above; 400 M_INVALID_PARAM for anything else. */
export function parsePaginationToken(text: string, param = 'from'): PaginationToken {
  const bad = () => new MatrixError('M_INVALID_PARAM', `Invalid '${param}' token`);
  if (text.length === 0 || text.length > 512) throw bad();
  let m = TOPO.exec(text);
  if (m) {
    const depth = Number(m[1]);
    const stream = Number(m[2]);
    if (!Number.isSafeInteger(depth) || !Number.isSafeInteger(stream)) throw bad();
    return { kind: 'topo', depth, stream };
  }
  m = STREAM.exec(text);
  if (m) {
    const stream = Number(m[1]);
    if (!Number.isSafeInteger(stream)) throw bad();
    return { kind: 'stream', stream };
  }
  // A /sync token: parts joined by '_'; the events stream is `e`.
  let events: number | undefined;
  for (const part of text.split('_')) {
    const p = SYNC_PART.exec(part);
    if (!p) throw bad();
    if (p[1] === 'e') events = Number(p[2]);
  }
  if (events === undefined || !Number.isSafeInteger(events)) throw bad();
  return { kind: 'stream', stream: events };
}

/** Lexicographic comparison of topological keys. */
export function compareTopo(a: { depth: number; stream: number }, b: { depth: number; stream: number }): number {
  return a.depth !== b.depth ? a.depth - b.depth : a.stream - b.stream;
}
