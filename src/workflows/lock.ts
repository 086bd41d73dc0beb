/**
 * One backup operation per cluster at a time (backups and retention): the cluster's lock is
 * taken before and released after, whatever happens. Routine work is refused at once when
 * the cluster is busy; emergency backups and retention wait for it.
 */
import { CancellationScope, proxyActivities, setCurrentDetails, type ActivityOptions } from '@temporalio/workflow';
import type { LockActivities } from '../activities';
import { Failure, NON_RETRYABLE_TYPES } from '../domain/failures';

const quickOptions: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '2s', maximumInterval: '1 minute', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
};
// Waiting: retried until the cluster is free (for up to 6 hours).
const waitingOptions: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '6 hours',
  retry: { initialInterval: '10s', backoffCoefficient: 1.5, maximumInterval: '1 minute', nonRetryableErrorTypes: [Failure.Config] },
};
const quick = proxyActivities<LockActivities>(quickOptions);
const waiting = proxyActivities<LockActivities>(waitingOptions);

export async function withClusterLock<T>(input: { cluster: string }, operation: string, wait: boolean, fn: () => Promise<T>): Promise<T> {
  const acquire = wait ? waiting.acquireBackupLock : quick.acquireBackupLock;
  setCurrentDetails(`waiting for the backup lock of \`${input.cluster}\``);
  await acquire.executeWithOptions({ ...(wait ? waitingOptions : quickOptions), summary: `lock ${input.cluster} for ${operation}` }, [{ cluster: input.cluster, operation, wait }]);
  try {
    return await fn();
  } finally {
    await CancellationScope.nonCancellable(() => quick.releaseBackupLock.executeWithOptions({ ...quickOptions, summary: `unlock ${input.cluster}` }, [{ cluster: input.cluster }]));
  }
}
