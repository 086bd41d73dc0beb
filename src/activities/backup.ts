/**
 * Backup activities: look at the server, dump or copy binlogs into a fresh staging folder,
 * verify and publish, mark a gap in the chain, count the run. Each is safe to retry: a
 * retried dump or copy starts over in an emptied staging folder (nothing in staging is ever
 * visible as a backup), and publishing a backup that is already published returns it.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { describeDumpProgress } from '../domain/buildManifest';
import { physicalIncrementalBase, planBinlogBackup, sameServer, type BinlogPlan, type ServerBinlog } from '../domain/chain';
import { TIMELINE_PATTERN } from '../domain/binlogArchive';
import { BinlogArchive } from '../repository/binlogArchive';
import type { BinlogFacts } from '../domain/binlogScanner';
import { Failure } from '../domain/failures';
import type { Artifact, Manifest, ServerIdentity } from '../domain/manifest';
import { formatBytes } from '../domain/naming';
import type { BackupOutcome } from '../metrics/metrics';
import { binlogToolName, copyBinlogFiles } from '../mysql/binlogCopy';
import { flushAndListBinlogsWith, inspectClusterWith, withConnection, type ClusterInspection } from '../mysql/connection';
import { runDump, toolVersion, type DumpResult } from '../mysql/dump';
import { runParallelDump } from '../mysql/parallelDump';
import { runPhysicalBackup } from '../mysql/physicalBackup';
import type { PhysicalLayout } from '../domain/physical';
import { FULL_ENGINES } from '../config/schema';
import { tmpdir } from 'node:os';
import type { ParallelLayout } from '../domain/parallelDump';
import { toFailure } from '../mysql/errors';
import { layout, readChainState, writeChainState } from '../repository';
import { findTool } from '../tools/tools';
import { accept, clusterOf, currentRun } from './context';
import type { ActivityDeps } from './deps';
import { BackupIdSchema, BackupType, cluster, identifier, ManifestDraftSchema } from './schemas';

const ProductInput = z.enum(['mariadb', 'mysql']);

const DumpFullInput = z.strictObject({
  cluster,
  backupId: BackupIdSchema,
  databases: z.array(identifier).min(1),
  product: ProductInput,
  gtid: z.boolean(),
  schemaOnly: z.boolean().optional(),
  /** What is taken (a physical copy only for a routine full) and, per request, how (default: the cluster's fullBackup.engine). */
  kind: z.enum(['full', 'emergency', 'schema']).optional(),
  engine: z.enum(FULL_ENGINES).optional(),
  /** A physical incremental: copy only the pages changed after this LSN (MariaDB). */
  incrementalLsn: z.number().int().nonnegative().optional(),
});
export type DumpFullInput = z.input<typeof DumpFullInput>;

const PublishInput = z.strictObject({
  draft: ManifestDraftSchema,
  relativePath: z.string().max(500),
  /** `stored` where the producing activity already decompressed the artifact from storage (dumps). */
  verify: z.enum(['full', 'frame', 'stored']),
});
export type PublishInput = z.input<typeof PublishInput>;

const CopyBinlogsInput = z.strictObject({
  cluster,
  backupId: BackupIdSchema,
  product: ProductInput,
  files: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[A-Za-z0-9_.-]{1,200}\.\d{1,10}$/),
        size: z.number().int().nonnegative(),
        archive: z.string().regex(TIMELINE_PATTERN).optional(),
      }),
    )
    .min(1),
  startPosition: z.number().int().nonnegative(),
});
export type CopyBinlogsInput = z.input<typeof CopyBinlogsInput>;

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

const OutcomeInput = z.strictObject({
  cluster,
  type: BackupType,
  outcome: z.enum(['success', 'failure', 'skipped']),
  seconds: z.number().nonnegative().nullable(),
  message: z.string().max(10_000).optional(),
});

export function createBackupActivities(deps: ActivityDeps) {
  const { config, logger, repository, notifier, metrics } = deps;
  const compression = {
    compression: config.repository.compression,
    ...(config.repository.compressionLevel !== undefined ? { compressionLevel: config.repository.compressionLevel } : {}),
  };

  /** The closed files of the newest archive timeline of this server (what can stand in for purged binlogs). */
  const archivedClosedFiles = async (cluster: string, server: ServerIdentity): Promise<{ timeline: string; files: Array<{ name: string; size: number }> } | null> => {
    const timelines = (await new BinlogArchive(repository.storage, cluster).assemble()).filter((t) => sameServer(t.timeline.server, server) === null);
    const t = timelines[timelines.length - 1];
    if (!t) return null;
    return { timeline: t.timeline.timeline, files: t.files.filter((f) => f.closed).map((f) => ({ name: f.file, size: f.size })) };
  };

  return {
    /** Who is the server, what will a backup cover. Read-only. */
    async inspectCluster(raw: { cluster: string }): Promise<ClusterInspection> {
      const c = clusterOf(config, accept(z.strictObject({ cluster }), raw, 'inspectCluster').cluster);
      return withConnection(c, (conn) => inspectClusterWith(conn, c));
    },

    /**
     * Closes the current binary log, lists the server's binlogs, reads the catalog, and
     * decides: copy these files, take a full instead, or stop at a gap in the chain.
     */
    async planBinlogBackup(raw: { cluster: string; type: 'incremental' | 'differential' }): Promise<BinlogPlanResult> {
      const input = accept(z.strictObject({ cluster, type: z.enum(['incremental', 'differential']) }), raw, 'planBinlogBackup');
      const c = clusterOf(config, input.cluster);
      const { inspection, binlogs } = await withConnection(c, async (conn) => {
        const inspection = await inspectClusterWith(conn, c);
        if (!inspection.logBin) return { inspection, binlogs: [] };
        return { inspection, binlogs: await flushAndListBinlogsWith(conn) };
      });
      if (!inspection.logBin) {
        throw ApplicationFailure.nonRetryable(`cluster ${c.name}: binary logging is off; enable log_bin for incremental backups`, Failure.Config);
      }
      if (inspection.replicaRefusal) throw ApplicationFailure.nonRetryable(`cluster ${c.name}: ${inspection.replicaRefusal}`, Failure.Config);
      const backups = (await repository.catalog.list(c.name)).map((b) => b.manifest);
      const planInput = { type: input.type, backups, chain: await readChainState(repository.storage, c.name), server: inspection.server, binlogs };
      // The archive only matters when the server purged a binlog the chain still needs, and
      // then the plan without it is a gap. Reading it costs one object per archived closed
      // file (every timeline), so it is read only then, not on every routine backup.
      let plan = planBinlogBackup(planInput);
      if (plan.action === 'gap') {
        const archived = await archivedClosedFiles(c.name, inspection.server);
        if (archived) plan = planBinlogBackup({ ...planInput, archived });
      }
      if (plan.action === 'copy' && plan.files.some((f) => f.archive)) {
        const bridged = plan.files.filter((f) => f.archive).map((f) => f.name);
        logger.warn({ cluster: c.name, files: bridged }, 'binlogs purged before this backup copied them: taken from the continuous binlog archive');
      }
      return { plan, server: inspection.server };
    },

    /** Copies closed binlogs into a fresh staging folder (a retry starts over). */
    async copyBinlogs(raw: CopyBinlogsInput): Promise<CopyBinlogsResult> {
      const input = accept(CopyBinlogsInput, raw, 'copyBinlogs');
      const c = clusterOf(config, input.cluster);
      const ctx = Context.current();
      const stagingKey = await repository.catalog.resetStaging(c.name, input.backupId, currentRun());
      const toolName = binlogToolName(c, input.product);
      try {
        const copied = await copyBinlogFiles({
          cluster: c,
          product: input.product,
          files: input.files,
          startPosition: input.startPosition,
          compression: config.repository.compression,
          compressionLevel: config.repository.binlogCompressionLevel ?? 1,
          storage: repository.storage,
          stagingKey,
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

    /** Where a physical incremental continues (the newest physical copy of the chain and its LSN), or why there is none. */
    async planPhysicalIncremental(raw: { cluster: string }): Promise<{ parentId: string; baseFullId: string; fromLsn: number } | { refusal: string }> {
      const c = clusterOf(config, accept(z.strictObject({ cluster }), raw, 'planPhysicalIncremental').cluster);
      return physicalIncrementalBase((await repository.catalog.list(c.name)).map((b) => b.manifest));
    },

    /** Records a gap in the catalog (the next run takes a full) and raises the alert. */
    async markChainBroken(raw: { cluster: string; reason: string; lastGoodBackupId: string | null }): Promise<void> {
      const input = accept(z.strictObject({ cluster, reason: z.string().max(5000), lastGoodBackupId: BackupIdSchema.nullable() }), raw, 'markChainBroken');
      clusterOf(config, input.cluster);
      const { workflowId } = currentRun();
      const state = { brokenAt: new Date().toISOString(), reason: input.reason, detectedBy: workflowId, lastGoodBackupId: input.lastGoodBackupId };
      await writeChainState(repository.storage, input.cluster, state);
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
     * dump over in an emptied folder: a logical dump cannot resume mid-stream.
     */
    async dumpFull(raw: DumpFullInput): Promise<DumpResult & { parallel?: { artifacts: Artifact[]; layout: ParallelLayout }; physical?: PhysicalLayout }> {
      const input = accept(DumpFullInput, raw, 'dumpFull');
      const c = clusterOf(config, input.cluster);
      const ctx = Context.current();
      const stagingKey = await repository.catalog.resetStaging(c.name, input.backupId, currentRun());
      const log = logger.child({ cluster: c.name, backupId: input.backupId, attempt: ctx.info.attempt });
      log.info({ databases: input.databases }, 'dump started');
      const requested = input.engine ?? c.fullBackup.engine;
      // Emergency and schema backups stay logical: they are restored a database or a table at a time.
      const engine = input.schemaOnly ? 'dump' : requested === 'physical' && (input.kind ?? 'full') !== 'full' ? 'dump' : requested;
      try {
        if (input.incrementalLsn !== undefined && (engine !== 'physical' || input.product !== 'mariadb')) {
          throw ApplicationFailure.nonRetryable(`a physical incremental is taken by mariadb-backup from a MariaDB physical full; cluster ${c.name} is ${input.product}, engine ${engine}`, Failure.InvalidInput);
        }
        if (engine === 'physical') {
          const r = await runPhysicalBackup({
            ...(input.incrementalLsn !== undefined ? { incrementalLsn: input.incrementalLsn } : {}),
            cluster: c,
            product: input.product,
            databases: input.databases,
            threads: c.fullBackup.threads,
            maxBytesPerSecond: c.fullBackup.maxMiBPerSecond ? c.fullBackup.maxMiBPerSecond * 1024 * 1024 : null,
            ...compression,
            storage: repository.storage,
            stagingKey,
            scratchDir: process.env.DBOPS_PHYSICAL_SCRATCH ?? tmpdir(),
            signal: ctx.cancellationSignal,
            onProgress: (p) => ctx.heartbeat({ ...p, text: `copying the server's files: ${describeDumpProgress(p.rawBytes, p.storedBytes, formatBytes)}` }),
          });
          log.info({ format: r.layout.format, rawBytes: r.artifact.rawSize, storedBytes: r.artifact.size, durationMs: r.durationMs, snapshot: r.facts.binlogFile }, 'physical backup finished');
          return { artifact: r.artifact, facts: r.facts, tool: r.tool, durationMs: r.durationMs, physical: r.layout };
        }
        if (engine === 'parallel') {
          const r = await runParallelDump({
            cluster: c,
            product: input.product,
            databases: input.databases,
            threads: c.fullBackup.threads,
            chunkRows: c.fullBackup.chunkRows,
            maxBytesPerSecond: c.fullBackup.maxMiBPerSecond ? c.fullBackup.maxMiBPerSecond * 1024 * 1024 : null,
            ...compression,
            storage: repository.storage,
            stagingKey,
            signal: ctx.cancellationSignal,
            onProgress: (p) => ctx.heartbeat({ ...p, text: `dumping in ${c.fullBackup.threads} sessions: ${p.chunksDone}/${p.chunks} chunks, ${p.rows} rows, ${formatBytes(p.storedBytes)} written (compressed)` }),
          });
          log.info({ chunks: r.layout.chunks.length, threads: r.layout.threads, consistency: r.consistency, durationMs: r.durationMs, snapshot: r.facts.binlogFile }, 'parallel dump finished');
          return { artifact: r.artifacts[0]!, facts: r.facts, tool: r.tool, durationMs: r.durationMs, parallel: { artifacts: r.artifacts, layout: r.layout } };
        }
        const result = await runDump({
          cluster: c,
          product: input.product,
          databases: input.databases,
          gtid: input.gtid,
          schemaOnly: input.schemaOnly ?? false,
          ...compression,
          storage: repository.storage,
          stagingKey,
          maxBytesPerSecond: c.fullBackup.maxMiBPerSecond ? c.fullBackup.maxMiBPerSecond * 1024 * 1024 : null,
          testFrames: true,
          signal: ctx.cancellationSignal,
          onProgress: (p) =>
            ctx.heartbeat({
              ...p,
              text: `dumping: ${formatBytes(p.rawBytes)} of SQL scanned, ${formatBytes(p.storedBytes)} stored (compressed)`,
            }),
        });
        log.info({ rawBytes: result.artifact.rawSize, storedBytes: result.artifact.size, durationMs: result.durationMs, snapshot: result.facts.binlogFile }, 'dump finished');
        return result;
      } catch (error) {
        log.error({ err: error }, 'dump failed');
        throw toFailure(error, c.name);
      }
    },

    /** Re-reads and verifies the staged artifacts, writes the manifest, moves it into place, re-indexes. */
    async publishBackup(raw: PublishInput): Promise<Manifest> {
      const input = accept(PublishInput, raw, 'publishBackup');
      const { draft } = input;
      clusterOf(config, draft.cluster);
      // Where a backup goes is the layout's decision, from what the manifest says it is.
      const finalKey = layout.backup(draft.cluster, draft.type, draft.id, new Date(draft.startedAt));
      if (input.relativePath !== finalKey) throw ApplicationFailure.nonRetryable(`publishBackup: ${draft.id} belongs in ${finalKey}, not ${input.relativePath}`, Failure.InvalidInput);
      const { manifest, problems } = await repository.catalog.publish(draft, finalKey, input.verify);
      if (!manifest) {
        await repository.catalog.removeStaging(draft.cluster, draft.id);
        metrics.checksumMismatch.labels(draft.cluster).inc();
        await notifier
          .send({ severity: 'critical', event: 'backup-verification-failed', cluster: draft.cluster, workflowId: currentRun().workflowId, message: `backup ${draft.id} failed verification: ${problems.join('; ')}` })
          .catch((error: unknown) => logger.error({ err: error }, 'could not deliver the verification alert'));
        throw ApplicationFailure.nonRetryable(`backup ${draft.id} failed verification: ${problems.join('; ')}`, Failure.ArtifactCorrupt);
      }
      logger.info({ cluster: draft.cluster, backupId: draft.id, path: input.relativePath }, 'backup published');
      return manifest;
    },

    /** Removes a failed or cancelled backup's staging folder. */
    async discardStaging(raw: { cluster: string; backupId: string }): Promise<void> {
      const input = accept(z.strictObject({ cluster, backupId: BackupIdSchema }), raw, 'discardStaging');
      await repository.catalog.removeStaging(input.cluster, input.backupId);
    },

    /**
     * Counts a finished backup run (metrics) and alerts on failure, or on a run skipped
     * because the cluster was busy. Counted on the first attempt only: a retry (a webhook
     * failed) must not count the run again.
     */
    async recordBackupOutcome(raw: { cluster: string; type: string; outcome: BackupOutcome; seconds: number | null; message?: string }): Promise<void> {
      const input = accept(OutcomeInput, raw, 'recordBackupOutcome');
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
  };
}

export type BackupActivities = ReturnType<typeof createBackupActivities>;
