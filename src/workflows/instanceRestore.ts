/**
 * The primary is gone: bring its data up on another server, as the DR runbook goes.
 *
 *   1. plan every database to one point (the newest full, its chain, then the continuous
 *      binlog archive), and look at the target: same product, not the cluster's own
 *      server, empty or holding only databases dbops restored there
 *   2. (dry run: stop here and show the plan)
 *   3. a second person approves (restore-instance)
 *   4. claim the databases on the target, then restore each one (load, replay to the
 *      point), checking row counts at the snapshot
 *   5. verify every table (row counts, checksums) and report what was reached
 */
import { ActivityCancellationType, proxyActivities, setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import type { z } from 'zod';
import type { InstanceRestoreActivities } from '../activities';
import type { InstancePlan } from '../activities/instanceRestore';
import type { ApprovalDecision } from '../domain/approval';
import { NON_RETRYABLE_TYPES } from '../domain/failures';
import { InstanceRestoreInputSchema } from '../domain/inputs';
import { describeTarget } from '../domain/restoreTarget';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import type { RestoreDatabaseResult } from '../mysql/restore';
import type { TableVerification } from '../mysql/verify';
import { installApprovalHandlers, requestApproval, requesterOf } from './approval';
import { accept, invalid } from './boundary';

const quick = proxyActivities<InstanceRestoreActivities>({ startToCloseTimeout: '30 minutes', heartbeatTimeout: '2 minutes', retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES } });
const long = proxyActivities<InstanceRestoreActivities>({
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '2 minutes',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

export type InstanceRestoreInput = z.input<typeof InstanceRestoreInputSchema>;

export interface InstanceRestoreResult {
  plan: InstancePlan;
  dryRun: boolean;
  decision: ApprovalDecision | null;
  databases: Array<{ database: string; reached: RestoreDatabaseResult['replay'] | null; snapshotMismatches: string[]; verification: TableVerification[] }>;
  restoredTo: string | null;
}

export async function instanceRestoreWorkflow(raw: InstanceRestoreInput): Promise<InstanceRestoreResult> {
  installApprovalHandlers();
  const input = accept(InstanceRestoreInputSchema, raw, 'instance restore');
  upsertSearchAttributes([
    { key: SA_CLUSTER, value: input.cluster },
    { key: SA_OPERATION, value: 'restore-instance' },
  ]);
  setCurrentDetails(`**instance restore** of \`${input.cluster}\` onto **${input.onto}** to ${describeTarget(input.target)}: planning and looking at the target`);
  const plan = await quick.planInstanceRestore({ cluster: input.cluster, onto: input.onto, databases: input.databases ?? null, target: input.target, ...(input.replace ? { replace: true } : {}) });
  if (plan.refusal) invalid(`instance restore refused before writing anything: ${plan.refusal}`);
  const databases = plan.plans.map((p) => p.database);
  const restoredTo = plan.plans.map((p) => p.window.to).sort()[0] ?? null;
  const result: InstanceRestoreResult = { plan, dryRun: input.dryRun ?? false, decision: null, databases: [], restoredTo };
  const summary =
    `restore ${databases.length} database(s) of ${input.cluster} (${databases.join(', ')}) onto ${input.onto} [${plan.target.server}] to ${describeTarget(input.target)}` +
    (plan.target.replaces.length ? `, REPLACING ${plan.target.replaces.join(', ')} there (restored by dbops earlier)` : '') +
    `; from full ${plan.plans[0]?.full.id}${plan.plans[0]?.archive ? ` + the binlog archive (${plan.plans[0].archive.timeline})` : ''}`;
  if (input.dryRun) {
    setCurrentDetails(`**dry run**: would ${summary}`);
    return result;
  }

  const decision = await requestApproval({ action: 'restore-instance', cluster: input.cluster, summary, requester: await requesterOf(input.requestedBy) });
  result.decision = decision;
  if (decision.decision !== 'approved') {
    setCurrentDetails(`${decision.decision}${decision.by ? ` by ${decision.by}` : ''}: nothing was written onto ${input.onto}`);
    return result;
  }

  await quick.claimTargetDatabases({ cluster: input.cluster, onto: input.onto, databases });
  for (const [i, p] of plan.plans.entries()) {
    setCurrentDetails(`approved by ${decision.by}: restoring \`${p.database}\` onto **${input.onto}** (${i + 1} of ${plan.plans.length}): full ${p.full.id}, ${p.binlogs.length} binlog file(s)`);
    const restored = await long.restoreOnto({ cluster: input.cluster, onto: input.onto, plan: p, expectRows: plan.expect[p.database] ?? [] });
    const verification = await quick.verifyOnto({ cluster: input.cluster, onto: input.onto, database: p.database });
    result.databases.push({ database: p.database, reached: restored.replay, snapshotMismatches: restored.snapshotCheck?.mismatches ?? [], verification });
  }
  const mismatches = result.databases.flatMap((d) => d.snapshotMismatches);
  if (mismatches.length > 0) invalid(`restored onto ${input.onto}, but the row counts at the snapshot differ from the backup: ${mismatches.join('; ')}`);
  setCurrentDetails(`restored ${databases.length} database(s) of \`${input.cluster}\` onto **${input.onto}** to ${describeTarget(input.target)} (${restoredTo ?? '?'}), every table verified`);
  return result;
}
