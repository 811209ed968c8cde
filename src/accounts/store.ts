// SQL of the accounts domain: users, devices, tokens, registration tokens and nonces.
import type { Queryable } from '../db/pool.js';

export interface UserRow {
  user_id: string;
  password_hash: string | null;
  is_admin: boolean;
  is_guest: boolean;
  deactivated: boolean;
  displayname: string | null;
  avatar_url: string | null;
  created_ts: number;
}

export interface TokenRow {
  id: number;
  user_id: string;
  device_id: string;
  expires_ts: number | null;
  refresh_token_id: number | null;
  used: boolean;
  is_guest: boolean;
  is_admin: boolean;
  deactivated: boolean;
}

export interface DeviceRow {
  device_id: string;
  display_name: string | null;
  last_seen_ts: number | null;
  last_seen_ip: string | null;
}

export async function nextGeneratedLocalpart(db: Queryable): Promise<number> {
  return (await db.query<{ n: number }>("SELECT nextval('user_id_seq') AS n")).rows[0]!.n;
}

/** Inserts a user; false when the id is taken (ids are never reused, even after deactivation). */
export async function insertUser(
  db: Queryable,
  u: { userId: string; passwordHash: string | null; isAdmin: boolean; isGuest: boolean; displayname: string | null },
): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO users (user_id, password_hash, is_admin, is_guest, displayname, created_ts)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id) DO NOTHING`,
    [u.userId, u.passwordHash, u.isAdmin, u.isGuest, u.displayname, Date.now()],
  );
  return r.rowCount === 1;
}

export async function getUser(db: Queryable, userId: string): Promise<UserRow | undefined> {
  return (await db.query<UserRow>('SELECT * FROM users WHERE user_id = $1', [userId])).rows[0];
}

export async function userExists(db: Queryable, userId: string): Promise<boolean> {
  return ((await db.query('SELECT 1 FROM users WHERE user_id = $1', [userId])).rowCount ?? 0) > 0;
}

export async function setPasswordHash(db: Queryable, userId: string, hash: string | null): Promise<void> {
  await db.query('UPDATE users SET password_hash = $2 WHERE user_id = $1', [userId, hash]);
}

export async function setProfileField(
  db: Queryable,
  userId: string,
  field: 'displayname' | 'avatar_url',
  value: string | null,
): Promise<void> {
  // The column name comes from the closed union above, never from input.
  await db.query(`UPDATE users SET ${field} = $2 WHERE user_id = $1`, [userId, value]);
}

export async function markDeactivated(db: Queryable, userId: string): Promise<void> {
  await db.query(
    'UPDATE users SET deactivated = TRUE, password_hash = NULL, displayname = NULL, avatar_url = NULL WHERE user_id = $1',
    [userId],
  );
}

/** Creates a device unless it exists; the spec: initial_device_display_name is then ignored. */
export async function upsertDevice(db: Queryable, userId: string, deviceId: string, displayName: string | null): Promise<void> {
  await db.query(
    `INSERT INTO devices (user_id, device_id, display_name, created_ts) VALUES ($1, $2, $3, $4)
     ON CONFLICT (user_id, device_id) DO NOTHING`,
    [userId, deviceId, displayName, Date.now()],
  );
}

export async function listDevices(db: Queryable, userId: string): Promise<DeviceRow[]> {
  return (
    await db.query<DeviceRow>(
      'SELECT device_id, display_name, last_seen_ts, last_seen_ip FROM devices WHERE user_id = $1 ORDER BY created_ts, device_id',
      [userId],
    )
  ).rows;
}

export async function getDevice(db: Queryable, userId: string, deviceId: string): Promise<DeviceRow | undefined> {
  return (
    await db.query<DeviceRow>(
      'SELECT device_id, display_name, last_seen_ts, last_seen_ip FROM devices WHERE user_id = $1 AND device_id = $2',
      [userId, deviceId],
    )
  ).rows[0];
}

export async function setDeviceDisplayName(db: Queryable, userId: string, deviceId: string, name: string | null): Promise<boolean> {
  const r = await db.query('UPDATE devices SET display_name = $3 WHERE user_id = $1 AND device_id = $2', [userId, deviceId, name]);
  return r.rowCount === 1;
}

export async function touchDevice(db: Queryable, userId: string, deviceId: string, ip: string | null, userAgent: string | null): Promise<void> {
  await db.query(
    'UPDATE devices SET last_seen_ts = $3, last_seen_ip = $4, last_seen_user_agent = $5 WHERE user_id = $1 AND device_id = $2',
    [userId, deviceId, Date.now(), ip, userAgent],
  );
}

/** Deletes devices; their tokens go with them (ON DELETE CASCADE). Returns the ids deleted. */
export async function deleteDevices(db: Queryable, userId: string, deviceIds: string[]): Promise<string[]> {
  const r = await db.query<{ device_id: string }>(
    'DELETE FROM devices WHERE user_id = $1 AND device_id = ANY($2::text[]) RETURNING device_id',
    [userId, deviceIds],
  );
  return r.rows.map((row) => row.device_id);
}

export async function deleteDevicesExcept(db: Queryable, userId: string, keepDeviceId: string | null): Promise<string[]> {
  const r = await db.query<{ device_id: string }>(
    'DELETE FROM devices WHERE user_id = $1 AND device_id IS DISTINCT FROM $2 RETURNING device_id',
    [userId, keepDeviceId],
  );
  return r.rows.map((row) => row.device_id);
}

export async function insertAccessToken(
  db: Queryable,
  t: { hash: Buffer; userId: string; deviceId: string; expiresTs: number | null; refreshTokenId: number | null },
): Promise<number> {
  const r = await db.query<{ id: number }>(
    `INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts, expires_ts, refresh_token_id)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
    [t.hash, t.userId, t.deviceId, Date.now(), t.expiresTs, t.refreshTokenId],
  );
  return r.rows[0]!.id;
}

export async function findAccessToken(db: Queryable, hash: Buffer): Promise<TokenRow | undefined> {
  return (
    await db.query<TokenRow>(
      `SELECT t.id, t.user_id, t.device_id, t.expires_ts, t.refresh_token_id, t.used, u.is_guest, u.is_admin, u.deactivated
       FROM access_tokens t JOIN users u USING (user_id) WHERE t.token_hash = $1`,
      [hash],
    )
  ).rows[0];
}

/**
 * Marks a token used. The first use of an access token issued by a refresh retires the
 * refresh token it replaced (and that one's access tokens), as in Synapse.
 */
export async function markTokenUsed(db: Queryable, tokenId: number, refreshTokenId: number | null): Promise<void> {
  await db.query('UPDATE access_tokens SET used = TRUE WHERE id = $1', [tokenId]);
  if (refreshTokenId !== null) await db.query('DELETE FROM refresh_tokens WHERE next_token_id = $1', [refreshTokenId]);
}

export async function deleteAccessToken(db: Queryable, tokenId: number): Promise<void> {
  await db.query('DELETE FROM access_tokens WHERE id = $1', [tokenId]);
}

export async function deleteAllTokens(db: Queryable, userId: string): Promise<void> {
  await db.query('DELETE FROM access_tokens WHERE user_id = $1', [userId]);
  await db.query('DELETE FROM refresh_tokens WHERE user_id = $1', [userId]);
}

export async function insertRefreshToken(db: Queryable, t: { hash: Buffer; userId: string; deviceId: string }): Promise<number> {
  const r = await db.query<{ id: number }>(
    'INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_ts) VALUES ($1, $2, $3, $4) RETURNING id',
    [t.hash, t.userId, t.deviceId, Date.now()],
  );
  return r.rows[0]!.id;
}

export interface RefreshTokenRow {
  id: number;
  user_id: string;
  device_id: string;
  next_token_id: number | null;
  /** Whether an access token of the replacement has been used (then this one is spent). */
  next_used: boolean | null;
}

export async function findRefreshTokenForUpdate(db: Queryable, hash: Buffer): Promise<RefreshTokenRow | undefined> {
  return (
    await db.query<RefreshTokenRow>(
      `SELECT r.id, r.user_id, r.device_id, r.next_token_id,
              (SELECT bool_or(a.used) FROM access_tokens a WHERE a.refresh_token_id = r.next_token_id) AS next_used
       FROM refresh_tokens r WHERE r.token_hash = $1 FOR UPDATE`,
      [hash],
    )
  ).rows[0];
}

export async function setNextRefreshToken(db: Queryable, id: number, nextId: number): Promise<void> {
  await db.query('UPDATE refresh_tokens SET next_token_id = $2 WHERE id = $1', [id, nextId]);
}

export interface RegistrationTokenRow {
  token: string;
  uses_allowed: number | null;
  pending: number;
  completed: number;
  expiry_time: number | null;
}

export async function getRegistrationToken(db: Queryable, token: string, forUpdate = false): Promise<RegistrationTokenRow | undefined> {
  return (
    await db.query<RegistrationTokenRow>(
      `SELECT * FROM registration_tokens WHERE token = $1${forUpdate ? ' FOR UPDATE' : ''}`,
      [token],
    )
  ).rows[0];
}

export async function insertRegistrationToken(
  db: Queryable,
  t: { token: string; usesAllowed: number | null; expiryTime: number | null },
): Promise<boolean> {
  const r = await db.query(
    'INSERT INTO registration_tokens (token, uses_allowed, expiry_time) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
    [t.token, t.usesAllowed, t.expiryTime],
  );
  return r.rowCount === 1;
}

export async function adjustRegistrationTokenUse(db: Queryable, token: string, pendingDelta: number, completedDelta: number): Promise<void> {
  await db.query('UPDATE registration_tokens SET pending = pending + $2, completed = completed + $3 WHERE token = $1', [
    token,
    pendingDelta,
    completedDelta,
  ]);
}

export async function insertNonce(db: Queryable, nonce: string): Promise<void> {
  await db.query('INSERT INTO registration_nonces (nonce, created_ts) VALUES ($1, $2)', [nonce, Date.now()]);
}

/** Consumes a nonce younger than maxAgeMs; false if unknown, used or expired. */
export async function consumeNonce(db: Queryable, nonce: string, maxAgeMs: number): Promise<boolean> {
  await db.query('DELETE FROM registration_nonces WHERE created_ts < $1', [Date.now() - maxAgeMs]);
  const r = await db.query('DELETE FROM registration_nonces WHERE nonce = $1', [nonce]);
  return r.rowCount === 1;
}
