/**
 * Retention activities: plan from the catalog (read-only), and delete. Deleting re-plans
 * from the catalog as it is now and removes only what both plans agree on, newest first
 * (an incremental before the full it builds on), so a crash half-way never leaves a kept
 * backup without its base; a retry skips what is already gone.
 *
 * Restores and drills read backups without the cluster's backup lock, so before deleting
 * anything, Temporal is asked whether one of them runs on the cluster; if one does, or if
 * Temporal cannot answer, nothing is deleted and the next run tries again.
 */
import { Failure } from '../domain/failures';
import { ApplicationFailure } from '@temporalio/common';
import type { BackupType } from '../domain/manifest';
import { checkPlanSafe, holdBack, planRetention, type RetentionConfig, type RetentionPlan } from '../domain/retention';
import { notYetCopied } from '../domain/copies';
import { RepoNameSchema } from '../domain/inputs';
import type { Repository } from '../repository';
import { z } from 'zod';
import { prunableArchive, type ArchiveListing, type ArchivePrune } from '../domain/binlogArchive';
import { BinlogArchive } from '../repository/binlogArchive';
import { accept, clusterOf } from './context';
import type { ActivityDeps } from './deps';
import { BackupIdSchema, cluster as clusterName } from './schemas';

export interface RetentionPlanResult {
  plan: RetentionPlan;
}

export interface RetentionDeleteResult {
  deleted: Array<{ id: string; type: BackupType; bytes: number }>;
  skipped: Array<{ id: string; why: string }>;
  /** A running restore or drill of the cluster (or no answer from Temporal) held every deletion back. */
  blockedBy: string | null;
  /** The cluster's storage as the catalog holds it after this run. */
  storageAfter: RetentionPlan['storage'];
}

/** Running workflows that may read this cluster's backups (visibility query). */
export function readersQuery(cluster: string): string {
  const quoted = cluster.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
  return `DbopsCluster = '${quoted}' AND DbopsOperation IN ('restore', 'drill') AND ExecutionStatus = 'Running'`;
}

export interface RetentionOptions {
  /** Workflow ids of running restores and drills of the cluster; throws when Temporal cannot answer. */
  runningReaders?: (cluster: string) => Promise<string[]>;
}

export function createRetentionActivities(deps: ActivityDeps, options: RetentionOptions = {}) {
  const { config, logger, repository, metrics, temporal } = deps;
  /** The repository a run works on: the primary, or a copy with its own retention. */
  const target = (repo: string | undefined): { catalog: Repository; retention: RetentionConfig } => {
    if (repo === undefined) return { catalog: repository.catalog, retention: config.retention };
    let copy: ReturnType<typeof repository.copy>;
    try {
      copy = repository.copy(repo);
    } catch (error) {
      throw ApplicationFailure.nonRetryable((error as Error).message, Failure.Config);
    }
    return { catalog: copy.catalog, retention: copy.retention };
  };
  const planNow = async (cluster: string, repo?: string): Promise<RetentionPlan> => {
    const { catalog, retention } = target(repo);
    const backups = (await catalog.list(cluster)).map((b) => b.manifest);
    const now = new Date();
    let plan = planRetention({ backups, now, config: retention });
    if (repository.copies().length > 0) {
      // Never delete what a copy still needs: in the primary, a backup not yet copied
      // everywhere; in a copy, what a backup still on its way there builds on.
      const primary = repo === undefined ? backups : (await repository.catalog.list(cluster)).map((b) => b.manifest);
      const copies = repo === undefined ? await Promise.all(repository.copies().map(async (c) => (await c.catalog.list(cluster)).map((b) => b.manifest))) : [backups];
      const pending = notYetCopied(primary, copies);
      plan = holdBack(plan, pending, repo === undefined ? 'not yet in every copy repository' : 'a backup still being copied here builds on it');
    }
    const violations = checkPlanSafe(backups, plan, { now, config: retention });
    if (violations.length > 0) {
      // A planner bug must never reach the disk.
      throw ApplicationFailure.nonRetryable(`retention plan for ${cluster} is unsafe, nothing deleted: ${violations.join('; ')}`, Failure.RetentionUnsafe);
    }
    return plan;
  };

  /** Asks Temporal; a short-lived connection (once per retention run). */
  const runningReaders =
    options.runningReaders ??
    ((cluster: string): Promise<string[]> =>
      temporal.withClient(async (client) => {
        const ids: string[] = [];
        for await (const w of client.workflow.list({ query: readersQuery(cluster), pageSize: 20 })) {
          ids.push(w.workflowId);
          if (ids.length >= 20) break;
        }
        return ids;
      }));

  const storageNow = async (cluster: string, repo?: string): Promise<RetentionPlan['storage']> => {
    const { catalog, retention } = target(repo);
    const backups = (await catalog.list(cluster)).map((b) => b.manifest);
    return planRetention({ backups, now: new Date(), config: retention }).storage;
  };

  return {
    /** Removes archived binlog files no kept full backup can replay from (primary repository only: copies hold no archive). */
    async pruneBinlogArchive(raw: { cluster: string; dryRun?: boolean }): Promise<{ removed: ArchivePrune[] }> {
      const input = accept(z.strictObject({ cluster: clusterName, dryRun: z.boolean().optional() }), raw, 'pruneBinlogArchive');
      const c = clusterOf(config, input.cluster);
      const archive = new BinlogArchive(repository.storage, c.name);
      const listing: ArchiveListing[] = [];
      for (const timeline of await archive.timelines()) listing.push({ timeline, files: await archive.files(timeline.timeline) });
      const fulls = (await repository.catalog.list(c.name)).map((b) => b.manifest).filter((m) => m.type === 'full');
      const removed = prunableArchive(listing, fulls);
      if (!input.dryRun) {
        for (const r of removed) {
          if (r.file) await archive.removeFile(r.timeline, r.file);
          else await archive.removeTimeline(r.timeline);
          logger.info({ cluster: c.name, ...r }, 'retention removed archived binlogs');
        }
      }
      return { removed };
    },

    async planRetention(raw: { cluster: string; repo?: string }): Promise<RetentionPlanResult> {
      const input = accept(z.strictObject({ cluster: clusterName, repo: RepoNameSchema.optional() }), raw, 'planRetention');
      const c = clusterOf(config, input.cluster);
      return { plan: await planNow(c.name, input.repo) };
    },

    async deleteBackups(raw: { cluster: string; repo?: string; ids: string[] }): Promise<RetentionDeleteResult> {
      const input = accept(z.strictObject({ cluster: clusterName, repo: RepoNameSchema.optional(), ids: z.array(BackupIdSchema).max(10_000) }), raw, 'deleteBackups');
      clusterOf(config, input.cluster);
      let blockedBy: string | null = null;
      try {
        const readers = await runningReaders(input.cluster);
        if (readers.length > 0) blockedBy = `restore/drill ${readers.join(', ')} ${readers.length === 1 ? 'is' : 'are'} running; retention tries again on its next run`;
      } catch (error) {
        blockedBy =
          `cannot ask Temporal at ${temporal.address} whether a restore or drill of ${input.cluster} is running ` +
          `(${(error as Error).message}); nothing deleted, retention tries again on its next run`;
      }
      if (blockedBy !== null) {
        logger.warn({ cluster: input.cluster, backups: input.ids.length, why: blockedBy }, 'retention deleted nothing');
        return { deleted: [], skipped: input.ids.map((id) => ({ id, why: blockedBy as string })), blockedBy, storageAfter: await storageNow(input.cluster, input.repo) };
      }

      const fresh = await planNow(input.cluster, input.repo);
      const { catalog } = target(input.repo);
      const deletable = new Map(fresh.delete.map((d) => [d.id, d]));
      const result: RetentionDeleteResult = { deleted: [], skipped: [], blockedBy: null, storageAfter: fresh.storage };
      const approved = new Set(input.ids);
      // Newest first: dependents go before what they depend on.
      const order = [...fresh.delete].reverse().filter((d) => approved.has(d.id));
      for (const id of input.ids) {
        if (!deletable.has(id)) result.skipped.push({ id, why: 'no longer selected by retention (the catalog changed since the plan), kept' });
      }
      for (const d of order) {
        const removed = await catalog.remove(input.cluster, d.id);
        if (!removed) {
          result.skipped.push({ id: d.id, why: 'already gone' });
          continue;
        }
        metrics.retentionDeleted.labels(input.cluster, d.type).inc();
        logger.info({ cluster: input.cluster, backupId: d.id, type: d.type, reason: d.reason }, 'retention deleted a backup');
        result.deleted.push({ id: d.id, type: d.type, bytes: d.bytes });
      }
      result.storageAfter = await storageNow(input.cluster, input.repo);
      return result;
    },
  };
}
export type RetentionActivities = ReturnType<typeof createRetentionActivities>;
