import pino, { type Logger } from 'pino';
import type { PratConfig } from './config/schema.js';

export type { Logger };

/** One root logger; subsystems take children. Tokens and passwords are never logged. */
export function createLogger(log: PratConfig['log']): Logger {
  return pino({
    level: log.level,
    base: undefined,
    redact: { paths: ['req.headers.authorization', '*.password', '*.access_token', '*.refresh_token'], remove: true },
    ...(log.format === 'pretty'
      ? { transport: { target: 'pino-pretty', options: { colorize: process.stdout.isTTY, ignore: 'pid,hostname' } } }
      : {}),
  });
}
