/**
 * The activities a worker registers, bound to the worker's configuration. Workflows pass
 * names (cluster, backup id); credentials and paths are resolved here, at run time.
 * Each activity touches one resource and is safe to retry.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import { findCluster } from '../config/load';
import type { DbopsConfig } from '../config/schema';
import { describeDumpProgress } from '../domain/fullBackup';
import type { Manifest, ManifestDraft, Product } from '../domain/manifest';
import { formatBytes } from '../domain/naming';
import { runDump, type DumpResult } from './dump';
import { toFailure } from './errors';
import { inspectClusterWith, withConnection, type ClusterInspection } from './mysql';
import { LocalRepository } from './repository';

export interface DumpFullInput {
  cluster: string;
  backupId: string;
  databases: string[];
  product: Product;
  gtid: boolean;
}

export interface PublishInput {
  draft: ManifestDraft;
  relativePath: string;
}

export function createActivities(config: DbopsConfig, logger: Logger) {
  const repository = new LocalRepository(config.repository.path);
  const cluster = (name: string) => {
    try {
      return findCluster(config, name);
    } catch (error) {
      throw toFailure(error, name);
    }
  };

  return {
    /** Who is the server, what will a backup cover. Read-only. */
    async inspectCluster(input: { cluster: string }): Promise<ClusterInspection> {
      const c = cluster(input.cluster);
      return withConnection(c, (conn) => inspectClusterWith(conn, c));
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
          compression: config.repository.compression,
          ...(config.repository.compressionLevel !== undefined ? { compressionLevel: config.repository.compressionLevel } : {}),
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

    /** Re-reads and verifies the staged artifact, writes the manifest, renames into place, re-indexes. */
    async publishBackup(input: PublishInput): Promise<Manifest> {
      const { draft } = input;
      const stagingDir = repository.stagingDir(draft.cluster, draft.id);
      const { manifest, problems } = await repository.publish(stagingDir, input.relativePath, draft);
      if (!manifest) {
        await repository.removeStaging(draft.cluster, draft.id);
        logger.error({ cluster: draft.cluster, backupId: draft.id, problems }, 'backup failed verification');
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
