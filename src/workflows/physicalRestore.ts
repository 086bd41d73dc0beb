/**
 * A new server from a physical backup, as the "rebuild the primary" runbook goes:
 *
 *   1. plan every database to one point from the newest physical full at or before it
 *      (then its physical incrementals, then the binlogs)
 *   2. (dry run: stop here and show the plan)
 *   3. unpack and prepare into a new folder under physicalRestores.dir (never over anything
 *      that exists), start it privately with its own accounts kept, replay each database
 *      to the point, drop the restore's account, shut it down cleanly
 *   4. report the datadir, what each database reached and its tables' checksums
 *
 * Nothing existing is written, so no approval is asked: the folder must be new.
 */
import { ActivityCancellationType, proxyActivities, setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import type { z } from 'zod';
import type { PhysicalRestoreActivities } from '../activities';
import type { PhysicalRestorePlan } from '../activities/physicalRestore';
import { NON_RETRYABLE_TYPES } from '../domain/failures';
import { PhysicalRestoreInputSchema } from '../domain/inputs';
import { describeTarget } from '../domain/restoreTarget';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import type { PhysicalInstanceResult } from '../mysql/physicalInstance';
import { accept, invalid } from './boundary';

const quick = proxyActivities<PhysicalRestoreActivities>({ startToCloseTimeout: '10 minutes', retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES } });
const long = proxyActivities<PhysicalRestoreActivities>({
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '2 minutes',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumAttempts: 2, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

export type PhysicalRestoreInput = z.input<typeof PhysicalRestoreInputSchema>;

export interface PhysicalRestoreResult {
  plan: PhysicalRestorePlan;
  dryRun: boolean;
  restored: PhysicalInstanceResult | null;
}

export async function physicalRestoreWorkflow(raw: PhysicalRestoreInput): Promise<PhysicalRestoreResult> {
  const input = accept(PhysicalRestoreInputSchema, raw, 'physical restore');
  if (input.target.kind === 'beforeMatching') invalid('a physical restore goes to a time, a position, a GTID or latest (resolve "before matching" with dbops restore plan first)');
  const target = input.target as Exclude<typeof input.target, { kind: 'beforeMatching' }>;
  upsertSearchAttributes([
    { key: SA_CLUSTER, value: input.cluster },
    { key: SA_OPERATION, value: 'restore-physical' },
  ]);
  setCurrentDetails(`**physical restore** of \`${input.cluster}\` to ${describeTarget(target)} into **${input.name}**: planning`);
  const plan = await quick.planPhysicalRestore({ cluster: input.cluster, target, name: input.name });
  const deltas = plan.source.deltas?.length ?? 0;
  const summary = `physical full ${plan.source.fullId}${deltas ? ` + ${deltas} physical incremental(s)` : ''}, then ${plan.plans[0]?.binlogs.length ?? 0} binlog file(s) for ${plan.plans.length} database(s), into ${plan.datadir}`;
  if (input.dryRun) {
    setCurrentDetails(`**physical restore (dry run)** of \`${input.cluster}\`: would restore ${summary}`);
    return { plan, dryRun: true, restored: null };
  }
  setCurrentDetails(`**physical restore** of \`${input.cluster}\`: ${summary}; progress in the activity's heartbeat`);
  const restored = await long.restorePhysicalInstance({ cluster: input.cluster, name: input.name, product: plan.product, source: plan.source, plans: plan.plans });
  setCurrentDetails(
    `**physical restore** of \`${input.cluster}\` done: ${restored.datadir} (files owned by uid ${restored.ownerUid}), ` +
      restored.databases.map((d) => `${d.database} at ${d.reached.file ?? '?'}:${d.reached.position ?? '?'}`).join(', ') +
      '. Start a server on it with your own configuration; its accounts are the source\'s.',
  );
  return { plan, dryRun: false, restored };
}
