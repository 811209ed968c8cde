// Starts the real homeserver in-process on a free port with a fresh database, for one test file.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { resolveConfig } from '../../src/config/load.js';
import { Database } from '../../src/db/pool.js';
import { createLogger } from '../../src/logger.js';
import { startHomeserver, type Homeserver } from '../../src/server.js';
import { TestClient } from './client.js';

// Every test server refuses queries through the pool from code holding a connection (they can
// wait for ever once the pool is exhausted): such a query fails the test that makes it.
Database.refuseNestedQueries = true;

export interface TestServer {
  hs: Homeserver;
  baseUrl: string;
  serverName: string;
  databaseUrl: string;
  dir: string;
  /** A client with no token. */
  anon(): TestClient;
  /** Registers a fresh user (m.login.dummy) and returns its logged-in client. */
  register(localpart?: string, password?: string): Promise<TestClient>;
  stop(): Promise<void>;
}

export async function createTestDatabase(): Promise<string> {
  const adminUrl = process.env['PRAT_TEST_ADMIN_URL'] ?? process.env['TEST_DATABASE_URL'];
  if (!adminUrl) throw new Error('run the tests through `npm test` (spec-tests/run.ts), which provides a PostgreSQL cluster');
  const name = `prat_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

let counter = 0;

export interface TestServerOptions {
  /** Where the server's pino logs go (tests that inspect the request log); default: nowhere. */
  logDestination?: pino.DestinationStream;
  /** Reuse this database (a second server process on the same database) instead of a fresh one. */
  databaseUrl?: string;
}

export async function startTestServer(overrides: Record<string, unknown> = {}, opts: TestServerOptions = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'prat-test-'));
  const databaseUrl = opts.databaseUrl ?? (await createTestDatabase());
  const serverName = (overrides['server_name'] as string | undefined) ?? 'localhost';
  const config = resolveConfig(
    {
      server_name: serverName,
      listeners: [{ port: 0, bind_addresses: ['127.0.0.1'], resources: ['client', 'federation', 'media', 'admin', 'metrics'] }],
      database: { url: databaseUrl, max_connections: 10 },
      registration: { enabled: true, shared_secret: 'test-shared-secret', require_token: false, allow_guests: true },
      rate_limits: { enabled: false },
      log: { level: process.env['PRAT_TEST_LOG'] ?? (opts.logDestination ? 'info' : 'silent'), format: 'json' },
      ...overrides,
    },
    dir,
  );
  // The production logger (with its redaction rules), so tests see what operators would.
  const log = createLogger(config.log, opts.logDestination);
  const hs = await startHomeserver(config, log, databaseUrl);
  const addr = hs.addresses[0]!;
  const baseUrl = `http://127.0.0.1:${addr.port}`;
  return {
    hs,
    baseUrl,
    serverName,
    databaseUrl,
    dir,
    anon: () => new TestClient(baseUrl),
    async register(localpart, password = 'correct horse battery staple') {
      const name = localpart ?? `user${++counter}_${randomBytes(3).toString('hex')}`;
      const client = new TestClient(baseUrl);
      const r = await client.post('/_matrix/client/v3/register', {
        username: name,
        password,
        auth: { type: 'm.login.dummy' },
      });
      if (r.status !== 200) throw new Error(`register ${name} failed: ${r.status} ${JSON.stringify(r.body)}`);
      client.token = r.body.access_token;
      client.userId = r.body.user_id;
      client.deviceId = r.body.device_id;
      client.password = password;
      return client;
    },
    async stop() {
      await hs.stop();
      rmSync(dir, { recursive: true, force: true });
      const nested = Database.nestedQueries.splice(0);
      if (nested.length > 0) throw new Error(`queries through the pool while holding a connection:\n${nested.join('\n')}`);
    },
  };
}

/** A server and `count` users registered on it (the set-up of many test files). */
export async function startServerWithUsers(count: number): Promise<{ server: TestServer; users: TestClient[] }> {
  const server = await startTestServer();
  const users: TestClient[] = [];
  for (let i = 0; i < count; i++) users.push(await server.register());
  return { server, users };
}
