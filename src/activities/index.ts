/**
 * The activities a worker registers, bound to the worker's configuration. Workflows pass
 * names (cluster, backup id); credentials and paths are resolved here, at run time.
 * Each activity touches one resource and is safe to retry.
 */
import { Context } from '@temporalio/activity';
import { Client, Connection } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import { findCluster } from '../config/load';
import type { DbopsConfig } from '../config/schema';
import { describeDumpProgress } from '../domain/buildManifest';
import { planBinlogBackup, type BinlogPlan, type ServerBinlog } from '../domain/chain';
import type { BinlogFacts } from '../domain/binlogScanner';
import type { Artifact, Manifest, ManifestDraft, Product, ServerIdentity } from '../domain/manifest';
import { formatBytes } from '../domain/naming';
import { binlogToolName, copyBinlogFiles } from './binlog';
import { runDump, toolVersion, type DumpResult } from './dump';
import { toFailure } from './errors';
import { flushAndListBinlogsWith, inspectClusterWith, withConnection, type ClusterInspection } from './mysql';
import { LocalRepository, readChainState, RepositoryLocks, writeChainState, type LockHolder, type VerifyDepth } from './repository';
import { findTool } from './tools';

export interface DumpFullInput {
  cluster: string;
  backupId: string;
  databases: string[];
  product: Product;
  gtid: boolean;
  schemaOnly?: boolean;
}

export interface PublishInput {
  draft: ManifestDraft;
  relativePath: string;
  /** `stored` where the producing activity already decompressed the artifact from disk (dumps). */
  verify: VerifyDepth;
}

export interface CopyBinlogsInput {
  cluster: string;
  backupId: string;
  product: Product;
  files: ServerBinlog[];
  startPosition: number;
}

export interface CopyBinlogsResult {
  copied: Array<{ artifact: Artifact; facts: BinlogFacts; file: string }>;
  tool: { name: string; version: string };
}

export interface BinlogPlanResult {
  plan: BinlogPlan;
  server: ServerIdentity;
}

/** The workflow run this activity works for (lock ownership, alert attribution). */
function currentRun(): { workflowId: string; runId: string } {
  const run = Context.current().info.workflowExecution;
  if (!run) throw ApplicationFailure.nonRetryable('this activity must run inside a workflow', 'InvalidInput');
  return run;
}

export function createActivities(config: DbopsConfig, logger: Logger) {
  const repository = new LocalRepository(config.repository.path);
  const locks = new RepositoryLocks(repository);
  const cluster = (name: string) => {
    try {
      return findCluster(config, name);
    } catch (error) {
      throw toFailure(error, name);
    }
  };
  const compression = {
    compression: config.repository.compression,
    ...(config.repository.compressionLevel !== undefined ? { compressionLevel: config.repository.compressionLevel } : {}),
  };

  /** Asks Temporal whether a lock's holder still runs (stale lock take-over); rare, so a short-lived connection. */
  async function holderIsGone(holder: LockHolder): Promise<boolean> {
    const connection = await Connection.connect({ address: config.temporal.address, connectTimeout: '10 seconds' });
    try {
      const client = new Client({ connection, namespace: config.temporal.namespace });
      const description = await client.workflow.getHandle(holder.workflowId, holder.runId).describe();
      return description.status.name !== 'RUNNING';
    } catch (error) {
      return (error as Error).name === 'WorkflowNotFoundError';
    } finally {
      await connection.close();
    }
  }

  return {
    /** Who is the server, what will a backup cover. Read-only. */
    async inspectCluster(input: { cluster: string }): Promise<ClusterInspection> {
      const c = cluster(input.cluster);
      return withConnection(c, (conn) => inspectClusterWith(conn, c));
    },

    /**
     * One backup operation per cluster at a time. A second one is refused with the name of
     * the run that holds the cluster (or, with wait, retried until it is free). A lock whose
     * run has ended (worker and workflow gone) is taken over.
     */
    async acquireBackupLock(input: { cluster: string; operation: string; wait: boolean }): Promise<void> {
      const run = currentRun();
      const owner: LockHolder = {
        workflowId: run.workflowId,
        runId: run.runId,
        operation: input.operation,
        since: new Date().toISOString(),
      };
      const holder = await locks.tryAcquire(input.cluster, owner);
      if (!holder) return;
      if (await holderIsGone(holder)) {
        logger.warn({ cluster: input.cluster, stale: holder }, 'taking over a backup lock whose run has ended');
        await locks.takeOver(input.cluster, owner);
        return;
      }
      const message = `cluster ${input.cluster} is busy: ${holder.operation} ${holder.workflowId} has held it since ${holder.since}; one backup operation per cluster at a time`;
      if (input.wait) throw ApplicationFailure.retryable(message, 'ClusterBusy');
      throw ApplicationFailure.nonRetryable(message, 'ClusterBusy');
    },

    async releaseBackupLock(input: { cluster: string }): Promise<void> {
      const { workflowId, runId } = currentRun();
      await locks.release(input.cluster, workflowId, runId);
    },

    /**
     * Closes the current binary log, lists the server's binlogs, reads the catalog, and
     * decides: copy these files, take a full instead, or stop at a gap in the chain.
     */
    async planBinlogBackup(input: { cluster: string; type: 'incremental' | 'differential' }): Promise<BinlogPlanResult> {
      const c = cluster(input.cluster);
      const { inspection, binlogs } = await withConnection(c, async (conn) => {
        const inspection = await inspectClusterWith(conn, c);
        if (!inspection.logBin) return { inspection, binlogs: [] };
        return { inspection, binlogs: await flushAndListBinlogsWith(conn) };
      });
      if (!inspection.logBin) {
        throw ApplicationFailure.nonRetryable(`cluster ${c.name}: binary logging is off; enable log_bin for incremental backups`, 'ConfigError');
      }
      const backups = (await repository.list(c.name)).map((b) => b.manifest);
      const plan = planBinlogBackup({
        type: input.type,
        backups,
        chain: await readChainState(repository, c.name),
        server: inspection.server,
        binlogs,
      });
      return { plan, server: inspection.server };
    },

    /** Copies closed binlogs into a fresh staging folder (a retry starts over). */
    async copyBinlogs(input: CopyBinlogsInput): Promise<CopyBinlogsResult> {
      const c = cluster(input.cluster);
      const ctx = Context.current();
      const stagingDir = await repository.resetStaging(c.name, input.backupId);
      const toolName = binlogToolName(c, input.product);
      try {
        const copied = await copyBinlogFiles({
          cluster: c,
          product: input.product,
          files: input.files,
          startPosition: input.startPosition,
          compression: config.repository.compression,
          compressionLevel: config.repository.binlogCompressionLevel ?? 1,
          stagingDir,
          signal: ctx.cancellationSignal,
          onProgress: (p) => ctx.heartbeat({ ...p, text: `${p.index}/${p.files} files, ${describeDumpProgress(p.rawBytes, p.storedBytes, formatBytes)}` }),
        });
        return {
          copied: copied.map((x, i) => ({ ...x, file: (input.files[i] as ServerBinlog).name })),
          tool: { name: toolName, version: await toolVersion(await findTool(toolName)) },
        };
      } catch (error) {
        logger.error({ cluster: c.name, backupId: input.backupId, err: error }, 'binlog copy failed');
        throw toFailure(error, c.name);
      }
    },

    /** Records a gap in the catalog (the next run takes a full) and raises the alert. */
    async markChainBroken(input: { cluster: string; reason: string; lastGoodBackupId: string | null }): Promise<void> {
      const { workflowId } = currentRun();
      const state = { brokenAt: new Date().toISOString(), reason: input.reason, detectedBy: workflowId, lastGoodBackupId: input.lastGoodBackupId };
      await writeChainState(repository, input.cluster, state);
      logger.error({ alert: 'backup-chain-broken', severity: 'critical', cluster: input.cluster, ...state }, `backup chain of ${input.cluster} is broken: ${input.reason}`);
    },

    /**
     * Dumps into a fresh staging folder. A retry (worker died, server hiccup) starts the
     * dump over in an emptied folder: a logical dump cannot resume mid-stream, and nothing
     * in staging is ever visible as a backup.
     */
    async dumpFull(input: DumpFullInput): Promise<DumpResult> {
      const c = cluster(input.cluster);
      const ctx = Context.current();
      const stagingDir = await repository.resetStaging(c.name, input.backupId);
      const log = logger.child({ cluster: c.name, backupId: input.backupId, attempt: ctx.info.attempt });
      log.info({ databases: input.databases }, 'dump started');
      try {
        const result = await runDump({
          cluster: c,
          product: input.product,
          databases: input.databases,
          gtid: input.gtid,
          schemaOnly: input.schemaOnly ?? false,
          ...compression,
          stagingDir,
          signal: ctx.cancellationSignal,
          onProgress: (p) => ctx.heartbeat({ ...p, text: describeDumpProgress(p.rawBytes, p.storedBytes, formatBytes) }),
        });
        log.info(
          { rawBytes: result.artifact.rawSize, storedBytes: result.artifact.size, durationMs: result.durationMs, snapshot: result.facts.binlogFile },
          'dump finished',
        );
        return result;
      } catch (error) {
        log.error({ err: error }, 'dump failed');
        throw toFailure(error, c.name);
      }
    },

    /** Re-reads and verifies the staged artifacts, writes the manifest, renames into place, re-indexes. */
    async publishBackup(input: PublishInput): Promise<Manifest> {
      const { draft } = input;
      const stagingDir = repository.stagingDir(draft.cluster, draft.id);
      const { manifest, problems } = await repository.publish(stagingDir, input.relativePath, draft, input.verify);
      if (!manifest) {
        await repository.removeStaging(draft.cluster, draft.id);
        logger.error({ alert: 'backup-verification-failed', severity: 'critical', cluster: draft.cluster, backupId: draft.id, problems }, 'backup failed verification');
        throw ApplicationFailure.nonRetryable(`backup ${draft.id} failed verification: ${problems.join('; ')}`, 'ArtifactCorrupt');
      }
      logger.info({ cluster: draft.cluster, backupId: draft.id, path: input.relativePath }, 'backup published');
      return manifest;
    },

    /** Removes a failed or cancelled backup's staging folder. */
    async discardStaging(input: { cluster: string; backupId: string }): Promise<void> {
      await repository.removeStaging(input.cluster, input.backupId);
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
