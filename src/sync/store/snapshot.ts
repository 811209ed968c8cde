// The one snapshot a sync request reads: REPEATABLE READ READ ONLY, so every stream's latest()
// and rows agree with each other.
import type pg from 'pg';
import { holdingConnectionFor, type Database, type Queryable } from '../../db/pool.js';

const BEGIN = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';

// A statement in a simple-protocol message is planned every time it runs: for the positions
// statement of every sync, planning took 0.25-0.3 ms and running it 0.05. So it is prepared
// (SQL PREPARE, in the same message) once per connection, and executed by name after.
const preparedOn = new WeakMap<object, Set<string>>();
const statementNames = new Map<string, string>();

function nameOf(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) statementNames.set(text, (name = `sync_first_${statementNames.size}`));
  return name;
}

/** BEGIN and `first` in one round trip, `first` prepared on this connection if need be; its first row. */
async function beginWith(client: pg.PoolClient, first: string): Promise<Record<string, unknown> | undefined> {
  const name = nameOf(first);
  let prepared = preparedOn.get(client);
  if (!prepared) preparedOn.set(client, (prepared = new Set()));
  const prepare = prepared.has(name) ? '' : `PREPARE ${name} AS ${first}; `;
  const results = (await client.query(`${BEGIN}; ${prepare}EXECUTE ${name}`)) as unknown as pg.QueryResult[];
  prepared.add(name);
  return results[results.length - 1]!.rows[0];
}

/**
 * Runs `fn` in a read-only snapshot. `first`, a statement without parameters, is sent in the
 * same round trip as BEGIN (one simple-protocol message, prepared per connection) and its first
 * row handed to `fn`: the snapshot is taken at that statement, so it sees what `fn` reads next.
 */
export async function inSnapshot<T>(
  db: Database,
  fn: (tx: Queryable, first: Record<string, unknown> | undefined) => Promise<T>,
  first?: string,
): Promise<T> {
  const client = await db.pool.connect();
  let firstRow: Record<string, unknown> | undefined;
  try {
    if (first === undefined) await client.query(BEGIN);
    else firstRow = await beginWith(client, first);
  } catch (err) {
    // Prepared statements outlive a rollback: whether the PREPARE of a failed message stayed is
    // unknown, so the connection goes, and its prepared statements with it.
    client.release(err as Error);
    throw err;
  }
  let result: T;
  try {
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
