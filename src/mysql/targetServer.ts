/**
 * A server a whole instance is restored onto (`restoreTargets` in the config): who it is,
 * what it holds, and which of its databases dbops put there. dbops writes only onto a
 * target that is empty or holds nothing but databases its own restores created; it
 * records each database it is about to create in `dbops_owner.restored` on the target
 * BEFORE creating it, so a retry (or the next restore) knows the database is its own.
 */
import type { RowDataPacket } from 'mysql2/promise';
import { BinlogArchiveSchema, SchemaChangeSchema, type ClusterConfig, type RestoreTargetServer } from '../config/schema';
import { quoteIdentifier, SYSTEM_DATABASES } from '../domain/identifiers';
import type { Product, ServerIdentity } from '../domain/manifest';
import { inspectClusterWith, withConnection } from './connection';

export const OWNER_DATABASE = 'dbops_owner';

/** The target as a cluster the restore code can use (its own account; the source's tools unless it names its own). */
export function targetCluster(target: RestoreTargetServer, source: ClusterConfig): ClusterConfig {
  return {
    name: target.name,
    ...(target.host !== undefined ? { host: target.host } : {}),
    ...(target.socket !== undefined ? { socket: target.socket } : {}),
    port: target.port,
    user: target.user,
    ...(target.password ? { password: target.password } : {}),
    tools: target.tools ?? source.tools,
    approvers: {},
    allowSelfApproval: [],
    statementTimeout: source.statementTimeout,
    dumpLockWait: source.dumpLockWait,
    replicaMaxLag: source.replicaMaxLag,
    binlogArchive: BinlogArchiveSchema.parse({}),
    fullBackup: source.fullBackup,
    restoreLoad: source.restoreLoad,
    schemaChange: SchemaChangeSchema.parse({}),
  };
}

export interface TargetInspection {
  server: ServerIdentity;
  /** User databases on the target (system schemas and dbops_owner left out). */
  databases: string[];
  /** Databases dbops_owner says a dbops restore of this source cluster created; null when the target was never claimed. */
  owned: string[] | null;
}

/** `source`: only databases restored from this cluster count as dbops's own here. */
export async function inspectTarget(cluster: ClusterConfig, source: string): Promise<TargetInspection> {
  return withConnection(cluster, async (conn) => {
    const inspection = await inspectClusterWith(conn, cluster);
    const [rows] = await conn.query<RowDataPacket[]>('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME');
    const all = rows.map((r) => String(r.name));
    const databases = all.filter((d) => !SYSTEM_DATABASES.includes(d) && d !== OWNER_DATABASE);
    let owned: string[] | null = null;
    if (all.includes(OWNER_DATABASE)) {
      const [claimed] = await conn
        .query<RowDataPacket[]>(`SELECT database_name AS name FROM ${OWNER_DATABASE}.restored WHERE cluster = ? ORDER BY database_name`, [source])
        .catch(() => [[] as RowDataPacket[]]);
      owned = claimed.map((r) => String(r.name));
    }
    return { server: inspection.server, databases, owned };
  });
}

/** What stands in the way of restoring `databases` onto the target: databases it holds that dbops did not put there. */
export function foreignDatabases(t: Pick<TargetInspection, 'databases' | 'owned'>): string[] {
  const owned = new Set(t.owned ?? []);
  return t.databases.filter((d) => !owned.has(d));
}

/** Records that a dbops restore (this run) is creating these databases on the target, before it does. */
export async function claimDatabases(cluster: ClusterConfig, source: string, run: string, databases: readonly string[]): Promise<void> {
  await withConnection(cluster, async (conn) => {
    await conn.query(`CREATE DATABASE IF NOT EXISTS ${OWNER_DATABASE}`);
    await conn.query(
      `CREATE TABLE IF NOT EXISTS ${OWNER_DATABASE}.restored (database_name VARCHAR(64) PRIMARY KEY, cluster VARCHAR(64) NOT NULL, workflow_id VARCHAR(255) NOT NULL, restored_at DATETIME(3) NOT NULL)`,
    );
    for (const d of databases) {
      await conn.query(
        `INSERT INTO ${OWNER_DATABASE}.restored (database_name, cluster, workflow_id, restored_at) VALUES (?, ?, ?, UTC_TIMESTAMP(3))
         ON DUPLICATE KEY UPDATE cluster = VALUES(cluster), workflow_id = VALUES(workflow_id), restored_at = VALUES(restored_at)`,
        [d, source, run],
      );
    }
  });
}

/** Drops a database only if dbops_owner says a dbops restore created it. */
export async function dropOwnedDatabase(cluster: ClusterConfig, source: string, database: string): Promise<boolean> {
  const t = await inspectTarget(cluster, source);
  if (!(t.owned ?? []).includes(database)) return false;
  await withConnection(cluster, (conn) => conn.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(database)}`));
  return true;
}

export function productName(p: Product): string {
  return p === 'mysql' ? 'MySQL' : 'MariaDB';
}
