// One throwaway PostgreSQL cluster for a whole test run; each test file gets a fresh database
// in it. TEST_DATABASE_URL (a server URL whose user may CREATE DATABASE) replaces the cluster.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';

export interface TestCluster {
  adminUrl: string;
  stop(): Promise<void>;
}

export async function startTestCluster(): Promise<TestCluster> {
  if (process.env['TEST_DATABASE_URL']) return { adminUrl: process.env['TEST_DATABASE_URL'], stop: async () => {} };
  const dir = mkdtempSync(join(tmpdir(), 'prat-test-pg-'));
  // Running as root, initdb runs as the `postgres` user, which must be able to enter the folder.
  chmodSync(dir, 0o755);
  const pg = await startEmbeddedPostgres({
    dataDir: join(dir, 'data'),
    password: 'test',
    database: 'postgres',
    persistent: false,
    log: pino({ level: 'silent' }),
  });
  return {
    adminUrl: pg.adminUrl,
    stop: async () => {
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
