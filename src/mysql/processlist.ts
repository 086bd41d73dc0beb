/**
 * The server's sessions, read and killed for the slow-query killer, on both products.
 *
 * - MariaDB: information_schema.PROCESSLIST, with TIME_MS, QUERY_ID and EXAMINED_ROWS;
 *   `KILL QUERY ID n` stops exactly the statement that was chosen, never the next one the
 *   session runs.
 * - MySQL: performance_schema.processlist (it does not take the server's global
 *   processlist mutex), rows examined from events_statements_current. MySQL has no
 *   kill-by-statement, so the session is re-read just before the kill: it must still run a
 *   statement with the same digest, at least as old as when it was chosen.
 *
 * The killer's account comes from the cluster's ops account (opsUser, else restoreUser,
 * else user). Only ids read from the server reach a KILL, as numbers.
 */
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { ClusterConfig } from '../config/schema';
import type { Product } from '../domain/manifest';
import { digestOf, type KillMode, type KillOutcome, type ProcessRow, type Victim } from '../domain/queryKiller';
import { restoreAccount, SCOPED_ACCOUNT_PREFIX } from './restoreAccount';

/** The account operations jobs use. */
export function opsAccount(cluster: ClusterConfig): ClusterConfig {
  if (cluster.opsUser === undefined) return restoreAccount(cluster);
  return { ...cluster, user: cluster.opsUser, ...(cluster.opsPassword ? { password: cluster.opsPassword } : {}) };
}

/** Every account dbops runs as on this cluster: the killer never touches their sessions. */
export function dbopsAccounts(cluster: ClusterConfig): { users: string[]; prefixes: string[] } {
  const users = [cluster.user, cluster.restoreUser, cluster.opsUser].filter((u): u is string => u !== undefined);
  return { users: [...new Set(users)], prefixes: [SCOPED_ACCOUNT_PREFIX] };
}

const num = (v: unknown): number | null => (v === null || v === undefined || v === '' || !Number.isFinite(Number(v)) ? null : Number(v));
const str = (v: unknown): string | null => (v === null || v === undefined ? null : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));

function rowOf(r: RowDataPacket): ProcessRow {
  const timeMs = num(r.time_ms);
  return {
    id: Number(r.id),
    user: str(r.user) ?? '',
    host: str(r.host) ?? '',
    db: str(r.db),
    command: str(r.command) ?? '',
    timeSeconds: timeMs !== null ? timeMs / 1000 : (num(r.time) ?? 0),
    state: str(r.state),
    info: str(r.info),
    queryId: num(r.query_id),
    rowsExamined: num(r.rows_examined),
  };
}

const MARIADB_SESSIONS = `SELECT ID AS id, USER AS user, HOST AS host, DB AS db, COMMAND AS command, TIME AS time, TIME_MS AS time_ms,
  STATE AS state, INFO AS info, QUERY_ID AS query_id, EXAMINED_ROWS AS rows_examined FROM information_schema.PROCESSLIST`;

const MYSQL_SESSIONS = `SELECT p.ID AS id, p.USER AS user, p.HOST AS host, p.DB AS db, p.COMMAND AS command, p.TIME AS time, NULL AS time_ms,
  p.STATE AS state, p.INFO AS info, NULL AS query_id, s.ROWS_EXAMINED AS rows_examined
  FROM performance_schema.processlist p
  LEFT JOIN performance_schema.threads t ON t.PROCESSLIST_ID = p.ID
  LEFT JOIN performance_schema.events_statements_current s ON s.THREAD_ID = t.THREAD_ID AND s.NESTING_EVENT_ID IS NULL`;

/** Every session of the server, and the reader's own connection id. */
export async function readSessions(conn: Connection, product: Product, only?: number): Promise<{ rows: ProcessRow[]; self: number }> {
  const [selfRows] = await conn.query<RowDataPacket[]>('SELECT CONNECTION_ID() AS id');
  const self = Number(selfRows[0]?.id);
  const base = product === 'mariadb' ? MARIADB_SESSIONS : MYSQL_SESSIONS;
  const where = only === undefined ? '' : product === 'mariadb' ? ' WHERE ID = ?' : ' WHERE p.ID = ?';
  const [rows] = await conn.query<RowDataPacket[]>(base + where, only === undefined ? [] : [only]);
  return { rows: rows.map(rowOf), self };
}

/**
 * Stops one chosen statement, unless it is over or its session has moved on. A dry run
 * checks the same and kills nothing. A kill that finds the statement already gone (it
 * ended between the check and the kill: ER_NO_SUCH_THREAD) is `gone`.
 */
export async function killVictim(conn: Connection, product: Product, victim: Victim, mode: KillMode, dryRun: boolean): Promise<KillOutcome> {
  const { rows } = await readSessions(conn, product, victim.id);
  const now = rows[0];
  if (!now || now.info === null) return 'gone';
  const sameStatement = product === 'mariadb' && victim.queryId !== null ? now.queryId === victim.queryId : digestOf(now.info).digest === victim.digest && now.timeSeconds >= victim.timeSeconds;
  if (!sameStatement) return 'changed';
  if (dryRun) return 'would-kill';
  const id = Math.trunc(victim.id);
  try {
    if (mode === 'connection') await conn.query(`KILL CONNECTION ${id}`);
    else if (product === 'mariadb' && victim.queryId !== null) await conn.query(`KILL QUERY ID ${Math.trunc(victim.queryId)}`);
    else await conn.query(`KILL QUERY ${id}`);
  } catch (error) {
    // It ended between the check and the kill: unknown thread (1094) or, for KILL QUERY ID, unknown query (1957).
    const errno = (error as { errno?: number }).errno;
    if (errno === 1094 || errno === 1957) return 'gone';
    throw error;
  }
  return 'killed';
}
