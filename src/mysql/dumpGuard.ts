/**
 * Keeps a full backup from stalling the server's writes. MySQL's mysqldump reads its
 * consistent binlog position under FLUSH TABLES WITH READ LOCK: a moment when all is well,
 * but that lock waits behind any running query, and every new write queues behind it. So:
 *   - before the dump, a query running longer than dumpGuard.longQuery refuses the dump at
 *     once, naming the query (the long-query guard mydumper has);
 *   - the dump's session gives up on the lock after dumpGuard.lockWait (lock_wait_timeout),
 *     and the failure names the query it waited behind;
 *   - MySQL: LOCK INSTANCE FOR BACKUP (with BACKUP_ADMIN) for the dump's duration, so no DDL
 *     can break the dump's snapshot; without the privilege the dump runs without it.
 * MariaDB's dump reads the position from the snapshot itself (no global lock); the
 * long-query check still runs, for one rule on both products.
 */
import { ApplicationFailure } from '@temporalio/common';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import type { ClusterConfig } from '../config/schema';
import { durationSeconds } from '../domain/duration';
import { Failure } from '../domain/failures';
import type { Product } from '../domain/manifest';
import { connectionOptions, limitStatements } from './connection';
import { toFailure } from './errors';

export interface RunningQuery {
  id: number;
  user: string;
  seconds: number;
  query: string;
}

/** The longest-running query of another session (replication and event threads aside). */
export async function longestRunningQuery(conn: Connection): Promise<RunningQuery | null> {
  const [rows] = await conn.query<RowDataPacket[]>(
    `SELECT ID AS id, USER AS user, TIME AS seconds, LEFT(INFO, 200) AS query FROM information_schema.PROCESSLIST
      WHERE COMMAND = 'Query' AND ID <> CONNECTION_ID() AND INFO IS NOT NULL
        AND USER NOT IN ('system user', 'event_scheduler') ORDER BY TIME DESC LIMIT 1`,
  );
  const r = rows[0];
  return r ? { id: Number(r.id), user: String(r.user), seconds: Number(r.seconds), query: String(r.query).replace(/\s+/g, ' ') } : null;
}

function describe(q: RunningQuery): string {
  return `query ${q.id} of ${q.user} has been running for ${q.seconds} s: ${q.query}`;
}

export interface DumpGuard {
  /** MySQL: held LOCK INSTANCE FOR BACKUP (null on MariaDB). */
  instanceLock: boolean | null;
  /** The dump's lock wait timed out: say what it waited behind. */
  explainLockWait(): Promise<string>;
  release(): Promise<void>;
}

/** The mysqldump option that bounds its wait for the global read lock. */
export function lockWaitInit(cluster: Pick<ClusterConfig, 'dumpGuard'>): string {
  return `--init-command=SET SESSION lock_wait_timeout=${Math.max(1, Math.round(durationSeconds(cluster.dumpGuard.lockWait)))}`;
}

export async function openDumpGuard(cluster: ClusterConfig, product: Product): Promise<DumpGuard> {
  let conn: Connection;
  try {
    conn = await createConnection(connectionOptions(cluster));
    await limitStatements(conn, cluster);
  } catch (error) {
    throw toFailure(error, cluster.name);
  }
  try {
    const bound = durationSeconds(cluster.dumpGuard.longQuery);
    const longest = await longestRunningQuery(conn);
    if (longest && longest.seconds >= bound) {
      throw ApplicationFailure.nonRetryable(
        `cluster ${cluster.name}: not dumping now, ${describe(longest)}; the dump's global read lock would wait behind it while every write waits behind the lock. ` +
          `Let it finish (or kill it) and back up again; clusters[].dumpGuard.longQuery (${cluster.dumpGuard.longQuery}) sets the bound`,
        Failure.DumpBlocked,
      );
    }
    let instanceLock: boolean | null = null;
    if (product === 'mysql') {
      instanceLock = await conn.query('LOCK INSTANCE FOR BACKUP').then(
        () => true,
        (error: { errno?: number }) => {
          if (error.errno === 1227) return false; // no BACKUP_ADMIN: dump without it
          throw error;
        },
      );
    }
    return {
      instanceLock,
      explainLockWait: async () => {
        const blocker = await longestRunningQuery(conn).catch(() => null);
        return (
          `cluster ${cluster.name}: the dump gave up waiting ${cluster.dumpGuard.lockWait} for its global read lock (so writes were held no longer than that)` +
          `${blocker ? `; ${describe(blocker)}` : ''}. Back up again when it is done; clusters[].dumpGuard.lockWait sets the wait`
        );
      },
      release: async () => {
        if (instanceLock) await conn.query('UNLOCK INSTANCE').catch(() => undefined);
        await conn.end().catch(() => undefined);
      },
    };
  } catch (error) {
    await conn.end().catch(() => undefined);
    if (error instanceof ApplicationFailure) throw error;
    throw toFailure(error, cluster.name);
  }
}
