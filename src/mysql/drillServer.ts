/**
 * The throwaway server of a DR drill, on the worker's host, of the product the drilled
 * backup was taken from (MariaDB or MySQL): provisioned in a private folder, restored
 * into, checked, and removed again by pid file and folder, also when the worker that
 * started it has died.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { BinlogArchiveSchema, SchemaChangeSchema, type ClusterConfig } from '../config/schema';
import type { Product } from '../domain/manifest';
import { processAlive } from './servers/local';
import { startMariadbSandbox } from './servers/mariadb';
import { mysqlToolPath, startMysqlSandbox } from './servers/mysql';
import { withConnection } from './connection';

/** Where the drill's server is: paths only (its passwords stay in 0600 files next to it). */
export interface DrillSandbox {
  baseDir: string;
  socket: string;
  pid: number;
  product: Product;
}

export function drillRoot(): string {
  return path.join(process.env.DBOPS_DRILL_DIR ?? tmpdir(), 'dbops-drills');
}

const ROOT_PASSWORD = path.join('secrets', 'root.password');
/** The file in a drill server's folder naming the run it belongs to (the sweeper removes servers whose run has ended). */
export const SANDBOX_OWNER = 'owner.json';
const CHECK_PASSWORD = path.join('secrets', 'check.password');

export function sandboxDir(drillId: string): string {
  return path.join(drillRoot(), drillId.replace(/[^A-Za-z0-9_.-]/g, '_'));
}

/**
 * A private server of `product` (see the servers' `private` option): no TCP, socket in a
 * 0700 folder, secure_file_priv an empty folder, not run as OS root, random root password;
 * no binlog and no event scheduler (restored events must not fire in the copy).
 */
export async function provisionSandbox(
  drillId: string,
  serverId: number,
  owner: { workflowId: string; runId: string } | undefined,
  product: Product,
  /** Fills the datadir with a restored copy (a physical backup) instead of a fresh install. */
  fill?: (datadir: string) => Promise<void>,
): Promise<DrillSandbox> {
  const baseDir = sandboxDir(drillId);
  await teardownSandbox(baseDir); // a retry starts from nothing
  // The drills' folder lets the server's OS user through to its own 0700 folder, and shows nobody what is in it.
  await mkdir(drillRoot(), { recursive: true, mode: 0o711 });
  await chmod(drillRoot(), 0o711);
  await mkdir(baseDir, { recursive: true, mode: 0o700 });
  if (owner) await writeFile(path.join(baseDir, SANDBOX_OWNER), JSON.stringify(owner), { mode: 0o600 });
  if (fill) await fill(path.join(baseDir, 'data'));
  const options = { baseDir, serverId, extraArgs: ['--skip-log-bin', '--event-scheduler=OFF'], private: true, restoredData: fill !== undefined };
  const server = product === 'mysql' ? await startMysqlSandbox(options) : await startMariadbSandbox(options);
  return { baseDir, socket: server.socket, pid: server.pid, product };
}

/**
 * Stops the server (SIGTERM, then SIGKILL) and removes its folder. Idempotent. Either
 * product writes its pid to mysqld.pid, and that pid is the server's own (the MySQL
 * wrappers exec down to mysqld), so signalling it stops the server, not a wrapper.
 */
export async function teardownSandbox(baseDir: string): Promise<{ stopped: boolean }> {
  const pidFile = path.join(baseDir, 'mysqld.pid');
  let stopped = false;
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (pid > 0 && processAlive(pid)) {
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + 20_000;
      while (processAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (processAlive(pid)) process.kill(pid, 'SIGKILL');
      while (processAlive(pid)) await new Promise((r) => setTimeout(r, 50));
      stopped = true;
    }
  }
  await rm(baseDir, { recursive: true, force: true });
  return { stopped };
}

/**
 * The sandbox as a cluster the restore code can use: root over the private socket, or the
 * read-only check account. Its tools are the source cluster's (they read that product's
 * dumps and binlogs); for MySQL, a tool the source leaves to the default is the wrapper
 * of the MySQL the sandbox runs on.
 */
export function sandboxCluster(sandbox: DrillSandbox, source: ClusterConfig, account: 'root' | 'check' = 'root'): ClusterConfig {
  const tools =
    sandbox.product === 'mysql'
      ? { dump: source.tools.dump ?? mysqlToolPath('mysqldump'), client: source.tools.client ?? mysqlToolPath('mysql'), binlog: source.tools.binlog ?? mysqlToolPath('mysqlbinlog') }
      : source.tools;
  return {
    name: `${source.name}-drill`,
    socket: sandbox.socket,
    port: 3306,
    user: account === 'root' ? 'root' : 'dbops_check',
    password: { file: path.join(sandbox.baseDir, account === 'root' ? ROOT_PASSWORD : CHECK_PASSWORD) },
    product: sandbox.product,
    tools,
    binlogArchive: BinlogArchiveSchema.parse({}),
    fullBackup: source.fullBackup,
    restoreLoad: source.restoreLoad,
    schemaChange: SchemaChangeSchema.parse({}),
    approvers: {},
    allowSelfApproval: [],
    statementTimeout: source.statementTimeout,
    dumpLockWait: source.dumpLockWait,
    replicaMaxLag: source.replicaMaxLag,
  };
}

/**
 * What a failed check may say in a report or a webhook: the server's error number and
 * code name, never its message (which can quote data: a row, a file's content).
 */
export function redactedError(error: unknown): string {
  const e = error as { errno?: number; code?: string };
  return typeof e.errno === 'number' ? `query failed: error ${e.errno}${e.code ? ` (${e.code})` : ''}` : 'query failed';
}

export async function countObjects(cluster: ClusterConfig, databases: string[]): Promise<{ routines: number; triggers: number; events: number; views: number }> {
  return withConnection(cluster, async (conn) => {
    const count = async (table: string, column: string) => {
      const [rows] = await conn.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM information_schema.${table} WHERE ${column} IN (?)`, [databases]);
      return Number(rows[0]?.n ?? 0);
    };
    return {
      routines: await count('ROUTINES', 'ROUTINE_SCHEMA'),
      triggers: await count('TRIGGERS', 'TRIGGER_SCHEMA'),
      events: await count('EVENTS', 'EVENT_SCHEMA'),
      views: await count('VIEWS', 'TABLE_SCHEMA'),
    };
  });
}
