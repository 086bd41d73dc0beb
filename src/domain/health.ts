/**
 * A server's health as the worker reads it at scrape time: connections against
 * max_connections, sleeping ones (a connection leak shows here first), aborted connects,
 * and, on a replica, its threads, lag and last error. Pure: the rows SHOW REPLICA STATUS
 * returns in either product's column names, turned into one shape.
 */

export interface ReplicaHealth {
  /** Where it replicates from, host:port. */
  source: string;
  ioRunning: boolean;
  sqlRunning: boolean;
  /** Seconds behind the source; null while the server cannot say (a thread stopped). */
  lagSeconds: number | null;
  /** The last IO or SQL error number (0: none). Its message is not kept: it can quote row values. */
  lastErrno: number;
}

export interface ServerHealth {
  connections: number;
  maxConnections: number;
  sleeping: number;
  running: number;
  abortedConnects: number;
  /** null: this server is no replica. */
  replica: ReplicaHealth | null;
}

const text = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
const number = (v: unknown): number | null => (v === null || v === undefined || v === '' || !Number.isFinite(Number(v)) ? null : Number(v));

/** The first of the columns that exists (MySQL 8.0.22+ Replica_/Source_, MariaDB Slave_/Master_). */
function column(row: Record<string, unknown>, ...names: string[]): unknown {
  for (const n of names) if (n in row) return row[n];
  return undefined;
}

/** One row of SHOW REPLICA STATUS (null when the server is no replica). */
export function parseReplicaStatus(row: Record<string, unknown> | undefined): ReplicaHealth | null {
  if (!row) return null;
  const io = text(column(row, 'Replica_IO_Running', 'Slave_IO_Running'));
  const sql = text(column(row, 'Replica_SQL_Running', 'Slave_SQL_Running'));
  const ioErrno = number(row.Last_IO_Errno) ?? 0;
  const sqlErrno = number(row.Last_SQL_Errno) ?? 0;
  return {
    source: `${text(column(row, 'Source_Host', 'Master_Host'))}:${text(column(row, 'Source_Port', 'Master_Port'))}`,
    ioRunning: io === 'Yes',
    sqlRunning: sql === 'Yes',
    lagSeconds: number(column(row, 'Seconds_Behind_Source', 'Seconds_Behind_Master')),
    lastErrno: sqlErrno !== 0 ? sqlErrno : ioErrno,
  };
}

/** SHOW GLOBAL STATUS / VARIABLES rows (Variable_name, Value) as a map. */
export function variables(rows: ReadonlyArray<Record<string, unknown>>): Map<string, string> {
  return new Map(rows.map((r) => [text(r.Variable_name).toLowerCase(), text(r.Value)]));
}

/** Why a replica should not be backed up or trusted now; null when it is healthy and close enough. */
export function replicaProblem(replica: ReplicaHealth, maxLagSeconds: number): string | null {
  if (!replica.ioRunning || !replica.sqlRunning) {
    const stopped = [!replica.ioRunning ? 'IO' : '', !replica.sqlRunning ? 'SQL' : ''].filter(Boolean).join(' and ');
    // The number only: the server's message often quotes the failing row's values.
    return `its ${stopped} thread is not running${replica.lastErrno ? ` (error ${replica.lastErrno}; SHOW REPLICA STATUS on the replica says more)` : ''}`;
  }
  if (replica.lagSeconds === null) return 'it cannot say how far behind its source it is';
  if (replica.lagSeconds > maxLagSeconds) return `it is ${replica.lagSeconds} s behind its source (more than ${maxLagSeconds} s)`;
  return null;
}

/**
 * Why a backup must not be taken from this replica now, or null. A replica that stopped
 * applying, or lags more than the cluster allows, holds an older state than its source
 * says; one that does not log what it applies (log_slave_updates / log_replica_updates
 * off) has binary logs without its source's writes, so its chain cannot replay them.
 */
export function replicaBackupRefusal(replica: ReplicaHealth, logsReplicatedWrites: boolean, maxLagSeconds: number): string | null {
  const problem = replicaProblem(replica, maxLagSeconds);
  if (problem) return `this server is a replica of ${replica.source} and ${problem}: a backup of it would not hold what the source holds. Fix replication (SHOW REPLICA STATUS) or back up the source`;
  if (!logsReplicatedWrites) return `this server is a replica of ${replica.source} that does not write what it applies to its own binary log (log_slave_updates / log_replica_updates is off), so its binlog chain would miss the source's writes: turn it on, or back up the source`;
  return null;
}
