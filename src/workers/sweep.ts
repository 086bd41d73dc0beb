/**
 * What a killed worker can leave behind, removed when a worker starts: temporary folders
 * of its processes (defaults files, unpacked binlogs), backups' staging folders and drill
 * servers (MariaDB or MySQL) of runs that have ended, renamed-out backups in `.trash`, and restore accounts
 * (`dbops_r_…`) whose restore has ended. Only what dbops made, identified by its own marks,
 * and only when Temporal says the owning run is not running (if Temporal cannot answer,
 * nothing owned by a run is touched).
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { withTemporalClient } from '../temporal/client';
import { drillRoot, teardownSandbox, SANDBOX_OWNER } from '../mysql/drillServer';
import { withConnection } from '../mysql/connection';
import { restoreAccount } from '../mysql/restoreAccount';
import { layout, openRepository } from '../repository';
import type { DbopsConfig } from '../config/schema';
import { processAlive } from '../mysql/servers/local';
import { dropScopedAccount, listScopedAccounts, scopedAccountName } from '../mysql/restoreAccount';

export interface SweepReport {
  removed: string[];
  kept: string[];
  errors: string[];
}

const TEMP = /^dbops-(cred|replay|scan|find|fifo)-(\d+)-/;
const DAY_MS = 24 * 3600 * 1000;

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

async function owner(file: string): Promise<string | null> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as { workflowId?: unknown };
    return typeof parsed.workflowId === 'string' ? parsed.workflowId : null;
  } catch {
    return null;
  }
}

/** Workflow ids running on this worker's task queue; null when Temporal cannot answer. */
async function runningWorkflows(config: DbopsConfig): Promise<Set<string> | null> {
  try {
    return await withTemporalClient(config, async (client) => {
      const ids = new Set<string>();
      for await (const wf of client.workflow.list({ query: `ExecutionStatus = 'Running' AND TaskQueue = '${config.temporal.taskQueue.replace(/'/g, "\\'")}'` })) ids.add(wf.workflowId);
      return ids;
    });
  } catch {
    return null;
  }
}

export async function sweepLeftovers(config: DbopsConfig, logger: Logger, running?: Set<string> | null): Promise<SweepReport> {
  const report: SweepReport = { removed: [], kept: [], errors: [] };
  const remove = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      report.removed.push(what);
    } catch (error) {
      report.errors.push(`${what}: ${(error as Error).message}`);
    }
  };

  // 1. Temporary folders of processes that are gone.
  for (const name of await entries(tmpdir())) {
    const m = TEMP.exec(name);
    if (m && !processAlive(Number(m[2]))) await remove(path.join(tmpdir(), name), () => rm(path.join(tmpdir(), name), { recursive: true, force: true }));
  }

  const runs = running === undefined ? await runningWorkflows(config) : running;
  const { storage, catalog } = openRepository(config);
  for (const cluster of config.clusters) {
    // 2. Backups already moved out of the catalog.
    for (const id of await storage.children(layout.trashDir(cluster.name))) {
      if (layout.isBackupId(id)) await remove(layout.trash(cluster.name, id), () => storage.removeTree(layout.trash(cluster.name, id)));
    }
    // 3. Staging folders whose run has ended (unmarked ones after a day).
    for (const id of await storage.children(layout.stagingDir(cluster.name))) {
      if (!layout.isBackupId(id)) continue;
      const key = layout.staging(cluster.name, id);
      const by = (await catalog.ownerAt(key))?.workflowId ?? null;
      const modified = (await storage.stat(key))?.modified.getTime() ?? 0;
      const stale = by === null ? Date.now() - modified > DAY_MS : runs !== null && !runs.has(by);
      if (stale) await remove(key, () => storage.removeTree(key));
      else report.kept.push(key);
    }
    // 3b. The same for backups written in place (object stores) whose manifest never came.
    for (const id of await catalog.unpublished(cluster.name)) {
      const key = catalog.workKey(cluster.name, id);
      const by = (await catalog.stagingOwner(cluster.name, id))?.workflowId ?? null;
      const modified = (await storage.stat(layout.owner(key)))?.modified.getTime() ?? 0;
      const stale = by === null ? Date.now() - modified > DAY_MS : runs !== null && !runs.has(by);
      if (stale) await remove(key, () => catalog.removeStaging(cluster.name, id));
      else report.kept.push(key);
    }
  }
  if (runs === null) {
    report.errors.push(`Temporal at ${config.temporal.address} did not answer: drill servers and restore accounts are left for the next start`);
    logger.warn(report, 'swept leftovers (partly)');
    return report;
  }

  // 4. Drill servers whose drill has ended.
  for (const name of await entries(drillRoot())) {
    const dir = path.join(drillRoot(), name);
    const by = await owner(path.join(dir, SANDBOX_OWNER));
    if (by !== null && !runs.has(by)) await remove(dir, () => teardownSandbox(dir));
    else report.kept.push(dir);
  }

  // 5. Restore accounts whose restore has ended.
  const live = new Set([...runs].map(scopedAccountName));
  for (const cluster of config.clusters) {
    try {
      await withConnection(restoreAccount(cluster), async (conn) => {
        for (const account of await listScopedAccounts(conn)) {
          if (live.has(account.user)) continue;
          await remove(`${cluster.name}: account ${account.user}@${account.host}`, () => dropScopedAccount(conn, account));
        }
      });
    } catch (error) {
      report.errors.push(`${cluster.name}: ${(error as Error).message}`);
    }
  }
  if (report.removed.length > 0 || report.errors.length > 0) logger.info(report, 'swept leftovers of earlier runs');
  return report;
}
