import pino, { type Logger } from 'pino';
import type { PratConfig } from './config/schema.js';

export type { Logger };

/**
 * One root logger; subsystems take children. Tokens and passwords are never logged.
 * `destination` (tests capture the log) replaces stdout and the pretty transport.
 */
export function createLogger(log: PratConfig['log'], destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level: log.level,
    base: undefined,
    redact: { paths: ['req.headers.authorization', '*.password', '*.access_token', '*.refresh_token'], remove: true },
    ...(log.format === 'pretty' && !destination
      ? { transport: { target: 'pino-pretty', options: { colorize: process.stdout.isTTY, ignore: 'pid,hostname' } } }
      : {}),
  };
  return destination ? pino(options, destination) : pino(options);
}
