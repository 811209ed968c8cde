// The one statement a woken long-poll sends (src/sync/woken.ts): in one round trip and one
// snapshot, every stream's position, the new events of the user's joined rooms (whole rows, with
// the transaction id of the syncing device), whether the user's memberships moved, the device's
// key figures and the unread counts of the rooms with new events.
import type { NamedQuery, Queryable } from '../../db/pool.js';
import { KEY_FIGURES_FOR_SYNC_SQL } from '../../keys/store/device-keys.js';
import { countsCtes, NOT_FROM_IGNORED, type CountedRow } from '../../push/store.js';
import { EVENT_COLUMNS, type EventRow } from '../../rooms/store/events.js';

/**
 * Events read past the token, in all rooms, at most: a long-poll woken after a burst elsewhere
 * reads everything the usual way instead.
 */
export const WOKEN_SCAN_LIMIT = 1000;

export interface WokenRow {
  positions: Record<string, number>;
  scanned: number;
  membership_moved: boolean;
  counts: CountedRow[] | null;
  key_counts: Record<string, number>;
  key_fallback: string[];
}

export interface WokenResult extends WokenRow {
  /** The new events of the joined rooms, oldest first, with the syncing device's txn ids. */
  events: (EventRow & { txn_id: string | null })[];
}

function wokenSql(positionsSql: string, ignoring: boolean): string {
  const counts = countsCtes({
    ignored: ignoring ? NOT_FROM_IGNORED : 'true',
    rooms: 'ARRAY(SELECT room_id FROM tl_rooms)',
    asked: `(SELECT t.room_id, k.known_receipts, k.known_upto FROM tl_rooms t
             LEFT JOIN unnest($5::text[], $6::text[], $7::bigint[]) AS k(room_id, known_receipts, known_upto) USING (room_id)) AS q`,
    upTo: '(SELECT "events" FROM pos)',
  });
  // scan: how many events came in since, in all rooms (up to one past the limit), and the last of
  // them, which bounds the range tl reads.
  return `WITH pos AS MATERIALIZED (${positionsSql}),
  scan AS MATERIALIZED (
    SELECT count(*)::int AS n, max(stream_ordering) AS last FROM (
      SELECT stream_ordering FROM events
      WHERE stream_ordering > $3 AND stream_ordering <= (SELECT "events" FROM pos)
      ORDER BY stream_ordering LIMIT ${WOKEN_SCAN_LIMIT + 1}) s
  ), tl AS MATERIALIZED (
    SELECT ${EVENT_COLUMNS.split(', ').map((c) => `e.${c}`).join(', ')},
           CASE WHEN e.sender = $1 THEN
             (SELECT x.txn_id FROM event_txn_ids x WHERE x.event_nid = e.event_nid AND x.user_id = $1 AND x.device_id = $2 LIMIT 1) END AS txn_id
    FROM events e
    WHERE e.stream_ordering > $3 AND e.stream_ordering <= (SELECT last FROM scan)
      AND e.room_nid = ANY($4::bigint[]) AND e.rejected_reason IS NULL
  ), tl_rooms AS (
    SELECT DISTINCT r.room_id FROM rooms r WHERE r.room_nid IN (SELECT room_nid FROM tl)
  ), ${counts},
  keys AS (${KEY_FIGURES_FOR_SYNC_SQL})
  SELECT m.*, tl.* FROM (
    SELECT (SELECT row_to_json(pos) FROM pos) AS positions,
           (SELECT n FROM scan) AS scanned,
           EXISTS (SELECT 1 FROM room_memberships WHERE user_id = $1 AND stream_ordering > $3) AS membership_moved,
           (SELECT json_agg(c) FROM counted c) AS counts,
           k.counts AS key_counts, k.fallback AS key_fallback
    FROM keys k
  ) m LEFT JOIN tl ON true
  ORDER BY tl.stream_ordering`;
}

/** The statements for one set of positions (the sync service's streams), prepared per connection. */
export function wokenStatements(positionsSql: string): { plain: NamedQuery; ignoring: NamedQuery } {
  return {
    plain: { name: 'sync_woken', text: wokenSql(positionsSql, false) },
    ignoring: { name: 'sync_woken_ignoring', text: wokenSql(positionsSql, true) },
  };
}

export async function readWoken(
  db: Queryable,
  statement: NamedQuery,
  /** `rooms`, `knownReceipts`, `knownUpTo`: what UnreadCounts remembers, for the rooms it has. */
  p: { userId: string; deviceId: string; from: number; roomNids: number[]; rooms: string[]; knownReceipts: (string | null)[]; knownUpTo: (number | null)[] },
): Promise<WokenResult> {
  const r = await db.query(statement, [p.userId, p.deviceId, p.from, p.roomNids, p.rooms, p.knownReceipts, p.knownUpTo]);
  const first = r.rows[0] as WokenRow;
  return {
    positions: first.positions,
    scanned: first.scanned,
    membership_moved: first.membership_moved,
    counts: first.counts,
    key_counts: first.key_counts,
    key_fallback: first.key_fallback,
    events: r.rows[0].event_nid === null ? [] : (r.rows as WokenResult['events']),
  };
}
