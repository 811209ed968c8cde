// SQL of history reads: timeline pages in topological order, a state key's history,
// timestamps, relations and threads (event_relations, migrations/0006_rooms_read.sql).
import type { Queryable } from '../../db/pool.js';

export interface TopoRow {
  event_nid: number;
  depth: number;
  stream_ordering: number;
}

/**
 * Up to `limit` timeline events of a room strictly after (forwards) or at-or-before (backwards)
 * the position (depth, stream), bounded by `to` on the other side, in the direction's order.
 * Outliers (no stream position) and rejected events are never part of the timeline.
 */
export async function timelinePage(
  db: Queryable,
  roomNid: number,
  dir: 'b' | 'f',
  from: { depth: number; stream: number },
  to: { depth: number; stream: number } | undefined,
  limit: number,
): Promise<TopoRow[]> {
  const params: unknown[] = [roomNid, from.depth, from.stream, limit];
  let bound = '';
  if (to) {
    params.push(to.depth, to.stream);
    bound = dir === 'b' ? 'AND (depth, stream_ordering) > ($5, $6)' : 'AND (depth, stream_ordering) <= ($5, $6)';
  }
  const sql =
    dir === 'b'
      ? `SELECT event_nid, depth, stream_ordering FROM events
          WHERE room_nid = $1 AND stream_ordering IS NOT NULL AND rejected_reason IS NULL
            AND (depth, stream_ordering) <= ($2, $3) ${bound}
          ORDER BY depth DESC, stream_ordering DESC LIMIT $4`
      : `SELECT event_nid, depth, stream_ordering FROM events
          WHERE room_nid = $1 AND stream_ordering IS NOT NULL AND rejected_reason IS NULL
            AND (depth, stream_ordering) > ($2, $3) ${bound}
          ORDER BY depth, stream_ordering LIMIT $4`;
  return (await db.query<TopoRow>(sql, params)).rows;
}

/** The topologically last timeline event at or before a stream position (or the room's last). */
export async function topoAtStream(db: Queryable, roomNid: number, stream: number | null): Promise<{ depth: number; stream: number } | undefined> {
  const res = await db.query<TopoRow>(
    `SELECT event_nid, depth, stream_ordering FROM events
      WHERE room_nid = $1 AND stream_ordering IS NOT NULL AND ($2::bigint IS NULL OR stream_ordering <= $2)
      ORDER BY depth DESC, stream_ordering DESC LIMIT 1`,
    [roomNid, stream],
  );
  const r = res.rows[0];
  return r ? { depth: r.depth, stream: r.stream_ordering } : undefined;
}

/** Every event of one (type, state_key) in a room, in stream order (membership history). */
export async function stateKeyHistory(db: Queryable, roomNid: number, stateKeyNid: number): Promise<Array<{ event_nid: number; stream_ordering: number }>> {
  const res = await db.query<{ event_nid: number; stream_ordering: number }>(
    `SELECT event_nid, stream_ordering FROM events
      WHERE room_nid = $1 AND state_key_nid = $2 AND stream_ordering IS NOT NULL AND rejected_reason IS NULL
      ORDER BY stream_ordering`,
    [roomNid, stateKeyNid],
  );
  return res.rows;
}

/** The first event at or after `ts` (dir f) or the last at or before it (dir b). */
export async function eventNearTimestamp(db: Queryable, roomNid: number, ts: number, dir: 'f' | 'b', skip: number): Promise<number | undefined> {
  const res = await db.query<{ event_nid: number }>(
    dir === 'f'
      ? `SELECT event_nid FROM events WHERE room_nid = $1 AND origin_server_ts >= $2 AND stream_ordering IS NOT NULL AND rejected_reason IS NULL
          ORDER BY origin_server_ts, stream_ordering LIMIT 1 OFFSET $3`
      : `SELECT event_nid FROM events WHERE room_nid = $1 AND origin_server_ts <= $2 AND stream_ordering IS NOT NULL AND rejected_reason IS NULL
          ORDER BY origin_server_ts DESC, stream_ordering DESC LIMIT 1 OFFSET $3`,
    [roomNid, ts, skip],
  );
  return res.rows[0]?.event_nid;
}

// ---- relations ---------------------------------------------------------------------------

/** How deep /relations?recurse=true follows relations of relations (Synapse's limit too). */
export const MAX_RELATION_DEPTH = 3;

/**
 * Children of a parent event (and, with `maxLevel` > 1, their children), unredacted, in
 * topological order from a position, optionally of one rel_type and event type.
 */
export async function relationsPage(
  db: Queryable,
  q: {
    parentNid: number;
    roomNid: number;
    relType?: string;
    eventType?: string;
    maxLevel: number;
    dir: 'b' | 'f';
    from?: { depth: number; stream: number };
    to?: { depth: number; stream: number };
    limit: number;
  },
): Promise<TopoRow[]> {
  const params: unknown[] = [q.parentNid, q.roomNid, q.maxLevel, q.limit];
  const where: string[] = [];
  if (q.relType !== undefined) {
    params.push(q.relType);
    where.push(`r.rel_type = $${params.length}`);
  }
  if (q.eventType !== undefined) {
    params.push(q.eventType);
    where.push(`r.event_type = $${params.length}`);
  }
  const cmpFrom = q.dir === 'b' ? '<=' : '>';
  const cmpTo = q.dir === 'b' ? '>' : '<=';
  if (q.from) {
    params.push(q.from.depth, q.from.stream);
    where.push(`(r.depth, r.stream_ordering) ${cmpFrom} ($${params.length - 1}, $${params.length})`);
  }
  if (q.to) {
    params.push(q.to.depth, q.to.stream);
    where.push(`(r.depth, r.stream_ordering) ${cmpTo} ($${params.length - 1}, $${params.length})`);
  }
  const order = q.dir === 'b' ? 'DESC' : 'ASC';
  const res = await db.query<TopoRow>(
    `WITH RECURSIVE tree (event_nid, level) AS (
       SELECT event_nid, 1 FROM event_relations WHERE parent_nid = $1 AND room_nid = $2
       UNION
       SELECT c.event_nid, t.level + 1 FROM event_relations c JOIN tree t ON c.parent_nid = t.event_nid
        WHERE t.level < $3 AND c.room_nid = $2
     )
     SELECT r.event_nid, r.depth, r.stream_ordering
       FROM tree JOIN event_relations r USING (event_nid) JOIN events e USING (event_nid)
      WHERE e.redacted_by IS NULL ${where.length > 0 ? `AND ${where.join(' AND ')}` : ''}
      ORDER BY r.depth ${order}, r.stream_ordering ${order} LIMIT $4`,
    params,
  );
  return res.rows;
}

export interface ThreadSummaryRow {
  parent_nid: number;
  count: number;
  latest_nid: number;
  participated: boolean;
}

/** Per thread root: unredacted thread children, the topologically latest one, participation. */
export async function threadSummaries(db: Queryable, parentNids: number[], userId: string): Promise<ThreadSummaryRow[]> {
  if (parentNids.length === 0) return [];
  const res = await db.query<ThreadSummaryRow>(
    `SELECT r.parent_nid, count(*)::int AS count,
            (array_agg(r.event_nid ORDER BY r.depth DESC, r.stream_ordering DESC))[1] AS latest_nid,
            bool_or(r.sender = $2) AS participated
       FROM event_relations r JOIN events e USING (event_nid)
      WHERE r.parent_nid = ANY($1::bigint[]) AND r.rel_type = 'm.thread' AND e.redacted_by IS NULL
      GROUP BY r.parent_nid`,
    [parentNids, userId],
  );
  return res.rows.map((r) => ({ ...r, latest_nid: Number(r.latest_nid) }));
}

/**
 * Candidate edits (m.replace) of each parent: same sender and event type as the parent, not
 * state, not redacted, newest first by (origin_server_ts, event_id) as the spec orders them.
 */
export async function editCandidates(db: Queryable, parentNids: number[]): Promise<Array<{ parent_nid: number; event_nid: number }>> {
  if (parentNids.length === 0) return [];
  const res = await db.query<{ parent_nid: number; event_nid: number }>(
    `SELECT r.parent_nid, r.event_nid
       FROM event_relations r
       JOIN events e ON e.event_nid = r.event_nid
       JOIN events p ON p.event_nid = r.parent_nid
       JOIN event_nids n ON n.event_nid = r.event_nid
      WHERE r.parent_nid = ANY($1::bigint[]) AND r.rel_type = 'm.replace' AND e.redacted_by IS NULL
        AND r.sender = p.sender AND r.event_type = p.type AND e.state_key_nid IS NULL AND p.state_key_nid IS NULL
        AND p.room_nid = r.room_nid
      ORDER BY r.parent_nid, r.origin_server_ts DESC, n.event_id DESC`,
    [parentNids],
  );
  return res.rows;
}

/** m.reference children of each parent (unredacted), in topological order. */
export async function referenceChildren(db: Queryable, parentNids: number[]): Promise<Array<{ parent_nid: number; event_id: string }>> {
  if (parentNids.length === 0) return [];
  const res = await db.query<{ parent_nid: number; event_id: string }>(
    `SELECT r.parent_nid, n.event_id
       FROM event_relations r JOIN events e USING (event_nid) JOIN event_nids n USING (event_nid)
      WHERE r.parent_nid = ANY($1::bigint[]) AND r.rel_type = 'm.reference' AND e.redacted_by IS NULL
      ORDER BY r.parent_nid, r.depth, r.stream_ordering`,
    [parentNids],
  );
  return res.rows;
}

/** Whether an event has an m.relates_to with a rel_type (threads may not start from one). */
export async function hasRelation(db: Queryable, eventNid: number): Promise<boolean> {
  return ((await db.query('SELECT 1 FROM event_relations WHERE event_nid = $1', [eventNid])).rowCount ?? 0) > 0;
}

/** Whether the sender already annotated the parent with this key (unredacted). */
export async function hasAnnotation(db: Queryable, parentNid: number, sender: string, eventType: string, key: string): Promise<boolean> {
  const res = await db.query(
    `SELECT 1 FROM event_relations r JOIN events e USING (event_nid)
      WHERE r.parent_nid = $1 AND r.rel_type = 'm.annotation' AND r.sender = $2 AND r.event_type = $3 AND r.aggregation_key = $4
        AND e.redacted_by IS NULL LIMIT 1`,
    [parentNid, sender, eventType, key],
  );
  return (res.rowCount ?? 0) > 0;
}

/**
 * Thread roots of a room by latest activity (stream position of the newest unredacted thread
 * event), newest first, strictly before `before`; `participant` keeps threads the user started
 * or replied in.
 */
export async function threadRoots(
  db: Queryable,
  roomNid: number,
  before: number | null,
  participant: string | null,
  limit: number,
): Promise<Array<{ parent_nid: number; latest: number }>> {
  const res = await db.query<{ parent_nid: number; latest: number }>(
    `SELECT r.parent_nid, max(r.stream_ordering) AS latest
       FROM event_relations r JOIN events e USING (event_nid) JOIN events p ON p.event_nid = r.parent_nid
      WHERE r.room_nid = $1 AND r.rel_type = 'm.thread' AND e.redacted_by IS NULL AND p.room_nid = $1
      GROUP BY r.parent_nid, p.sender
     HAVING ($2::bigint IS NULL OR max(r.stream_ordering) < $2)
        AND ($3::text IS NULL OR p.sender = $3 OR bool_or(r.sender = $3))
      ORDER BY latest DESC LIMIT $4`,
    [roomNid, before, participant, limit],
  );
  return res.rows.map((r) => ({ parent_nid: r.parent_nid, latest: Number(r.latest) }));
}
