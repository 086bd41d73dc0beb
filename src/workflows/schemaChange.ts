/**
 * One index change, as the runbook goes:
 *   1. preflight: the table's size and rows, free disk against it, whether the server
 *      accepts the change online, transactions and locks in the way, the verify queries'
 *      plans before; a refusal ends the run there, a dry run too;
 *   2. a schema backup of the cluster, into the catalog;
 *   3. a person approves (never the requester alone);
 *   4. the change runs online and watched: it starts at a quiet moment, gives the
 *      table's lock back when it cannot get it quickly, and is stopped (the server
 *      discards it) past the abort limits or on the `abort` signal;
 *   5. the verify queries are explained again: one that does not use the new index fails
 *      the change, and it is rolled back (DROP INDEX) at once;
 *   6. the run stays open for schemaChange.watchFor: `dbops schema rollback` undoes it
 *      (the requester from the client that started the run, or an approver);
 *   7. the record goes to the repository, a notification says how it ended.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  condition,
  currentUpdateInfo,
  defineQuery,
  defineSignal,
  defineUpdate,
  executeChild,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { z } from 'zod';
import type { SchemaChangeActivities } from '../activities';
import type { SchemaChangePlan } from '../activities/schemaChange';
import { sameCaller, type ApprovalDecision } from '../domain/approval';
import { Failure, NON_RETRYABLE_TYPES, failureType, innermostMessage } from '../domain/failures';
import { describeIssues, OperatorActionSchema, RollbackRequestSchema, SchemaChangeInputSchema, type OperatorAction } from '../domain/inputs';
import { compactUtc, formatBytes } from '../domain/naming';
import { rollbackOf, verificationFailure, type SchemaChangeReport, type SchemaChangeStatus, type VerifyPlan } from '../domain/schemaChange';
import { SA_BACKUP_TYPE, SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { schemaBackupWorkflow } from './backup';
import type { BuildOutcome } from '../mysql/schemaChange';
import { approvalPolicy, installApprovalHandlers, requestApproval, requesterOf, updateCaller } from './approval';
import { accept } from './boundary';
import { notify } from './notify';

const quick = proxyActivities<SchemaChangeActivities>({
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 5, initialInterval: '2s', nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});
// The build: as long as the config lets the server run it; the heartbeat notices a dead
// worker (the next attempt finds the statement still running and watches it).
const build = proxyActivities<SchemaChangeActivities>({
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '1 minute',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumAttempts: 3, initialInterval: '5s', nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

/** A busy cluster (another backup running) is tried again each minute, this many times. */
const BACKUP_TRIES = 30;

export type SchemaChangeInput = z.input<typeof SchemaChangeInputSchema>;

export const abortSchemaChangeSignal = defineSignal<[OperatorAction]>('abort');
export const rollbackUpdate = defineUpdate<{ accepted: true }, [{ operator: string; reason: string }]>('rollback');
export const schemaChangeQuery = defineQuery<SchemaChangeState>('schema-change');

export interface SchemaChangeState {
  phase: 'plan' | 'backup' | 'approval' | 'build' | 'verify' | 'watching' | 'rollback' | 'done';
  text: string;
  /** Until when a rollback may be asked for (watching). */
  watchUntil: string | null;
}

export interface SchemaChangeResult {
  status: SchemaChangeStatus;
  why: string | null;
  plan: SchemaChangePlan;
  approval: ApprovalDecision | null;
  build: BuildOutcome | null;
  after: VerifyPlan[];
  rolledBack: SchemaChangeReport['rolledBack'];
  reportKey: string | null;
  /** The schema backup taken before the change (in the catalog: `dbops backup show ID`). */
  schemaBackupId: string | null;
}

export async function schemaChangeWorkflow(raw: SchemaChangeInput): Promise<SchemaChangeResult> {
  installApprovalHandlers();
  const input = accept(SchemaChangeInputSchema, raw, 'schema change');
  const info = workflowInfo();
  upsertSearchAttributes([
    { key: SA_CLUSTER, value: input.cluster },
    { key: SA_OPERATION, value: 'schema-change' },
  ]);
  const startedAt = new Date();
  const runKey = `${compactUtc(startedAt)}-${info.runId.replace(/-/g, '').slice(0, 8)}`;
  const target = { cluster: input.cluster, database: input.database };
  let state: SchemaChangeState = { phase: 'plan', text: 'reading the table and the server', watchUntil: null };
  const show = (patch: Partial<SchemaChangeState>) => {
    state = { ...state, ...patch };
    setCurrentDetails(`**schema change** on \`${input.cluster}\`: ${state.phase}: ${state.text}`);
  };
  setHandler(schemaChangeQuery, () => state);

  let abortBy: OperatorAction | null = null;
  const buildScope = new CancellationScope();
  // Before the build an abort is kept and honoured when the build would start; during it the build is cancelled.
  setHandler(abortSchemaChangeSignal, (rawAction: unknown) => {
    const parsed = OperatorActionSchema.safeParse(rawAction);
    if (!parsed.success || abortBy || !['plan', 'backup', 'approval', 'build'].includes(state.phase)) return;
    abortBy = parsed.data;
    if (state.phase === 'build') buildScope.cancel();
  });
  let rollbackBy: { operator: string; reason: string } | null = null;
  let approvers: string[] = [];
  let requesterName = input.requestedBy ?? 'unknown';
  let requesterIdentity: string | null = null;
  setHandler(
    rollbackUpdate,
    async (rawReq) => {
      const req = RollbackRequestSchema.parse(rawReq);
      // Whoever names themselves the requester must send it from the client that started the run.
      if (req.operator === requesterName && requesterIdentity !== null) {
        const ids = await updateCaller(currentUpdateInfo()?.id ?? '');
        if (!sameCaller(ids.decider, requesterIdentity)) {
          throw ApplicationFailure.nonRetryable(`${req.operator} requested this run from another client (${requesterIdentity}); this request came from ${ids.decider ?? 'an unknown client'}: ask from that client, or as an approver`, Failure.ApprovalRefused);
        }
      }
      if (state.phase !== 'watching' || rollbackBy) throw ApplicationFailure.nonRetryable(`this run is ${state.phase}${rollbackBy ? ', its rollback already asked for' : ''}`, Failure.ApprovalRefused);
      rollbackBy = req;
      return { accepted: true as const };
    },
    {
      validator: (rawReq) => {
        const parsed = RollbackRequestSchema.safeParse(rawReq);
        if (!parsed.success) throw new Error(`malformed rollback request: ${describeIssues(parsed.error)}`);
        if (state.phase !== 'watching') throw new Error(`this run is ${state.phase}, not watching a finished change: a rollback is asked for while it watches (schemaChange.watchFor); afterwards run the drop as a change of its own`);
        if (rollbackBy) throw new Error(`a rollback was already asked for by ${(rollbackBy as { operator: string }).operator}`);
        if (parsed.data.operator !== requesterName && !approvers.includes(parsed.data.operator)) {
          throw new Error(`${parsed.data.operator} may not roll this change back: the requester (${requesterName}) or an approver for schema-change (${approvers.join(', ') || 'none configured'}) may`);
        }
      },
    },
  );

  // 1. preflight
  const plan = await quick.planSchemaChange({ ...target, change: input.change, verifyQueries: input.verifyQueries });
  const rollbackChange = rollbackOf(input.change);
  let approval: ApprovalDecision | null = null;
  let buildOutcome: BuildOutcome | null = null;
  let after: VerifyPlan[] = [];
  let rolledBack: SchemaChangeReport['rolledBack'] = null;
  let schemaBackup: SchemaChangeReport['schemaBackup'] = null;

  const finish = async (status: SchemaChangeStatus, why: string | null): Promise<SchemaChangeResult> => {
    show({ phase: 'done', text: `${status}${why ? `: ${why}` : ''}`, watchUntil: null });
    let reportKey: string | null = null;
    if (status !== 'dry-run') {
      const report: SchemaChangeReport = {
        formatVersion: 1,
        cluster: input.cluster,
        database: input.database,
        runKey,
        change: input.change,
        description: plan.description,
        statement: plan.statement,
        rollback: plan.rollback,
        status,
        why,
        refusals: plan.refusals,
        warnings: plan.warnings,
        table: plan.table,
        freeBytes: plan.freeBytes,
        schemaBackup,
        approval: approval ? { decision: approval.decision, by: approval.by, at: approval.at, reason: approval.reason } : null,
        build: buildOutcome,
        before: plan.before,
        after,
        rolledBack,
        requestedBy: input.requestedBy ?? null,
        workflow: { workflowId: info.workflowId, runId: info.runId },
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
      };
      reportKey = (await quick.storeSchemaChangeReport({ report })).key;
      const severity = status === 'done' ? 'info' : status === 'refused' || status === 'rejected' ? 'warning' : 'critical';
      await notify({ severity, event: `schema-change-${status}`, cluster: input.cluster, message: `schema change ${plan.description}: ${status}${why ? ` (${why})` : ''}` });
    }
    return { status, why, plan, approval, build: buildOutcome, after, rolledBack, reportKey, schemaBackupId: schemaBackup?.id ?? null };
  };

  const size = plan.table ? `${plan.table.rowsEstimate} rows (estimate), ${formatBytes(plan.table.dataBytes + plan.table.indexBytes)}` : 'no table';
  if (plan.refusals.length) return finish('refused', plan.refusals.join('; '));
  if (input.dryRun) return finish('dry-run', null);

  // 2. the schema as it is: a schema backup in the catalog (restorable like any other),
  // waiting its turn while other backups of the cluster run
  const requester = await requesterOf(input.requestedBy);
  requesterName = requester.name;
  requesterIdentity = requester.identity;
  show({ phase: 'backup', text: `schema backup of ${input.cluster}` });
  for (let attempt = 1; ; attempt++) {
    try {
      const manifest = await executeChild(schemaBackupWorkflow, {
        workflowId: `${info.workflowId}/schema-backup-${attempt}`,
        args: [{ cluster: input.cluster, requestedBy: requester.name, reason: `before ${plan.description}` }],
        typedSearchAttributes: [
          { key: SA_CLUSTER, value: input.cluster },
          { key: SA_OPERATION, value: 'backup' },
          { key: SA_BACKUP_TYPE, value: 'schema' },
        ],
        staticSummary: `Schema backup of ${input.cluster} before a schema change`,
      });
      schemaBackup = { id: manifest.id };
      break;
    } catch (error) {
      if (failureType(error) !== Failure.ClusterBusy || attempt >= BACKUP_TRIES) return finish('aborted', `the schema backup failed: ${innermostMessage(error)}; nothing was changed`);
      show({ phase: 'backup', text: `the cluster is busy (${innermostMessage(error)}); trying again in a minute` });
      await sleep('1 minute');
    }
  }

  // 3. a person decides
  show({ phase: 'approval', text: plan.description });
  approval = await requestApproval({
    action: 'schema-change',
    cluster: input.cluster,
    summary:
      `${plan.description} on a table of ${size}; ` +
      `free disk ${plan.freeBytes === null ? 'not measured' : formatBytes(plan.freeBytes)}${plan.neededBytes !== null ? ` (needs about ${formatBytes(plan.neededBytes)})` : ''}; online: yes; ` +
      `rollback: ${plan.rollback ?? 'none computed (the schema backup has the definition)'}` +
      (plan.warnings.length ? `; warnings: ${plan.warnings.join('; ')}` : ''),
    requester,
  });
  approvers = (await approvalPolicy(input.cluster, 'schema-change')).approvers;
  if (approval.decision !== 'approved') return finish('rejected', `${approval.decision}${approval.by ? ` by ${approval.by}` : ''}${approval.reason ? `: ${approval.reason}` : ''}`);
  if (abortBy) {
    const by = abortBy as OperatorAction;
    return finish('cancelled', `stopped by ${by.operator}${by.reason ? `: ${by.reason}` : ''} before the build started; nothing was changed`);
  }

  // 4. the change, watched
  show({ phase: 'build', text: plan.statement });
  try {
    buildOutcome = await buildScope.run(() => build.applySchemaChange({ ...target, change: input.change }));
  } catch (error) {
    if (!isCancellation(error) || !abortBy) {
      return finish('aborted', `${failureType(error) ?? 'failed'}: ${innermostMessage(error)}`);
    }
    const by = abortBy as OperatorAction;
    return finish('cancelled', `stopped by ${by.operator}${by.reason ? `: ${by.reason}` : ''}; the server discarded the change`);
  }
  if (buildOutcome.outcome === 'aborted') return finish('aborted', `${buildOutcome.why ?? 'stopped'}; the server discarded the change`);

  // 5. verified by the plans; 6. watched for a rollback request. The index is in place from
  // here: whatever fails after this is reported as such, never as a failed run with no report.
  let rollbackFailed: string | null = null;
  const undo = async (by: string, reason: string, automatic: boolean): Promise<void> => {
    if (!rollbackChange) return;
    show({ phase: 'rollback', text: `${plan.rollback} (${reason})` });
    const dropped = await CancellationScope.nonCancellable(() => build.applySchemaChange({ ...target, change: rollbackChange }));
    if (dropped.outcome === 'aborted') {
      rollbackFailed = `the rollback (${plan.rollback}) was stopped: ${dropped.why ?? '?'}; the index is still in place`;
      return;
    }
    rolledBack = { by, reason, at: new Date().toISOString(), automatic };
  };
  try {
    if (input.change.kind === 'add-index' && input.verifyQueries.length) {
      show({ phase: 'verify', text: `explaining ${input.verifyQueries.length} verify quer${input.verifyQueries.length === 1 ? 'y' : 'ies'}` });
      after = await quick.explainSchemaChange({ ...target, change: input.change, verifyQueries: input.verifyQueries });
      const failed = verificationFailure(input.change, after);
      if (failed) {
        await undo('dbops', failed, true);
        if (rollbackFailed) return finish('failed', `verification failed: ${failed}; ${rollbackFailed}`);
        return finish('rolled-back', `verification failed: ${failed}`);
      }
    }
    if (rollbackChange && plan.watchForSeconds > 0) {
      const until = new Date(Date.now() + plan.watchForSeconds * 1000);
      show({ phase: 'watching', text: `done; \`dbops schema rollback ${info.workflowId} --as NAME --reason TEXT\` until ${until.toISOString()}`, watchUntil: until.toISOString() });
      if (await condition(() => rollbackBy !== null, plan.watchForSeconds * 1000)) {
        const req = rollbackBy as unknown as { operator: string; reason: string };
        await undo(req.operator, req.reason, false);
        if (rollbackFailed) return finish('failed', rollbackFailed);
        return finish('rolled-back', `asked for by ${req.operator}: ${req.reason}`);
      }
    }
  } catch (error) {
    if (isCancellation(error)) throw error;
    return finish('failed', `the index was built, then ${state.phase} failed: ${innermostMessage(error)}; the index is in place (drop it with a change of its own if it must go)`);
  }
  return finish('done', null);
}
