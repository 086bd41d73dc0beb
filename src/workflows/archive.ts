/**
 * Batched history archiving, as a DBA's runbook goes: plan (count, key range, what
 * it will run), ask a person before deleting, create the history table, then copy and
 * delete in primary-key ranges while watching the server's load, and finally prove by
 * checksums that every planned row is in exactly one place. Long runs continue as new
 * with the same workflow id; operators pause, resume and cancel with signals.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  allHandlersFinished,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import type { ArchiveActivities } from '../activities';
import type { z } from 'zod';
import { archiveJobName, describeProgress, rowsPerSecond, runSpecOf, sqlOf, type ArchivePlan, type ArchiveProgress, type ArchiveVerification } from '../domain/archive';
import { selfApprovalRefusal, type ApprovalDecision } from '../domain/approval';
import { failureType, innermostMessage, NON_RETRYABLE_TYPES, Failure } from '../domain/failures';
import { ArchiveInputSchema, describeIssues, OperatorActionSchema, type ArchiveCarried, type OperatorAction, type Requester } from '../domain/inputs';
import { accept, invalid } from './boundary';
import { compactUtc } from '../domain/naming';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { approvalPolicy, installApprovalHandlers, requestApproval, requesterOf } from './approval';
import { notify } from './notify';

// Planning and verification scan every row the predicate selects: hours on a big table,
// heartbeating all along.
const quick = proxyActivities<ArchiveActivities>({
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});
// Moving rows: retried without limit while the server is reachable (each range is
// idempotent); a short heartbeat timeout notices a dead worker quickly.
const moverFor = (heartbeatTimeout: string) =>
  proxyActivities<ArchiveActivities>({
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout,
    // A cancelled run verifies only after the batch in flight has committed or rolled back.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
  });

/**
 * One activity moves batches for at most this long, then reports: signals (pause, cancel)
 * and progress take effect within seconds, at a batch boundary, at ~3 history events per chunk.
 */
const CHUNK_SECONDS = 3;

export type PlannedArchive = ArchivePlan & { warnings: string[] };

export type { OperatorAction };

export const pauseArchiveSignal = defineSignal<[OperatorAction]>('pause');
export const resumeArchiveSignal = defineSignal<[OperatorAction]>('resume');
export const cancelArchiveSignal = defineSignal<[OperatorAction]>('cancel');
export const archiveProgressQuery = defineQuery<ArchiveStatus>('progress');

export interface ArchiveStatus {
  job: string;
  cluster: string;
  progress: ArchiveProgress | null;
  rowsPerSecond: number;
  text: string;
}

export type ArchiveInput = z.input<typeof ArchiveInputSchema>;

export interface ArchiveResult {
  status: 'dry-run' | 'nothing-to-do' | 'rejected' | 'done' | 'cancelled';
  plan: PlannedArchive;
  progress: ArchiveProgress;
  approval: ApprovalDecision | null;
  verification: ArchiveVerification | null;
  /** Operator actions and throttling, in order (who paused, why it waited). */
  log: string[];
  report: string | null;
}

/** The plan as the next run receives it: measurements and positions, no SQL. */
function factsOf(plan: PlannedArchive): ArchiveCarried['facts'] {
  const { sql: _sql, createDest: _ddl, ...facts } = plan;
  void _sql;
  void _ddl;
  return facts;
}

function planFrom(facts: ArchiveCarried['facts']): PlannedArchive {
  return { ...facts, createDest: null, sql: sqlOf(facts) };
}

export async function archiveWorkflow(raw: ArchiveInput): Promise<ArchiveResult> {
  installApprovalHandlers();
  const input = accept(ArchiveInputSchema, raw, 'archive');
  const info = workflowInfo();
  // A cron or retried run also has a previous run: only a continue-as-new hands state on.
  if (info.cronSchedule) invalid('an archive run is not started with a cron schedule: use dbops schedules (schedules.entries[] with action archive)');
  if (input.carried && (info.continuedFromExecutionRunId === undefined || info.attempt > 1)) {
    invalid('carried: only a run that continued as new carries state; start a run with the job alone');
  }
  const jobName = archiveJobName({ name: input.job.name, database: input.job.database, table: input.job.table });
  upsertSearchAttributes([
    { key: SA_CLUSTER, value: input.job.cluster },
    { key: SA_OPERATION, value: 'archive' },
  ]);
  const now = () => new Date().toISOString();
  const log: string[] = [...(input.carried?.log ?? [])];
  const note = (line: string) => log.push(`${now()} ${line}`);
  let progress: ArchiveProgress = input.carried?.progress ?? {
    phase: 'plan',
    planned: 0,
    moved: 0,
    batches: 0,
    cursor: { after: null },
    throttled: null,
    pausedBy: null,
    runs: 0,
    startedAt: now(),
    updatedAt: now(),
  };
  progress = { ...progress, runs: progress.runs + 1 };
  let cancelRequested: OperatorAction | null = null;
  const update = (patch: Partial<ArchiveProgress>) => {
    progress = { ...progress, ...patch, updatedAt: now() };
    setCurrentDetails(`**archive ${jobName}** on \`${input.job.cluster}\`: ${describeProgress(progress)}\n\n${log.slice(-5).join('\n\n')}`);
  };
  setHandler(archiveProgressQuery, () => ({
    job: jobName,
    cluster: input.job.cluster,
    progress,
    rowsPerSecond: rowsPerSecond(progress.moved, progress.startedAt, now()),
    text: describeProgress(progress),
  }));
  /** Operator signals: a malformed one is noted and ignored, never a failed workflow task. */
  const operatorSignal = (what: string, apply: (a: OperatorAction) => void) => (rawAction: unknown) => {
    const parsed = OperatorActionSchema.safeParse(rawAction);
    if (!parsed.success) {
      note(`${what} ignored: malformed (${describeIssues(parsed.error)})`);
      return;
    }
    apply(parsed.data);
  };
  setHandler(
    pauseArchiveSignal,
    operatorSignal('pause', (a) => {
      note(`paused by ${a.operator}${a.reason ? `: ${a.reason}` : ''}`);
      update({ pausedBy: a.operator });
    }),
  );
  setHandler(
    resumeArchiveSignal,
    operatorSignal('resume', (a) => {
      note(`resumed by ${a.operator}${a.reason ? `: ${a.reason}` : ''}`);
      update({ pausedBy: null });
    }),
  );
  setHandler(
    cancelArchiveSignal,
    operatorSignal('cancel', (a) => {
      note(`cancel requested by ${a.operator}${a.reason ? `: ${a.reason}` : ''}`);
      cancelRequested = a;
    }),
  );

  // --- plan ---------------------------------------------------------------------------
  let plan: PlannedArchive;
  let approval: ApprovalDecision | null = input.carried?.approval ?? null;
  let requester: Requester;
  if (input.carried) {
    plan = planFrom(input.carried.facts);
    requester = input.carried.requester;
  } else {
    update({ phase: 'plan' });
    plan = await quick.planArchive({ job: input.job, asOf: Math.floor(Date.now() / 1000), dryRun: input.dryRun === true });
    update({ planned: plan.planned.rows });
    note(`planned ${plan.planned.rows} row(s), keys ${plan.keyMin ?? '-'}..${plan.keyMax ?? '-'}, ${plan.estimatedBatches} batch(es) via ${plan.index}`);
    const result = (status: ArchiveResult['status']): ArchiveResult => ({ status, plan, progress, approval, verification: null, log, report: null });
    if (input.dryRun) return result('dry-run');
    requester = await requesterOf(input.requestedBy);
    if (input.preApproved) {
      // --yes is the requester approving their own run: allowed only to a configured approver, where self-approval is.
      const policy = await approvalPolicy(plan.job.cluster, 'archive-delete');
      const by = input.preApproved.by;
      if (!policy.approvers.includes(by)) invalid(`--yes: ${by} is not an approver for archive-delete on ${plan.job.cluster} (approvers: ${policy.approvers.join(', ') || 'none configured'})`);
      if (by !== requester.name) invalid(`--yes: pre-approved by ${by}, but the run was requested by ${requester.name}; --yes approves only your own run`);
      if (!policy.selfApproval) invalid(`--yes: ${selfApprovalRefusal('archive-delete', plan.job.cluster, `${by} requested this run`)}`);
    }
    if (plan.planned.rows === 0) {
      update({ phase: 'done' });
      return result('nothing-to-do');
    }

    // --- approval before anything is written ------------------------------------------
    const destName = `${plan.dest.cluster}:${plan.dest.database}.${plan.dest.table}`;
    if (input.preApproved) {
      approval = { decision: 'approved', by: input.preApproved.by, identity: requester.identity, at: now(), reason: input.preApproved.reason };
      note(`delete phase pre-approved by ${input.preApproved.by} (--yes)`);
    } else if (plan.job.approval) {
      update({ phase: 'approval' });
      approval = await requestApproval({
        action: 'archive-delete',
        cluster: plan.job.cluster,
        summary: `move ${plan.planned.rows} row(s) of ${plan.job.database}.${plan.job.table} WHERE ${plan.job.where} into ${destName} and delete them from the source`,
        requester,
      });
      note(`delete phase ${approval.decision}${approval.by ? ` by ${approval.by}` : ''}${approval.reason ? `: ${approval.reason}` : ''}`);
      if (approval.decision !== 'approved') {
        update({ phase: 'cancelled' });
        return result('rejected');
      }
      // The approval may have taken hours: plan again (same NOW()) so the verification compares with the table as it is now.
      const approvedRows = plan.planned.rows;
      plan = await quick.planArchive({ job: input.job, asOf: plan.asOf });
      update({ planned: plan.planned.rows });
      if (plan.planned.rows !== approvedRows) note(`planned again after the approval: ${plan.planned.rows} row(s) (was ${approvedRows})`);
      if (plan.planned.rows === 0) {
        update({ phase: 'done' });
        return result('nothing-to-do');
      }
    }
    update({ phase: 'destination' });
    await quick.ensureArchiveDestination({ spec: runSpecOf(plan) });
  }

  // --- move ---------------------------------------------------------------------------
  const spec = runSpecOf(plan);
  const mover = moverFor(input.timeouts?.heartbeat ?? '30 seconds');
  const recheckMs = msToNumber(plan.job.throttle.recheckAfter as Parameters<typeof msToNumber>[0]);
  let batchesThisRun = 0;
  const verify = (expectComplete: boolean) => quick.verifyArchive({ spec, planned: plan.planned, destBefore: plan.destBefore, expectComplete });
  const finish = async (status: 'done' | 'cancelled', expectComplete: boolean): Promise<ArchiveResult> => {
    update({ phase: 'verify' });
    const verification = await verify(expectComplete);
    update({ phase: verification.ok ? status : 'failed', throttled: null });
    const report: Omit<ArchiveResult, 'report'> = { status, plan, progress, approval, verification, log };
    const file = await quick.storeArchiveReport({ cluster: plan.job.cluster, job: jobName, runKey: compactUtc(new Date(progress.startedAt)), report });
    if (!verification.ok) {
      await notify({ severity: 'critical', event: 'archive-verification-failed', cluster: plan.job.cluster, message: `archive ${jobName}: ${verification.problems.join('; ')}` });
      throw ApplicationFailure.nonRetryable(`archive ${jobName} failed verification: ${verification.problems.join('; ')} (report: ${file})`, Failure.ArchiveVerificationFailed);
    }
    return { ...report, report: file };
  };

  try {
    for (;;) {
      if (cancelRequested) {
        const by: OperatorAction = cancelRequested;
        note(`stopped after ${progress.moved} row(s) at the request of ${by.operator}`);
        return await finish('cancelled', false);
      }
      if (progress.pausedBy) {
        update({ phase: 'paused' });
        await condition(() => progress.pausedBy === null || cancelRequested !== null);
        continue;
      }
      if (batchesThisRun >= plan.job.continueAsNewEvery || workflowInfo().continueAsNewSuggested) {
        await condition(allHandlersFinished);
        await continueAsNew<typeof archiveWorkflow>({
          job: input.job,
          ...(input.requestedBy !== undefined ? { requestedBy: input.requestedBy } : {}),
          ...(input.timeouts ? { timeouts: input.timeouts } : {}),
          carried: { facts: factsOf(plan), progress, approval, requester, log: log.slice(-50) },
        });
      }
      update({ phase: 'moving' });
      let r;
      try {
        r = await mover.moveArchiveBatches({ spec, cursor: progress.cursor, maxBatches: plan.job.continueAsNewEvery - batchesThisRun, maxSeconds: CHUNK_SECONDS });
      } catch (error) {
        if (failureType(error) !== Failure.ArchiveCountMismatch) throw error;
        const reason = innermostMessage(error);
        note(`stopped: ${reason}`);
        await notify({ severity: 'critical', event: 'archive-count-mismatch', cluster: plan.job.cluster, message: `archive ${jobName} stopped: ${reason}` });
        const v = await verify(false);
        throw ApplicationFailure.nonRetryable(`${reason}; moved ${v.moved.rows} of ${plan.planned.rows} row(s), ${v.conserved ? 'nothing lost or duplicated (verified)' : v.problems.join('; ')}`, Failure.ArchiveCountMismatch);
      }
      batchesThisRun += r.batches;
      update({ cursor: r.cursor, moved: progress.moved + r.moved, batches: progress.batches + r.batches, throttled: r.throttle?.reason ?? null });
      if (r.done) return await finish('done', true);
      if (r.throttle?.action === 'abort') {
        note(`aborted: ${r.throttle.reason}`);
        await notify({ severity: 'critical', event: 'archive-aborted', cluster: plan.job.cluster, message: `archive ${jobName} aborted: ${r.throttle.reason}` });
        const v = await verify(false);
        throw ApplicationFailure.nonRetryable(
          `archive ${jobName} aborted: ${r.throttle.reason}; moved ${v.moved.rows} of ${plan.planned.rows} row(s), ${v.conserved ? 'nothing lost or duplicated (verified)' : v.problems.join('; ')}; run the job again to continue`,
          Failure.ThrottleAbort,
        );
      }
      if (r.throttle?.action === 'pause') {
        if (!log[log.length - 1]?.endsWith(r.throttle.reason)) note(`throttled: ${r.throttle.reason}`);
        await condition(() => cancelRequested !== null, recheckMs);
      }
    }
  } catch (error) {
    if (!isCancellation(error)) throw error;
    // Cancelled from the UI or `temporal workflow cancel`: still prove nothing was lost.
    note('workflow cancelled');
    await CancellationScope.nonCancellable(() => finish('cancelled', false));
    throw error;
  }
}
