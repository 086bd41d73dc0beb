#!/usr/bin/env node
/**
 * dbops: the operator's command line. Thin by design: it validates input, starts or
 * signals workflows, and reads the repository's catalog. It never talks to MySQL itself.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, findCluster, loadConfig, resolveConfigPath } from '../config/load';
import type { DbopsConfig } from '../config/schema';
import { BackupTypeSchema, spaceSaving, totalStoredBytes, type BackupType, type Manifest } from '../domain/manifest';
import { formatBytes } from '../domain/naming';
import { displayWebhookUrl } from '../domain/notifications';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { openRepository } from '../repository';
import { createLogger, type Level } from '../logging/logger';
import { runWorker } from '../workers/worker';
import { connectClient, explainFailure, startBackup } from './backups';
import { findBackup, storageReport, validateBackup } from './catalog';
import { approvalState, decide, listPendingApprovals, startPitr, startRestorePlan, startTableRestore } from './restores';
import { applySchedules, desiredFromConfig, drillInput, existingSchedules } from './schedules';
import { formatStatus, statusReport } from './status';
import { progressWanted, resultWithProgress } from './progress';
import { registerSearchAttributes } from './setupTemporal';
import { planReconcile } from '../domain/schedules';
import { beforeMatching, describeTarget, parseTarget, TargetError, type RestoreTarget } from '../domain/restoreTarget';
import type { RestorePlan } from '../domain/restorePlan';
import type { ScanReport } from '../domain/restore/replayStream';
import { runDev } from './dev';
import { archiveInput, resolveArchiveJob, startArchive } from './archives';
import type { RetentionInput, RetentionResult } from '../workflows/retention';
import { archiveProgressQuery, cancelArchiveSignal, pauseArchiveSignal, resumeArchiveSignal, type ArchiveResult, type PlannedArchive } from '../workflows/archive';

const USAGE = `dbops: durable MySQL / MariaDB operations on Temporal

Usage:
  dbops dev [--state-dir DIR] [--demo] [--exit-after-demo]
  dbops worker
  dbops backup full|incremental|differential|emergency --cluster C [--wait] [--json] [--reason TEXT] [--as NAME]
  dbops backup schema --cluster C --reason TEXT [--wait] [--json] [--as NAME]
  dbops backup list --cluster C [--type T] [--json]
  dbops backup show ID [--cluster C] [--json]
  dbops backup validate ID [--cluster C] [--json]
  dbops storage info [--json]
  dbops restore plan  --cluster C --database D (--to TARGET | --before-matching REGEX [--after TIME]) [--json]
  dbops restore pitr  --cluster C --database D (--to TARGET | --before-matching REGEX [--after TIME]) --into NEW_DB [--wait] [--json]
  dbops restore table --cluster C --database D --table T [--table T2 …] (--to TARGET | --before-matching …) [--swap] [--wait] [--json]
  dbops status [--json]
  dbops drill run --cluster C [--full] [--rto 4h] [--rpo 10m] [--wait] [--json] | list --cluster C [--json] | show ID --cluster C [--json]
  dbops archive plan|run (--job NAME | --cluster C --database D --table T --where PRED --to DEST) [--batch-size N]
                [--yes --as NAME] [--wait] [--json]
  dbops archive status ID [--json] | pause ID | resume ID | cancel ID  [--as NAME] [--reason TEXT]
  dbops retention run --cluster C [--dry-run] [--wait] [--json] [--as NAME]
  dbops setup temporal           register the search attributes on the configured namespace
  dbops schedules apply [--dry-run] [--json] | list [--json] | describe ID | pause ID [--reason TEXT] | resume ID | trigger ID
  dbops approvals list [--json]
  dbops approvals show WORKFLOW_ID [--json]
  dbops approvals approve|reject WORKFLOW_ID --as OPERATOR --reason TEXT

  TARGET: 2026-11-22T14:03:06Z (state at the end of that UTC second) | binlog:FILE:POS | gtid:D-S-N | latest
  dbops config check

Options:
  --config FILE   configuration (default: $DBOPS_CONFIG, else ./dbops.yaml)
  --json          machine-readable output on stdout (one JSON document)
  -h, --help      this text
`;

export class UsageError extends Error {}

const out = (line: string) => process.stdout.write(line + '\n');

const COMMON_OPTIONS = { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\. To specify.*$/, ''));
  }
}

function requireString(value: unknown, flag: string): string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

function config(values: { config?: unknown }): DbopsConfig {
  return loadConfig(resolveConfigPath(typeof values.config === 'string' ? values.config : undefined));
}

function manifestLine(m: Manifest): string {
  const rows = m.tables.reduce((n, t) => n + t.rows, 0);
  return [
    m.id.padEnd(28),
    m.type.padEnd(12),
    m.startedAt.replace(/\.\d{3}Z$/, 'Z').padEnd(22),
    `${(m.durationMs / 1000).toFixed(1)}s`.padStart(8),
    formatBytes(totalStoredBytes(m)).padStart(10),
    `${(spaceSaving(m) * 100).toFixed(0)}%`.padStart(6),
    String(rows).padStart(10),
    m.snapshot
      ? `${m.snapshot.file}:${m.snapshot.position}`
      : m.binlogs
        ? `${m.binlogs.startFile}:${m.binlogs.startPosition} → ${m.binlogs.endFile}:${m.binlogs.endPosition}`
        : '-',
  ].join('  ');
}

async function backupStart(type: BackupType, argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    cluster: { type: 'string' },
    wait: { type: 'boolean' },
    json: { type: 'boolean' },
    reason: { type: 'string' },
    as: { type: 'string' },
  });
  const cfg = config(values);
  const cluster = requireString(values.cluster, '--cluster');
  const { client, close } = await connectClient(cfg);
  try {
    const handle = await startBackup(client, cfg, type, {
      cluster,
      requestedBy: typeof values.as === 'string' ? values.as : process.env.USER ?? 'cli',
      ...(typeof values.reason === 'string' ? { reason: values.reason } : {}),
    });
    if (!values.wait) {
      if (values.json) out(JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }));
      else out(`started ${handle.workflowId}`);
      return 0;
    }
    if (!values.json) out(`started ${handle.workflowId}; waiting`);
    const manifest = await resultWithProgress<Manifest>(handle, progressWanted(values.json === true));
    if (values.json) out(JSON.stringify(manifest, null, 2));
    else out(`verified ${manifest.id}: ${manifestLine(manifest)}`);
    return 0;
  } finally {
    await close();
  }
}

async function backupList(argv: string[]): Promise<number> {
  const { values } = parse(argv, { cluster: { type: 'string' }, type: { type: 'string' }, json: { type: 'boolean' } });
  const cfg = config(values);
  const cluster = requireString(values.cluster, '--cluster');
  if (!cfg.clusters.some((c) => c.name === cluster)) {
    throw new ConfigError(`unknown cluster "${cluster}": configured clusters are ${cfg.clusters.map((c) => c.name).join(', ')}`);
  }
  let type;
  if (values.type !== undefined) {
    const parsed = BackupTypeSchema.safeParse(values.type);
    if (!parsed.success) throw new UsageError(`--type must be one of ${BackupTypeSchema.options.join(', ')}`);
    type = parsed.data;
  }
  const backups = await openRepository(cfg).catalog.list(cluster, type);
  if (values.json) {
    out(JSON.stringify(backups.map((b) => b.manifest), null, 2));
    return 0;
  }
  if (backups.length === 0) {
    out(`no backups of ${cluster} in ${cfg.repository.path}`);
    return 0;
  }
  out(['ID'.padEnd(28), 'TYPE'.padEnd(12), 'STARTED'.padEnd(22), 'TOOK'.padStart(8), 'SIZE'.padStart(10), 'SAVED'.padStart(6), 'ROWS'.padStart(10), 'SNAPSHOT'].join('  '));
  for (const b of backups) out(manifestLine(b.manifest));
  return 0;
}

async function backupShow(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { cluster: { type: 'string' }, json: { type: 'boolean' } });
  const id = requireString(positionals[0], 'the backup ID');
  const stored = await findBackup(config(values), id, typeof values.cluster === 'string' ? values.cluster : undefined);
  const m = stored.manifest;
  if (values.json) {
    out(JSON.stringify(m, null, 2));
    return 0;
  }
  out(`${m.id}  ${m.type} backup of ${m.cluster}, ${m.status} at ${m.verifiedAt}`);
  out(`  folder     ${stored.dir}`);
  out(`  server     ${m.server.product} ${m.server.version}, server id ${m.server.serverId} on ${m.server.hostname}`);
  out(`  taken      ${m.startedAt} … ${m.finishedAt} (${(m.durationMs / 1000).toFixed(1)} s) by ${m.requestedBy ?? '?'}${m.reason ? `: ${m.reason}` : ''}`);
  if (m.parentId) out(`  parent     ${m.parentId} (chain from full ${m.baseFullId})`);
  if (m.snapshot) out(`  snapshot   ${m.snapshot.file}:${m.snapshot.position}${m.snapshot.gtidSet ? `, GTID ${m.snapshot.gtidSet}` : ''}`);
  if (m.binlogs) {
    out(`  binlogs    ${m.binlogs.startFile}:${m.binlogs.startPosition} → ${m.binlogs.endFile}:${m.binlogs.endPosition}, ${m.binlogs.transactions} transactions`);
    out(`  events     ${m.binlogs.firstEventTime ?? '-'} … ${m.binlogs.lastEventTime ?? '-'}; GTID ${m.binlogs.gtids.map((g) => `${g.first}…${g.last}`).join(', ') || '-'}`);
  }
  for (const a of m.artifacts) out(`  artifact   ${a.name}  ${formatBytes(a.size)} (${formatBytes(a.rawSize)} raw)  sha256 ${a.sha256}`);
  for (const t of m.tables) out(`  table      ${t.database}.${t.table}  ${t.rows} rows`);
  return 0;
}

async function backupValidate(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { cluster: { type: 'string' }, json: { type: 'boolean' } });
  const id = requireString(positionals[0], 'the backup ID');
  const cfg = config(values);
  const report = await validateBackup(cfg, await findBackup(cfg, id, typeof values.cluster === 'string' ? values.cluster : undefined));
  if (values.json) out(JSON.stringify(report, null, 2));
  else if (report.ok) out(`ok: ${id}: ${report.checked.length} artifact(s), ${formatBytes(report.checked.reduce((n, c) => n + c.bytes, 0))} re-read, checksums match, decompressed end to end`);
  if (!report.ok) {
    process.stderr.write(`dbops: backup ${id} is NOT valid: ${report.problems.join('; ')}\n`);
    return 1;
  }
  return 0;
}

async function storageInfo(argv: string[]): Promise<number> {
  const { values } = parse(argv, { json: { type: 'boolean' } });
  const report = await storageReport(config(values));
  if (values.json) {
    out(JSON.stringify(report, null, 2));
    return 0;
  }
  out(`repository ${report.repository}: ${formatBytes(report.freeBytes)} free of ${formatBytes(report.totalBytes)}`);
  for (const c of report.clusters) {
    out(`cluster ${c.cluster}${c.chain ? `  (chain broken since ${c.chain.brokenAt}: ${c.chain.reason})` : ''}`);
    out(`  ${'TYPE'.padEnd(13)}${'COUNT'.padStart(6)}${'STORED'.padStart(12)}${'RAW'.padStart(12)}${'SAVED'.padStart(7)}  OLDEST / NEWEST`);
    for (const t of c.types.filter((x) => x.count > 0)) {
      out(`  ${t.type.padEnd(13)}${String(t.count).padStart(6)}${formatBytes(t.storedBytes).padStart(12)}${formatBytes(t.rawBytes).padStart(12)}${`${(t.saving * 100).toFixed(0)}%`.padStart(7)}  ${t.oldest} / ${t.newest}`);
    }
  }
  return 0;
}

const TARGET_OPTIONS = {
  cluster: { type: 'string' },
  database: { type: 'string' },
  to: { type: 'string' },
  'before-matching': { type: 'string' },
  after: { type: 'string' },
  json: { type: 'boolean' },
  wait: { type: 'boolean' },
  as: { type: 'string' },
} as const;

function restoreTarget(values: { to?: string | undefined; 'before-matching'?: string | undefined; after?: string | undefined }): RestoreTarget {
  try {
    if (values['before-matching'] !== undefined) {
      if (values.to !== undefined) throw new UsageError('give either --to or --before-matching, not both');
      return beforeMatching(values['before-matching'], values.after);
    }
    if (values.after !== undefined) throw new UsageError('--after goes with --before-matching');
    return parseTarget(requireString(values.to, '--to (or --before-matching)'));
  } catch (error) {
    if (error instanceof TargetError) throw new ConfigError(error.message);
    throw error;
  }
}

async function restore(sub: string | undefined, argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...TARGET_OPTIONS, into: { type: 'string' }, table: { type: 'string', multiple: true }, swap: { type: 'boolean' } });
  const cfg = config(values);
  const base = {
    cluster: requireString(values.cluster, '--cluster'),
    database: requireString(values.database, '--database'),
    target: restoreTarget(values),
    requestedBy: typeof values.as === 'string' ? values.as : process.env.USER ?? 'cli',
  };
  const { client, close } = await connectClient(cfg);
  try {
    let handle;
    if (sub === 'plan') handle = await startRestorePlan(client, cfg, base);
    else if (sub === 'pitr') handle = await startPitr(client, cfg, { ...base, into: requireString(values.into, '--into') });
    else if (sub === 'table') handle = await startTableRestore(client, cfg, { ...base, tables: values.table ?? [], swap: values.swap === true });
    else throw new UsageError(`unknown restore command "${sub ?? ''}": expected plan, pitr or table`);
    if (sub !== 'plan' && !values.wait) {
      out(values.json ? JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }) : `started ${handle.workflowId}`);
      return 0;
    }
    if (!values.json && sub !== 'plan') out(`started ${handle.workflowId}; waiting${values.swap ? ' (the swap waits for an approval: dbops approvals list)' : ''}`);
    const result = await resultWithProgress<Record<string, unknown>>(handle, progressWanted(values.json === true));
    if (values.json) out(JSON.stringify(result, null, 2));
    else out(describeRestoreResult(sub, result));
    return 0;
  } finally {
    await close();
  }
}

function describeRestoreResult(sub: string, r: Record<string, unknown>): string {
  const plan = (sub === 'plan' ? r : r.plan) as RestorePlan & { hit?: { statement: string; time: string; file: string; position: number } };
  const lines = [
    `restore of ${plan.database} on ${plan.cluster} to ${describeTarget(plan.target)}`,
    `  full        ${plan.full.id} (snapshot ${plan.full.snapshot.file}:${plan.full.snapshot.position})`,
    ...plan.chain.map((c) => `  ${c.type.padEnd(12)}${c.id}`),
    `  replay      ${plan.binlogs.length ? `${plan.binlogs.map((b) => b.file).join(', ')} from ${plan.start.file}:${plan.start.position}` : 'nothing (the full alone)'}`,
    `  stop        ${plan.stop.kind === 'datetime' ? `before ${plan.stop.value} UTC` : plan.stop.kind === 'position' ? `at ${plan.stop.file}:${plan.stop.position}` : plan.stop.kind === 'gtid' ? `after GTID ${plan.stop.gtid}` : 'at the end of the last backup'}`,
    `  window      ${plan.window.from ?? '?'} … ${plan.window.to ?? '?'}`,
  ];
  if (plan.hit) lines.push(`  statement   ${plan.hit.statement} (at ${plan.hit.time}, ${plan.hit.file}:${plan.hit.position})`);
  const scan = (sub === 'plan' ? r.scan : null) as ScanReport | null;
  if (scan) {
    lines.push(`  window      ${scan.statements} statement(s) and ${scan.rowEvents} row event(s); ${scan.rewritten.length} rewritten to the target, ${scan.skipped.length} skipped${scan.statementDml ? `; ${scan.statementDml} DML logged as statements (binlog_format ROW is safer)` : ''}`);
    for (const x of scan.rewritten.slice(0, 10)) lines.push(`  rewrite     ${x.file}:${x.position} ${x.statement} (${x.changes.join(', ')})`);
    for (const x of scan.skipped.slice(0, 10)) lines.push(`  skip        ${x.file}:${x.position} ${x.statement} (${x.reason})`);
    for (const x of scan.refused) lines.push(`  REFUSED     ${x.file}:${x.position} ${x.statement}: ${x.reason}; ${x.fix}`);
  }
  if (sub !== 'plan') {
    const reached = r.reached as { file: string | null; position: number | null; gtid: string | null };
    lines.push(`  reached     ${reached.file}:${reached.position}${reached.gtid ? ` (GTID ${reached.gtid})` : ''}`);
    for (const v of r.verification as Array<{ table: string; rows: number; checksum: string }>) lines.push(`  verified    ${v.table}: ${v.rows} rows, checksum ${v.checksum}`);
    if (r.into) lines.push(`restored into ${String(r.into)}`);
    if (r.decision) lines.push(`decision: ${JSON.stringify(r.decision)}`);
  }
  return lines.join('\n');
}

async function approvals(sub: string | undefined, argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, as: { type: 'string' }, reason: { type: 'string' } });
  const cfg = config(values);
  const { client, close } = await connectClient(cfg);
  try {
    if (sub === 'list') {
      const pending = await listPendingApprovals(client);
      if (values.json) out(JSON.stringify(pending, null, 2));
      else if (pending.length === 0) out('nothing waits for an approval');
      else for (const p of pending) out(`${p.workflowId}  ${p.state?.action ?? '?'} on ${p.state?.cluster ?? '?'}: ${p.state?.summary ?? ''}  (approvers: ${p.state?.approvers.join(', ') ?? '?'}; deadline ${p.state?.deadline ?? '?'})`);
      return 0;
    }
    const workflowId = requireString(positionals[0], 'WORKFLOW_ID');
    if (sub === 'show') {
      const state = await approvalState(client, workflowId);
      out(values.json ? JSON.stringify(state, null, 2) : state ? `${state.action} on ${state.cluster}: ${state.status}; ${state.summary}; approvers ${state.approvers.join(', ')}; deadline ${state.deadline}${state.decision ? `; ${state.decision.decision} by ${state.decision.by ?? '-'}: ${state.decision.reason ?? ''}` : ''}` : 'this run has not asked for an approval');
      return 0;
    }
    if (sub === 'approve' || sub === 'reject') {
      const state = await decide(client, workflowId, sub, requireString(values.as, '--as'), requireString(values.reason, '--reason'));
      out(values.json ? JSON.stringify(state, null, 2) : `${state.status} by ${state.decision?.by}: ${state.decision?.reason}`);
      return 0;
    }
    throw new UsageError(`unknown approvals command "${sub ?? ''}": expected list, show, approve or reject`);
  } finally {
    await close();
  }
}

async function schedules(sub: string | undefined, argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, 'dry-run': { type: 'boolean' }, reason: { type: 'string' } });
  const cfg = config(values);
  const { client, close } = await connectClient(cfg);
  try {
    if (sub === 'apply') {
      const plan = values['dry-run']
        ? planReconcile(desiredFromConfig(cfg), await existingSchedules(client))
        : await applySchedules(client, cfg);
      const summary = { create: plan.create.map((d) => d.id), update: plan.update.map((d) => d.id), remove: plan.remove, unchanged: plan.unchanged };
      if (values.json) out(JSON.stringify(summary, null, 2));
      else {
        const verb = values['dry-run'] ? 'would ' : '';
        for (const [what, ids] of Object.entries(summary)) for (const id of ids) out(`${verb}${what === 'unchanged' ? 'keep' : what} ${id}`);
        if (Object.values(summary).every((ids) => ids.length === 0)) out('no schedules configured');
      }
      return 0;
    }
    if (sub === 'list') {
      const existing = await existingSchedules(client);
      const rows = existing.map((e) => ({
        id: e.id,
        paused: e.description.state.paused,
        note: e.description.state.note ?? null,
        next: e.description.info.nextActionTimes.slice(0, 3).map((d) => d.toISOString()),
        recent: e.description.info.recentActions.slice(-3).map((a) => ({ at: a.takenAt.toISOString(), workflowId: a.action.type === 'startWorkflow' ? a.action.workflow.workflowId : null })),
        skippedOverlap: e.description.info.numActionsSkippedOverlap,
      }));
      if (values.json) out(JSON.stringify(rows, null, 2));
      else if (rows.length === 0) out('no dbops schedules on the server (dbops schedules apply)');
      else for (const r of rows) out(`${r.id.padEnd(40)} ${r.paused ? 'PAUSED' : 'active'}  next ${r.next[0] ?? '-'}  skipped (overlap) ${r.skippedOverlap}${r.note ? `  note: ${r.note}` : ''}`);
      return 0;
    }
    const id = requireString(positionals[0], 'the schedule ID');
    const handle = client.schedule.getHandle(id);
    if (sub === 'describe') out(JSON.stringify(await handle.describe(), null, 2));
    else if (sub === 'pause') await handle.pause(typeof values.reason === 'string' ? values.reason : `paused by ${process.env.USER ?? 'an operator'}`);
    else if (sub === 'resume') await handle.unpause(typeof values.reason === 'string' ? values.reason : undefined);
    else if (sub === 'trigger') await handle.trigger();
    else throw new UsageError(`unknown schedules command "${sub ?? ''}": expected apply, list, describe, pause, resume or trigger`);
    const done: Record<string, string> = { pause: 'paused', resume: 'resumed', trigger: 'triggered' };
    if (done[sub]) out(`${done[sub]} ${id}`);
    return 0;
  } finally {
    await close();
  }
}

async function status(argv: string[]): Promise<number> {
  const { values } = parse(argv, { json: { type: 'boolean' } });
  const cfg = config(values);
  const { client, close } = await connectClient(cfg);
  try {
    const report = await statusReport(client, cfg);
    out(values.json ? JSON.stringify(report, null, 2) : formatStatus(report));
    return 0;
  } finally {
    await close();
  }
}

async function drill(sub: string | undefined, argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { cluster: { type: 'string' }, rto: { type: 'string' }, rpo: { type: 'string' }, full: { type: 'boolean' }, wait: { type: 'boolean' }, json: { type: 'boolean' }, as: { type: 'string' } });
  const cfg = config(values);
  const cluster = requireString(values.cluster, '--cluster');
  findCluster(cfg, cluster);
  const dir = path.join(cfg.repository.path, cluster, 'drills');
  if (sub === 'list') {
    const reports = await openRepository(cfg).catalog.drillReports(cluster);
    if (values.json) out(JSON.stringify(reports, null, 2));
    else if (reports.length === 0) out(`no drills of ${cluster} yet (dbops drill run --cluster ${cluster})`);
    else for (const r of reports) out(`${r.drillId}  ${r.passed ? 'passed' : 'FAILED'}  ${r.startedAt}  RTO ${r.rto.seconds.toFixed(1)} s  RPO ${r.rpo.seconds ?? '?'} s`);
    return 0;
  }
  if (sub === 'show') {
    const id = requireString(positionals[0], 'the drill ID');
    const file = path.join(dir, id, values.json ? 'report.json' : 'report.md');
    if (!existsSync(file)) throw new ConfigError(`no drill ${id} of ${cluster} (dbops drill list --cluster ${cluster})`);
    out(readFileSync(file, 'utf8').trimEnd());
    return 0;
  }
  if (sub !== 'run') throw new UsageError(`unknown drill command "${sub ?? ''}": expected run, list or show`);
  const { client, close } = await connectClient(cfg);
  try {
    const handle = await client.workflow.start('disasterRecoveryDrillWorkflow', {
      taskQueue: cfg.temporal.taskQueue,
      workflowId: `drill/${cluster}/${new Date().toISOString().replace(/[-:]/g, '')}`,
      args: [
        {
          ...drillInput(cfg, cluster, values.full === true, typeof values.as === 'string' ? values.as : process.env.USER ?? 'cli'),
          ...(typeof values.rto === 'string' ? { rtoTarget: values.rto } : {}),
          ...(typeof values.rpo === 'string' ? { rpoTarget: values.rpo } : {}),
        },
      ],
      typedSearchAttributes: [
        { key: SA_CLUSTER, value: cluster },
        { key: SA_OPERATION, value: 'drill' },
      ],
      staticSummary: `DR drill of ${cluster}`,
      staticDetails: 'Restores the latest restorable point into a throwaway server, verifies it, measures RTO and RPO, removes the server, files a report.',
    });
    if (!values.wait) {
      out(values.json ? JSON.stringify({ workflowId: handle.workflowId }) : `started ${handle.workflowId}`);
      return 0;
    }
    if (!values.json) out(`started ${handle.workflowId}; waiting`);
    const result = await resultWithProgress<{ report: { passed: boolean; rto: { seconds: number }; rpo: { seconds: number | null } }; files: { markdown: string } }>(handle, progressWanted(values.json === true));
    out(values.json ? JSON.stringify(result, null, 2) : `passed: RTO ${result.report.rto.seconds.toFixed(1)} s, RPO ${result.report.rpo.seconds ?? '?'} s; report ${result.files.markdown}`);
    return 0;
  } finally {
    await close();
  }
}

function planLines(plan: PlannedArchive): string[] {
  const j = plan.job;
  const lines = [
    `archive ${j.cluster}:${j.database}.${j.table} WHERE ${j.where}`,
    `  into        ${plan.dest.cluster}:${plan.dest.database}.${plan.dest.table}${plan.destExists ? ' (exists, columns match)' : ' (will be created)'}${plan.sameServer ? '' : ' (another server: upsert, verify, delete)'}`,
    `  rows        ${plan.planned.rows} in keys ${plan.keyMin ?? '-'}..${plan.keyMax ?? '-'} (${plan.key})`,
    `  batches     ${plan.estimatedBatches} of up to ${j.batchSize} rows; NOW() fixed at ${new Date(plan.asOf * 1000).toISOString()}`,
    `  index       ${plan.index}`,
    `  throttle    pause above ${j.throttle.maxThreadsRunning} running threads, abort at ${j.throttle.abortThreadsRunning}${j.throttle.replicas.length ? `, replicas ${j.throttle.replicas.join(', ')} under ${j.throttle.maxReplicaLag}` : ''}`,
    `  approval    ${j.approval ? 'a person approves before the first delete (archive-delete)' : 'not required'}`,
    ...plan.warnings.map((w) => `  warning     ${w}`),
    'SQL per run:',
    ...(plan.createDest ? [`  ${plan.createDest};`] : []),
    ...plan.sql.session.map((q) => `  ${q};`),
    'SQL per batch (one transaction; the first ? is where the last batch ended, then the batch\'s first and last key):',
    ...(plan.sameServer
      ? ['START TRANSACTION', plan.sql.take, plan.sql.copy, plan.sql.delete, 'COMMIT']
      : [plan.sql.nextRange, plan.sql.read, plan.sql.upsert, 'START TRANSACTION', `${plan.sql.deleteKeys} -- after comparing checksums FOR UPDATE`, 'COMMIT']
    ).map((q) => `  ${q};`),
  ];
  return lines;
}

function archiveResultLine(r: ArchiveResult): string {
  const v = r.verification;
  if (r.status === 'nothing-to-do') return 'nothing to archive: no row matches the predicate';
  if (r.status === 'rejected') return `not archived: the delete phase was ${r.approval?.decision ?? 'refused'}${r.approval?.by ? ` by ${r.approval.by}` : ''}`;
  const verified = v ? (v.ok ? `verified: ${v.moved.rows} row(s) moved, ${v.remaining.rows} left, checksums add up` : `VERIFICATION FAILED: ${v.problems.join('; ')}`) : '';
  return `${r.status}: ${r.progress.moved} row(s) in ${r.progress.batches} batch(es) over ${r.progress.runs} run(s); ${verified}${r.report ? `; report ${r.report}` : ''}`;
}

async function archive(sub: string | undefined, argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    job: { type: 'string' },
    cluster: { type: 'string' },
    database: { type: 'string' },
    table: { type: 'string' },
    where: { type: 'string' },
    to: { type: 'string' },
    'batch-size': { type: 'string' },
    yes: { type: 'boolean' },
    wait: { type: 'boolean' },
    json: { type: 'boolean' },
    as: { type: 'string' },
    reason: { type: 'string' },
  });
  const cfg = config(values);
  const operator = typeof values.as === 'string' ? values.as : process.env.USER ?? 'cli';
  if (sub === 'plan' || sub === 'run') {
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    const batch = str(values['batch-size']);
    if (batch !== undefined && !/^\d+$/.test(batch)) throw new ConfigError(`--batch-size: ${JSON.stringify(batch)} is not a whole number of rows`);
    let job = resolveArchiveJob(cfg, {
      ...(str(values.job) ? { job: str(values.job) as string } : {}),
      fields: {
        cluster: str(values.cluster) ?? '',
        database: str(values.database) ?? '',
        table: str(values.table) ?? '',
        where: str(values.where) ?? '',
        to: str(values.to) ?? '',
        ...(batch !== undefined ? { batchSize: Number(batch) } : {}),
      },
    });
    if (values.job && batch !== undefined) job = { ...job, batchSize: Number(batch) };
    const input = archiveInput(cfg, job, {
      dryRun: sub === 'plan',
      yes: values.yes ? { by: operator, reason: typeof values.reason === 'string' ? values.reason : 'pre-approved with --yes' } : null,
      requestedBy: operator,
    });
    const { client, close } = await connectClient(cfg);
    try {
      const handle = await startArchive(client, cfg, { ...input, job });
      if (sub === 'run' && !values.wait) {
        out(values.json ? JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }) : `started ${handle.workflowId}${job.approval && !values.yes ? ' (waits for approval before deleting: dbops approvals approve …)' : ''}`);
        return 0;
      }
      if (sub === 'run' && !values.json) out(`started ${handle.workflowId}; waiting`);
      const result = await resultWithProgress<ArchiveResult>(handle, progressWanted(values.json === true));
      if (values.json) out(JSON.stringify(result, null, 2));
      else if (sub === 'plan') for (const line of planLines(result.plan)) out(line);
      else out(archiveResultLine(result));
      return result.status === 'rejected' ? 1 : 0;
    } finally {
      await close();
    }
  }
  if (sub !== 'status' && sub !== 'pause' && sub !== 'resume' && sub !== 'cancel') {
    throw new UsageError(`unknown archive command "${sub ?? ''}": expected plan, run, status, pause, resume or cancel`);
  }
  const id = requireString(positionals[0], 'the archive workflow ID (archive/CLUSTER/JOB)');
  const { client, close } = await connectClient(cfg);
  try {
    const handle = client.workflow.getHandle(id);
    const action = { operator, ...(typeof values.reason === 'string' ? { reason: values.reason } : {}) };
    if (sub === 'pause') await handle.signal(pauseArchiveSignal, action);
    if (sub === 'resume') await handle.signal(resumeArchiveSignal, action);
    if (sub === 'cancel') await handle.signal(cancelArchiveSignal, action);
    if (sub !== 'status') {
      out(`${sub === 'cancel' ? 'cancel requested for' : sub === 'pause' ? 'paused' : 'resumed'} ${id}`);
      return 0;
    }
    const d = await handle.describe();
    if (d.status.name === 'RUNNING') {
      const p = await handle.query(archiveProgressQuery);
      out(values.json ? JSON.stringify({ status: d.status.name, ...p }, null, 2) : `${id}: running; ${p.text}`);
    } else if (d.status.name === 'COMPLETED') {
      const r = (await handle.result()) as ArchiveResult;
      out(values.json ? JSON.stringify({ status: d.status.name, result: r }, null, 2) : `${id}: ${archiveResultLine(r)}`);
    } else {
      out(values.json ? JSON.stringify({ status: d.status.name }) : `${id}: ${d.status.name.toLowerCase()} (details in the Temporal UI)`);
    }
    return 0;
  } finally {
    await close();
  }
}

async function retention(sub: string | undefined, argv: string[]): Promise<number> {
  if (sub !== 'run') throw new UsageError(`unknown retention command "${sub ?? ''}": expected run`);
  const { values } = parse(argv, { cluster: { type: 'string' }, 'dry-run': { type: 'boolean' }, wait: { type: 'boolean' }, json: { type: 'boolean' }, as: { type: 'string' } });
  const cfg = config(values);
  const cluster = requireString(values.cluster, '--cluster');
  findCluster(cfg, cluster);
  const dryRun = values['dry-run'] === true;
  const { client, close } = await connectClient(cfg);
  try {
    const input: RetentionInput = { cluster, dryRun, requestedBy: typeof values.as === 'string' ? values.as : process.env.USER ?? 'cli' };
    const handle = await client.workflow.start('retentionWorkflow', {
      taskQueue: cfg.temporal.taskQueue,
      workflowId: `retention/${cluster}/${dryRun ? 'dry-run-' : ''}${new Date().toISOString().replace(/[-:]/g, '')}`,
      args: [input],
      typedSearchAttributes: [
        { key: SA_CLUSTER, value: cluster },
        { key: SA_OPERATION, value: 'retention' },
      ],
      staticSummary: `${dryRun ? 'Dry run: ' : ''}retention of ${cluster}`,
      staticDetails: 'Deletes backups past their policy, never one a kept backup or the point-in-time window needs.',
    });
    if (!dryRun && !values.wait) {
      out(values.json ? JSON.stringify({ workflowId: handle.workflowId }) : `started ${handle.workflowId}`);
      return 0;
    }
    const r = await resultWithProgress<RetentionResult>(handle, progressWanted(values.json === true));
    if (values.json) {
      out(JSON.stringify(r, null, 2));
      return r.status === 'rejected' ? 1 : 0;
    }
    const s = r.plan.storage;
    out(`storage: ${formatBytes(s.usedBytes)}${s.maxBytes ? ` of ${formatBytes(s.maxBytes)} (${Math.round((s.usedFraction ?? 0) * 100)} %, ${s.level})` : ' (no limit)'}; after: ${formatBytes(s.bytesAfter)}`);
    for (const d of r.plan.delete) out(`${dryRun ? 'would delete' : 'delete'}  ${d.id.padEnd(32)} ${d.type.padEnd(12)} ${formatBytes(d.bytes).padStart(10)}  ${d.reason}`);
    for (const k of r.plan.keep) out(`keep          ${k.id.padEnd(32)} ${k.type.padEnd(12)} ${''.padStart(10)}  ${k.reasons.join('; ')}`);
    for (const w of r.plan.warnings) out(`warning: ${w}`);
    if (r.status === 'done') {
      const a = r.storageAfter;
      out(
        `deleted ${r.deleted.length} backup(s), freed ${formatBytes(r.freedBytes)}${r.skipped.length ? `; skipped ${r.skipped.length}` : ''}` +
          (a ? `; storage now ${formatBytes(a.usedBytes)}${a.maxBytes !== null ? ` of ${formatBytes(a.maxBytes)} (${Math.round((a.usedFraction ?? 0) * 100)} %, ${a.level})` : ''}` : ''),
      );
      for (const x of r.skipped) out(`skipped       ${x.id.padEnd(32)} ${x.why}`);
    }
    if (r.status === 'rejected') out(`nothing deleted: ${r.approval?.decision ?? 'refused'}${r.approval?.by ? ` by ${r.approval.by}` : ''}`);
    return r.status === 'rejected' ? 1 : 0;
  } finally {
    await close();
  }
}

async function worker(argv: string[]): Promise<number> {
  const { values } = parse(argv, {});
  const cfg = config(values);
  const logger = createLogger(cfg.logging.level as Level);
  await runWorker({ config: cfg, logger });
  return 0;
}

async function dev(argv: string[]): Promise<number> {
  const { values } = parse(argv, { 'state-dir': { type: 'string' }, demo: { type: 'boolean' }, 'exit-after-demo': { type: 'boolean' } });

  await runDev({
    stateDir: typeof values['state-dir'] === 'string' ? values['state-dir'] : '.dbops/dev',
    demo: values.demo === true,
    exitAfterDemo: values['exit-after-demo'] === true,
    logger: createLogger((process.env.DBOPS_LOG_LEVEL as Level | undefined) ?? 'warn'),
    out,
  });
  return 0;
}

/** The configuration as it may be printed: literal webhook URLs (secrets) masked as scheme://host/…. */
export function displayConfig(cfg: DbopsConfig): DbopsConfig {
  return { ...cfg, notifications: { ...cfg.notifications, webhooks: cfg.notifications.webhooks.map((w) => ({ ...w, url: displayWebhookUrl(w.url) })) } };
}

async function configCheck(argv: string[]): Promise<number> {
  const { values } = parse(argv, { json: { type: 'boolean' } });
  const cfg = config(values);
  if (values.json) out(JSON.stringify(displayConfig(cfg), null, 2));
  else out(`ok: ${cfg.clusters.length} cluster(s): ${cfg.clusters.map((c) => c.name).join(', ')}; repository ${cfg.repository.path}`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, sub, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    out(USAGE);
    return command ? 0 : 2;
  }
  switch (command) {
    case 'dev':
      return dev(argv.slice(1));
    case 'worker':
      return worker(argv.slice(1));
    case 'backup': {
      if (sub === 'list') return backupList(rest);
      if (sub === 'show') return backupShow(rest);
      if (sub === 'validate') return backupValidate(rest);
      const type = BackupTypeSchema.safeParse(sub);
      if (type.success) return backupStart(type.data, rest);
      throw new UsageError(`unknown backup command "${sub ?? ''}": expected ${BackupTypeSchema.options.join(', ')}, list, show or validate`);
    }
    case 'restore':
      return restore(sub, rest);
    case 'approvals':
      return approvals(sub, rest);
    case 'schedules':
      return schedules(sub, rest);
    case 'status':
      return status(argv.slice(1));
    case 'drill':
      return drill(sub, rest);
    case 'archive':
      return archive(sub, rest);
    case 'retention':
      return retention(sub, rest);
    case 'setup': {
      if (sub !== 'temporal') throw new UsageError(`unknown setup command "${sub ?? ''}": expected temporal`);
      const { values } = parse(rest, {});
      const cfg = config(values);
      const { client, close } = await connectClient(cfg);
      try {
        const r = await registerSearchAttributes(client, cfg.temporal.namespace);
        out(`search attributes on ${cfg.temporal.namespace}: added ${r.added.join(', ') || 'none'}; already there ${r.present.join(', ') || 'none'}`);
        return 0;
      } finally {
        await close();
      }
    }
    case 'storage':
      if (sub === 'info') return storageInfo(rest);
      throw new UsageError(`unknown storage command "${sub ?? ''}": expected info`);
    case 'config':
      if (sub === 'check') return configCheck(rest);
      throw new UsageError(`unknown config command "${sub ?? ''}": expected check`);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** One line on stderr, non-zero exit: what went wrong and, where we know, how to fix it. */
export function describeError(error: unknown): string {
  if (error instanceof ConfigError) return `dbops: ${error.issues.length > 0 ? `${error.message.split('\n')[0]} ${error.issues.join('; ')}` : error.message}`;
  if (error instanceof UsageError) return `dbops: ${error.message} (dbops --help)`;
  return `dbops: ${explainFailure(error).replace(/\s*\n\s*/g, ' ')}`;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(describeError(error) + '\n');
      process.exitCode = error instanceof UsageError ? 2 : 1;
    },
  );
}
