// The one snapshot a sync request reads: REPEATABLE READ READ ONLY, so every stream's latest()
// and rows agree with each other.
import type pg from 'pg';
import { holdingConnectionFor, type Database, type Queryable } from '../../db/pool.js';

const BEGIN = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';

/**
 * Runs `fn` in a read-only snapshot. `first`, a statement without parameters, is sent in the
 * same round trip as BEGIN (one simple-protocol message) and its first row handed to `fn`: the
 * snapshot is taken at that statement, so it sees what `fn` reads next.
 */
export async function inSnapshot<T>(
  db: Database,
  fn: (tx: Queryable, first: Record<string, unknown> | undefined) => Promise<T>,
  first?: string,
): Promise<T> {
  const client = await db.pool.connect();
  let result: T;
  try {
    let firstRow: Record<string, unknown> | undefined;
    if (first === undefined) {
      await client.query(BEGIN);
    } else {
      const results = (await client.query(`${BEGIN}; ${first}`)) as unknown as pg.QueryResult[];
      firstRow = results[1]!.rows[0];
    }
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
    result = await holdingConnectionFor('a sync snapshot', () => fn(serial, firstRow));
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
    throw err;
  }
  // Everything was read: the response need not wait for the COMMIT of a read-only transaction
  // (it cannot change what was read). The connection goes back to the pool once it is done, or
  // is discarded if the COMMIT failed.
  client.query('COMMIT').then(
    () => client.release(),
    (err: Error) => client.release(err),
  );
  return result;
}
