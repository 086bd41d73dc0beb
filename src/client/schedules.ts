/**
 * Reconciles the config's schedules into Temporal Schedules. Idempotent: creates the
 * missing, updates the changed (keeping an operator's pause), deletes only schedules it
 * manages (id prefix "dbops/") that the config no longer names.
 */
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleDescription, type ScheduleOptionsStartWorkflowAction } from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import type { DbopsConfig } from '../config/schema';
import { desiredSchedules, planReconcile, SCHEDULE_PREFIX, type DesiredSchedule, type ReconcilePlan } from '../domain/schedules';
import { SA_BACKUP_TYPE, SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { BACKUP_WORKFLOWS } from './backups';
import { disasterRecoveryDrillWorkflow } from '../workflows/drill';
import { drillInput } from './drills';
import { archiveWorkflow } from '../workflows/archive';
import { retentionWorkflow } from '../workflows/retention';
import { repoVerifyWorkflow } from '../workflows/repoVerify';
import { queryKillerWorkflow } from '../workflows/queryKiller';
import { QUERY_KILLER_DETAILS, queryKillerSummary } from './queryKiller';
import { archiveWorkflowId } from '../domain/archive';
import { archiveInput, archiveSummary, resolveArchiveJob } from './archives';

const HASH_KEY = 'dbopsScheduleHash';

/** One typed start action: the workflow by reference, its arguments checked against it. */
function startAction<W extends Workflow>(workflowType: W, args: Parameters<W>, rest: Omit<ScheduleOptionsStartWorkflowAction<W>, 'type' | 'workflowType' | 'args'>): ScheduleOptionsStartWorkflowAction<Workflow> {
  return { type: 'startWorkflow', workflowType, args, ...rest } as ScheduleOptionsStartWorkflowAction<Workflow>;
}

function action(config: DbopsConfig, d: DesiredSchedule): ScheduleOptionsStartWorkflowAction<Workflow> {
  const common = { taskQueue: config.temporal.taskQueue, memo: { [HASH_KEY]: d.hash } };
  if (d.action === 'retention') {
    return startAction(retentionWorkflow, [{ cluster: d.cluster, requestedBy: `schedule ${d.id}` }], {
      ...common,
      workflowId: `retention/${d.cluster}/scheduled`,
      typedSearchAttributes: [
        { key: SA_CLUSTER, value: d.cluster },
        { key: SA_OPERATION, value: 'retention' },
      ],
      staticSummary: `Scheduled retention of ${d.cluster}`,
    });
  }
  if (d.action === 'repo-verify') {
    return startAction(repoVerifyWorkflow, [{ cluster: d.cluster, requestedBy: `schedule ${d.id}` }], {
      ...common,
      workflowId: `repo-verify/${d.cluster}/scheduled`,
      typedSearchAttributes: [
        { key: SA_CLUSTER, value: d.cluster },
        { key: SA_OPERATION, value: 'repo-verify' },
      ],
      staticSummary: `Scheduled repository verify of ${d.cluster}`,
    });
  }
  if (d.action === 'query-killer') {
    return startAction(queryKillerWorkflow, [{ cluster: d.cluster, requestedBy: `schedule ${d.id}` }], {
      ...common,
      workflowId: `query-killer/${d.cluster}/scheduled`,
      typedSearchAttributes: [
        { key: SA_CLUSTER, value: d.cluster },
        { key: SA_OPERATION, value: 'query-killer' },
      ],
      staticSummary: `Scheduled ${queryKillerSummary(d.cluster, false)}`,
      staticDetails: QUERY_KILLER_DETAILS,
    });
  }
  if (d.action === 'archive' && d.job) {
    const job = resolveArchiveJob(config, { job: d.job });
    return startAction(archiveWorkflow, [archiveInput(config, job, { requestedBy: `schedule ${d.id}` })], {
      ...common,
      workflowId: `${archiveWorkflowId(job)}/scheduled`,
      typedSearchAttributes: [
        { key: SA_CLUSTER, value: d.cluster },
        { key: SA_OPERATION, value: 'archive' },
      ],
      staticSummary: `Scheduled ${archiveSummary(job)}`,
    });
  }
  if (d.backupType === null) {
    return startAction(disasterRecoveryDrillWorkflow, [drillInput(config, d.cluster, d.action === 'drill-full', `schedule ${d.id}`)], {
      ...common,
      workflowId: `${d.action}/${d.cluster}/scheduled`,
      typedSearchAttributes: [
        { key: SA_CLUSTER, value: d.cluster },
        { key: SA_OPERATION, value: 'drill' },
      ],
      staticSummary: `Scheduled ${d.action === 'drill-full' ? 'full DR drill (failover rehearsal)' : 'DR drill'} of ${d.cluster}`,
    });
  }
  return startAction(BACKUP_WORKFLOWS[d.backupType].workflow, [{ cluster: d.cluster, requestedBy: `schedule ${d.id}` }], {
    ...common,
    // Temporal appends the scheduled time: backup-full/shop/scheduled-2026-11-22T02:00:00Z
    workflowId: `backup-${d.backupType}/${d.cluster}/scheduled`,
    typedSearchAttributes: [
      { key: SA_CLUSTER, value: d.cluster },
      { key: SA_OPERATION, value: 'backup' },
      { key: SA_BACKUP_TYPE, value: d.backupType },
    ],
    staticSummary: `Scheduled ${d.backupType} backup of ${d.cluster}`,
  });
}

function spec(d: DesiredSchedule) {
  return d.cron ? { cronExpressions: [d.cron], timezone: d.timezone } : { intervals: [{ every: d.every as string }] };
}

const policies = (d: DesiredSchedule) => ({ overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: d.catchupWindow });

export async function existingSchedules(client: Client): Promise<Array<{ id: string; hash: string | null; description: ScheduleDescription }>> {
  const out = [];
  for await (const summary of client.schedule.list()) {
    if (!summary.scheduleId.startsWith(SCHEDULE_PREFIX)) continue;
    try {
      const description = await client.schedule.getHandle(summary.scheduleId).describe();
      const memo = description.action.type === 'startWorkflow' ? (description.action.memo as Record<string, unknown> | undefined) : undefined;
      out.push({ id: summary.scheduleId, hash: typeof memo?.[HASH_KEY] === 'string' ? (memo[HASH_KEY] as string) : null, description });
    } catch (error) {
      if (!(error instanceof ScheduleNotFoundError)) throw error; // deleted meanwhile (list is eventually consistent)
    }
  }
  return out;
}

/** What the config asks for: drills get their targets, archive jobs their definitions (a change updates the schedule). */
export function desiredFromConfig(config: DbopsConfig): DesiredSchedule[] {
  // A cluster with a queryKiller gets its schedule (every queryKiller.every) unless schedules.entries names one.
  const killers = config.clusters
    .filter((c) => c.queryKiller !== undefined && !config.schedules.entries.some((e) => e.cluster === c.name && e.action === 'query-killer'))
    .map((c) => ({ cluster: c.name, action: 'query-killer' as const, every: c.queryKiller?.every }));
  const source = { ...config.schedules, entries: [...killers, ...config.schedules.entries] };
  return desiredSchedules(source, config.drills, Object.fromEntries(config.archive.jobs.map((j) => [j.name ?? '', j])));
}

export async function applySchedules(client: Client, config: DbopsConfig): Promise<ReconcilePlan> {
  const desired = desiredFromConfig(config);
  const existing = await existingSchedules(client);
  const plan = planReconcile(desired, existing);
  for (const d of plan.create) {
    try {
      await client.schedule.create({ scheduleId: d.id, spec: spec(d), action: action(config, d), policies: policies(d) });
    } catch (error) {
      // The list behind "existing" is eventually consistent: a schedule created a moment ago may be missing from it.
      if (!(error instanceof ScheduleAlreadyRunning)) throw error;
      plan.create = plan.create.filter((x) => x.id !== d.id);
      const description = await client.schedule.getHandle(d.id).describe();
      const memo = description.action.type === 'startWorkflow' ? (description.action.memo as Record<string, unknown> | undefined) : undefined;
      if (memo?.[HASH_KEY] === d.hash) plan.unchanged.push(d.id);
      else plan.update.push(d);
    }
  }
  for (const d of plan.update) {
    // Keep the state (an operator's pause and its note); replace what the config owns.
    await client.schedule.getHandle(d.id).update((previous) => ({ ...previous, spec: spec(d), action: action(config, d), policies: policies(d) }));
  }
  for (const id of plan.remove) await client.schedule.getHandle(id).delete();
  return plan;
}
