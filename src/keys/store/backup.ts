// Server-side key backups: versions and the session keys stored in them.
import type { Queryable } from '../../db/pool.js';

export interface VersionRow {
  version: number;
  algorithm: string;
  auth_data: string;
  etag: number;
}

export interface RoomKeyRow {
  room_id: string;
  session_id: string;
  first_message_index: number;
  forwarded_count: number;
  is_verified: boolean;
  session_data: string;
}

const SQL = {
  // Lock the user's versions so creating a version and writing keys to "the current version"
  // cannot interleave with a concurrent create or delete.
  lockUser: 'SELECT pg_advisory_xact_lock(1802135140, hashtext($1))',
  nextVersion: 'SELECT COALESCE(MAX(version), 0) + 1 AS v FROM e2e_room_keys_versions WHERE user_id = $1',
  insertVersion: 'INSERT INTO e2e_room_keys_versions (user_id, version, algorithm, auth_data) VALUES ($1, $2, $3, $4)',
  latest: `SELECT version, algorithm, auth_data, etag FROM e2e_room_keys_versions
    WHERE user_id = $1 AND NOT deleted ORDER BY version DESC LIMIT 1`,
  get: 'SELECT version, algorithm, auth_data, etag FROM e2e_room_keys_versions WHERE user_id = $1 AND version = $2 AND NOT deleted',
  updateAuthData: 'UPDATE e2e_room_keys_versions SET auth_data = $3 WHERE user_id = $1 AND version = $2 AND NOT deleted',
  markDeleted: 'UPDATE e2e_room_keys_versions SET deleted = TRUE WHERE user_id = $1 AND version = $2 AND NOT deleted',
  deleteAllKeysOfVersion: 'DELETE FROM e2e_room_keys WHERE user_id = $1 AND version = $2',
  bumpEtag: 'UPDATE e2e_room_keys_versions SET etag = etag + 1 WHERE user_id = $1 AND version = $2 RETURNING etag',
  count: 'SELECT count(*)::int AS n FROM e2e_room_keys WHERE user_id = $1 AND version = $2',
  getForUpdate: `SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data FROM e2e_room_keys
    JOIN unnest($3::text[], $4::text[]) AS t(r, s) ON room_id = t.r AND session_id = t.s
    WHERE user_id = $1 AND version = $2 FOR UPDATE`,
  upsert: `INSERT INTO e2e_room_keys (user_id, version, room_id, session_id, first_message_index, forwarded_count, is_verified, session_data)
    SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::boolean[], $8::text[])
    ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET
      first_message_index = EXCLUDED.first_message_index, forwarded_count = EXCLUDED.forwarded_count,
      is_verified = EXCLUDED.is_verified, session_data = EXCLUDED.session_data`,
  select: `SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data FROM e2e_room_keys
    WHERE user_id = $1 AND version = $2 AND ($3::text IS NULL OR room_id = $3) AND ($4::text IS NULL OR session_id = $4)
    ORDER BY room_id, session_id`,
  delete: `DELETE FROM e2e_room_keys
    WHERE user_id = $1 AND version = $2 AND ($3::text IS NULL OR room_id = $3) AND ($4::text IS NULL OR session_id = $4)`,
  deleteUser: 'DELETE FROM e2e_room_keys_versions WHERE user_id = $1',
} as const;

export async function lockUserBackups(tx: Queryable, userId: string): Promise<void> {
  await tx.query(SQL.lockUser, [userId]);
}

export async function createVersion(tx: Queryable, userId: string, algorithm: string, authData: string): Promise<number> {
  const v = (await tx.query<{ v: number }>(SQL.nextVersion, [userId])).rows[0]!.v;
  await tx.query(SQL.insertVersion, [userId, v, algorithm, authData]);
  return v;
}

export async function latestVersion(db: Queryable, userId: string): Promise<VersionRow | undefined> {
  return (await db.query<VersionRow>(SQL.latest, [userId])).rows[0];
}

export async function getVersion(db: Queryable, userId: string, version: number): Promise<VersionRow | undefined> {
  return (await db.query<VersionRow>(SQL.get, [userId, version])).rows[0];
}

export async function updateAuthData(db: Queryable, userId: string, version: number, authData: string): Promise<boolean> {
  return ((await db.query(SQL.updateAuthData, [userId, version, authData])).rowCount ?? 0) > 0;
}

/** Deletes a version's keys and marks it deleted (its number is never handed out again). */
export async function deleteVersion(tx: Queryable, userId: string, version: number): Promise<boolean> {
  if (((await tx.query(SQL.markDeleted, [userId, version])).rowCount ?? 0) === 0) return false;
  await tx.query(SQL.deleteAllKeysOfVersion, [userId, version]);
  return true;
}

export async function bumpEtag(tx: Queryable, userId: string, version: number): Promise<number> {
  return (await tx.query<{ etag: number }>(SQL.bumpEtag, [userId, version])).rows[0]!.etag;
}

export async function countKeys(db: Queryable, userId: string, version: number): Promise<number> {
  return (await db.query<{ n: number }>(SQL.count, [userId, version])).rows[0]!.n;
}

/** The stored copies of the given sessions, locked for the replacement decision. */
export async function getSessionsForUpdate(
  tx: Queryable,
  userId: string,
  version: number,
  ids: { roomId: string; sessionId: string }[],
): Promise<RoomKeyRow[]> {
  if (ids.length === 0) return [];
  return (await tx.query<RoomKeyRow>(SQL.getForUpdate, [userId, version, ids.map((i) => i.roomId), ids.map((i) => i.sessionId)])).rows;
}

export async function upsertSessions(tx: Queryable, userId: string, version: number, rows: RoomKeyRow[]): Promise<void> {
  if (rows.length === 0) return;
  await tx.query(SQL.upsert, [
    userId,
    version,
    rows.map((r) => r.room_id),
    rows.map((r) => r.session_id),
    rows.map((r) => r.first_message_index),
    rows.map((r) => r.forwarded_count),
    rows.map((r) => r.is_verified),
    rows.map((r) => r.session_data),
  ]);
}

export async function selectSessions(db: Queryable, userId: string, version: number, roomId: string | null, sessionId: string | null): Promise<RoomKeyRow[]> {
  return (await db.query<RoomKeyRow>(SQL.select, [userId, version, roomId, sessionId])).rows;
}

export async function deleteSessions(tx: Queryable, userId: string, version: number, roomId: string | null, sessionId: string | null): Promise<number> {
  return (await tx.query(SQL.delete, [userId, version, roomId, sessionId])).rowCount ?? 0;
}

/** Deactivation: every backup of the user. */
export async function deleteBackupsOfUser(db: Queryable, userId: string): Promise<void> {
  await db.query(SQL.deleteUser, [userId]);
}
