// Reporting content (spec "Reporting content"): reports of events (by members who can see
// them) and of rooms (by anyone), stored for server admins, listed by the Synapse-compatible
// admin API GET /_synapse/admin/v1/event_reports.
import { MatrixError } from '../http/errors.js';
import type { RoomDeps } from './context.js';
import { findRoom, type Reader } from './read.js';
import * as directorySql from './store/directory.js';
import { summarizeRooms } from './summary.js';
import { roomAccess, visibleEvent } from './visibility.js';

export interface ReportBody {
  reason?: string;
  /** Removed from the spec in v1.18; still accepted (Synapse: -100 most offensive to 0). */
  score?: number;
}

/** POST /rooms/{roomId}/report/{eventId}: joined members, about events they can see. */
export async function reportEvent(d: RoomDeps, reader: Reader, roomId: string, eventId: string, body: ReportBody): Promise<void> {
  const notFound = () => new MatrixError('M_NOT_FOUND', 'The event was not found or you are not joined to the room');
  const access = await roomAccess(d, d.db, roomId, reader.userId).catch(() => undefined);
  if (!access || access.membership?.membership !== 'join') throw notFound();
  const event = await visibleEvent(d, d.db, access, (await d.events.byIds(d.db, [eventId], { fresh: true })).get(eventId));
  if (!event || event.redactedBy !== null) throw notFound();
  await directorySql.insertReport(d.db, { roomId, eventId, userId: reader.userId, reason: body.reason ?? null, score: body.score ?? null });
}

/** POST /rooms/{roomId}/report: anyone, about a room this server knows. */
export async function reportRoom(d: RoomDeps, reader: Reader, roomId: string, body: ReportBody): Promise<void> {
  if (!(await findRoom(d.db, roomId))) throw new MatrixError('M_NOT_FOUND', 'Room not found');
  await directorySql.insertReport(d.db, { roomId, eventId: null, userId: reader.userId, reason: body.reason ?? null, score: null });
}

/** The admin listing, in Synapse's shape (event_reports, total, next_token). */
export async function listReports(d: RoomDeps, q: { from?: string; limit?: string; dir?: string; user_id?: string; room_id?: string }) {
  const int = (v: string | undefined, name: string, fallback: number) => {
    if (v === undefined) return fallback;
    if (!/^\d{1,9}$/.test(v)) throw new MatrixError('M_INVALID_PARAM', `'${name}' must be a non-negative integer`);
    return Number(v);
  };
  const from = int(q.from, 'from', 0);
  const limit = Math.min(int(q.limit, 'limit', 100), 1000);
  if (q.dir !== undefined && q.dir !== 'b' && q.dir !== 'f') throw new MatrixError('M_INVALID_PARAM', "'dir' must be 'b' or 'f'");
  const { rows, total } = await directorySql.listReports(d.db, {
    from,
    limit,
    dir: (q.dir as 'b' | 'f' | undefined) ?? 'b',
    ...(q.user_id !== undefined ? { userId: q.user_id } : {}),
    ...(q.room_id !== undefined ? { roomId: q.room_id } : {}),
  });
  return { event_reports: await describeReports(d, rows), total, ...(from + rows.length < total ? { next_token: from + rows.length } : {}) };
}

/** Reports with their room's name and alias and the reported event's sender, as Synapse lists them. */
async function describeReports(d: RoomDeps, rows: directorySql.ReportRow[]) {
  const rooms = [];
  for (const roomId of new Set(rows.map((r) => r.room_id))) {
    const room = await findRoom(d.db, roomId);
    if (room) rooms.push(room);
  }
  const summaries = await summarizeRooms(d, d.db, rooms);
  const events = await d.events.byIds(d.db, rows.map((r) => r.event_id).filter((e): e is string => e !== null));
  return rows.map((r) => {
    const s = summaries.get(r.room_id);
    return {
      id: r.id,
      received_ts: r.received_ts,
      room_id: r.room_id,
      name: s?.name ?? null,
      canonical_alias: s?.canonical_alias ?? null,
      event_id: r.event_id,
      user_id: r.user_id,
      reason: r.reason,
      score: r.score,
      sender: r.event_id !== null ? (events.get(r.event_id)?.event.sender ?? null) : null,
    };
  });
}

function reportId(text: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new MatrixError('M_INVALID_PARAM', 'The report id must be a positive integer');
  return Number(text);
}

/** GET /_synapse/admin/v1/event_reports/{id}: one report, with the reported event as stored. */
export async function getReport(d: RoomDeps, id: string) {
  const row = await directorySql.getReport(d.db, reportId(id));
  if (!row) throw new MatrixError('M_NOT_FOUND', 'Event report not found');
  const [described] = await describeReports(d, [row]);
  const event = row.event_id !== null ? (await d.events.byIds(d.db, [row.event_id])).get(row.event_id)?.event : undefined;
  return { ...described!, ...(event ? { event_json: event } : {}) };
}

/** DELETE /_synapse/admin/v1/event_reports/{id}. */
export async function deleteReport(d: RoomDeps, id: string): Promise<void> {
  if (!(await directorySql.deleteReport(d.db, reportId(id)))) throw new MatrixError('M_NOT_FOUND', 'Event report not found');
}
