/**
 * Reads a server's health for /metrics: SHOW GLOBAL STATUS and max_connections, the
 * sleeping and running sessions, SHOW REPLICA STATUS (SHOW SLAVE STATUS on MySQL before
 * 8.0.22). The cluster's own read-only account suffices
 * (PROCESS; REPLICA MONITOR on MariaDB, REPLICATION CLIENT on MySQL).
 */
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import type { ClusterConfig } from '../config/schema';
import { parseReplicaStatus, variables, type ServerHealth } from '../domain/health';
import { connectionOptions, replicaStatusRows } from './connection';

export async function readServerHealth(cluster: ClusterConfig, timeoutMs = 5000): Promise<ServerHealth> {
  const conn = await createConnection({ ...connectionOptions(cluster), connectTimeout: timeoutMs });
  try {
    const q = async (sql: string) => (await conn.query<RowDataPacket[]>({ sql, timeout: timeoutMs }))[0];
    const status = variables(await q("SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected', 'Threads_running', 'Aborted_connects')"));
    const vars = variables(await q("SHOW GLOBAL VARIABLES WHERE Variable_name = 'max_connections'"));
    const sessions = await q("SELECT SUM(COMMAND = 'Sleep') AS sleeping FROM information_schema.PROCESSLIST");
    const replica = await replicaStatusRows(conn);
    return {
      connections: Number(status.get('threads_connected') ?? 0),
      running: Number(status.get('threads_running') ?? 0),
      abortedConnects: Number(status.get('aborted_connects') ?? 0),
      maxConnections: Number(vars.get('max_connections') ?? 0),
      sleeping: Number(sessions[0]?.sleeping ?? 0),
      replica: parseReplicaStatus(replica[0]),
    };
  } finally {
    await conn.end().catch(() => undefined);
  }
}
