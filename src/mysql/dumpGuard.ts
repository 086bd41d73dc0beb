/**
 * A consistent MySQL dump without stalling the server. mysqldump finds its binlog position
 * under FLUSH TABLES WITH READ LOCK, and a FLUSH waits behind any running query: while it
 * waits every other statement on those tables waits behind it, and they keep waiting until
 * that query ends even after the FLUSH itself gave up (tried: a 12 s SELECT held an UPDATE
 * for 9.5 s after FTWRL timed out at 2 s). So dbops never lets mysqldump flush. Instead:
 *
 *   1. LOCK INSTANCE FOR BACKUP (with BACKUP_ADMIN): no DDL until the dump ends;
 *   2. LOCK TABLES … READ on the tables to dump: running queries are not waited for; open
 *      write transactions on them are, for at most dumpLockWait, and new writes to them
 *      wait meanwhile;
 *   3. the binlog position and GTID set, read under those locks: nothing can commit to
 *      the dumped tables while they are held, so this is where the snapshot stands;
 *   4. mysqldump --single-transaction starts its consistent snapshot; once its transaction
 *      shows in INNODB_TRX, UNLOCK TABLES. Writes waited from step 2 to here: usually a
 *      fraction of a second, never more than dumpLockWait before the backup gives up.
 *
 * MariaDB's dump reads a consistent position from its snapshot (binlog_snapshot_file and
 * _position) without any lock: nothing to do there.
 */
import { ApplicationFailure } from '@temporalio/common';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import type { ClusterConfig } from '../config/schema';
import { durationSeconds } from '../domain/duration';
import { Failure } from '../domain/failures';
import { quoteIdentifier } from '../domain/identifiers';
import { connectionOptions, currentBinlogPosition, limitStatements } from './connection';
import { toFailure } from './errors';

export interface SnapshotPosition {
  file: string;
  position: number;
  gtidSet: string | null;
}

export interface DumpGuard {
  /** Where the dump's snapshot stands (read under the table locks). */
  position: SnapshotPosition;
  /** Held LOCK INSTANCE FOR BACKUP (no BACKUP_ADMIN: false). */
  instanceLock: boolean;
  /** Lets writes go again now (the caller opened its snapshots itself). */
  release(): Promise<void>;
  /** Waits until mysqldump's snapshot is open, then lets writes go again. */
  releaseAfterSnapshot(dumpExited: Promise<unknown>): Promise<void>;
  /** Ends the guard (always: on success and on failure). */
  close(): Promise<void>;
}

const LOCK_WAIT_TIMEOUT = 1205;
const ACCESS_DENIED = 1227;

function blocked(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, Failure.DumpBlocked);
}

/** The oldest open transaction that has written (what a READ lock waits behind). */
async function oldestWriter(conn: Connection): Promise<string | null> {
  const [rows] = await conn.query<RowDataPacket[]>(
    `SELECT t.trx_mysql_thread_id AS id, p.USER AS user, TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS seconds, LEFT(COALESCE(t.trx_query, p.INFO, ''), 200) AS query
       FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
      WHERE t.trx_mysql_thread_id <> CONNECTION_ID() AND t.trx_is_read_only = 0 AND t.trx_rows_modified > 0
      ORDER BY t.trx_started LIMIT 1`,
  );
  const r = rows[0];
  if (!r) return null;
  const query = String(r.query ?? '').replace(/\s+/g, ' ').trim();
  return `transaction of session ${String(r.id)} (${String(r.user ?? '?')}) open for ${String(r.seconds)} s${query ? `, now running: ${query}` : ', idle'}`;
}

/**
 * `instance: false` (MariaDB, which has no LOCK INSTANCE FOR BACKUP) takes only the table
 * locks; its position is then the caller's to read from its own snapshot.
 */
export async function openMysqlDumpGuard(cluster: ClusterConfig, databases: string[], options: { instance: boolean } = { instance: true }): Promise<DumpGuard> {
  let conn: Connection;
  try {
    conn = await createConnection(connectionOptions(cluster));
    await limitStatements(conn, cluster);
  } catch (error) {
    throw toFailure(error, cluster.name);
  }
  const wait = cluster.dumpLockWait;
  const waitMs = Math.max(1, durationSeconds(wait)) * 1000;
  let tablesLocked = false;
  let instanceLock = false;
  const unlockTables = async () => {
    if (!tablesLocked) return;
    tablesLocked = false;
    await conn.query('UNLOCK TABLES').catch(() => undefined);
  };
  const close = async () => {
    await unlockTables();
    if (instanceLock) await conn.query('UNLOCK INSTANCE').catch(() => undefined);
    await conn.end().catch(() => undefined);
  };
  try {
    await conn.query('SET SESSION lock_wait_timeout = ?', [Math.max(1, Math.round(durationSeconds(wait)))]);
    instanceLock = !options.instance ? false : await conn.query('LOCK INSTANCE FOR BACKUP').then(
      () => true,
      (error: { errno?: number }) => {
        if (error.errno === ACCESS_DENIED) return false; // no BACKUP_ADMIN: DDL during the dump can fail it (it is retried)
        throw error;
      },
    );
    const [tables] = await conn.query<RowDataPacket[]>(
      `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?) AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1, 2`,
      [databases],
    );
    if (tables.length > 0) {
      const list = tables.map((r) => `${quoteIdentifier(String(r.db))}.${quoteIdentifier(String(r.t))} READ`).join(', ');
      try {
        await conn.query(`LOCK TABLES ${list}`);
        tablesLocked = true;
      } catch (error) {
        if ((error as { errno?: number }).errno !== LOCK_WAIT_TIMEOUT) throw error;
        const writer = await oldestWriter(conn).catch(() => null);
        throw blocked(
          `cluster ${cluster.name}: the backup waited ${wait} (dumpLockWait) to hold the tables it dumps still for a moment and gave up, so writes waited no longer than that` +
            `${writer ? `; it waited behind a ${writer}` : ''}. Back up again when that transaction has ended`,
        );
      }
    }
    const position = await currentBinlogPosition(conn);
    return {
      position,
      instanceLock,
      release: unlockTables,
      releaseAfterSnapshot: async (dumpExited) => {
        let exited = false;
        void dumpExited.then(
          () => (exited = true),
          () => (exited = true),
        );
        const deadline = Date.now() + waitMs;
        try {
          while (tablesLocked) {
            // mysqldump names itself in its connection attributes; its snapshot is a transaction of a session newer than ours.
            const [rows] = await conn.query<RowDataPacket[]>(
              `SELECT 1 FROM information_schema.INNODB_TRX t JOIN performance_schema.session_connect_attrs a ON a.PROCESSLIST_ID = t.trx_mysql_thread_id
                WHERE a.ATTR_NAME = 'program_name' AND a.ATTR_VALUE = 'mysqldump' AND t.trx_mysql_thread_id > CONNECTION_ID() LIMIT 1`,
            );
            if (rows.length > 0) break;
            if (exited) return; // the dump failed before its snapshot: its own error says why
            if (Date.now() > deadline) {
              // Slowness, not a writer in the way: the dump is redone (a retry), writes never waited longer than dumpLockWait.
              throw ApplicationFailure.create({
                message: `cluster ${cluster.name}: mysqldump did not open its snapshot within ${wait} (dumpLockWait); writes to the dumped tables were let go again, the dump is retried`,
                type: Failure.DumpSlowStart,
                nonRetryable: false,
              });
            }
            await new Promise((r) => setTimeout(r, 20));
          }
        } finally {
          await unlockTables();
        }
      },
      close,
    };
  } catch (error) {
    await close();
    if (error instanceof ApplicationFailure) throw error;
    throw toFailure(error, cluster.name);
  }
}
