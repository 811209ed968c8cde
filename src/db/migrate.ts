// Forward-only migrations: migrations/NNNN_name.sql, each applied once in its own transaction
// and recorded. A database that has seen a newer migration than this code knows is refused.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Database } from './pool.js';
import type { Logger } from '../logger.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));
// Any constant works; it only has to be the same for every Prat process.
const MIGRATION_LOCK_ID = 0x70726174;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return files.map((file) => ({
    version: Number(file.slice(0, 4)),
    name: file.slice(5, -4),
    sql: readFileSync(`${dir}/${file}`, 'utf8'),
  }));
}

export class SchemaTooNewError extends Error {
  override name = 'SchemaTooNewError';
}

/** Applies pending migrations; safe to run from several processes at once. Returns those applied. */
export async function migrate(db: Database, log: Logger, migrations = listMigrations()): Promise<Migration[]> {
  const client = await db.pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_ts BIGINT NOT NULL
    )`);
    const applied = new Set(
      (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
    );
    const newest = migrations.at(-1)?.version ?? 0;
    const tooNew = [...applied].filter((v) => v > newest);
    if (tooNew.length > 0) {
      throw new SchemaTooNewError(
        `the database has schema version ${Math.max(...tooNew)}, newer than this Prat knows (${newest}); run a newer Prat`,
      );
    }
    const done: Migration[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name, applied_ts) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          Date.now(),
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${m.version}_${m.name} failed: ${(err as Error).message}`);
      }
      log.info({ migration: `${m.version}_${m.name}` }, 'applied migration');
      done.push(m);
    }
    return done;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined);
    client.release();
  }
}
