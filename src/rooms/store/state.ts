// SQL of room state: interned (type, state_key) pairs and state snapshots.
import type { Queryable } from '../../db/pool.js';

export async function internStateKeys(db: Queryable, pairs: Array<[string, string]>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (pairs.length === 0) return out;
  const types = pairs.map((p) => p[0]);
  const keys = pairs.map((p) => p[1]);
  await db.query(
    'INSERT INTO state_keys (type, state_key) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING',
    [types, keys],
  );
  const res = await db.query<{ state_key_nid: number; type: string; state_key: string }>(
    `SELECT s.state_key_nid, s.type, s.state_key FROM state_keys s
       JOIN unnest($1::text[], $2::text[]) AS w(type, state_key) ON s.type = w.type AND s.state_key = w.state_key`,
    [types, keys],
  );
  for (const r of res.rows) out.set(`${r.type}\u0000${r.state_key}`, r.state_key_nid);
  return out;
}

export async function stateKeysByNid(db: Queryable, nids: number[]): Promise<Array<{ state_key_nid: number; type: string; state_key: string }>> {
  if (nids.length === 0) return [];
  return (
    await db.query<{ state_key_nid: number; type: string; state_key: string }>(
      'SELECT state_key_nid, type, state_key FROM state_keys WHERE state_key_nid = ANY($1::int[])',
      [nids],
    )
  ).rows;
}

export interface SnapshotRow {
  snapshot_id: number;
  parent_id: number | null;
  depth: number;
  state_size: number;
  state_hash: Buffer;
  key_nids: number[];
  event_nids: number[];
}

/** `1,2,3` (array_to_string) to numbers; '' for an empty array. */
function parseList(text: string): number[] {
  return text === '' ? [] : text.split(',').map(Number);
}

/**
 * A snapshot and its ancestors, nearest first: one round trip for the whole chain. The arrays
 * travel as comma-joined text: split natively, that is several times faster than node-pg's
 * generic array parser on a full 5,000-entry snapshot.
 */
export async function getSnapshotChain(db: Queryable, snapshotId: number): Promise<SnapshotRow[]> {
  const res = await db.query<Omit<SnapshotRow, 'key_nids' | 'event_nids'> & { key_text: string; event_text: string }>(
    `WITH RECURSIVE chain AS (
       SELECT snapshot_id, parent_id, depth FROM state_snapshots WHERE snapshot_id = $1
       UNION ALL
       SELECT s.snapshot_id, s.parent_id, s.depth FROM state_snapshots s JOIN chain c ON s.snapshot_id = c.parent_id
     )
     SELECT s.snapshot_id, s.parent_id, s.depth, s.state_size, s.state_hash,
            array_to_string(s.key_nids, ',') AS key_text, array_to_string(s.event_nids, ',') AS event_text
       FROM chain c JOIN state_snapshots s USING (snapshot_id)
      ORDER BY s.depth DESC`,
    [snapshotId],
  );
  return res.rows.map((r) => ({
    snapshot_id: r.snapshot_id,
    parent_id: r.parent_id,
    depth: r.depth,
    state_size: r.state_size,
    state_hash: r.state_hash,
    key_nids: parseList(r.key_text),
    event_nids: parseList(r.event_text),
  }));
}

export async function findSnapshotsByHash(db: Queryable, roomNid: number, hash: Buffer): Promise<number[]> {
  const res = await db.query<{ snapshot_id: number }>(
    'SELECT snapshot_id FROM state_snapshots WHERE room_nid = $1 AND state_hash = $2',
    [roomNid, hash],
  );
  return res.rows.map((r) => r.snapshot_id);
}

export async function insertSnapshot(
  db: Queryable,
  s: { roomNid: number; parentId: number | null; depth: number; stateSize: number; hash: Buffer; keyNids: number[]; eventNids: number[] },
): Promise<number> {
  const res = await db.query<{ snapshot_id: number }>(
    `INSERT INTO state_snapshots (room_nid, parent_id, depth, state_size, state_hash, key_nids, event_nids)
     VALUES ($1, $2, $3, $4, $5, $6::int[], $7::bigint[]) RETURNING snapshot_id`,
    [s.roomNid, s.parentId, s.depth, s.stateSize, s.hash, s.keyNids, s.eventNids],
  );
  return res.rows[0]!.snapshot_id;
}
