/**
 * Copying backups to a further repository (an off-site bucket), as a DBA's "ship the
 * night's backups" runbook goes, but durable:
 *
 *   1. ask the copy what it lacks, oldest first (a backup never before what it builds on)
 *   2. copy each one: stream it across, check it, re-read it there, publish it there
 *   3. a backup published meanwhile (signal backupPublished) is picked up before finishing
 *   4. apply the copy's own retention (a child retention run for that repository)
 *
 * One run per cluster and copy (id copy/<cluster>/<repo>). While the copy cannot be
 * reached, each copy activity is retried with a capped backoff and no attempt limit, so
 * the run waits out an outage and catches up where it stopped; after an hour of failures
 * it alerts once. Damage in the source stops that backup (not retried: copying would copy
 * the damage) and alerts; the ones after it that build on it wait.
 */
import { ApplicationFailure, CancellationScope, condition, defineSignal, executeChild, isCancellation, proxyActivities, setCurrentDetails, setHandler, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { z } from 'zod';
import type { CopyActivities } from '../activities';
import { failureType, Failure, innermostMessage, NON_RETRYABLE_TYPES } from '../domain/failures';
import { CopyInputSchema } from '../domain/inputs';
import { formatBytes } from '../domain/naming';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { accept } from './boundary';
import { notify } from './notify';
import { retentionWorkflow } from './retention';

export type CopyInput = z.input<typeof CopyInputSchema>;

export interface CopyResult {
  repo: string;
  copied: Array<{ id: string; bytes: number }>;
  failed: Array<{ id: string; why: string }>;
  held: Array<{ id: string; why: string }>;
  /** The copy's retention run (null when it was not run). */
  retention: { status: string; deleted: number } | null;
}

export const backupPublished = defineSignal('backupPublished');

const quick = proxyActivities<CopyActivities>({ startToCloseTimeout: '2 minutes', retry: { maximumInterval: '5 minutes', nonRetryableErrorTypes: NON_RETRYABLE_TYPES } });
const transfer = proxyActivities<CopyActivities>({
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: '2 minutes',
  // No attempt limit: an outage of the copy is waited out, at most 10 minutes between tries.
  retry: { initialInterval: '10s', backoffCoefficient: 2, maximumInterval: '10 minutes', nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

export async function copyBackupsWorkflow(raw: CopyInput): Promise<CopyResult> {
  const input = accept(CopyInputSchema, raw, 'copy');
  let more = false;
  setHandler(backupPublished, () => {
    more = true;
  });
  upsertSearchAttributes([
    { key: SA_CLUSTER, value: input.cluster },
    { key: SA_OPERATION, value: 'copy' },
  ]);
  const result: CopyResult = { repo: input.repo, copied: [], failed: [], held: [], retention: null };
  const failedIds = new Set<string>();

  for (let round = 0; round < 1000; round++) {
    more = false;
    setCurrentDetails(`**copy** of \`${input.cluster}\` to **${input.repo}**: asking what it lacks`);
    const plan = await quick.planCopy({ cluster: input.cluster, repo: input.repo });
    const todo = plan.copy.filter((id) => !failedIds.has(id));
    result.held = plan.held;
    if (todo.length === 0 && !more) break;
    for (const [i, id] of todo.entries()) {
      setCurrentDetails(`**copy** of \`${input.cluster}\` to **${input.repo}**: ${id} (${i + 1} of ${todo.length}; ${plan.lag.missing} missing, oldest waiting ${Math.round(plan.lag.lagSeconds / 60)} min)`);
      try {
        const done = await copyOne(input, id);
        if (done.copied) result.copied.push({ id, bytes: done.bytes });
      } catch (error) {
        if (isCancellation(error)) throw error;
        const why = innermostMessage(error);
        failedIds.add(id);
        result.failed.push({ id, why });
        await notify({ severity: 'critical', event: 'copy-failed', cluster: input.cluster, message: `backup ${id} was not copied to ${input.repo}: ${why}` });
        if (failureType(error) !== Failure.ArtifactCorrupt && failureType(error) !== Failure.BackupGone) throw error;
      }
    }
    if (todo.length === 0) await condition(() => more, '1 minute'); // a signal arrived while planning: look again
  }

  if (input.retention !== false) {
    setCurrentDetails(`**copy** of \`${input.cluster}\` to **${input.repo}**: applying its retention`);
    const r = await executeChild(retentionWorkflow, {
      workflowId: `${workflowInfo().workflowId}/retention/${workflowInfo().runId.slice(0, 8)}`,
      args: [{ cluster: input.cluster, repo: input.repo, requestedBy: `copy/${input.repo}` }],
    });
    result.retention = { status: r.status, deleted: r.deleted.length };
  }
  const bytes = result.copied.reduce((n, c) => n + c.bytes, 0);
  setCurrentDetails(
    `**copy** of \`${input.cluster}\` to **${input.repo}**: ${result.copied.length} backup(s) copied (${formatBytes(bytes)})` +
      (result.failed.length ? `, ${result.failed.length} failed` : '') +
      (result.held.length ? `, ${result.held.length} waiting for what they build on` : ''),
  );
  if (result.failed.length > 0) {
    throw ApplicationFailure.nonRetryable(`${result.failed.length} backup(s) not copied to ${input.repo}: ${result.failed.map((f) => `${f.id}: ${f.why}`).join('; ')}`, Failure.ArtifactCorrupt);
  }
  return result;
}

/** One backup; alerts once if it has not been copied after an hour (the copy unreachable), and keeps trying. */
async function copyOne(input: z.infer<typeof CopyInputSchema>, id: string): Promise<{ copied: boolean; bytes: number }> {
  const watch = new CancellationScope();
  const watching = watch
    .run(async () => {
      await sleep('1 hour');
      await notify({ severity: 'warning', event: 'copy-behind', cluster: input.cluster, message: `copying ${id} to ${input.repo} has not succeeded for an hour; still trying (is the repository reachable?)` });
    })
    .catch((error: unknown) => {
      if (!isCancellation(error)) throw error;
    });
  try {
    return await transfer.copyBackup({ cluster: input.cluster, repo: input.repo, id });
  } finally {
    watch.cancel();
    await watching;
  }
}
