/**
 * Retention activities: plan from the catalog (read-only), and delete. Deleting re-plans
 * from the catalog as it is now and removes only what both plans agree on, newest first
 * (an incremental before the full it builds on), so a crash half-way never leaves a kept
 * backup without its base; a retry skips what is already gone.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import { findCluster } from '../config/load';
import type { DbopsConfig } from '../config/schema';
import { approversFor } from '../domain/approval';
import type { BackupType } from '../domain/manifest';
import { checkPlanSafe, planRetention, type RetentionPlan } from '../domain/retention';
import { metrics } from '../metrics/metrics';
import { LocalRepository } from './repository';

export interface RetentionPlanResult {
  plan: RetentionPlan;
  approvers: string[];
  approval: { timeout: string; escalateAfter: string[] };
}

export interface RetentionDeleteResult {
  deleted: Array<{ id: string; type: BackupType; bytes: number }>;
  skipped: Array<{ id: string; why: string }>;
}

export function createRetentionActivities(config: DbopsConfig, logger: Logger) {
  const repository = new LocalRepository(config.repository.path);
  const planNow = async (cluster: string): Promise<RetentionPlan> => {
    const backups = (await repository.list(cluster)).map((b) => b.manifest);
    const now = new Date();
    const plan = planRetention({ backups, now, config: config.retention });
    const violations = checkPlanSafe(backups, plan, { now, config: config.retention });
    if (violations.length > 0) {
      // A planner bug must never reach the disk.
      throw ApplicationFailure.nonRetryable(`retention plan for ${cluster} is unsafe, nothing deleted: ${violations.join('; ')}`, 'RetentionUnsafe');
    }
    return plan;
  };

  return {
    async planRetention(input: { cluster: string }): Promise<RetentionPlanResult> {
      const c = findCluster(config, input.cluster);
      return {
        plan: await planNow(c.name),
        approvers: approversFor(c.approvers, 'retention-delete'),
        approval: { timeout: config.approval.timeout, escalateAfter: config.approval.escalateAfter },
      };
    },

    async deleteBackups(input: { cluster: string; ids: string[] }): Promise<RetentionDeleteResult> {
      const fresh = await planNow(input.cluster);
      const deletable = new Map(fresh.delete.map((d) => [d.id, d]));
      const result: RetentionDeleteResult = { deleted: [], skipped: [] };
      const approved = new Set(input.ids);
      // Newest first: dependents go before what they depend on.
      const order = [...fresh.delete].reverse().filter((d) => approved.has(d.id));
      for (const id of input.ids) {
        if (!deletable.has(id)) result.skipped.push({ id, why: 'no longer selected by retention (the catalog changed since the plan), kept' });
      }
      for (const d of order) {
        const removed = await repository.remove(input.cluster, d.id);
        if (!removed) {
          result.skipped.push({ id: d.id, why: 'already gone' });
          continue;
        }
        metrics.retentionDeleted.labels(input.cluster, d.type).inc();
        logger.info({ cluster: input.cluster, backupId: d.id, type: d.type, reason: d.reason }, 'retention deleted a backup');
        result.deleted.push({ id: d.id, type: d.type, bytes: d.bytes });
      }
      return result;
    },
  };
}
