// `npm test`: starts one throwaway PostgreSQL cluster, then runs every unit test (src/**) and
// spec test (spec-tests/**) in one node:test run, so there is a single summary.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startTestCluster } from './support/cluster.js';

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === 'node_modules') continue;
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out.sort();
}

const filters = process.argv.slice(2);
let files = [...findTests('src'), ...findTests('spec-tests')];
if (filters.length > 0) files = files.filter((f) => filters.some((x) => f.includes(x)));

const cluster = await startTestCluster();
let code = 1;
try {
  code = await new Promise<number>((resolveExit) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${process.env['TEST_CONCURRENCY'] ?? '2'}`, ...files],
      { stdio: 'inherit', env: { ...process.env, PRAT_TEST_ADMIN_URL: cluster.adminUrl } },
    );
    child.on('exit', (c, signal) => resolveExit(c ?? (signal ? 1 : 0)));
  });
} finally {
  await cluster.stop();
}
process.exit(code);
