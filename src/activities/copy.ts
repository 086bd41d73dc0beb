/**
 * Copy activities: what a copy repository lacks (read-only), copying one backup into it
 * (retry-safe: a backup already there is left alone, a half-copied one is started over in
 * staging), and asking the copy workflows to run after a backup is published.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { z } from 'zod';
import { copyLag, planCopies, type CopyLag, type CopyPlan } from '../domain/copies';
import { Failure } from '../domain/failures';
import { RepoNameSchema } from '../domain/inputs';
import { copyWorkflowId } from '../domain/naming';
import { SealError } from '../repository/crypto';
import type { CopyAccess } from '../repository';
import { accept, clusterOf } from './context';
import type { ActivityDeps } from './deps';
import { BackupIdSchema, cluster } from './schemas';

const repoName = RepoNameSchema;

export interface CopyPlanResult extends CopyPlan {
  lag: CopyLag;
}

export interface CopyBackupResult {
  id: string;
  copied: boolean;
  bytes: number;
}

export function createCopyActivities(deps: ActivityDeps) {
  const { config, logger, repository, metrics, temporal } = deps;
  const copyNamed = (name: string): CopyAccess => {
    try {
      return repository.copy(name);
    } catch (error) {
      throw ApplicationFailure.nonRetryable((error as Error).message, Failure.Config);
    }
  };

  return {
    /** The backups the copy lacks, oldest first, and how far behind it is. */
    async planCopy(raw: { cluster: string; repo: string }): Promise<CopyPlanResult> {
      const input = accept(z.strictObject({ cluster, repo: repoName }), raw, 'planCopy');
      const c = clusterOf(config, input.cluster);
      const copy = copyNamed(input.repo);
      const primary = (await repository.catalog.list(c.name)).map((b) => b.manifest);
      const present = (await copy.catalog.list(c.name)).map((b) => b.manifest);
      const lag = copyLag(primary, present, new Date());
      metrics.copyLag.labels(c.name, copy.name).set(lag.lagSeconds);
      return { ...planCopies(primary, present), lag };
    },

    /** Copies one published backup from the primary into the copy, verified; a backup already there is left alone. */
    async copyBackup(raw: { cluster: string; repo: string; id: string }): Promise<CopyBackupResult> {
      const input = accept(z.strictObject({ cluster, repo: repoName, id: BackupIdSchema }), raw, 'copyBackup');
      const c = clusterOf(config, input.cluster);
      const copy = copyNamed(input.repo);
      const stored = (await repository.catalog.list(c.name)).find((b) => b.manifest.id === input.id);
      if (!stored) throw ApplicationFailure.nonRetryable(`backup ${input.id} is no longer in the primary repository (deleted by retention?)`, Failure.BackupGone);
      const ctx = Context.current();
      try {
        const result = await copy.catalog.importBackup(stored, repository.storage, (bytes) => ctx.heartbeat({ bytes }));
        if (result.problems.length > 0) {
          // The source itself is damaged: copying again would copy the damage. A person must look.
          throw ApplicationFailure.nonRetryable(`backup ${input.id} was not copied to ${copy.name}: ${result.problems.join('; ')}`, Failure.ArtifactCorrupt);
        }
        if (result.copied) logger.info({ cluster: c.name, backupId: input.id, repo: copy.name, bytes: result.bytes }, 'backup copied');
        return { id: input.id, copied: result.copied, bytes: result.bytes };
      } catch (error) {
        if (error instanceof SealError) throw ApplicationFailure.nonRetryable(`backup ${input.id} was not copied to ${copy.name}: ${error.message}`, Failure.ArtifactCorrupt);
        throw error;
      }
    },

    /**
     * Wakes the copy workflow of each copy repository for this cluster (starting it if it
     * is not running). Best effort: a copy that misses this call catches up on its next run.
     */
    async requestCopies(raw: { cluster: string }): Promise<string[]> {
      const input = accept(z.strictObject({ cluster }), raw, 'requestCopies');
      const c = clusterOf(config, input.cluster);
      const names = (config.copies ?? []).map((r) => r.name);
      if (names.length === 0) return [];
      return temporal.withClient(async (client) => {
        const started: string[] = [];
        for (const repo of names) {
          const workflowId = copyWorkflowId(c.name, repo);
          await client.workflow.signalWithStart('copyBackupsWorkflow', {
            workflowId,
            taskQueue: config.temporal.taskQueue,
            args: [{ cluster: c.name, repo }],
            signal: 'backupPublished',
            signalArgs: [],
          });
          started.push(workflowId);
        }
        return started;
      });
    },
  };
}
export type CopyActivities = ReturnType<typeof createCopyActivities>;
