/**
 * Retention, as a DBA's cleanup runbook goes: list what each backup type keeps and
 * why, never delete what a kept backup or the point-in-time window needs, raise the
 * storage alerts, ask a person when a run would delete more than the configured amount,
 * then delete under the cluster's backup lock (so no backup builds on a parent that is
 * going away). A dry run lists what would go and why, and touches nothing.
 */
import { patched, proxyActivities, setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import type { RetentionActivities } from '../activities';
import type { RetentionDeleteResult } from '../activities/retention';
import type { ApprovalDecision } from '../domain/approval';
import { NON_RETRYABLE_TYPES } from '../domain/failures';
import { formatBytes } from '../domain/naming';
import type { RetentionPlan, StorageLevel } from '../domain/retention';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import type { z } from 'zod';
import { RetentionInputSchema } from '../domain/inputs';
import { installApprovalHandlers, requestApproval, requesterOf } from './approval';
import { accept } from './boundary';
import { notify } from './notify';
import { withClusterLock } from './lock';

const quick = proxyActivities<RetentionActivities>({ startToCloseTimeout: '10 minutes', retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_TYPES } });
/** Alerts are best-effort here: a webhook that is down must not keep the disk full. */

type Severity = 'info' | 'warning' | 'critical';

function severityOf(level: StorageLevel): Severity {
  return level === 'warning' ? 'warning' : level === 'cleanup' || level === 'over' ? 'critical' : 'info';
}

function usage(s: RetentionPlan['storage']): string {
  return `${formatBytes(s.usedBytes)}${s.maxBytes !== null ? ` of ${formatBytes(s.maxBytes)} (${Math.round((s.usedFraction ?? 0) * 100)} %)` : ''}`;
}

export type RetentionInput = z.input<typeof RetentionInputSchema>;

export interface RetentionResult {
  status: 'dry-run' | 'nothing-to-do' | 'rejected' | 'expired' | 'done';
  plan: RetentionPlan;
  approval: ApprovalDecision | null;
  deleted: RetentionDeleteResult['deleted'];
  skipped: RetentionDeleteResult['skipped'];
  freedBytes: number;
  /** Storage as the catalog holds it after deleting (status done). */
  storageAfter: RetentionDeleteResult['storageAfter'] | null;
}

export async function retentionWorkflow(raw: RetentionInput): Promise<RetentionResult> {
  installApprovalHandlers();
  const input = accept(RetentionInputSchema, raw, 'retention');
  upsertSearchAttributes([
    { key: SA_CLUSTER, value: input.cluster },
    { key: SA_OPERATION, value: 'retention' },
  ]);
  setCurrentDetails(`**retention** of \`${input.cluster}\`${input.repo ? ` in ${input.repo}` : ''}: planning from the catalog`);
  const where = input.repo ? { repo: input.repo } : {};
  const { plan } = await quick.planRetention({ cluster: input.cluster, ...where });
  const bytes = plan.delete.reduce((n, d) => n + d.bytes, 0);
  const result = (status: RetentionResult['status'], extra: Partial<RetentionResult> = {}): RetentionResult => ({
    status,
    plan,
    approval: null,
    deleted: [],
    skipped: [],
    freedBytes: 0,
    storageAfter: null,
    ...extra,
  });
  setCurrentDetails(
    `**retention** of \`${input.cluster}\`${input.repo ? ` in ${input.repo}` : ''}: ${plan.delete.length} backup(s) to delete (${formatBytes(bytes)}), ${plan.keep.length} kept; storage ${plan.storage.level}` +
      (plan.warnings.length ? `\n\n${plan.warnings.join('\n\n')}` : ''),
  );

  const s = plan.storage;
  const storageHigh = s.level === 'warning' || s.level === 'cleanup' || s.level === 'over';
  if (storageHigh) {
    await notify({
      severity: severityOf(s.level),
      event: 'storage-high',
      cluster: input.cluster,
      message: `backups of ${input.cluster} use ${usage(s)}; after retention: ${formatBytes(s.bytesAfter)}${plan.warnings.length ? `; ${plan.warnings.join('; ')}` : ''}`,
    });
  }
  if (input.dryRun) return result('dry-run');
  if (plan.delete.length === 0) {
    await pruneArchive(input);
    return result('nothing-to-do');
  }

  let approval: ApprovalDecision | null = null;
  if (plan.needsApproval) {
    approval = await requestApproval({
      action: 'retention-delete',
      cluster: input.cluster,
      summary: `delete ${plan.delete.length} backup(s) (${formatBytes(bytes)}) of ${input.cluster}: ${plan.delete.map((d) => d.id).join(', ')}`,
      requester: await requesterOf(input.requestedBy),
    });
    if (approval.decision !== 'approved') return result(approval.decision === 'expired' ? 'expired' : 'rejected', { approval });
  }
  setCurrentDetails(`**retention** of \`${input.cluster}\`${input.repo ? ` in ${input.repo}` : ''}: deleting ${plan.delete.length} backup(s) under the cluster lock`);
  const done = await withClusterLock({ cluster: input.cluster }, 'retention', true, () => quick.deleteBackups({ cluster: input.cluster, ...where, ids: plan.delete.map((d) => d.id) }));
  const freedBytes = done.deleted.reduce((n, d) => n + d.bytes, 0);
  const after = done.storageAfter;
  const outcome =
    `retention of ${input.cluster} deleted ${done.deleted.length} of ${plan.delete.length} backup(s), freed ${formatBytes(freedBytes)}` +
    (done.blockedBy !== null ? `; nothing deleted: ${done.blockedBy}` : done.skipped.length > 0 ? `; skipped ${done.skipped.map((x) => `${x.id} (${x.why})`).join(', ')}` : '') +
    `; storage now ${usage(after)}`;
  setCurrentDetails(`**retention** of \`${input.cluster}\`${input.repo ? ` in ${input.repo}` : ''}: ${outcome}`);
  if (storageHigh) {
    // The follow-up to storage-high: what retention actually freed, at the severity of the level now.
    await notify({ severity: severityOf(after.level), event: 'storage-retention-result', cluster: input.cluster, message: outcome });
  }
  await pruneArchive(input);
  return result('done', { approval, deleted: done.deleted, skipped: done.skipped, freedBytes, storageAfter: after });
}

/** The continuous binlog archive of the primary repository keeps only what the kept fulls can replay from. */
async function pruneArchive(input: { cluster: string; repo?: string | undefined }): Promise<void> {
  if (input.repo !== undefined || !patched('dbops-prune-binlog-archive')) return;
  const { removed } = await quick.pruneBinlogArchive({ cluster: input.cluster });
  if (removed.length > 0) setCurrentDetails(`**retention** of \`${input.cluster}\`: removed ${removed.length} archived binlog file(s)/timeline(s) no kept full can replay from`);
}
