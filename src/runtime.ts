// Start-up plumbing shared by `npm start` and the CLI: argument parsing, the data directory,
// its lock file, and the database (embedded or external).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generateConfig, loadConfig } from './config/load.js';
import type { PratConfig } from './config/schema.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.js';
import type { Logger } from './logger.js';

export interface StartOptions {
  configPath: string;
  dataDir: string;
  port?: number;
  serverName?: string;
  /** Whether --config was given (then a missing file is an error, not a first start). */
  explicitConfig: boolean;
  positionals: string[];
  flags: Record<string, string | boolean | undefined>;
}

export function parseStartArgs(argv: string[], extra: Record<string, { type: 'string' | 'boolean' }> = {}): StartOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      'data-dir': { type: 'string' },
      port: { type: 'string' },
      'server-name': { type: 'string' },
      ...extra,
    },
  });
  const dataDir = resolve((values['data-dir'] as string | undefined) ?? 'data');
  const configPath = values.config ? resolve(values.config as string) : join(dataDir, 'homeserver.yaml');
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be a port number, not '${String(values.port)}'`);
  }
  return {
    configPath,
    dataDir: values.config && !values['data-dir'] ? dirname(configPath) : dataDir,
    ...(port !== undefined ? { port } : {}),
    ...(values['server-name'] !== undefined ? { serverName: values['server-name'] as string } : {}),
    explicitConfig: values.config !== undefined,
    positionals,
    flags: values as Record<string, string | boolean | undefined>,
  };
}

/** Loads the config, writing a fresh one first when this is the first start of a data dir. */
export function loadOrGenerateConfig(opts: StartOptions): { config: PratConfig; generated: boolean } {
  let generated = false;
  if (!existsSync(opts.configPath)) {
    if (opts.explicitConfig) throw new Error(`config file ${opts.configPath} does not exist (run 'npm run generate-config')`);
    generateConfig(opts.configPath, opts.serverName ?? 'localhost', opts.port ?? 8008);
    generated = true;
  }
  return {
    config: loadConfig({
      configPath: opts.configPath,
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      ...(opts.serverName !== undefined ? { serverName: opts.serverName } : {}),
    }),
    generated,
  };
}

interface LockInfo {
  pid: number;
  databaseUrl?: string;
}

function lockPath(dataDir: string): string {
  return join(dataDir, 'prat.lock');
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The running server's lock, if a live process holds it. */
export function readLiveLock(dataDir: string): LockInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(lockPath(dataDir), 'utf8')) as LockInfo;
    return processAlive(info.pid) && info.pid !== process.pid ? info : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the data directory for this process; refuses when another live Prat holds it. */
export function lockDataDir(dataDir: string): { update(info: Partial<LockInfo>): void; release(): void } {
  mkdirSync(dataDir, { recursive: true });
  const holder = readLiveLock(dataDir);
  if (holder) {
    throw new Error(`another Prat (pid ${holder.pid}) is already running on data directory ${dataDir}; stop it first`);
  }
  let info: LockInfo = { pid: process.pid };
  writeFileSync(lockPath(dataDir), JSON.stringify(info), { mode: 0o600 });
  return {
    update(more) {
      info = { ...info, ...more };
      writeFileSync(lockPath(dataDir), JSON.stringify(info), { mode: 0o600 });
    },
    release() {
      rmSync(lockPath(dataDir), { force: true });
    },
  };
}

/** The database URL to use: the configured one, or a started embedded PostgreSQL. */
export async function openDatabase(config: PratConfig, log: Logger): Promise<{ url: string; embedded?: EmbeddedDatabase }> {
  if (config.database.url) return { url: config.database.url };
  const e = config.database.embedded!;
  const embedded = await startEmbeddedPostgres({
    dataDir: e.data_dir,
    password: e.password,
    ...(e.port ? { port: e.port } : {}),
    log: log.child({ component: 'postgres' }),
  });
  return { url: embedded.url, embedded };
}
