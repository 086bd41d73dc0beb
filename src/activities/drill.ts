/**
 * The throwaway server of a DR drill, on the worker's host: provisioned in a private
 * folder, restored into, checked, and removed again by pid file and folder, also when
 * the worker that started it has died.
 */
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import type { ClusterConfig } from '../config/schema';
import { processAlive, startMariadbSandbox } from '../sandbox/mariadb';
import { withConnection } from './mysql';

export interface DrillSandbox {
  baseDir: string;
  socket: string;
  port: number;
  pid: number;
}

export function drillRoot(): string {
  return path.join(process.env.DBOPS_DRILL_DIR ?? tmpdir(), 'dbops-drills');
}

export function sandboxDir(drillId: string): string {
  return path.join(drillRoot(), drillId.replace(/[^A-Za-z0-9_.-]/g, '_'));
}

export async function provisionSandbox(drillId: string, serverId: number): Promise<DrillSandbox> {
  const baseDir = sandboxDir(drillId);
  await teardownSandbox(baseDir); // a retry starts from nothing
  const server = await startMariadbSandbox({ baseDir, serverId, extraArgs: ['--skip-log-bin'] });
  return { baseDir, socket: server.socket, port: server.port, pid: server.pid };
}

/** Stops the server (SIGTERM, then SIGKILL) and removes its folder. Idempotent. */
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

/** The sandbox as a cluster the restore code can use (root over the private socket). */
export function sandboxCluster(sandbox: DrillSandbox, source: ClusterConfig): ClusterConfig {
  return { name: `${source.name}-drill`, socket: sandbox.socket, port: sandbox.port, user: 'root', tools: source.tools, approvers: {} };
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
