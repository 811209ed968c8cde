// Admin commands: generate-config, migrate, register-user.
//   npm run generate-config -- [--data-dir DIR | --config FILE] [--server-name NAME] [--port N]
//   npm run migrate -- [--data-dir DIR | --config FILE]
//   npm run register-user -- USERNAME --password PW [--admin] [--data-dir DIR | --config FILE]
import { generateConfig } from './config/load.js';
import { Database } from './db/pool.js';
import { migrate } from './db/migrate.js';
import { createLogger } from './logger.js';
import { loadOrGenerateConfig, lockDataDir, openDatabase, parseStartArgs, readLiveLock } from './runtime.js';
import { AccountService } from './accounts/service.js';
import { UserInteractiveAuth } from './accounts/uia.js';

const USAGE = `usage: tsx src/cli.ts <command> [options]
  generate-config  [--data-dir DIR | --config FILE] [--server-name NAME] [--port N]
  migrate          [--data-dir DIR | --config FILE]
  register-user    USERNAME --password PASSWORD [--admin] [--data-dir DIR | --config FILE]`;

/** Runs `fn` against the configured database: the running server's, or one started here. */
async function withDatabase<T>(argv: string[], fn: (db: Database, config: ReturnType<typeof loadOrGenerateConfig>['config']) => Promise<T>) {
  const opts = parseStartArgs(argv, { password: { type: 'string' }, admin: { type: 'boolean' } });
  const { config } = loadOrGenerateConfig({ ...opts, explicitConfig: true });
  const log = createLogger({ ...config.log, level: 'warn' });
  const running = readLiveLock(opts.dataDir);
  let url: string;
  let cleanup = async () => {};
  if (running?.databaseUrl) {
    url = running.databaseUrl;
  } else {
    const lock = lockDataDir(opts.dataDir);
    const database = await openDatabase(config, log);
    url = database.url;
    cleanup = async () => {
      await database.embedded?.stop();
      lock.release();
    };
  }
  const db = new Database(url, 2, log);
  try {
    await migrate(db, log);
    return await fn(db, config);
  } finally {
    await db.close();
    await cleanup();
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'generate-config': {
      const opts = parseStartArgs(rest);
      generateConfig(opts.configPath, opts.serverName ?? 'localhost', opts.port ?? 8008);
      process.stdout.write(`wrote ${opts.configPath}\n`);
      return;
    }
    case 'migrate':
      await withDatabase(rest, async () => undefined);
      process.stdout.write('database is up to date\n');
      return;
    case 'register-user': {
      const opts = parseStartArgs(rest, { password: { type: 'string' }, admin: { type: 'boolean' } });
      const username = opts.positionals[0];
      const password = opts.flags['password'];
      if (!username || typeof password !== 'string') throw new Error(USAGE);
      const userId = await withDatabase(rest, async (db, config) => {
        const log = createLogger({ ...config.log, level: 'warn' });
        const accounts = new AccountService(db, config, new UserInteractiveAuth(db), log);
        const result = await accounts.registerDirect({ localpart: username, password, admin: opts.flags['admin'] === true, login: false });
        return result.user_id;
      });
      process.stdout.write(`registered ${userId}${opts.flags['admin'] ? ' (admin)' : ''}\n`);
      return;
    }
    default:
      throw new Error(USAGE);
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
