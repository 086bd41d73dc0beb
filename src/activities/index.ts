/**
 * The activities a worker registers, bound to the worker's configuration. Workflows pass
 * names (cluster, backup id); credentials and paths are resolved here, at run time.
 * Each activity touches one resource and is safe to retry.
 */
import { Context } from '@temporalio/activity';
import { withTemporalClient } from './temporal';
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
import { LocalRepository, readChainState, RepositoryLocks, writeChainState, writeFileAtomic, type LockHolder, type VerifyDepth } from './repository';
import { findTool } from './tools';
import * as path from 'node:path';
import { provisionSandbox, redactedError, sandboxCluster, sandboxDir, teardownSandbox, countObjects, type DrillSandbox } from './drill';
import { drillMarkdown, type DrillReport } from '../domain/drill';
import { findStatement, restoreAccount, restoreDatabase, scanReplayWindow, targetState, verifyDatabase, type RestoreDatabaseResult, type StatementHit, type TableVerification } from './restore';
import type { ScanReport } from '../domain/restore/replayStream';
import { planRestore, type PlanOutcome, type ResolvedTarget, type RestorePlan } from '../domain/restorePlan';
import type { RestoreTarget } from '../domain/restoreTarget';
import { quoteIdentifier } from '../domain/identifiers';
import { APPROVAL_ACTIONS, approversFor, type ApprovalAction, type ApprovalPolicy } from '../domain/approval';
import { captureTriggers, dropRestoredTables, moveRestoredTables, swapTables, type CapturedTrigger } from '../mysql/tableSwap';
import { createArchiveActivities } from './archiveActivities';
import { Notifier } from './notifier';
import { createRetentionActivities } from './retentionActivities';
import { metrics, type BackupOutcome } from '../metrics/metrics';
import type { BackupType } from '../domain/manifest';

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
  /** The compressed stream was test-decompressed as it was written (zstd). */
  tested: boolean;
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
  const notifier = new Notifier(config, logger);
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
    try {
      const description = await withTemporalClient(config, (client) => client.workflow.getHandle(holder.workflowId, holder.runId).describe());
      return description.status.name !== 'RUNNING';
    } catch (error) {
      return (error as Error).name === 'WorkflowNotFoundError';
    }
  }

  return {
    ...createArchiveActivities(config, logger),
    ...createRetentionActivities(config, logger),

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
      // An unreadable lock is never taken over: its holder cannot be asked about.
      let busy: LockHolder = holder;
      if (holder.workflowId !== '?' && (await holderIsGone(holder))) {
        // Compare-and-swap: of two runs that both found the holder gone, one takes the cluster.
        const now = await locks.takeOver(input.cluster, owner, holder);
        if (now === null) {
          logger.warn({ cluster: input.cluster, stale: holder }, 'took over a backup lock whose run has ended');
          return;
        }
        busy = now;
      }
      const message = `cluster ${input.cluster} is busy: ${busy.operation} ${busy.workflowId} has held it since ${busy.since}; one backup operation per cluster at a time`;
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
      const stagingDir = await repository.resetStaging(c.name, input.backupId, currentRun());
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
          tested: config.repository.compression === 'zstd',
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
      await notifier.send({
        severity: 'critical',
        event: 'backup-chain-broken',
        cluster: input.cluster,
        workflowId,
        message: `backup chain of ${input.cluster} is broken: ${input.reason}; the next backup will be a full (last good: ${input.lastGoodBackupId ?? 'none'})`,
      });
    },

    /**
     * Dumps into a fresh staging folder. A retry (worker died, server hiccup) starts the
     * dump over in an emptied folder: a logical dump cannot resume mid-stream, and nothing
     * in staging is ever visible as a backup.
     */
    async dumpFull(input: DumpFullInput): Promise<DumpResult> {
      const c = cluster(input.cluster);
      const ctx = Context.current();
      const stagingDir = await repository.resetStaging(c.name, input.backupId, currentRun());
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
          onProgress: (p) =>
            ctx.heartbeat({
              ...p,
              text: p.phase === 'dump' ? `dumping: ${formatBytes(p.storedBytes)} written (compressed)` : `reading back: ${formatBytes(p.rawBytes)} of SQL checked`,
            }),
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
        metrics.checksumMismatch.labels(draft.cluster).inc();
        await notifier
          .send({ severity: 'critical', event: 'backup-verification-failed', cluster: draft.cluster, workflowId: currentRun().workflowId, message: `backup ${draft.id} failed verification: ${problems.join('; ')}` })
          .catch((error: unknown) => logger.error({ err: error }, 'could not deliver the verification alert'));
        throw ApplicationFailure.nonRetryable(`backup ${draft.id} failed verification: ${problems.join('; ')}`, 'ArtifactCorrupt');
      }
      logger.info({ cluster: draft.cluster, backupId: draft.id, path: input.relativePath }, 'backup published');
      return manifest;
    },

    /**
     * Plans a restore from the catalog (touches no server). A before-matching target is
     * resolved to the start of the offending transaction by decoding the binlogs.
     */
    async planRestore(input: { cluster: string; database: string; target: RestoreTarget }): Promise<PlanOutcome & { hit?: StatementHit }> {
      const c = cluster(input.cluster);
      const backups = await repository.list(c.name);
      const chainState = await readChainState(repository, c.name);
      const plan = (target: ResolvedTarget) =>
        planRestore({ cluster: c.name, database: input.database, target, backups, chainState, now: new Date() });
      if (input.target.kind !== 'beforeMatching') return plan(input.target);
      const everything = plan({ kind: 'latest' });
      if (!everything.ok) return everything;
      const ctx = Context.current();
      ctx.heartbeat('decoding binlogs');
      const hit = await findStatement(c, everything.plan.full.product, repository.root, everything.plan, input.target.pattern, input.target.after, () => ctx.heartbeat('decoding binlogs'));
      if (!hit) {
        return {
          ok: false,
          reason: `no statement on ${input.database} matches /${input.target.pattern}/i${input.target.after ? ` after ${input.target.after}` : ''} in the backed-up binlogs`,
          window: everything.plan.window,
        };
      }
      return { ...plan({ kind: 'position', file: hit.file, position: hit.position }), hit };
    },

    /**
     * Reads the replay window before anything is written (see scanReplayWindow): what will be
     * rewritten, skipped, or refused, with binlog positions. Read-only.
     */
    async scanRestoreWindow(input: { cluster: string; plan: RestorePlan; into: string }): Promise<ScanReport> {
      const c = cluster(input.cluster);
      const ctx = Context.current();
      try {
        return await scanReplayWindow({ cluster: c, product: input.plan.full.product, repositoryRoot: repository.root, plan: input.plan, into: input.into, onProgress: () => ctx.heartbeat('reading the replay window') });
      } catch (error) {
        throw toFailure(error, c.name);
      }
    },

    /** Is a restore target free? 'ours' means this run created it (a retry). */
    async checkRestoreTarget(input: { cluster: string; database: string }): Promise<'absent' | 'ours' | 'foreign'> {
      return targetState(cluster(input.cluster), input.database, currentRun().workflowId);
    },

    /** Loads the full and replays the binlogs into a new database; a retry starts over. */
    async restoreDatabase(input: { cluster: string; plan: RestorePlan; into: string }): Promise<RestoreDatabaseResult> {
      const c = cluster(input.cluster);
      const ctx = Context.current();
      try {
        return await restoreDatabase({
          cluster: c,
          product: input.plan.full.product,
          repositoryRoot: repository.root,
          plan: input.plan,
          into: input.into,
          marker: currentRun().workflowId,
          confine: true,
          onProgress: (p) => ctx.heartbeat({ ...p, text: `${p.phase}: ${formatBytes(p.bytes)}` }),
          signal: ctx.cancellationSignal,
        });
      } catch (error) {
        logger.error({ cluster: c.name, into: input.into, err: error }, 'restore failed');
        throw toFailure(error, c.name);
      }
    },

    async verifyDatabase(input: { cluster: string; database: string }): Promise<TableVerification[]> {
      return verifyDatabase(cluster(input.cluster), input.database);
    },

    /** Moves the restored tables of a run from its scratch database next to the live ones (one RENAME); idempotent. */
    async moveTables(input: { cluster: string; scratch: string; database: string; runTag: string; tables: string[] }): Promise<void> {
      const c = cluster(input.cluster);
      await withConnection(restoreAccount(c), (conn) => moveRestoredTables(conn, input.scratch, input.database, input.runTag, input.tables));
    },

    /** The live tables' triggers, kept in the workflow's state before a swap drops anything. */
    async captureTriggers(input: { cluster: string; database: string; tables: string[] }): Promise<CapturedTrigger[]> {
      return withConnection(restoreAccount(cluster(input.cluster)), (conn) => captureTriggers(conn, input.database, input.tables));
    },

    /** Verifies the restored tables again, swaps them in with one RENAME and moves the triggers; idempotent (see mysql/tableSwap). */
    async swapTables(input: { cluster: string; database: string; runTag: string; tables: string[]; triggers: CapturedTrigger[]; expect: TableVerification[] }) {
      return withConnection(restoreAccount(cluster(input.cluster)), (conn) => swapTables(conn, input));
    },

    /** Drops a restore target this run created (marker checked); never anything else. */
    async dropRestoreTarget(input: { cluster: string; database: string }): Promise<boolean> {
      const c = cluster(input.cluster);
      if ((await targetState(c, input.database, currentRun().workflowId)) !== 'ours') return false;
      await withConnection(restoreAccount(c), (conn) => conn.query(`DROP DATABASE ${quoteIdentifier(input.database)}`));
      return true;
    },

    /** Drops the restored tables of this run (names built from the run's tag); never anything else. */
    async dropRestoredTables(input: { cluster: string; database: string; runTag: string; tables: string[] }): Promise<string[]> {
      return withConnection(restoreAccount(cluster(input.cluster)), (conn) => dropRestoredTables(conn, input.database, input.runTag, input.tables));
    },

    /** Who may approve an action on a cluster, read from this worker's config now (never from the workflow's input). */
    async approvalPolicy(input: { cluster: string; action: ApprovalAction }): Promise<ApprovalPolicy> {
      const c = cluster(input.cluster);
      if (!(APPROVAL_ACTIONS as readonly string[]).includes(input.action)) throw ApplicationFailure.nonRetryable(`unknown approval action ${input.action}`, 'InvalidInput');
      return {
        approvers: approversFor(c.approvers, input.action),
        selfApproval: c.allowSelfApproval.includes(input.action),
        timeout: config.approval.timeout,
        escalateAfter: config.approval.escalateAfter,
      };
    },

    /**
     * The Temporal identities recorded in this run's history: of the client that started it,
     * and of the client that sent a decision (the n-th approve/reject signal, or an Update by
     * its id). What the identity is worth depends on the server's authorizer (README).
     */
    async callerIdentities(input: { signalOrdinal?: number; updateId?: string }): Promise<{ starter: string | null; decider: string | null }> {
      const run = currentRun();
      const history = await withTemporalClient(config, (client) => client.workflow.getHandle(run.workflowId, run.runId).fetchHistory());
      const events = history.events ?? [];
      const starter = events[0]?.workflowExecutionStartedEventAttributes?.identity || null;
      let decider: string | null = null;
      if (input.updateId !== undefined) {
        const accepted = events.find((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.updateId === input.updateId);
        decider = accepted?.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.identity || null;
      } else if (input.signalOrdinal !== undefined) {
        const signals = events.filter((e) => ['approve', 'reject'].includes(e.workflowExecutionSignaledEventAttributes?.signalName ?? ''));
        decider = signals[input.signalOrdinal - 1]?.workflowExecutionSignaledEventAttributes?.identity || null;
      }
      return { starter, decider };
    },

    /** A log line always; webhooks per config (severity filter, cooldown per webhook). A failed delivery fails the attempt; the retry reaches only the webhooks still missing it. */
    async notify(input: { severity: 'info' | 'warning' | 'critical'; event: string; cluster: string; message: string }): Promise<void> {
      const { workflowId } = currentRun();
      await notifier.send({ ...input, workflowId });
    },

    /**
     * Counts a finished backup run (metrics) and alerts on failure, or on a run skipped
     * because the cluster was busy. Counted on the first attempt only: a retry (a webhook
     * failed) must not count the run again.
     */
    async recordBackupOutcome(input: { cluster: string; type: BackupType; outcome: BackupOutcome; seconds: number | null; message?: string }): Promise<void> {
      if (Context.current().info.attempt === 1) metrics.backupFinished(input.cluster, input.type, input.outcome, input.seconds);
      if (input.outcome === 'skipped') {
        await notifier.send({
          severity: 'warning',
          event: 'backup-skipped',
          cluster: input.cluster,
          workflowId: currentRun().workflowId,
          message: `${input.type} backup of ${input.cluster} skipped: ${input.message ?? 'the cluster is busy with another backup operation'}`,
        });
      }
      if (input.outcome === 'failure') {
        await notifier.send({
          severity: 'critical',
          event: 'backup-failed',
          cluster: input.cluster,
          workflowId: currentRun().workflowId,
          message: `${input.type} backup of ${input.cluster} failed: ${input.message ?? 'see the workflow'}`,
        });
      }
    },

    /** The latest restorable point of every database in the newest full, and how old it is (RPO). */
    async planDrill(input: { cluster: string }): Promise<{ plans: RestorePlan[]; rpoSeconds: number | null; expect: Record<string, Array<{ table: string; rows: number }>>; objects: { routines: number; triggers: number; events: number; views: number } | null }> {
      const c = cluster(input.cluster);
      const backups = await repository.list(c.name);
      const fulls = backups.filter((b) => b.manifest.type === 'full');
      const latest = fulls[fulls.length - 1]?.manifest;
      if (!latest) throw ApplicationFailure.nonRetryable(`cluster ${c.name}: no full backup to drill with`, 'InvalidInput');
      const chainState = await readChainState(repository, c.name);
      const plans: RestorePlan[] = [];
      for (const database of latest.databases) {
        const outcome = planRestore({ cluster: c.name, database, target: { kind: 'latest' }, backups, chainState, now: new Date() });
        if (!outcome.ok) throw ApplicationFailure.nonRetryable(outcome.reason, 'InvalidInput');
        plans.push(outcome.plan);
      }
      const newest = plans[0]?.window.to ?? null;
      const expect = Object.fromEntries(latest.databases.map((d) => [d, latest.tables.filter((t) => t.database === d).map((t) => ({ table: t.table, rows: t.rows }))]));
      const objects = { routines: latest.objects.routines, triggers: latest.objects.triggers, events: latest.objects.events, views: latest.objects.views.length };
      return { plans, rpoSeconds: newest ? Math.max(0, Math.round((Date.now() - Date.parse(newest)) / 1000)) : null, expect, objects };
    },

    async provisionSandbox(input: { drillId: string }): Promise<DrillSandbox> {
      return provisionSandbox(input.drillId, 900 + Math.floor(Math.random() * 99), currentRun());
    },

    async restoreIntoSandbox(input: { cluster: string; sandbox: DrillSandbox; plan: RestorePlan; expectRows: Array<{ table: string; rows: number }> }): Promise<RestoreDatabaseResult> {
      const c = cluster(input.cluster);
      const ctx = Context.current();
      try {
        return await restoreDatabase({
          cluster: sandboxCluster(input.sandbox, c),
          product: input.plan.full.product,
          repositoryRoot: repository.root,
          plan: input.plan,
          into: input.plan.database,
          marker: currentRun().workflowId,
          confine: false,
          expectRows: input.expectRows,
          onProgress: (p) => ctx.heartbeat({ ...p, text: `${p.phase}: ${formatBytes(p.bytes)}` }),
          signal: ctx.cancellationSignal,
        });
      } catch (error) {
        throw toFailure(error, c.name);
      }
    },

    async checkSandbox(input: { cluster: string; sandbox: DrillSandbox; databases: string[] }) {
      const sc = sandboxCluster(input.sandbox, cluster(input.cluster));
      const tables: Record<string, TableVerification[]> = {};
      for (const d of input.databases) tables[d] = await verifyDatabase(sc, d);
      return { tables, objects: await countObjects(sc, input.databases) };
    },

    /**
     * The configured read-only queries (drills.sampleQueries, or failoverChecks), each in a
     * read-only transaction as a read-only account of the restored server. A failed query is
     * reported by its error number only: the message could carry data.
     */
    async runSampleQueries(input: { cluster: string; sandbox: DrillSandbox; kind: 'sample' | 'failover' }) {
      const sc = sandboxCluster(input.sandbox, cluster(input.cluster), 'check');
      const queries = input.kind === 'sample' ? config.drills.sampleQueries : config.drills.failoverChecks;
      const answers: Array<{ database: string; sql: string; minRows: number; rows: number; error: string | null }> = [];
      for (const q of queries) {
        try {
          const rows = await withConnection(sc, async (conn) => {
            await conn.query(`USE ${quoteIdentifier(q.database)}`);
            await conn.query('START TRANSACTION READ ONLY');
            try {
              const [result] = await conn.query({ sql: q.sql, timeout: 60_000 });
              return Array.isArray(result) ? result.length : 0;
            } finally {
              await conn.query('ROLLBACK');
            }
          }, { rawErrors: true });
          answers.push({ ...q, rows, error: null });
        } catch (error) {
          answers.push({ ...q, rows: 0, error: redactedError(error) });
        }
      }
      return answers;
    },

    async teardownSandbox(input: { drillId: string }): Promise<{ stopped: boolean }> {
      return teardownSandbox(sandboxDir(input.drillId));
    },

    async storeDrillReport(input: { report: DrillReport }): Promise<{ json: string; markdown: string }> {
      const dir = path.join(repository.clusterDir(input.report.cluster), 'drills', input.report.drillId);
      await writeFileAtomic(path.join(dir, 'report.json'), JSON.stringify(input.report, null, 2) + '\n');
      await writeFileAtomic(path.join(dir, 'report.md'), drillMarkdown(input.report));
      return { json: path.join(dir, 'report.json'), markdown: path.join(dir, 'report.md') };
    },

    /** Removes a failed or cancelled backup's staging folder. */
    async discardStaging(input: { cluster: string; backupId: string }): Promise<void> {
      await repository.removeStaging(input.cluster, input.backupId);
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
