// SQL of the media repository (tables in migrations/0002_media.sql).
import type { Queryable } from '../db/pool.js';

export interface MediaRow {
  server_name: string;
  media_id: string;
  uploader: string | null;
  content_type: string | null;
  upload_name: string | null;
  size: number | null;
  sha256: string | null;
  created_ts: number;
  uploaded_ts: number | null;
  pending_until: number | null;
  authenticated: boolean;
  url_cache: string | null;
  image_format: string | null;
  image_width: number | null;
  image_height: number | null;
  image_frames: number | null;
  quarantined_by: string | null;
  quarantined_ts: number | null;
}

export interface ThumbnailRow {
  width: number;
  height: number;
  method: 'crop' | 'scale';
  animated: boolean;
  out_width: number;
  out_height: number;
  content_type: string;
  size: number;
  sha256: string;
}

export async function insertUploaded(
  db: Queryable,
  m: {
    serverName: string;
    mediaId: string;
    uploader: string | null;
    contentType: string;
    uploadName: string | null;
    size: number;
    sha256: string;
    authenticated: boolean;
    urlCache?: string | null;
  },
): Promise<void> {
  const now = Date.now();
  await db.query(
    `INSERT INTO media (server_name, media_id, uploader, content_type, upload_name, size, sha256, created_ts, uploaded_ts,
                        authenticated, url_cache)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)`,
    [m.serverName, m.mediaId, m.uploader, m.contentType, m.uploadName, m.size, m.sha256, now, m.authenticated, m.urlCache ?? null],
  );
}

export async function insertPending(
  db: Queryable,
  m: { serverName: string; mediaId: string; uploader: string; pendingUntil: number; authenticated: boolean },
): Promise<void> {
  await db.query(
    `INSERT INTO media (server_name, media_id, uploader, created_ts, pending_until, authenticated)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [m.serverName, m.mediaId, m.uploader, Date.now(), m.pendingUntil, m.authenticated],
  );
}

/** Fills a pending id. False when it was filled meanwhile (or expired): the caller lost the race. */
export async function completePending(
  db: Queryable,
  m: { serverName: string; mediaId: string; contentType: string; uploadName: string | null; size: number; sha256: string },
): Promise<boolean> {
  const r = await db.query(
    `UPDATE media SET content_type = $3, upload_name = $4, size = $5, sha256 = $6, uploaded_ts = $7, pending_until = NULL
     WHERE server_name = $1 AND media_id = $2 AND sha256 IS NULL AND pending_until > $7`,
    [m.serverName, m.mediaId, m.contentType, m.uploadName, m.size, m.sha256, Date.now()],
  );
  return r.rowCount === 1;
}

export async function getMedia(db: Queryable, serverName: string, mediaId: string): Promise<MediaRow | undefined> {
  const r = await db.query<MediaRow>('SELECT * FROM media WHERE server_name = $1 AND media_id = $2', [serverName, mediaId]);
  return r.rows[0];
}

/** Live pending ids of a user, and when the first of them expires. */
export async function pendingUploads(db: Queryable, uploader: string, now: number): Promise<{ count: number; firstExpiry: number | null }> {
  const r = await db.query<{ count: number; first: number | null }>(
    `SELECT count(*)::int AS count, min(pending_until) AS first FROM media
     WHERE uploader = $1 AND sha256 IS NULL AND pending_until > $2`,
    [uploader, now],
  );
  return { count: r.rows[0]!.count, firstExpiry: r.rows[0]!.first };
}

export async function deleteExpiredPending(db: Queryable, now: number): Promise<number> {
  const r = await db.query('DELETE FROM media WHERE sha256 IS NULL AND pending_until <= $1', [now]);
  return r.rowCount ?? 0;
}

export async function setImageInfo(
  db: Queryable,
  serverName: string,
  mediaId: string,
  info: { format: string; width: number | null; height: number | null; frames: number | null },
): Promise<void> {
  await db.query(
    'UPDATE media SET image_format = $3, image_width = $4, image_height = $5, image_frames = $6 WHERE server_name = $1 AND media_id = $2',
    [serverName, mediaId, info.format, info.width, info.height, info.frames],
  );
}

export async function setQuarantine(db: Queryable, serverName: string, mediaId: string, by: string | null): Promise<boolean> {
  const r = await db.query(
    'UPDATE media SET quarantined_by = $3, quarantined_ts = $4 WHERE server_name = $1 AND media_id = $2',
    [serverName, mediaId, by, by === null ? null : Date.now()],
  );
  return r.rowCount === 1;
}

/** Deletes a media row (thumbnails cascade) and returns every blob hash it referenced. */
export async function deleteMedia(db: Queryable, serverName: string, mediaId: string): Promise<string[] | undefined> {
  const thumbs = await db.query<{ sha256: string }>(
    'SELECT sha256 FROM media_thumbnails WHERE server_name = $1 AND media_id = $2',
    [serverName, mediaId],
  );
  const r = await db.query<{ sha256: string | null }>(
    'DELETE FROM media WHERE server_name = $1 AND media_id = $2 RETURNING sha256',
    [serverName, mediaId],
  );
  if (r.rowCount !== 1) return undefined;
  const hashes = new Set(thumbs.rows.map((t) => t.sha256));
  if (r.rows[0]!.sha256) hashes.add(r.rows[0]!.sha256);
  return [...hashes];
}

/** Whether any media or thumbnail row still points at the blob. */
export async function blobReferenced(db: Queryable, sha256: string): Promise<boolean> {
  const r = await db.query(
    `SELECT EXISTS (SELECT 1 FROM media WHERE sha256 = $1) OR EXISTS (SELECT 1 FROM media_thumbnails WHERE sha256 = $1) AS used`,
    [sha256],
  );
  return r.rows[0].used as boolean;
}

/** Which of these blob hashes a media or thumbnail row points at (the orphan sweep's first pass). */
export async function referencedBlobs(db: Queryable, hashes: string[]): Promise<Set<string>> {
  const r = await db.query<{ sha256: string }>(
    `SELECT sha256 FROM media WHERE sha256 = ANY($1::text[])
     UNION SELECT sha256 FROM media_thumbnails WHERE sha256 = ANY($1::text[])`,
    [hashes],
  );
  return new Set(r.rows.map((row) => row.sha256));
}

/**
 * Serialises everything that creates or drops references to one blob (a transaction-scoped
 * advisory lock on the hash), so a delete never unlinks bytes a concurrent upload just reused.
 */
export async function lockBlob(db: Queryable, sha256: string): Promise<void> {
  await db.query('SELECT pg_advisory_xact_lock($1::bigint)', [BigInt.asIntN(64, BigInt(`0x${sha256.slice(0, 16)}`)).toString()]);
}

export async function getThumbnails(db: Queryable, serverName: string, mediaId: string): Promise<ThumbnailRow[]> {
  const r = await db.query<ThumbnailRow>(
    `SELECT width, height, method, animated, out_width, out_height, content_type, size, sha256
     FROM media_thumbnails WHERE server_name = $1 AND media_id = $2`,
    [serverName, mediaId],
  );
  return r.rows;
}

export async function getThumbnail(
  db: Queryable,
  k: { serverName: string; mediaId: string; width: number; height: number; method: string; animated: boolean },
): Promise<ThumbnailRow | undefined> {
  const r = await db.query<ThumbnailRow>(
    `SELECT width, height, method, animated, out_width, out_height, content_type, size, sha256
     FROM media_thumbnails
     WHERE server_name = $1 AND media_id = $2 AND width = $3 AND height = $4 AND method = $5 AND animated = $6`,
    [k.serverName, k.mediaId, k.width, k.height, k.method, k.animated],
  );
  return r.rows[0];
}

/** Records a thumbnail; false when the media row is gone (deleted while generating). */
export async function insertThumbnail(db: Queryable, serverName: string, mediaId: string, t: ThumbnailRow): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO media_thumbnails (server_name, media_id, width, height, method, animated, out_width, out_height,
                                   content_type, size, sha256, created_ts)
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12
     WHERE EXISTS (SELECT 1 FROM media WHERE server_name = $1 AND media_id = $2)
     ON CONFLICT DO NOTHING`,
    [serverName, mediaId, t.width, t.height, t.method, t.animated, t.out_width, t.out_height, t.content_type, t.size, t.sha256, Date.now()],
  );
  return r.rowCount === 1;
}

export async function getCachedPreview(db: Queryable, url: string, now: number): Promise<Record<string, unknown> | undefined> {
  const r = await db.query<{ og: Record<string, unknown> }>(
    'SELECT og FROM url_previews WHERE url = $1 AND expires_ts > $2 ORDER BY fetched_ts DESC LIMIT 1',
    [url, now],
  );
  return r.rows[0]?.og;
}

export async function insertPreview(db: Queryable, url: string, og: Record<string, unknown>, fetchedTs: number, expiresTs: number): Promise<void> {
  await db.query(
    'INSERT INTO url_previews (url, fetched_ts, expires_ts, og) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
    [url, fetchedTs, expiresTs, JSON.stringify(og)],
  );
  // Expired rows are useless; dropping them here keeps the table bounded without a timer.
  await db.query('DELETE FROM url_previews WHERE expires_ts <= $1', [fetchedTs]);
}
