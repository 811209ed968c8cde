// Device identity keys, one-time keys and fallback keys.
import type { Queryable } from '../../db/pool.js';

export interface StoredDeviceKeys {
  user_id: string;
  device_id: string;
  key_json: string;
  display_name: string | null;
}

export interface ClaimRequest {
  userId: string;
  deviceId: string;
  algorithm: string;
}

export interface ClaimedKey extends ClaimRequest {
  keyId: string;
  keyJson: string;
}

const SQL = {
  getDeviceKeys: 'SELECT key_json FROM e2e_device_keys WHERE user_id = $1 AND device_id = $2',
  upsertDeviceKeys: `INSERT INTO e2e_device_keys (user_id, device_id, key_json, ts_added) VALUES ($1, $2, $3, $4)
    ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = EXCLUDED.key_json, ts_added = EXCLUDED.ts_added`,
  // Joined with devices: keys of a device that no longer exists are never served, and the
  // display name goes into `unsigned`.
  queryAllDevices: `SELECT k.user_id, k.device_id, k.key_json, d.display_name
    FROM e2e_device_keys k JOIN devices d USING (user_id, device_id)
    WHERE k.user_id = ANY($1::text[]) ORDER BY k.user_id, k.device_id`,
  queryDevices: `SELECT k.user_id, k.device_id, k.key_json, d.display_name
    FROM unnest($1::text[], $2::text[]) AS q(user_id, device_id)
    JOIN e2e_device_keys k USING (user_id, device_id)
    JOIN devices d USING (user_id, device_id)`,
  deviceIdsOf: 'SELECT device_id FROM devices WHERE user_id = $1',
  getOneTimeKeys: `SELECT algorithm, key_id, key_json FROM e2e_one_time_keys
    WHERE user_id = $1 AND device_id = $2 AND (algorithm, key_id) IN (SELECT * FROM unnest($3::text[], $4::text[]))`,
  insertOneTimeKeys: `INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id, key_json, ts_added)
    SELECT $1, $2, a, k, j, $6 FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS t(a, k, j, n) ORDER BY n
    ON CONFLICT (user_id, device_id, algorithm, key_id) DO NOTHING`,
  countOneTimeKeys: `SELECT algorithm, count(*)::int AS n FROM e2e_one_time_keys
    WHERE user_id = $1 AND device_id = $2 GROUP BY algorithm`,
  // Both of sync's per-device key figures in one round trip.
  keyFiguresForSync: `SELECT
      (SELECT COALESCE(json_object_agg(algorithm, n), '{}') FROM
         (SELECT algorithm, count(*)::int AS n FROM e2e_one_time_keys WHERE user_id = $1 AND device_id = $2 GROUP BY algorithm) c) AS counts,
      (SELECT COALESCE(json_agg(algorithm ORDER BY algorithm), '[]') FROM e2e_fallback_keys
         WHERE user_id = $1 AND device_id = $2 AND NOT used) AS fallback`,
  // One key per wanted (user, device, algorithm), oldest first. FOR UPDATE SKIP LOCKED: a
  // concurrent claim that locked a row first gets it; this one moves on to the next row, and the
  // DELETE ... RETURNING makes the hand-out final. A key can never be returned twice.
  claimOneTimeKeys: `WITH wanted AS (
      SELECT DISTINCT user_id, device_id, algorithm FROM unnest($1::text[], $2::text[], $3::text[]) AS w(user_id, device_id, algorithm)
    ), picked AS (
      SELECT k.id FROM wanted w
      JOIN devices d ON d.user_id = w.user_id AND d.device_id = w.device_id
      CROSS JOIN LATERAL (
        SELECT id FROM e2e_one_time_keys o
        WHERE o.user_id = w.user_id AND o.device_id = w.device_id AND o.algorithm = w.algorithm
        ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
      ) k
    )
    DELETE FROM e2e_one_time_keys o USING picked p WHERE o.id = p.id
    RETURNING o.user_id, o.device_id, o.algorithm, o.key_id, o.key_json`,
  getFallbackKey: 'SELECT key_id, key_json, used FROM e2e_fallback_keys WHERE user_id = $1 AND device_id = $2 AND algorithm = $3',
  setFallbackKey: `INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used) VALUES ($1, $2, $3, $4, $5, FALSE)
    ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET key_id = EXCLUDED.key_id, key_json = EXCLUDED.key_json, used = FALSE`,
  claimFallbackKeys: `UPDATE e2e_fallback_keys f SET used = TRUE
    FROM unnest($1::text[], $2::text[], $3::text[]) AS w(user_id, device_id, algorithm), devices d
    WHERE f.user_id = w.user_id AND f.device_id = w.device_id AND f.algorithm = w.algorithm
      AND d.user_id = w.user_id AND d.device_id = w.device_id
    RETURNING f.user_id, f.device_id, f.algorithm, f.key_id, f.key_json`,
  deleteDeviceKeys: 'DELETE FROM e2e_device_keys WHERE user_id = $1 AND device_id = ANY($2::text[])',
  deleteOneTimeKeys: 'DELETE FROM e2e_one_time_keys WHERE user_id = $1 AND device_id = ANY($2::text[])',
  deleteFallbackKeys: 'DELETE FROM e2e_fallback_keys WHERE user_id = $1 AND device_id = ANY($2::text[])',
} as const;

export async function getDeviceKeys(db: Queryable, userId: string, deviceId: string): Promise<string | undefined> {
  return (await db.query<{ key_json: string }>(SQL.getDeviceKeys, [userId, deviceId])).rows[0]?.key_json;
}

export async function setDeviceKeys(db: Queryable, userId: string, deviceId: string, keyJson: string): Promise<void> {
  await db.query(SQL.upsertDeviceKeys, [userId, deviceId, keyJson, Date.now()]);
}

/** Device keys of all devices of `userIds`, plus those of the listed (user, device) pairs. */
export async function queryDeviceKeys(
  db: Queryable,
  allOf: string[],
  pairs: { userId: string; deviceId: string }[],
): Promise<StoredDeviceKeys[]> {
  const out: StoredDeviceKeys[] = [];
  if (allOf.length > 0) out.push(...(await db.query<StoredDeviceKeys>(SQL.queryAllDevices, [allOf])).rows);
  if (pairs.length > 0) {
    out.push(...(await db.query<StoredDeviceKeys>(SQL.queryDevices, [pairs.map((p) => p.userId), pairs.map((p) => p.deviceId)])).rows);
  }
  return out;
}

export async function deviceIdsOf(db: Queryable, userId: string): Promise<string[]> {
  return (await db.query<{ device_id: string }>(SQL.deviceIdsOf, [userId])).rows.map((r) => r.device_id);
}

/** Stored one-time keys among the given (algorithm, key id) pairs, keyed `algorithm:keyId`. */
export async function getOneTimeKeys(
  db: Queryable,
  userId: string,
  deviceId: string,
  ids: { algorithm: string; keyId: string }[],
): Promise<Map<string, string>> {
  const r = await db.query<{ algorithm: string; key_id: string; key_json: string }>(SQL.getOneTimeKeys, [
    userId,
    deviceId,
    ids.map((i) => i.algorithm),
    ids.map((i) => i.keyId),
  ]);
  return new Map(r.rows.map((row) => [`${row.algorithm}:${row.key_id}`, row.key_json]));
}

export async function insertOneTimeKeys(
  db: Queryable,
  userId: string,
  deviceId: string,
  keys: { algorithm: string; keyId: string; keyJson: string }[],
): Promise<void> {
  if (keys.length === 0) return;
  await db.query(SQL.insertOneTimeKeys, [
    userId,
    deviceId,
    keys.map((k) => k.algorithm),
    keys.map((k) => k.keyId),
    keys.map((k) => k.keyJson),
    Date.now(),
  ]);
}

/** What keyFiguresForSync reads, for statements that read it along with more ($1 user, $2 device). */
export const KEY_FIGURES_FOR_SYNC_SQL = SQL.keyFiguresForSync;

/** One-time key counts by algorithm and unused fallback key types, in one query (sync). */
export async function keyFiguresForSync(db: Queryable, userId: string, deviceId: string): Promise<{ counts: Record<string, number>; fallback: string[] }> {
  const r = await db.query<{ counts: Record<string, number>; fallback: string[] }>({ name: 'sync_key_figures', text: SQL.keyFiguresForSync }, [userId, deviceId]);
  return r.rows[0]!;
}

export async function countOneTimeKeys(db: Queryable, userId: string, deviceId: string): Promise<Record<string, number>> {
  const r = await db.query<{ algorithm: string; n: number }>(SQL.countOneTimeKeys, [userId, deviceId]);
  return Object.fromEntries(r.rows.map((row) => [row.algorithm, row.n]));
}

function toClaimed(row: { user_id: string; device_id: string; algorithm: string; key_id: string; key_json: string }): ClaimedKey {
  return { userId: row.user_id, deviceId: row.device_id, algorithm: row.algorithm, keyId: row.key_id, keyJson: row.key_json };
}

/** Takes (and deletes) one one-time key per request where one is left. Run outside a long transaction. */
export async function claimOneTimeKeys(db: Queryable, wanted: ClaimRequest[]): Promise<ClaimedKey[]> {
  if (wanted.length === 0) return [];
  const r = await db.query(SQL.claimOneTimeKeys, [wanted.map((w) => w.userId), wanted.map((w) => w.deviceId), wanted.map((w) => w.algorithm)]);
  return r.rows.map(toClaimed);
}

/** Hands out the fallback keys of the requests (marking them used; they stay until replaced). */
export async function claimFallbackKeys(db: Queryable, wanted: ClaimRequest[]): Promise<ClaimedKey[]> {
  if (wanted.length === 0) return [];
  const r = await db.query(SQL.claimFallbackKeys, [wanted.map((w) => w.userId), wanted.map((w) => w.deviceId), wanted.map((w) => w.algorithm)]);
  return r.rows.map(toClaimed);
}

export async function getFallbackKey(
  db: Queryable,
  userId: string,
  deviceId: string,
  algorithm: string,
): Promise<{ key_id: string; key_json: string; used: boolean } | undefined> {
  return (await db.query(SQL.getFallbackKey, [userId, deviceId, algorithm])).rows[0];
}

/** Stores a new fallback key for the algorithm, replacing the old one, as not yet used. */
export async function setFallbackKey(db: Queryable, userId: string, deviceId: string, algorithm: string, keyId: string, keyJson: string): Promise<void> {
  await db.query(SQL.setFallbackKey, [userId, deviceId, algorithm, keyId, keyJson]);
}

/** Removes every key of the devices (device keys, one-time and fallback keys). */
export async function deleteKeysOfDevices(db: Queryable, userId: string, deviceIds: string[]): Promise<void> {
  await db.query(SQL.deleteDeviceKeys, [userId, deviceIds]);
  await db.query(SQL.deleteOneTimeKeys, [userId, deviceIds]);
  await db.query(SQL.deleteFallbackKeys, [userId, deviceIds]);
}
