/**
 * `dbops status`: one screen for the on-call DBA. It shows the last verified backup per
 * type and cluster with its age, the next scheduled runs, the runs waiting for a person,
 * and the failures of the last 24 hours.
 */
import { Failure } from '../domain/failures';
import { explainFailure } from './backups';
import type { Client } from '@temporalio/client';
import { openRepository } from '../repository';
import { describeRepository, type DbopsConfig } from '../config/schema';
import { copyStates, type CopyState } from './catalog';
import { BACKUP_TYPES, type BackupType } from '../domain/manifest';
import { listPendingApprovals, type PendingApproval } from './restores';
import { existingSchedules } from './schedules';
import { binlogArchiveState } from './binlogArchive';
import { BinlogArchive } from '../repository/binlogArchive';
import { durationSeconds } from '../domain/duration';

export interface StatusReport {
  generatedAt: string;
  backups: Array<{ cluster: string; type: BackupType; id: string | null; finishedAt: string | null; ageSeconds: number | null }>;
  schedules: Array<{ id: string; paused: boolean; next: string | null }>;
  awaitingApproval: PendingApproval[];
  /** Clusters with continuous binlog archiving: where it is and how old its newest archived transaction is (the RPO now). */
  binlogArchives: Array<{ cluster: string; timeline: string | null; file: string | null; position: number | null; coveredUntil: string | null; rpoSeconds: number | null; targetSeconds: number; state: 'streaming' | 'paused' | 'not running' }>;
  /** The primary repository, and each copy with its lag (see `storage info`). */
  repositories: { primary: string; copies: CopyState[] };
  /** Failed, timed-out or terminated runs; `skipped` ones were refused because the cluster was busy (not a failed backup). */
  failures: Array<{ workflowId: string; type: string; closedAt: string | null; cluster: string | null; reason: string; skipped: boolean }>;
}

export async function statusReport(client: Client, config: DbopsConfig, now = new Date()): Promise<StatusReport> {
  const access = openRepository(config);
  const repository = access.catalog;
  const backups: StatusReport['backups'] = [];
  for (const cluster of config.clusters.map((c) => c.name)) {
    const all = (await repository.list(cluster)).map((b) => b.manifest);
    for (const type of BACKUP_TYPES) {
      const last = all.filter((m) => m.type === type).pop() ?? null;
      backups.push({
        cluster,
        type,
        id: last?.id ?? null,
        finishedAt: last?.finishedAt ?? null,
        ageSeconds: last ? Math.round((now.getTime() - Date.parse(last.finishedAt)) / 1000) : null,
      });
    }
  }
  const schedules = (await existingSchedules(client)).map((s) => ({
    id: s.id,
    paused: s.description.state.paused,
    next: s.description.info.nextActionTimes[0]?.toISOString() ?? null,
  }));
  const since = new Date(now.getTime() - 24 * 3600 * 1000).toISOString();
  const failures: StatusReport['failures'] = [];
  const query = `TaskQueue = '${config.temporal.taskQueue}' AND ExecutionStatus IN ('Failed', 'TimedOut', 'Terminated') AND CloseTime > '${since}'`;
  for await (const wf of client.workflow.list({ query })) {
    const cluster = wf.typedSearchAttributes.getAll().find((p) => p.key.name === 'DbopsCluster')?.value;
    // The failure itself says why (and whether it was a refusal because the cluster was busy).
    const outcome = await client.workflow
      .getHandle(wf.workflowId, wf.runId)
      .result()
      .then(() => null, (error: unknown) => error);
    let cause: unknown = outcome;
    let skipped = false;
    while (cause instanceof Error) {
      if ((cause as { type?: unknown }).type === Failure.ClusterBusy) skipped = true;
      cause = (cause as { cause?: unknown }).cause;
    }
    failures.push({
      workflowId: wf.workflowId,
      type: wf.type,
      closedAt: wf.closeTime?.toISOString() ?? null,
      cluster: typeof cluster === 'string' ? cluster : null,
      reason: outcome ? explainFailure(outcome) : wf.status.name.toLowerCase(),
      skipped,
    });
  }
  const repositories = { primary: describeRepository(config.repository), copies: await copyStates(config, access, now) };
  const binlogArchives: StatusReport['binlogArchives'] = [];
  for (const c of config.clusters.filter((x) => x.binlogArchive.enabled)) {
    const status = await new BinlogArchive(access.storage, c.name).status();
    const workflow = await binlogArchiveState(client, config, c.name).catch(() => null);
    binlogArchives.push({
      cluster: c.name,
      timeline: status?.timeline ?? null,
      file: status?.file ?? null,
      position: status?.position ?? null,
      coveredUntil: status?.coveredUntil ?? null,
      rpoSeconds: status?.coveredUntil ? Math.max(0, Math.round((now.getTime() - Date.parse(status.coveredUntil)) / 1000)) : null,
      targetSeconds: durationSeconds(c.binlogArchive.rpoTarget),
      state: workflow ? (workflow.paused ? 'paused' : 'streaming') : 'not running',
    });
  }
  access.close();
  return { generatedAt: now.toISOString(), backups, schedules, awaitingApproval: await listPendingApprovals(client), binlogArchives, repositories, failures };
}

function age(seconds: number | null): string {
  if (seconds === null) return 'never';
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h ago`;
  return `${Math.round(seconds / 86400)}d ago`;
}

export function formatStatus(r: StatusReport): string {
  const lines = [`dbops status at ${r.generatedAt}`, '', 'last verified backups:'];
  for (const b of r.backups) lines.push(`  ${b.cluster.padEnd(16)} ${b.type.padEnd(13)} ${age(b.ageSeconds).padEnd(10)} ${b.id ?? ''}`);
  if (r.binlogArchives.length > 0) {
    lines.push('', 'binlog archive (RPO now):');
    for (const a of r.binlogArchives) {
      const over = a.rpoSeconds !== null && a.rpoSeconds > a.targetSeconds ? `  OVER the ${a.targetSeconds}s target` : '';
      lines.push(`  ${a.cluster.padEnd(16)} ${a.state.padEnd(12)} complete up to ${a.coveredUntil ?? 'never'} (${age(a.rpoSeconds)})${over}  ${a.file ? `${a.timeline} ${a.file}:${a.position}` : ''}`);
    }
  }
  lines.push('', 'repositories:', `  primary  ${r.repositories.primary}`);
  for (const c of r.repositories.copies) {
    if (c.error) lines.push(`  ${c.name.padEnd(8)} ${c.repository}  CANNOT BE READ: ${c.error}`);
    for (const x of c.clusters) lines.push(`  ${c.name.padEnd(8)} ${x.cluster.padEnd(16)} ${x.lag.missing === 0 ? 'caught up' : `${x.lag.missing} behind, oldest waiting ${age(x.lag.lagSeconds).replace(' ago', '')}`}`);
  }
  lines.push('', 'schedules:');
  if (r.schedules.length === 0) lines.push('  none (dbops schedules apply)');
  for (const s of r.schedules) lines.push(`  ${s.id.padEnd(40)} ${s.paused ? 'PAUSED' : `next ${s.next ?? '-'}`}`);
  lines.push('', 'waiting for approval:');
  if (r.awaitingApproval.length === 0) lines.push('  nothing');
  for (const a of r.awaitingApproval) lines.push(`  ${a.workflowId}  ${a.state?.action ?? '?'}: ${a.state?.summary ?? ''} (deadline ${a.state?.deadline ?? '?'})`);
  lines.push('', 'failures in the last 24 hours:');
  if (r.failures.length === 0) lines.push('  none');
  for (const f of r.failures) lines.push(`  ${f.closedAt ?? '?'}  ${f.skipped ? 'skipped' : 'FAILED '}  ${f.workflowId}: ${f.reason.replace(/\s+/g, ' ').slice(0, 160)}`);
  return lines.join('\n');
}
