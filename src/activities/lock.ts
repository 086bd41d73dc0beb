/**
 * The cluster's backup lock: one backup operation per cluster at a time. A second one is
 * refused with the name of the run that holds the cluster (or, with wait, retried until it
 * is free). A lock whose run has ended is taken over, by exactly one of the runs that found
 * it (compare-and-swap, see repository/locks).
 */
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { Failure } from '../domain/failures';
import type { LockHolder } from '../repository';
import { accept, clusterOf, currentRun } from './context';
import type { ActivityDeps } from './deps';
import { cluster } from './schemas';

const AcquireInput = z.strictObject({ cluster, operation: z.string().min(1).max(100), wait: z.boolean() });

export function createLockActivities(deps: ActivityDeps) {
  const { config, logger, repository, temporal } = deps;

  /** Asks Temporal whether a lock's holder still runs (a rare question: a short-lived connection). */
  async function holderIsGone(holder: LockHolder): Promise<boolean> {
    try {
      const description = await temporal.withClient((client) => client.workflow.getHandle(holder.workflowId, holder.runId).describe());
      return description.status.name !== 'RUNNING';
    } catch (error) {
      return (error as Error).name === 'WorkflowNotFoundError';
    }
  }

  return {
    async acquireBackupLock(raw: z.input<typeof AcquireInput>): Promise<void> {
      const input = accept(AcquireInput, raw, 'acquireBackupLock');
      clusterOf(config, input.cluster);
      const run = currentRun();
      const owner: LockHolder = { workflowId: run.workflowId, runId: run.runId, operation: input.operation, since: new Date().toISOString() };
      const holder = await repository.locks.tryAcquire(input.cluster, owner);
      if (!holder) return;
      // An unreadable lock is never taken over: its holder cannot be asked about.
      let busy: LockHolder = holder;
      if (holder.workflowId !== '?' && (await holderIsGone(holder))) {
        // Compare-and-swap: of two runs that both found the holder gone, one takes the cluster.
        const now = await repository.locks.takeOver(input.cluster, owner, holder);
        if (now === null) {
          logger.warn({ cluster: input.cluster, stale: holder }, 'took over a backup lock whose run has ended');
          return;
        }
        busy = now;
      }
      const message = `cluster ${input.cluster} is busy: ${busy.operation} ${busy.workflowId} has held it since ${busy.since}; one backup operation per cluster at a time`;
      if (input.wait) throw ApplicationFailure.retryable(message, Failure.ClusterBusy);
      throw ApplicationFailure.nonRetryable(message, Failure.ClusterBusy);
    },

    async releaseBackupLock(raw: { cluster: string }): Promise<void> {
      const input = accept(z.strictObject({ cluster }), raw, 'releaseBackupLock');
      const { workflowId, runId } = currentRun();
      await repository.locks.release(input.cluster, workflowId, runId);
    },
  };
}

export type LockActivities = ReturnType<typeof createLockActivities>;
