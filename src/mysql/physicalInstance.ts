/**
 * A physical full (and its physical incrementals) restored to a datadir for a new server:
 * unpacked and prepared into `<dir>/data`, started privately with the copy's own accounts
 * kept (the restore comes in as an account of its own, made by an init file), each
 * database replayed to the point, that account dropped, the server shut down cleanly.
 * What is left is a datadir an operator starts with their own configuration.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { ClusterConfig } from '../config/schema';
import { Failure } from '../domain/failures';
import type { Product } from '../domain/manifest';
import type { RestorePlan } from '../domain/restorePlan';
import type { Storage } from '../repository/storage';
import { withConnection } from './connection';
import { sandboxCluster } from './drillServer';
import { restorePhysicalFiles, type PhysicalSource } from './physicalRestore';
import { replayIntoRestoredInstance, type ReplayReached } from './restore';
import { startMariadbSandbox } from './servers/mariadb';
import { startMysqlSandbox } from './servers/mysql';
import { verifyDatabase, type TableVerification } from './verify';

const OWNER = 'owner.json';
const RESTORE_USER = 'dbops_restore_tmp';

export interface PhysicalInstanceRequest {
  cluster: ClusterConfig;
  product: Product;
  /** The restore's own folder (physicalRestores.dir/name): absent, or left by an earlier attempt of this run. */
  dir: string;
  run: { workflowId: string; runId: string };
  source: PhysicalSource;
  plans: RestorePlan[];
  storage: Storage;
  backups: Storage;
  onProgress: (p: { phase: string; bytes: number }) => void;
  signal?: AbortSignal;
}

export interface PhysicalInstanceResult {
  datadir: string;
  databases: Array<{ database: string; reached: ReplayReached; tables: TableVerification[] }>;
  /** The uid the restored files belong to (the private server ran as it): chown them to the new server's user. */
  ownerUid: number;
  durationMs: { files: number; replay: number };
}

/** Whose is the folder: nobody's yet, this run's (a retry starts it over), or someone else's (refused). */
function folderState(dir: string, workflowId: string): 'absent' | 'ours' | 'foreign' {
  if (!existsSync(dir)) return 'absent';
  try {
    const owner = JSON.parse(readFileSync(path.join(dir, OWNER), 'utf8')) as { workflowId?: unknown };
    return owner.workflowId === workflowId ? 'ours' : 'foreign';
  } catch {
    return 'foreign';
  }
}

export async function restorePhysicalInstance(req: PhysicalInstanceRequest): Promise<PhysicalInstanceResult> {
  const state = folderState(req.dir, req.run.workflowId);
  if (state === 'foreign') {
    throw ApplicationFailure.nonRetryable(`${req.dir} already exists and is not this restore's: pick another --name, or remove it`, Failure.InvalidInput);
  }
  // The restores' folder, when dbops makes it, lets the private server's OS user through to its own 0700 folder.
  const parent = path.dirname(req.dir);
  if (!existsSync(parent)) {
    await mkdir(parent, { recursive: true });
    await chmod(parent, 0o711);
  }
  // A retry starts over: the replay cannot resume in place.
  await rm(req.dir, { recursive: true, force: true });
  await mkdir(req.dir, { recursive: true, mode: 0o700 });
  await writeFile(path.join(req.dir, OWNER), JSON.stringify(req.run), { mode: 0o600 });
  const datadir = path.join(req.dir, 'data');
  const started = Date.now();
  await restorePhysicalFiles({ source: req.source, storage: req.backups, datadir, onProgress: req.onProgress, ...(req.signal ? { signal: req.signal } : {}) });
  const files = Date.now() - started;

  const password = randomBytes(24).toString('base64url');
  const options = {
    baseDir: req.dir,
    serverId: 990,
    private: true,
    restoredData: true,
    restoredAdmin: { user: RESTORE_USER, password },
    extraArgs: ['--skip-log-bin', '--event-scheduler=OFF'],
  };
  req.onProgress({ phase: 'starting the restored server', bytes: 0 });
  const server = req.product === 'mysql' ? await startMysqlSandbox(options) : await startMariadbSandbox(options);
  const passwordFile = path.join(req.dir, 'secrets', 'restore.password');
  const replayStarted = Date.now();
  const databases: PhysicalInstanceResult['databases'] = [];
  try {
    await writeFile(passwordFile, password + '\n', { mode: 0o600 });
    const base = sandboxCluster({ baseDir: req.dir, socket: server.socket, pid: server.pid, product: req.product }, req.cluster);
    const restored: ClusterConfig = { ...base, name: `${req.cluster.name}-physical`, user: RESTORE_USER, password: { file: passwordFile } };
    for (const plan of req.plans) {
      req.onProgress({ phase: `replaying ${plan.database}`, bytes: 0 });
      const r = await replayIntoRestoredInstance({ cluster: restored, product: req.product, storage: req.storage, backups: req.backups, plan, marker: req.run.workflowId, scratch: true, onProgress: req.onProgress, ...(req.signal ? { signal: req.signal } : {}) });
      databases.push({ database: plan.database, reached: r.replay, tables: await verifyDatabase(restored, plan.database) });
    }
    // The copy leaves as it came: its own accounts, none of the restore's.
    await withConnection(restored, (conn) => conn.query(`DROP USER '${RESTORE_USER}'@'localhost'`));
  } finally {
    await server.stop();
    await rm(path.join(req.dir, 'secrets'), { recursive: true, force: true });
    await rm(path.join(req.dir, 'files'), { recursive: true, force: true });
  }
  return { datadir, databases, ownerUid: statSync(datadir).uid, durationMs: { files, replay: Date.now() - replayStarted } };
}
