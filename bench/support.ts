// What every benchmark starts with: its numeric options and a throwaway PostgreSQL cluster.
import pg from 'pg';
import { startTestCluster, type TestCluster } from '../spec-tests/support/cluster.js';

/** `--name N` from the command line, or the fallback. */
export function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** Whether `--async-commit` was given: commits then do not wait for the WAL flush. */
export const asyncCommit = process.argv.includes('--async-commit');

/**
 * Starts the cluster the benchmark's servers use (startTestServer reads PRAT_TEST_ADMIN_URL),
 * with synchronous_commit off under --async-commit, to show how much of a latency is the fsync.
 */
export async function startBenchCluster(): Promise<TestCluster> {
  const cluster = await startTestCluster();
  process.env['PRAT_TEST_ADMIN_URL'] = cluster.adminUrl;
  if (asyncCommit) {
    const admin = new pg.Client({ connectionString: cluster.adminUrl });
    await admin.connect();
    await admin.query('ALTER SYSTEM SET synchronous_commit = off');
    await admin.query('SELECT pg_reload_conf()');
    await admin.end();
  }
  return cluster;
}
