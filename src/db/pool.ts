// The PostgreSQL pool and the transaction helper every service composes its stores in.
import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import type { Logger } from '../logger.js';

/** What a store function needs: the pool or a client inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow = any>(text: string | NamedQuery, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * A statement prepared once per connection under its name (parse and analysis skipped on every
 * later run): for the hottest statements, whose planning costs more than their execution.
 */
export interface NamedQuery {
  name: string;
  text: string;
}

/**
 * Set while code holds a pool connection for a transaction (withTx, the room queue, a sync's
 * snapshot). Such code must make its queries on that connection: a query through the pool would
 * wait for a second one, and once concurrent holders have taken every connection, they all wait
 * for ever. Tests turn `Database.refuseNestedQueries` on, and such a query then throws, naming
 * the holder.
 */
const holdingConnection = new AsyncLocalStorage<string>();

/**
 * Runs `fn`, which holds a pool connection; `holder` names it (a constant, so that production
 * builds nothing per call). The holder is only tracked when tests ask (refuseNestedQueries): an
 * AsyncLocalStorage in use makes every promise of the process carry it, a cost production does
 * not need to pay. The error's stack shows which code it was.
 */
export function holdingConnectionFor<T>(holder: string, fn: () => T): T {
  return Database.refuseNestedQueries ? holdingConnection.run(holder, fn) : fn();
}

// BIGINT columns hold timestamps and stream positions, all within 2^53; read them as numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export class Database {
  /**
   * Tests: a query through the pool while holding a connection throws (see holdingConnection),
   * and is recorded here too, in case the caller swallows the error.
   */
  static refuseNestedQueries = false;
  static readonly nestedQueries: string[] = [];
  readonly pool: pg.Pool;

  constructor(
    connectionString: string,
    maxConnections: number,
    private readonly log: Logger,
  ) {
    this.pool = new pg.Pool({ connectionString, max: maxConnections });
    // An idle client losing its connection must not crash the process.
    this.pool.on('error', (err) => this.log.error({ err }, 'idle database connection failed'));
  }

  query<R extends pg.QueryResultRow = any>(text: string | NamedQuery, values?: unknown[]): Promise<pg.QueryResult<R>> {
    if (Database.refuseNestedQueries) {
      const holder = holdingConnection.getStore();
      if (holder !== undefined) {
        const err = new Error(`a query through the pool inside ${holder}, which holds a connection: ${typeof text === 'string' ? text.slice(0, 80) : text.name}`);
        Database.nestedQueries.push(err.stack ?? err.message);
        throw err;
      }
    }
    return typeof text === 'string' ? this.pool.query<R>(text, values) : this.pool.query<R>({ ...text, ...(values ? { values } : {}) });
  }

  /**
   * Runs `fn` in one transaction, named for logs. Serialization failures and deadlocks are
   * retried, so callers write plain code and get all-or-nothing.
   */
  async withTx<T>(name: string, fn: (tx: Queryable) => Promise<T>, isolation: 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE' = 'READ COMMITTED'): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      const started = performance.now();
      try {
        await client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
        const result = await holdingConnectionFor(name, () => fn(client));
        await client.query('COMMIT');
        this.log.trace({ tx: name, ms: +(performance.now() - started).toFixed(2) }, 'transaction');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        const code = (err as { code?: string }).code;
        if ((code === '40001' || code === '40P01') && attempt < 5) continue;
        throw err;
      } finally {
        client.release();
      }
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
