/**
 * One pino logger for the process (JSON on stderr), secrets redacted by key wherever they
 * hide, and an adapter so that the Temporal runtime (worker internals and workflow
 * `log` calls, which reach the runtime through sinks) logs through the same pipe.
 */
import pino, { type Logger as PinoLogger } from 'pino';
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';

export const REDACTED_KEYS = ['password', 'passwd', 'secret', 'token', 'authorization'];

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const key of REDACTED_KEYS) paths.push(key, `*.${key}`, `*.*.${key}`);
  return paths;
}

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export function createLogger(level: Level = 'info', name = 'dbops'): PinoLogger {
  return pino(
    {
      name,
      level: process.env.DBOPS_LOG_LEVEL ?? level,
      redact: { paths: redactPaths(), censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      base: { pid: process.pid },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}

const temporalToPino: Record<LogLevel, Level> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** Temporal's Logger interface on top of pino. */
export class PinoTemporalLogger implements TemporalLogger {
  constructor(private readonly logger: PinoLogger) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    this.logger[temporalToPino[level]]({ ...(meta ?? {}), source: 'temporal' }, message);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}
