/**
 * Notifications from workflows are best-effort: a webhook that is down is retried by the
 * activity, then logged, and never replaces what the run itself did or failed with (an
 * approval gate keeps waiting, a failed drill still fails with its own reason).
 */
import { isCancellation, log, proxyActivities } from '@temporalio/workflow';
import type { NotifyActivities } from '../activities';

const alerts = proxyActivities<NotifyActivities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 5 } });

export async function notify(input: Parameters<NotifyActivities['notify']>[0]): Promise<void> {
  try {
    await alerts.notify(input);
  } catch (error) {
    if (isCancellation(error)) throw error;
    log.warn(`could not deliver the ${input.event} notification; the run goes on`, { cluster: input.cluster, error: String(error) });
  }
}
