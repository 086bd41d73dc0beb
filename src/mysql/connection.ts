/** Activities and helpers that talk SQL to a configured cluster (one resource: the server). */
import { createConnection, type Connection, type ConnectionOptions, type RowDataPacket } from 'mysql2/promise';
import { ConfigError } from '../config/load';
import type { ClusterConfig } from '../config/schema';
import { resolveSecret } from '../config/secrets';
import { SYSTEM_DATABASES } from '../domain/identifiers';
import type { Product, ServerIdentity } from '../domain/manifest';
import { ApplicationFailure } from '@temporalio/common';
import { Failure } from '../domain/failures';
import { toFailure } from './errors';
import { durationSeconds } from '../domain/duration';
import { parseReplicaStatus, replicaBackupRefusal, type ReplicaHealth } from '../domain/health';

export function connectionOptions(cluster: ClusterConfig): ConnectionOptions {
  const password = cluster.password ? resolveSecret(cluster.password, `clusters.${cluster.name}.password`) : undefined;
  return {
    ...(cluster.socket ? { socketPath: cluster.socket } : { host: cluster.host, port: cluster.port }),
    user: cluster.user,
    ...(password !== undefined ? { password } : {}),
    connectTimeout: 10_000,
    multipleStatements: false,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
  };
}

/**
 * Every session dbops opens on a server has a time limit (the cluster's statementTimeout):
 * MariaDB's max_statement_time covers every statement, MySQL's max_execution_time reads.
 */
export async function limitStatements(conn: Connection, cluster: Pick<ClusterConfig, 'statementTimeout'>): Promise<void> {
  const seconds = Math.max(1, Math.round(durationSeconds(cluster.statementTimeout ?? '1h')));
  const [rows] = await conn.query<RowDataPacket[]>('SELECT @@version AS v, @@version_comment AS c');
  const mariadb = /mariadb/i.test(`${String(rows[0]?.v ?? '')} ${String(rows[0]?.c ?? '')}`);
  if (mariadb) await conn.query('SET SESSION max_statement_time = ?', [seconds]);
  else await conn.query('SET SESSION max_execution_time = ?', [seconds * 1000]);
}

/** The client session option that sets the same limit (for the mysql / mariadb client a restore pipes into). */
export function statementLimitInit(product: Product, cluster: Pick<ClusterConfig, 'statementTimeout'>): string {
  const seconds = Math.max(1, Math.round(durationSeconds(cluster.statementTimeout ?? '1h')));
  return product === 'mariadb' ? `SESSION max_statement_time=${seconds}` : `SESSION max_execution_time=${seconds * 1000}`;
}

export async function withConnection<T>(cluster: ClusterConfig, fn: (conn: Connection) => Promise<T>, options: { rawErrors?: boolean } = {}): Promise<T> {
  let conn: Connection | undefined;
  try {
    conn = await createConnection(connectionOptions(cluster));
    await limitStatements(conn, cluster);
    return await fn(conn);
  } catch (error) {
    if (options.rawErrors) throw error;
    throw toFailure(error, cluster.name);
  } finally {
    await conn?.end().catch(() => undefined);
  }
}

export interface ClusterInspection {
  server: ServerIdentity;
  /** The databases a backup of this cluster covers now (config, or every user database). */
  databases: string[];
  objects: { routines: number; triggers: number; events: number; views: number };
  logBin: boolean;
  /** On a replica: why a backup of it is refused now (broken, too far behind, not logging what it applies); null otherwise. */
  replicaRefusal: string | null;
}

function detectProduct(version: string, versionComment: string): Product {
  return /mariadb/i.test(version) || /mariadb/i.test(versionComment) ? 'mariadb' : 'mysql';
}

const sessionProducts = new WeakMap<Connection, Product>();

/** The product on the other end of a session (asked once per session). */
export async function productOf(conn: Connection): Promise<Product> {
  const known = sessionProducts.get(conn);
  if (known) return known;
  const [rows] = await conn.query<RowDataPacket[]>('SELECT @@version AS v, @@version_comment AS c');
  const product = detectProduct(String(rows[0]?.v ?? ''), String(rows[0]?.c ?? ''));
  sessionProducts.set(conn, product);
  return product;
}

/** EXPLAIN as a table of rows (MySQL 9 explains as a tree by default; MariaDB knows only the table). */
export async function explainRows(conn: Connection, sql: string, params: unknown[] = []): Promise<RowDataPacket[]> {
  const format = (await productOf(conn)) === 'mysql' ? 'FORMAT=TRADITIONAL ' : '';
  const [rows] = await conn.query<RowDataPacket[]>(`EXPLAIN ${format}${sql}`, params);
  return rows;
}

async function scalarRows(conn: Connection, sql: string, params: unknown[] = []): Promise<RowDataPacket[]> {
  const [rows] = await conn.query<RowDataPacket[]>(sql, params);
  return rows;
}

export async function inspectClusterWith(conn: Connection, cluster: ClusterConfig): Promise<ClusterInspection> {
  const [vars] = await scalarRows(
    conn,
    `SELECT @@version AS version, @@version_comment AS comment, @@server_id AS serverId, @@hostname AS hostname,
            @@log_bin AS logBin, @@binlog_format AS binlogFormat`,
  );
  const version = String(vars?.version ?? '');
  const product = cluster.product ?? detectProduct(version, String(vars?.comment ?? ''));
  let serverUuid: string | null = null;
  let gtidMode: string | null = null;
  if (product === 'mysql') {
    const [m] = await scalarRows(conn, 'SELECT @@server_uuid AS uuid, @@gtid_mode AS gtidMode');
    serverUuid = m?.uuid ? String(m.uuid) : null;
    gtidMode = m?.gtidMode ? String(m.gtidMode) : null;
  } else {
    const [m] = await scalarRows(conn, 'SELECT @@gtid_strict_mode AS strict, @@gtid_domain_id AS domain');
    gtidMode = `domain ${String(m?.domain ?? 0)}${Number(m?.strict) === 1 ? ', strict' : ''}`;
  }

  const visible = (await scalarRows(conn, 'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME')).map((r) =>
    String(r.name),
  );
  let databases: string[];
  if (cluster.databases) {
    const missing = cluster.databases.filter((d) => !visible.includes(d));
    if (missing.length > 0) {
      throw new ConfigError(
        `clusters.${cluster.name}.databases: ${missing.join(', ')} not found on the server (or not visible to ${cluster.user}); visible: ${visible.join(', ')}`,
      );
    }
    databases = [...cluster.databases];
  } else {
    databases = visible.filter((d) => !SYSTEM_DATABASES.includes(d));
  }

  const placeholders = databases.map(() => '?').join(',') || "''";
  const count = async (sql: string): Promise<number> => Number((await scalarRows(conn, sql, databases))[0]?.n ?? 0);
  const objects = {
    routines: await count(`SELECT COUNT(*) AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA IN (${placeholders})`),
    triggers: await count(`SELECT COUNT(*) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN (${placeholders})`),
    events: await count(`SELECT COUNT(*) AS n FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN (${placeholders})`),
    views: await count(`SELECT COUNT(*) AS n FROM information_schema.VIEWS WHERE TABLE_SCHEMA IN (${placeholders})`),
  };

  const replication = await replicaOf(conn, product);
  return {
    server: {
      product,
      version,
      serverId: Number(vars?.serverId ?? 0),
      serverUuid,
      hostname: String(vars?.hostname ?? ''),
      binlogFormat: vars?.binlogFormat ? String(vars.binlogFormat) : null,
      gtidMode,
      replicaOf: replication ? { source: replication.replica.source, lagSeconds: replication.replica.lagSeconds } : null,
    },
    databases,
    objects,
    logBin: Number(vars?.logBin) === 1,
    replicaRefusal: replication ? replicaBackupRefusal(replication.replica, replication.logsReplicatedWrites, durationSeconds(cluster.replicaMaxLag ?? '5m')) : null,
  };
}

/**
 * Whether the server replicates, and whether it logs what it applies. The backup account
 * reads it with REPLICA MONITOR (MariaDB) / REPLICATION CLIENT (MySQL); without it the
 * server is taken for a source, as before.
 */
export async function replicaOf(conn: Connection, product: Product): Promise<{ replica: ReplicaHealth; logsReplicatedWrites: boolean } | null> {
  let rows: RowDataPacket[];
  try {
    rows = await replicaStatusRows(conn);
  } catch (error) {
    if ((error as { errno?: number }).errno === 1227) return null; // access denied
    throw error;
  }
  const replica = parseReplicaStatus(rows[0]);
  if (!replica) return null;
  let logs: RowDataPacket[];
  try {
    [logs] = await conn.query<RowDataPacket[]>(product === 'mysql' ? 'SELECT @@log_replica_updates AS on_' : 'SELECT @@log_slave_updates AS on_');
  } catch (error) {
    if ((error as { errno?: number }).errno !== 1193) throw error; // MySQL before 8.0.26
    [logs] = await conn.query<RowDataPacket[]>('SELECT @@log_slave_updates AS on_');
  }
  return { replica, logsReplicatedWrites: Number(logs[0]?.on_) === 1 };
}

/** SHOW REPLICA STATUS, or SHOW SLAVE STATUS where the server is older than the word (MySQL before 8.0.22). */
export async function replicaStatusRows(conn: Connection): Promise<RowDataPacket[]> {
  try {
    return (await conn.query<RowDataPacket[]>('SHOW REPLICA STATUS'))[0];
  } catch (error) {
    if ((error as { errno?: number }).errno !== 1064) throw error;
    return (await conn.query<RowDataPacket[]>('SHOW SLAVE STATUS'))[0];
  }
}

/** Closes the current binary log (so everything up to now is in closed files) and lists them. */
export async function flushAndListBinlogsWith(conn: Connection): Promise<Array<{ name: string; size: number }>> {
  await conn.query('FLUSH BINARY LOGS');
  const [rows] = await conn.query<RowDataPacket[]>('SHOW BINARY LOGS');
  return rows.map((r) => ({ name: String(r.Log_name), size: Number(r.File_size) }));
}

/** Where the server is writing now (and its executed GTID set, for MySQL). */
export async function currentBinlogPosition(conn: Connection): Promise<{ file: string; position: number; gtidSet: string | null }> {
  let rows: RowDataPacket[];
  try {
    [rows] = await conn.query<RowDataPacket[]>('SHOW BINARY LOG STATUS');
  } catch (error) {
    if ((error as { errno?: number }).errno !== 1064) throw error;
    [rows] = await conn.query<RowDataPacket[]>('SHOW MASTER STATUS'); // MySQL before 8.2
  }
  const r = rows[0];
  if (!r?.File) throw ApplicationFailure.nonRetryable('binary logging is off on this server: a point-in-time chain needs log_bin', Failure.Config);
  const gtid = String(r.Executed_Gtid_Set ?? '').replace(/\s+/g, '');
  return { file: String(r.File), position: Number(r.Position), gtidSet: gtid === '' ? null : gtid };
}

/** The server's binary logs, oldest first, without closing the current one. */
export async function listBinlogsWith(conn: Connection): Promise<Array<{ name: string; size: number }>> {
  const [rows] = await conn.query<RowDataPacket[]>('SHOW BINARY LOGS');
  return rows.map((r) => ({ name: String(r.Log_name), size: Number(r.File_size) }));
}
