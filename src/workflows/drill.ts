/**
 * The DR drill, as the quarterly runbook goes: pick the latest restorable point, bring up
 * a throwaway server, restore every database into it (full + chain), check it against what
 * the backup recorded, measure RTO and RPO against the targets, tear the server down
 * (also on failure or cancellation), and file a report. A failed drill fails loudly.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { DrillActivities } from '../activities';
import { innermostMessage, NON_RETRYABLE_TYPES, Failure } from '../domain/failures';
import type { DrillSandbox } from '../mysql/drillServer';
import { durationSeconds } from '../domain/duration';
import type { DrillPhase, DrillReport } from '../domain/drill';
import { compactUtc } from '../domain/naming';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import type { z } from 'zod';
import { DrillInputSchema } from '../domain/inputs';
import { installApprovalHandlers, requestApproval, requesterOf } from './approval';
import { accept } from './boundary';
import { notify } from './notify';

const quick = proxyActivities<DrillActivities>({ startToCloseTimeout: '10 minutes', retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES } });
// Cancelling a drill must not outrun its server: wait for these activities to really stop.
const careful = proxyActivities<DrillActivities>({
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: '2 minutes',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumAttempts: 2, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

export type DrillInput = z.input<typeof DrillInputSchema>;

export interface DrillResult {
  report: DrillReport;
  files: { json: string; markdown: string };
}


export async function disasterRecoveryDrillWorkflow(raw: DrillInput): Promise<DrillResult> {
  installApprovalHandlers();
  const input = accept(DrillInputSchema, raw, 'drill');
  const info = workflowInfo();
  upsertSearchAttributes([
    { key: SA_CLUSTER, value: input.cluster },
    { key: SA_OPERATION, value: 'drill' },
  ]);
  const started = Date.now();
  const drillId = `drill-${compactUtc(new Date())}`;
  const rtoTarget = durationSeconds(input.rtoTarget ?? '4h');
  const rpoTarget = durationSeconds(input.rpoTarget ?? '10m');
  const problems: string[] = [];
  const checks: DrillReport['checks'] = [];
  const phases: DrillPhase[] = [];
  const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    try {
      return await fn();
    } finally {
      phases.push({ name, seconds: (Date.now() - t) / 1000 });
    }
  };

  setCurrentDetails(`**DR drill ${drillId}** of \`${input.cluster}\`: planning the latest restorable point`);
  const plan = await phase('plan', () => quick.planDrill({ cluster: input.cluster }));
  const databases = plan.plans.map((p) => p.database);
  let sandbox: DrillSandbox | null = null;
  try {
    setCurrentDetails(`**DR drill ${drillId}**: provisioning a throwaway ${plan.product === 'mysql' ? 'MySQL' : 'MariaDB'} server`);
    if (plan.physical) setCurrentDetails(`**DR drill ${drillId}**: restoring physical full ${plan.physical.fullId} into a throwaway server (${plan.why ?? 'physical'})`);
    sandbox = await phase(plan.physical ? 'restore physical full + start server' : 'provision server', () =>
      careful.provisionSandbox({ drillId, product: plan.product, ...(plan.physical ? { physical: plan.physical } : {}) }),
    );
    if (plan.physical) {
      const deltas = plan.physical.deltas?.map((d) => d.id) ?? [];
      checks.push({
        what: `physical full ${plan.physical.fullId}`,
        ok: true,
        detail: `files unpacked (raw sha256 matches the manifest)${deltas.length ? `, ${deltas.length} physical incremental(s) prepared onto them (${deltas.join(', ')})` : ''}, prepared and started as a server; ${plan.why ?? ''}`.trim(),
      });
    }
    for (const p of plan.plans) {
      setCurrentDetails(`**DR drill ${drillId}**: restoring \`${p.database}\` (full ${p.full.id} + ${p.chain.length} binlog backup(s))`);
      const r = await phase(`restore ${p.database}`, () =>
        careful.restoreIntoSandbox({ cluster: input.cluster, sandbox: sandbox as DrillSandbox, plan: p, expectRows: plan.expect[p.database] ?? [] }),
      );
      const check = r.snapshotCheck;
      // A physical full counts no rows: its files were checked by their digest and by the server starting on them.
      if (!plan.physical) checks.push({
        what: `${p.database}: row counts at the snapshot`,
        ok: (check?.mismatches.length ?? 1) === 0,
        detail: check ? (check.mismatches.length ? check.mismatches.join('; ') : `${check.tables} table(s) match the backup`) : 'not checked',
      });
      problems.push(...(check?.mismatches ?? []));
      checks.push({ what: `${p.database}: replay`, ok: true, detail: `reached ${r.replay.file}:${r.replay.position}${r.replay.gtid ? ` (GTID ${r.replay.gtid})` : ''}, ${r.replay.transactions} transaction(s)` });
    }
    setCurrentDetails(`**DR drill ${drillId}**: checking tables and schema objects`);
    const seen = await phase('verify', () => quick.checkSandbox({ cluster: input.cluster, sandbox: sandbox as DrillSandbox, databases }));
    for (const d of databases) {
      const tables = seen.tables[d] ?? [];
      checks.push({ what: `${d}: tables readable with checksums`, ok: tables.length > 0, detail: tables.map((t) => `${t.table} ${t.rows} rows`).join(', ') });
    }
    // The queries come from the worker's config (drills.sampleQueries / failoverChecks), never from the input.
    const queryChecks = async (kind: 'sample' | 'failover') => {
      const label = kind === 'sample' ? 'sample query' : 'failover check';
      const answers = await phase(kind === 'sample' ? 'sample queries' : 'failover rehearsal', () =>
        quick.runSampleQueries({ cluster: input.cluster, sandbox: sandbox as DrillSandbox, kind }),
      );
      for (const a of answers) {
        const ok = a.error === null && a.rows >= a.minRows;
        const detail = a.error ?? `${a.rows} row(s), at least ${a.minRows} expected`;
        checks.push({ what: `${label} on ${a.database}: ${a.sql}`, ok, detail });
        if (!ok) problems.push(`${label} on ${a.database} (${a.sql}): ${detail}`);
      }
    };
    await queryChecks('sample');
    if (input.full) {
      const decision = await requestApproval({
        action: 'drill-failover',
        cluster: input.cluster,
        summary: `failover rehearsal on the restored copy of ${input.cluster} (drill ${drillId}): the configured read-only checks as the new primary`,
        requester: await requesterOf(input.requestedBy),
      });
      if (decision.decision === 'approved') {
        await queryChecks('failover');
      } else {
        checks.push({ what: 'failover rehearsal', ok: true, detail: `skipped: ${decision.decision}${decision.by ? ` by ${decision.by}` : ''}` });
      }
    }
    if (plan.objects) {
      const want = plan.objects;
      const ok = seen.objects.routines === want.routines && seen.objects.triggers === want.triggers && seen.objects.events === want.events && seen.objects.views === want.views;
      checks.push({ what: 'schema objects', ok, detail: `routines ${seen.objects.routines}/${want.routines}, triggers ${seen.objects.triggers}/${want.triggers}, events ${seen.objects.events}/${want.events}, views ${seen.objects.views}/${want.views}` });
      if (!ok) problems.push(`schema objects differ from the backup: ${JSON.stringify(seen.objects)} restored, ${JSON.stringify(want)} recorded`);
    }
  } catch (error) {
    if (isCancellation(error)) throw error;
    problems.push(`restore failed: ${innermostMessage(error)}`);
  } finally {
    // Always, by drill id: also when the server came up while the run was being cancelled.
    await CancellationScope.nonCancellable(() => phase('tear down', () => quick.teardownSandbox({ drillId })));
  }

  const rto = phases.filter((p) => p.name !== 'tear down').reduce((n, p) => n + p.seconds, 0);
  if (rto > rtoTarget) problems.push(`RTO ${rto.toFixed(0)} s is over the target ${rtoTarget} s`);
  if (plan.rpoSeconds !== null && plan.rpoSeconds > rpoTarget) problems.push(`RPO ${plan.rpoSeconds} s is over the target ${rpoTarget} s: the newest restorable point is too old`);
  const report: DrillReport = {
    formatVersion: 1,
    drillId,
    cluster: input.cluster,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date().toISOString(),
    passed: problems.length === 0,
    problems,
    restoredPoint: plan.plans[0]?.window.to ?? null,
    fullId: plan.plans[0]?.full.id ?? null,
    chain: plan.plans[0]?.chain.map((c) => c.id) ?? [],
    databases,
    rto: { seconds: rto, targetSeconds: rtoTarget },
    rpo: { seconds: plan.rpoSeconds, targetSeconds: rpoTarget },
    phases,
    checks,
    workflow: { workflowId: info.workflowId, runId: info.runId },
  };
  const files = await quick.storeDrillReport({ report });
  if (!report.passed) {
    await notify({ severity: 'critical', event: 'dr-drill-failed', cluster: input.cluster, message: `DR drill ${drillId} of ${input.cluster} FAILED: ${problems.join('; ')} (report ${files.markdown})` });
    setCurrentDetails(`**DR drill ${drillId} FAILED**: ${problems.join('; ')}\n\nreport: ${files.markdown}`);
    throw ApplicationFailure.nonRetryable(`DR drill ${drillId} of ${input.cluster} failed: ${problems.join('; ')}; report ${files.markdown}`, Failure.DrillFailed);
  }
  setCurrentDetails(`**DR drill ${drillId} passed**: RTO ${rto.toFixed(1)} s, RPO ${plan.rpoSeconds ?? '?'} s; report ${files.markdown}`);
  return { report, files };
}
