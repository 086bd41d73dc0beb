/**
 * Identifier rules shared by config validation, workflow inputs and the SQL we build.
 * Pure: safe to import from workflows.
 */

/** Cluster names appear in workflow ids, paths and search attributes. */
export const CLUSTER_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const CLUSTER_NAME_RULE =
  'lower-case letters, digits, "-" and "_", starting with a letter or digit, at most 63 characters';

/**
 * Database and table names we accept. MySQL allows almost anything inside backticks, but an
 * operations tool that builds paths, file names and command lines from them should not: we
 * accept the portable subset and say so, rather than escaping our way into surprises.
 */
export const SQL_IDENTIFIER_PATTERN = /^[A-Za-z0-9_$]{1,64}$/;
export const SQL_IDENTIFIER_RULE = 'letters, digits, "_" and "$", 1 to 64 characters';

/** Schemas that belong to the server, never to a user backup by default. */
export const SYSTEM_DATABASES: readonly string[] = [
  'mysql',
  'information_schema',
  'performance_schema',
  'sys',
];

export function isValidClusterName(name: string): boolean {
  return CLUSTER_NAME_PATTERN.test(name);
}

export function isValidSqlIdentifier(name: string): boolean {
  return SQL_IDENTIFIER_PATTERN.test(name);
}

/** Quote an identifier for SQL text; throws on anything outside the accepted subset. */
export function quoteIdentifier(name: string): string {
  if (!isValidSqlIdentifier(name)) {
    throw new Error(`invalid SQL identifier ${JSON.stringify(name)}: expected ${SQL_IDENTIFIER_RULE}`);
  }
  return '`' + name + '`';
}

/** An encryption key id, as configured and as written in every sealed object's header. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
