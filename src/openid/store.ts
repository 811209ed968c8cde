// OpenID tokens: stored as sha256 hashes with their owner and expiry.
import type { Queryable } from '../db/pool.js';

const SQL = {
  insert: 'INSERT INTO openid_tokens (token_hash, user_id, expires_ts) VALUES ($1, $2, $3)',
  find: 'SELECT user_id FROM openid_tokens WHERE token_hash = $1 AND expires_ts > $2',
  prune: 'DELETE FROM openid_tokens WHERE expires_ts <= $1',
  deleteUser: 'DELETE FROM openid_tokens WHERE user_id = $1',
} as const;

export async function insertToken(db: Queryable, hash: Buffer, userId: string, expiresTs: number): Promise<void> {
  await db.query(SQL.insert, [hash, userId, expiresTs]);
}

export async function findUser(db: Queryable, hash: Buffer, now: number): Promise<string | undefined> {
  return (await db.query<{ user_id: string }>(SQL.find, [hash, now])).rows[0]?.user_id;
}

export async function pruneExpired(db: Queryable, now: number): Promise<void> {
  await db.query(SQL.prune, [now]);
}

export async function deleteTokensOfUser(db: Queryable, userId: string): Promise<void> {
  await db.query(SQL.deleteUser, [userId]);
}
