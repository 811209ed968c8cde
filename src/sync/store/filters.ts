// Stored filters (POST /user/{userId}/filter).
import type { Queryable } from '../../db/pool.js';

const INSERT = `
  INSERT INTO sync_filters (user_id, filter_id, filter)
  SELECT $1, COALESCE(MAX(filter_id) + 1, 0), $2 FROM sync_filters WHERE user_id = $1
  RETURNING filter_id`;
const SELECT = 'SELECT filter FROM sync_filters WHERE user_id = $1 AND filter_id = $2';
const SELECT_SAME = 'SELECT filter_id FROM sync_filters WHERE user_id = $1 AND filter = $2 LIMIT 1';

export async function insertFilter(db: Queryable, userId: string, filter: unknown): Promise<number> {
  // The same filter uploaded again (clients do at every start) gets its existing id.
  const same = await db.query<{ filter_id: number }>(SELECT_SAME, [userId, JSON.stringify(filter)]);
  if (same.rows[0]) return same.rows[0].filter_id;
  const r = await db.query<{ filter_id: number }>(INSERT, [userId, JSON.stringify(filter)]);
  return r.rows[0]!.filter_id;
}

export async function getFilter(db: Queryable, userId: string, filterId: number): Promise<unknown> {
  const r = await db.query<{ filter: unknown }>(SELECT, [userId, filterId]);
  return r.rows[0]?.filter;
}
