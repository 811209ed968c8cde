// SQL of rooms, aliases and client transaction ids.
import type { Queryable } from '../../db/pool.js';

export interface RoomRow {
  room_nid: number;
  room_id: string;
  version: string;
  creator: string;
  is_public: boolean;
  current_snapshot: number | null;
}

const SELECT_ROOM = 'SELECT room_nid, room_id, version, creator, is_public, current_snapshot FROM rooms';

export async function insertRoom(
  db: Queryable,
  r: { roomId: string; version: string; creator: string; isPublic: boolean },
): Promise<number> {
  const res = await db.query<{ room_nid: number }>(
    'INSERT INTO rooms (room_id, version, creator, is_public, created_ts) VALUES ($1, $2, $3, $4, $5) RETURNING room_nid',
    [r.roomId, r.version, r.creator, r.isPublic, Date.now()],
  );
  return res.rows[0]!.room_nid;
}

export async function getRoom(db: Queryable, roomId: string): Promise<RoomRow | undefined> {
  return (await db.query<RoomRow>(`${SELECT_ROOM} WHERE room_id = $1`, [roomId])).rows[0];
}

export async function getRoomByNid(db: Queryable, roomNid: number): Promise<RoomRow | undefined> {
  return (await db.query<RoomRow>(`${SELECT_ROOM} WHERE room_nid = $1`, [roomNid])).rows[0];
}

export async function setCurrentSnapshot(db: Queryable, roomNid: number, snapshotId: number): Promise<void> {
  await db.query('UPDATE rooms SET current_snapshot = $2 WHERE room_nid = $1', [roomNid, snapshotId]);
}

export async function setPublic(db: Queryable, roomNid: number, isPublic: boolean): Promise<void> {
  await db.query('UPDATE rooms SET is_public = $2 WHERE room_nid = $1', [roomNid, isPublic]);
}

// ---- aliases -----------------------------------------------------------------------------

/** False when the alias is taken. */
export async function insertAlias(db: Queryable, alias: string, roomNid: number, creator: string): Promise<boolean> {
  const res = await db.query(
    'INSERT INTO room_aliases (room_alias, room_nid, creator, created_ts) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
    [alias, roomNid, creator, Date.now()],
  );
  return res.rowCount === 1;
}

export async function resolveAlias(db: Queryable, alias: string): Promise<string | undefined> {
  const res = await db.query<{ room_id: string }>(
    'SELECT r.room_id FROM room_aliases a JOIN rooms r USING (room_nid) WHERE a.room_alias = $1',
    [alias],
  );
  return res.rows[0]?.room_id;
}

export async function aliasesOfRoom(db: Queryable, roomNid: number): Promise<string[]> {
  const res = await db.query<{ room_alias: string }>('SELECT room_alias FROM room_aliases WHERE room_nid = $1 ORDER BY room_alias', [roomNid]);
  return res.rows.map((r) => r.room_alias);
}

// ---- transaction ids ---------------------------------------------------------------------

export interface TxnKey {
  userId: string;
  deviceId: string;
  scope: string;
  txnId: string;
}

/**
 * Forgets client transaction ids recorded before `before` (at most `limit` of them); returns how
 * many went. A retry that late gets a new event, as with Synapse (which keeps them 24 hours).
 */
export async function deleteTxnIdsBefore(db: Queryable, before: number, limit: number): Promise<number> {
  const res = await db.query(
    `DELETE FROM event_txn_ids WHERE ctid = ANY(ARRAY(SELECT ctid FROM event_txn_ids WHERE created_ts < $1 LIMIT $2))`,
    [before, limit],
  );
  return res.rowCount ?? 0;
}

export async function findTxn(db: Queryable, k: TxnKey): Promise<string | undefined> {
  const res = await db.query<{ event_id: string }>(
    `SELECT n.event_id FROM event_txn_ids t JOIN event_nids n USING (event_nid)
      WHERE t.user_id = $1 AND t.device_id = $2 AND t.scope = $3 AND t.txn_id = $4`,
    [k.userId, k.deviceId, k.scope, k.txnId],
  );
  return res.rows[0]?.event_id;
}

export async function insertTxn(db: Queryable, k: TxnKey, eventNid: number): Promise<void> {
  await db.query(
    'INSERT INTO event_txn_ids (user_id, device_id, scope, txn_id, event_nid, created_ts) VALUES ($1, $2, $3, $4, $5, $6)',
    [k.userId, k.deviceId, k.scope, k.txnId, eventNid, Date.now()],
  );
}

/** The txn ids a device used for some events (for unsigned.transaction_id). */
export async function txnIdsForEvents(db: Queryable, userId: string, deviceId: string, eventNids: number[]): Promise<Map<number, string>> {
  if (eventNids.length === 0) return new Map();
  const res = await db.query<{ event_nid: number; txn_id: string }>(
    'SELECT event_nid, txn_id FROM event_txn_ids WHERE event_nid = ANY($1::bigint[]) AND user_id = $2 AND device_id = $3',
    [eventNids, userId, deviceId],
  );
  return new Map(res.rows.map((r) => [r.event_nid, r.txn_id]));
}
