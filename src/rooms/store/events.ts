// SQL of events: interned event ids, the event rows, DAG edges, forward extremities, redactions.
import type { NamedQuery, Queryable } from '../../db/pool.js';

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

/** The columns of an EventRow, for readers that select events themselves (EventLoader.fromRows). */
export const EVENT_COLUMNS =
  'event_nid, room_nid, stream_ordering, depth, state_key_nid, rejected_reason, state_before, state_after, replaces_nid, redacted_by, json';

export async function getEventRows(db: Queryable, nids: number[]): Promise<EventRow[]> {
  if (nids.length === 0) return [];
  return (await db.query<EventRow>(`SELECT ${EVENT_COLUMNS} FROM events WHERE event_nid = ANY($1::bigint[])`, [nids])).rows;
}

/** What push rule evaluation decided for one local member (stored with the event). */
export interface PushActionsOf {
  userId: string;
  threadId: string;
  actions: unknown[];
  notify: boolean;
  highlight: boolean;
}

/**
 * Writes an event in one round trip: interns its id (or finds the nid already interned), takes
 * the stream lock (see RoomLock), allocates its stream position, inserts the row, its prev
 * edges, the client's transaction id and the members' push actions, and (unless rejected) moves
 * the forward extremities: the prev events stop being extremities and the event becomes one,
 * unless some stored event already cites it (it arrived late). Data-modifying CTEs all run, in
 * one snapshot. Prepared once per connection: planning this statement costs more than running it.
 *
 * With a transaction id already used (a client retry racing its first attempt, or arriving
 * after it), nothing is written and the earlier event's id comes back as `duplicate_of`; so
 * the idempotency check costs no round trip of its own.
 *
 * The room's head_seq must still be `headSeq` (compare-and-swap, re-checked after waiting for a
 * concurrent writer's row lock): else nothing is written and HeadMoved is thrown. The room's
 * advisory lock is taken first (a writer on the one-statement path does not hold it yet) and the
 * stream lock after the head, in the order every writer takes them.
 */
const WRITE_EVENT: NamedQuery = {
  name: 'write_event',
  text: `WITH room_lock AS (SELECT pg_advisory_xact_lock($28, $29)),
     dup AS (
       SELECT n.event_id FROM event_txn_ids t JOIN event_nids n USING (event_nid)
        WHERE t.user_id = $16 AND t.device_id = $17 AND t.scope = $18 AND t.txn_id = $19
     ),
     head AS (
       UPDATE rooms SET head_seq = head_seq + 1 FROM room_lock
        WHERE room_nid = $4 AND head_seq = $27 AND NOT EXISTS (SELECT 1 FROM dup)
       RETURNING head_seq
     ),
     lk AS (SELECT pg_advisory_xact_lock($1, $2) FROM head),
     nid AS (
       INSERT INTO event_nids (event_nid, event_id) SELECT COALESCE($33::bigint, nextval('event_nids_event_nid_seq')), $3 FROM head
       ON CONFLICT (event_id) DO UPDATE SET event_id = EXCLUDED.event_id
       RETURNING event_nid
     ),
     ev AS (
       INSERT INTO events (event_nid, room_nid, stream_ordering, depth, type, state_key_nid, sender, origin_server_ts,
                           rejected_reason, state_before, state_after, replaces_nid, json)
       SELECT nid.event_nid, $4, nextval('stream_ordering_seq'), $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 FROM nid, lk
       RETURNING event_nid, stream_ordering
     ),
     edges AS (
       INSERT INTO event_edges (event_nid, prev_event_nid) SELECT ev.event_nid, p FROM ev, unnest($15::bigint[]) AS p
       ON CONFLICT DO NOTHING
     ),
     txn AS (
       INSERT INTO event_txn_ids (user_id, device_id, scope, txn_id, event_nid, created_ts)
       SELECT $16, $17, $18, $19, ev.event_nid, $20 FROM ev WHERE $19::text IS NOT NULL
     ),
     push AS (
       INSERT INTO event_push_actions (user_id, room_id, thread_id, event_id, stream_ordering, actions, notif, highlight, received_ts)
       SELECT a.user_id, $21, a.thread_id, $3, ev.stream_ordering, a.actions, a.notif, a.highlight, $20
         FROM ev, unnest($22::text[], $23::text[], $24::jsonb[], $25::bool[], $26::bool[]) AS a(user_id, thread_id, actions, notif, highlight)
     ),
     unextremity AS (
       DELETE FROM forward_extremities
        WHERE $10::text IS NULL AND room_nid = $4 AND event_nid = ANY($15::bigint[]) AND EXISTS (SELECT 1 FROM ev)
     ),
     extremity AS (
       INSERT INTO forward_extremities (room_nid, event_nid)
       SELECT $4, ev.event_nid FROM ev
        WHERE $10::text IS NULL AND NOT EXISTS (SELECT 1 FROM event_edges WHERE prev_event_nid = ev.event_nid)
       ON CONFLICT DO NOTHING
     )
     SELECT event_nid, stream_ordering, NULL::text AS duplicate_of,
            CASE WHEN $30::text <> '' THEN pg_notify($30, $31 || stream_ordering || $32) IS NULL END AS announced
       FROM ev
     UNION ALL
     SELECT NULL, NULL, event_id, NULL FROM dup`,
};

/** The room's head moved since the writer read it (another process wrote): nothing was written. */
export class HeadMoved extends Error {
  override name = 'HeadMoved';
}

export async function writeEvent(
  db: Queryable,
  e: {
    eventId: string;
    roomId: string;
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
    prevNids: number[];
    txn: { userId: string; deviceId: string; scope: string; txnId: string } | null;
    streamLock: [number, number];
    /** The room's advisory lock: taken (or taken again) before the head, then the stream lock. */
    roomLock: [number, number];
    pushActions: PushActionsOf[];
    headSeq: number;
    /** A NOTIFY to send with the event, around its stream position (committed with it). */
    announce: { channel: string; before: string; after: string } | null;
    /** The nid taken for the event beforehand (a message of a batch), if its id is not interned yet. */
    nid?: number;
  },
): Promise<{ event_nid: number; stream_ordering: number; duplicate_of: null } | { event_nid: null; stream_ordering: null; duplicate_of: string }> {
  const push = e.pushActions;
  const res = await db.query(WRITE_EVENT, [
    e.streamLock[0],
    e.streamLock[1],
    e.eventId,
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
    e.prevNids,
    e.txn?.userId ?? null,
    e.txn?.deviceId ?? null,
    e.txn?.scope ?? null,
    e.txn?.txnId ?? null,
    Date.now(),
    e.roomId,
    push.map((p) => p.userId),
    push.map((p) => p.threadId),
    push.map((p) => JSON.stringify(p.actions)),
    push.map((p) => p.notify),
    push.map((p) => p.highlight),
    e.headSeq,
    e.roomLock[0],
    e.roomLock[1],
    e.announce?.channel ?? '',
    e.announce?.before ?? '',
    e.announce?.after ?? '',
    e.nid ?? null,
  ]);
  if (res.rows.length === 0) throw new HeadMoved(`the head of room ${e.roomId} moved`);
  return res.rows[0];
}

/**
 * One message of a batch written by writeMessages: its nid was allocated at the batch's start
 * (batchStartSql), its stream position is allocated by the write.
 */
export interface BatchedMessage {
  nid: number;
  eventId: string;
  depth: number;
  type: string;
  sender: string;
  originServerTs: number;
  stateBefore: number | null;
  json: string;
  prevNids: number[];
  txn: { userId: string; deviceId: string; scope: string; txnId: string } | null;
  pushActions: PushActionsOf[];
  announce: { channel: string; before: string; after: string } | null;
}

/**
 * The messages (no state, no redaction) of batches of sends to one or more rooms, in one
 * statement: what WRITE_EVENT does for one event, for all of them. Their stream positions are
 * allocated in order under the stream lock, taken here and held to commit. As in WRITE_EVENT,
 * each room's lock is taken (again, for a batch in a transaction; in the order of their keys, as
 * every writer of several rooms takes them) and its head compare-and-swapped. A room whose head
 * moved, or one of whose transaction ids was used already (its messages after that one were
 * built on it), gets nothing written; the other rooms are written.
 */
const WRITE_MESSAGES: NamedQuery = {
  name: 'write_messages',
  text: `WITH rm AS MATERIALIZED (
       SELECT * FROM jsonb_to_recordset($4::jsonb) AS rm(r int, room_nid bigint, room_id text, head_seq bigint, lock_key int, n int)
     ),
     room_locks AS MATERIALIZED (
       SELECT count(pg_advisory_xact_lock($5, lock_key)) AS taken FROM (SELECT lock_key FROM rm ORDER BY lock_key) k
     ),
     w AS MATERIALIZED (
       SELECT * FROM jsonb_to_recordset($3::jsonb) AS w(i int, r int, nid bigint, event_id text, depth bigint, type text, sender text,
         ts bigint, state_before bigint, json text, prev bigint[], txn_user text, txn_device text, txn_scope text, txn_id text,
         push jsonb, channel text, before text, after text)
     ),
     dup AS MATERIALIZED (
       SELECT DISTINCT w.r FROM w, LATERAL (
         SELECT 1 FROM event_txn_ids t
          WHERE t.user_id = w.txn_user AND t.device_id = w.txn_device AND t.scope = w.txn_scope AND t.txn_id = w.txn_id
          LIMIT 1
       ) used
     ),
     head AS (
       UPDATE rooms SET head_seq = rooms.head_seq + rm.n FROM rm, room_locks
        WHERE rooms.room_nid = rm.room_nid AND rooms.head_seq = rm.head_seq AND room_locks.taken > 0
          AND NOT EXISTS (SELECT 1 FROM dup WHERE dup.r = rm.r)
       RETURNING rm.r, rm.room_nid, rm.room_id
     ),
     lk AS (SELECT pg_advisory_xact_lock($1, $2) FROM (SELECT 1 FROM head LIMIT 1) h),
     kept AS MATERIALIZED (
       SELECT w.*, head.room_nid, head.room_id, row_number() OVER (ORDER BY w.i) AS k FROM w JOIN head USING (r)
     ),
     alloc AS MATERIALIZED (
       SELECT row_number() OVER (ORDER BY stream) AS k, stream
         FROM (SELECT nextval('stream_ordering_seq') AS stream FROM (SELECT k FROM kept) g, lk) x
     ),
     placed AS (SELECT kept.*, a.stream FROM kept JOIN alloc a USING (k)),
     nids AS (
       INSERT INTO event_nids (event_nid, event_id) SELECT nid, event_id FROM placed
     ),
     ev AS (
       INSERT INTO events (event_nid, room_nid, stream_ordering, depth, type, state_key_nid, sender, origin_server_ts,
                           rejected_reason, state_before, state_after, replaces_nid, json)
       SELECT nid, room_nid, stream, depth, type, NULL, sender, ts, NULL, state_before, state_before, NULL, json FROM placed
     ),
     edges AS (
       INSERT INTO event_edges (event_nid, prev_event_nid) SELECT p.nid, x FROM placed p, unnest(p.prev) AS x
       ON CONFLICT DO NOTHING
     ),
     txn AS (
       INSERT INTO event_txn_ids (user_id, device_id, scope, txn_id, event_nid, created_ts)
       SELECT txn_user, txn_device, txn_scope, txn_id, nid, $6 FROM placed WHERE txn_id IS NOT NULL
     ),
     push AS (
       INSERT INTO event_push_actions (user_id, room_id, thread_id, event_id, stream_ordering, actions, notif, highlight, received_ts)
       SELECT a.user_id, p.room_id, a.thread_id, p.event_id, p.stream, a.actions, a.notif, a.highlight, $6
         FROM placed p, jsonb_to_recordset(p.push) AS a(user_id text, thread_id text, actions jsonb, notif bool, highlight bool)
     ),
     cited AS MATERIALIZED (SELECT DISTINCT room_nid, x AS event_nid FROM placed, unnest(prev) AS x),
     unextremity AS (
       DELETE FROM forward_extremities f USING cited c
        WHERE f.room_nid = c.room_nid AND f.event_nid = c.event_nid
     ),
     extremity AS (
       INSERT INTO forward_extremities (room_nid, event_nid)
       SELECT p.room_nid, p.nid FROM placed p
        WHERE NOT EXISTS (SELECT 1 FROM w, unnest(w.prev) AS x WHERE x = p.nid)
          AND NOT EXISTS (SELECT 1 FROM event_edges WHERE prev_event_nid = p.nid)
       ON CONFLICT DO NOTHING
     )
     SELECT r, nid, stream, CASE WHEN channel <> '' THEN pg_notify(channel, before || stream || after) IS NULL END AS notified
       FROM placed ORDER BY i`,
};

/** One room's batch of messages for writeMessages, built on the room's head `headSeq`. */
export interface RoomMessages {
  roomId: string;
  roomNid: number;
  headSeq: number;
  /** The second key of the room's advisory lock (its namespace is the same for all rooms). */
  lockKey: number;
  messages: BatchedMessage[];
}

/**
 * Writes batches of messages of one or more rooms (sending the announcements given), each room
 * at most once. For each room, in order: its messages' stream positions by nid, or null when
 * nothing of it was written (its head moved, or a transaction id was used already).
 */
export async function writeMessages(
  db: Queryable,
  locks: { stream: [number, number]; roomNamespace: number },
  rooms: RoomMessages[],
): Promise<Array<Map<number, number> | null>> {
  const records: unknown[] = [];
  for (let r = 0; r < rooms.length; r++) {
    for (const m of rooms[r]!.messages) {
      records.push({
        i: records.length + 1,
        r: r + 1,
        nid: m.nid,
        event_id: m.eventId,
        depth: m.depth,
        type: m.type,
        sender: m.sender,
        ts: m.originServerTs,
        state_before: m.stateBefore,
        json: m.json,
        prev: m.prevNids,
        txn_user: m.txn?.userId ?? null,
        txn_device: m.txn?.deviceId ?? null,
        txn_scope: m.txn?.scope ?? null,
        txn_id: m.txn?.txnId ?? null,
        push: m.pushActions.map((p) => ({ user_id: p.userId, thread_id: p.threadId, actions: p.actions, notif: p.notify, highlight: p.highlight })),
        channel: m.announce?.channel ?? '',
        before: m.announce?.before ?? '',
        after: m.announce?.after ?? '',
      });
    }
  }
  const res = await db.query<{ r: number; nid: number; stream: number }>(WRITE_MESSAGES, [
    locks.stream[0],
    locks.stream[1],
    JSON.stringify(records),
    JSON.stringify(rooms.map((room, r) => ({ r: r + 1, room_nid: room.roomNid, room_id: room.roomId, head_seq: room.headSeq, lock_key: room.lockKey, n: room.messages.length }))),
    locks.roomNamespace,
    Date.now(),
  ]);
  const placed: Array<Map<number, number> | null> = rooms.map(() => null);
  for (const row of res.rows) {
    const r = Number(row.r) - 1;
    (placed[r] ??= new Map()).set(Number(row.nid), Number(row.stream));
  }
  placed.forEach((p, r) => {
    if (p !== null && p.size !== rooms[r]!.messages.length) throw new Error(`the write of ${rooms[r]!.roomId}'s messages was partial`);
  });
  return placed;
}

const freshNidsSql = (count: string) => `SELECT ARRAY(SELECT nextval('event_nids_event_nid_seq') FROM generate_series(1, ${count})) AS nids`;

/** `count` fresh event nids (for batches that do not start with a BEGIN). */
export async function freshEventNids(db: Queryable, count: number): Promise<number[]> {
  const r = await db.query<{ nids: string[] }>(freshNidsSql('$1::int'), [count]);
  return r.rows[0]!.nids.map(Number);
}

/**
 * What a batch of messages reads with its BEGIN (simple protocol, values inlined by the caller,
 * already escaped): `count` fresh event nids, and which of the transaction ids were used already.
 */
export function batchStartSql(count: number, escapedTxns: [string, string, string, string][]): string[] {
  const out = [freshNidsSql(String(Math.trunc(count)))];
  out.push(
    escapedTxns.length === 0
      ? 'SELECT NULL::text AS user_id, NULL::text AS device_id, NULL::text AS scope, NULL::text AS txn_id, NULL::text AS event_id WHERE false'
      : `SELECT t.user_id, t.device_id, t.scope, t.txn_id, n.event_id FROM event_txn_ids t JOIN event_nids n USING (event_nid)
          WHERE (t.user_id, t.device_id, t.scope, t.txn_id) IN (${escapedTxns.map((k) => `(${k.join(', ')})`).join(', ')})`,
  );
  return out;
}

export interface WriteRoomRow {
  room_nid: number;
  version: string;
  creator: string;
  current_snapshot: number | null;
  head_seq: number;
  extremities: number[];
}

/**
 * The room row and its forward extremities, read under the room lock. SQL text with the room
 * id inlined (already escaped by the caller), to run in the same round trip as BEGIN and the
 * lock, where parameters are not available.
 */
export function roomForWriteSql(escapedRoomId: string): string {
  return `SELECT r.room_nid, r.version, r.creator, r.current_snapshot, r.head_seq,
            ARRAY(SELECT f.event_nid FROM forward_extremities f WHERE f.room_nid = r.room_nid) AS extremities
       FROM rooms r WHERE r.room_id = ${escapedRoomId}`;
}

export function parseRoomForWrite(row: Record<string, unknown> | undefined): WriteRoomRow | undefined {
  if (!row) return undefined;
  return {
    room_nid: Number(row['room_nid']),
    version: row['version'] as string,
    creator: row['creator'] as string,
    current_snapshot: row['current_snapshot'] === null ? null : Number(row['current_snapshot']),
    head_seq: Number(row['head_seq']),
    // BIGINT[] arrives as strings (the pool's INT8 parser covers scalars only).
    extremities: (row['extremities'] as string[]).map(Number),
  };
}

/** True when this redaction is the one that applies (the first valid one wins). */
export async function markRedacted(db: Queryable, eventNid: number, redactionNid: number): Promise<boolean> {
  // The first valid redaction wins; later ones change nothing a client can see.
  const res = await db.query('UPDATE events SET redacted_by = $2 WHERE event_nid = $1 AND redacted_by IS NULL', [eventNid, redactionNid]);
  return res.rowCount === 1;
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
