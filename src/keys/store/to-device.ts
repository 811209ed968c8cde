// The to-device queue: messages waiting per recipient device, and the senders' transaction ids.
import type { Queryable } from '../../db/pool.js';

export interface QueuedMessage {
  userId: string;
  deviceId: string;
  content: string;
}

export interface InboxRow {
  stream_id: number;
  sender: string;
  event_type: string;
  content: string;
}

const SQL = {
  claimTxn: `INSERT INTO to_device_txns (user_id, device_id, event_type, txn_id, created_ts) VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT DO NOTHING`,
  enqueue: `INSERT INTO to_device_inbox (user_id, device_id, stream_id, sender, event_type, content)
    SELECT u, d, $1, $2, $3, c FROM unnest($4::text[], $5::text[], $6::text[]) AS t(u, d, c)`,
  since: `SELECT stream_id, sender, event_type, content FROM to_device_inbox
    WHERE user_id = $1 AND device_id = $2 AND stream_id > $3 AND stream_id <= $4
    ORDER BY stream_id LIMIT $5`,
  deleteUpTo: 'DELETE FROM to_device_inbox WHERE user_id = $1 AND device_id = $2 AND stream_id <= $3',
  deleteDevices: 'DELETE FROM to_device_inbox WHERE user_id = $1 AND device_id = ANY($2::text[])',
  deleteTxnsOfDevices: 'DELETE FROM to_device_txns WHERE user_id = $1 AND device_id = ANY($2::text[])',
  pruneTxns: 'DELETE FROM to_device_txns WHERE created_ts < $1',
  devicesOf: 'SELECT user_id, device_id FROM devices WHERE user_id = ANY($1::text[])',
  existingDevices: `SELECT user_id, device_id FROM devices d
    JOIN unnest($1::text[], $2::text[]) AS t(u, dev) ON d.user_id = t.u AND d.device_id = t.dev`,
} as const;

/** Records a transaction id; false when the sending device already used it (a retry). */
export async function claimTxn(tx: Queryable, userId: string, deviceId: string, eventType: string, txnId: string): Promise<boolean> {
  const r = await tx.query(SQL.claimTxn, [userId, deviceId, eventType, txnId, Date.now()]);
  return r.rowCount === 1;
}

export async function enqueue(tx: Queryable, position: number, sender: string, eventType: string, messages: QueuedMessage[]): Promise<void> {
  if (messages.length === 0) return;
  await tx.query(SQL.enqueue, [
    position,
    sender,
    eventType,
    messages.map((m) => m.userId),
    messages.map((m) => m.deviceId),
    messages.map((m) => m.content),
  ]);
}

export async function messagesSince(db: Queryable, userId: string, deviceId: string, from: number, to: number, limit: number): Promise<InboxRow[]> {
  return (await db.query<InboxRow>(SQL.since, [userId, deviceId, from, to, limit])).rows;
}

export async function deleteUpTo(db: Queryable, userId: string, deviceId: string, upTo: number): Promise<number> {
  return (await db.query(SQL.deleteUpTo, [userId, deviceId, upTo])).rowCount ?? 0;
}

export async function deleteDeviceQueues(db: Queryable, userId: string, deviceIds: string[]): Promise<void> {
  await db.query(SQL.deleteDevices, [userId, deviceIds]);
  await db.query(SQL.deleteTxnsOfDevices, [userId, deviceIds]);
}

export async function pruneTxns(db: Queryable, olderThan: number): Promise<void> {
  await db.query(SQL.pruneTxns, [olderThan]);
}

/** Every device of the users (for `*`). */
export async function devicesOf(db: Queryable, userIds: string[]): Promise<{ user_id: string; device_id: string }[]> {
  if (userIds.length === 0) return [];
  return (await db.query(SQL.devicesOf, [userIds])).rows;
}

/** The listed devices that exist: messages to unknown devices are dropped, as Synapse does. */
export async function existingDevices(db: Queryable, pairs: { userId: string; deviceId: string }[]): Promise<{ user_id: string; device_id: string }[]> {
  if (pairs.length === 0) return [];
  return (await db.query(SQL.existingDevices, [pairs.map((p) => p.userId), pairs.map((p) => p.deviceId)])).rows;
}
