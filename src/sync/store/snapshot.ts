// The one snapshot a sync request reads: REPEATABLE READ READ ONLY, so every stream's latest()
// and rows agree with each other.
import type { Database, Queryable } from '../../db/pool.js';

export async function inSnapshot<T>(db: Database, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // One connection runs one query at a time; streams that query in parallel (Promise.all)
    // are queued here instead of relying on pg's deprecated implicit queue.
    let tail: Promise<unknown> = Promise.resolve();
    const serial: Queryable = {
      query(text, values) {
        const run = tail.then(() => client.query(text, values));
        tail = run.catch(() => undefined);
        return run;
      },
    };
    const result = await fn(serial);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
