// Cross-signing keys (master, self-signing, user-signing) and the signatures users upload.
import type { Queryable } from '../../db/pool.js';

export type CrossSigningKeyType = 'master' | 'self_signing' | 'user_signing';

export interface StoredCrossSigningKey {
  user_id: string;
  key_type: CrossSigningKeyType;
  key_id: string;
  key_json: string;
}

export interface SignatureRow {
  signer_user_id: string;
  signer_key_id: string;
  target_user_id: string;
  target_key_id: string;
  signature: string;
}

const SQL = {
  getKeys: 'SELECT user_id, key_type, key_id, key_json FROM e2e_cross_signing_keys WHERE user_id = ANY($1::text[]) AND key_type = ANY($2::text[])',
  setKey: `INSERT INTO e2e_cross_signing_keys (user_id, key_type, key_id, key_json, ts_added) VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (user_id, key_type) DO UPDATE SET key_id = EXCLUDED.key_id, key_json = EXCLUDED.key_json, ts_added = EXCLUDED.ts_added`,
  // Per-user serialisation of device_signing/upload: "is this the first upload?" and the write
  // happen under one lock, so two racing first uploads cannot both skip UIA. Two-key form with
  // a class of its own ("xsig") so it cannot collide with other advisory locks.
  lockUser: 'SELECT pg_advisory_xact_lock(1937336679, hashtext($1))',
  insertSignatures: `INSERT INTO e2e_cross_signing_signatures (signer_user_id, signer_key_id, target_user_id, target_key_id, signature)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
    ON CONFLICT (target_user_id, target_key_id, signer_user_id, signer_key_id) DO UPDATE SET signature = EXCLUDED.signature`,
  // What the spec lets a viewer see: signatures by the key's owner (self-signing on devices,
  // devices on the master key) and signatures the viewer made; never another user's
  // user-signing signatures.
  visibleSignatures: `SELECT s.* FROM e2e_cross_signing_signatures s
    JOIN unnest($1::text[], $2::text[]) AS t(user_id, key_id) ON s.target_user_id = t.user_id AND s.target_key_id = t.key_id
    WHERE s.signer_user_id = s.target_user_id OR s.signer_user_id = $3`,
  deleteSignaturesOnTargets: 'DELETE FROM e2e_cross_signing_signatures WHERE target_user_id = $1 AND target_key_id = ANY($2::text[])',
  deleteSignaturesBySigner: 'DELETE FROM e2e_cross_signing_signatures WHERE signer_user_id = $1 OR target_user_id = $1',
  deleteKeysOfUser: 'DELETE FROM e2e_cross_signing_keys WHERE user_id = $1',
} as const;

export async function lockUserCrossSigning(tx: Queryable, userId: string): Promise<void> {
  await tx.query(SQL.lockUser, [userId]);
}

export async function getCrossSigningKeys(
  db: Queryable,
  userIds: string[],
  types: CrossSigningKeyType[],
): Promise<StoredCrossSigningKey[]> {
  if (userIds.length === 0) return [];
  return (await db.query<StoredCrossSigningKey>(SQL.getKeys, [userIds, types])).rows;
}

export async function getCrossSigningKey(db: Queryable, userId: string, type: CrossSigningKeyType): Promise<StoredCrossSigningKey | undefined> {
  return (await getCrossSigningKeys(db, [userId], [type]))[0];
}

export async function setCrossSigningKey(db: Queryable, userId: string, type: CrossSigningKeyType, keyId: string, keyJson: string): Promise<void> {
  await db.query(SQL.setKey, [userId, type, keyId, keyJson, Date.now()]);
}

export async function insertSignatures(db: Queryable, rows: SignatureRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db.query(SQL.insertSignatures, [
    rows.map((r) => r.signer_user_id),
    rows.map((r) => r.signer_key_id),
    rows.map((r) => r.target_user_id),
    rows.map((r) => r.target_key_id),
    rows.map((r) => r.signature),
  ]);
}

/** Uploaded signatures on the given keys that `viewer` may see. */
export async function visibleSignatures(
  db: Queryable,
  targets: { userId: string; keyId: string }[],
  viewer: string,
): Promise<SignatureRow[]> {
  if (targets.length === 0) return [];
  return (await db.query<SignatureRow>(SQL.visibleSignatures, [targets.map((t) => t.userId), targets.map((t) => t.keyId), viewer])).rows;
}

/** Drops signatures on keys that were replaced or deleted: they signed something else. */
export async function deleteSignaturesOn(db: Queryable, userId: string, keyIds: string[]): Promise<void> {
  await db.query(SQL.deleteSignaturesOnTargets, [userId, keyIds]);
}

/** Deactivation: the user's cross-signing keys and every signature by or on them. */
export async function deleteCrossSigningOfUser(db: Queryable, userId: string): Promise<void> {
  await db.query(SQL.deleteKeysOfUser, [userId]);
  await db.query(SQL.deleteSignaturesBySigner, [userId]);
}
