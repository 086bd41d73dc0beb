/**
 * Which failures are worth retrying. Configuration, authentication and privilege errors
 * will fail the same way every time: they are non-retryable and say what to fix.
 */
import { Failure } from '../domain/failures';
import { ApplicationFailure } from '@temporalio/common';
import { ConfigError } from '../config/load';


/** MySQL / MariaDB error numbers that retrying cannot fix. */
const AUTH_CODES = new Set([1045, 1698, 1251, 2049]);
const PRIVILEGE_CODES = new Set([1044, 1142, 1143, 1227, 1370, 1449]);
const UNKNOWN_OBJECT_CODES = new Set([1049, 1146]);

export function classifyMysqlErrno(errno: number, message: string, cluster: string): ApplicationFailure | null {
  if (AUTH_CODES.has(errno)) {
    return ApplicationFailure.nonRetryable(
      `cluster ${cluster}: authentication failed (${errno}: ${message}); check user and the password reference in the config`,
      Failure.Auth,
    );
  }
  if (PRIVILEGE_CODES.has(errno)) {
    return ApplicationFailure.nonRetryable(
      `cluster ${cluster}: missing privilege (${errno}: ${message}); grant the backup user what README "Privileges" lists`,
      Failure.Privilege,
    );
  }
  if (UNKNOWN_OBJECT_CODES.has(errno)) {
    // What is missing and where: the caller's context says why it was looked for.
    return ApplicationFailure.nonRetryable(`cluster ${cluster}: ${message} (${errno})`, Failure.Config);
  }
  return null;
}

/** Turn anything thrown into the failure Temporal should see. */
export function toFailure(error: unknown, cluster: string): Error {
  if (error instanceof ApplicationFailure) return error;
  if (error instanceof ConfigError) return ApplicationFailure.nonRetryable(error.message, Failure.Config);
  const e = error as { errno?: number; message?: string };
  if (typeof e.errno === 'number') {
    const classified = classifyMysqlErrno(e.errno, e.message ?? '', cluster);
    if (classified) return classified;
  }
  return error instanceof Error ? error : new Error(String(error));
}

/** mysqldump prints "mysqldump: Got error: 1045: Access denied ..." on stderr. */
export function classifyToolStderr(stderr: string, cluster: string): ApplicationFailure | null {
  const m = /(?:Got error|error):?\s*(\d{4})[:\s]/i.exec(stderr) ?? /ERROR (\d{4})/.exec(stderr);
  if (!m?.[1]) return null;
  return classifyMysqlErrno(Number(m[1]), stderr.trim().split('\n').slice(-3).join(' '), cluster);
}
