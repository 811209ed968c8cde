// SQL of events: interned event ids, the event rows, DAG edges, forward extremities, redactions.
import type { Queryable } from '../../db/pool.js';

/** Interns event ids, returning each id's nid (creating missing ones). */
export async function internEventIds(db: Queryable, ids: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (ids.length === 0) return out;
  const unique = [...new Set(ids)];
  // INSERT ... ON CONFLICT DO NOTHING returns only new rows, so existing ones are read after.
  await db.query('INSERT INTO event_nids (event_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [unique]);
  const res = await db.query<{ event_nid: number; event_id: string }>(
    'SELECT event_nid, event_id FROM event_nids WHERE event_id = ANY($1::text[])',
    [unique],
  );
  for (const r of res.rows) out.set(r.event_id, r.event_nid);
  return out;
}

/** Nids of already-interned ids (unknown ids are absent). */
export async function lookupEventNids(db: Queryable, ids: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (ids.length === 0) return out;
  const res = await db.query<{ event_nid: number; event_id: string }>(
    'SELECT event_nid, event_id FROM event_nids WHERE event_id = ANY($1::text[])',
    [ids],
  );
  for (const r of res.rows) out.set(r.event_id, r.event_nid);
  return out;
}

export interface EventRow {
  event_nid: number;
  room_nid: number;
  stream_ordering: number | null;
  depth: number;
  state_key_nid: number | null;
  rejected_reason: string | null;
  state_before: number | null;
  state_after: number | null;
  replaces_nid: number | null;
  redacted_by: number | null;
  json: string;
}

const EVENT_COLUMNS =
  'event_nid, room_nid, stream_ordering, depth, state_key_nid, rejected_reason, state_before, state_after, replaces_nid, redacted_by, json';

export async function getEventRows(db: Queryable, nids: number[]): Promise<EventRow[]> {
  if (nids.length === 0) return [];
  return (await db.query<EventRow>(`SELECT ${EVENT_COLUMNS} FROM events WHERE event_nid = ANY($1::bigint[])`, [nids])).rows;
}

export async function insertEvent(
  db: Queryable,
  e: {
    eventNid: number;
    roomNid: number;
    depth: number;
    type: string;
    stateKeyNid: number | null;
    sender: string;
    originServerTs: number;
    rejectedReason: string | null;
    stateBefore: number | null;
    stateAfter: number | null;
    replacesNid: number | null;
    json: string;
  },
): Promise<number> {
  const res = await db.query<{ stream_ordering: number }>(
    `INSERT INTO events (event_nid, room_nid, stream_ordering, depth, type, state_key_nid, sender, origin_server_ts,
                         rejected_reason, state_before, state_after, replaces_nid, json)
     VALUES ($1, $2, nextval('stream_ordering_seq'), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     RETURNING stream_ordering`,
    [
      e.eventNid,
      e.roomNid,
      e.depth,
      e.type,
      e.stateKeyNid,
      e.sender,
      e.originServerTs,
      e.rejectedReason,
      e.stateBefore,
      e.stateAfter,
      e.replacesNid,
      e.json,
    ],
  );
  return res.rows[0]!.stream_ordering;
}

export async function eventExists(db: Queryable, eventNid: number): Promise<boolean> {
  return (await db.query('SELECT 1 FROM events WHERE event_nid = $1', [eventNid])).rowCount === 1;
}

export async function insertEdges(db: Queryable, eventNid: number, prevNids: number[]): Promise<void> {
  if (prevNids.length === 0) return;
  await db.query(
    'INSERT INTO event_edges (event_nid, prev_event_nid) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING',
    [eventNid, prevNids],
  );
}

export async function getForwardExtremities(db: Queryable, roomNid: number): Promise<number[]> {
  const res = await db.query<{ event_nid: number }>('SELECT event_nid FROM forward_extremities WHERE room_nid = $1', [roomNid]);
  return res.rows.map((r) => r.event_nid);
}

/** Replaces the extremities an event's prev_events cited with the event itself. */
export async function advanceForwardExtremities(db: Queryable, roomNid: number, eventNid: number, prevNids: number[]): Promise<void> {
  if (prevNids.length > 0) {
    await db.query('DELETE FROM forward_extremities WHERE room_nid = $1 AND event_nid = ANY($2::bigint[])', [roomNid, prevNids]);
  }
  // An event some already-stored event cites as prev is no extremity (it arrived late).
  await db.query(
    `INSERT INTO forward_extremities (room_nid, event_nid)
     SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM event_edges WHERE prev_event_nid = $2)
     ON CONFLICT DO NOTHING`,
    [roomNid, eventNid],
  );
}

export async function markRedacted(db: Queryable, eventNid: number, redactionNid: number): Promise<void> {
  // The first valid redaction wins; later ones change nothing a client can see.
  await db.query('UPDATE events SET redacted_by = $2 WHERE event_nid = $1 AND redacted_by IS NULL', [eventNid, redactionNid]);
}

/** The newest event in a room at or before a stream position (for /members?at=). */
export async function lastEventAtOrBefore(db: Queryable, roomNid: number, stream: number): Promise<number | undefined> {
  const res = await db.query<{ event_nid: number }>(
    `SELECT event_nid FROM events WHERE room_nid = $1 AND stream_ordering <= $2 AND rejected_reason IS NULL
     ORDER BY stream_ordering DESC LIMIT 1`,
    [roomNid, stream],
  );
  return res.rows[0]?.event_nid;
}
