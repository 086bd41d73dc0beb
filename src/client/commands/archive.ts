/** dbops archive …: move old rows to an archive table in verified batches; plan, run, follow, pause, resume, cancel. */
import type { Command } from 'commander';
import { ConfigError } from '../../config/load';
import { archiveProgressQuery, cancelArchiveSignal, pauseArchiveSignal, resumeArchiveSignal, type ArchiveResult, type PlannedArchive } from '../../workflows/archive';
import { archiveInput, resolveArchiveJob, startArchive } from '../archives';
import { progressWanted, resultWithProgress } from '../progress';
import { configOf, exit, io, jsonWanted, operatorOf, withClient } from './shared';

export function planLines(plan: PlannedArchive): string[] {
  const j = plan.job;
  return [
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
    "SQL per batch (one transaction; the first ? is where the last batch ended, then the batch's first and last key):",
    ...(plan.sameServer
      ? ['START TRANSACTION', plan.sql.take, plan.sql.copy, plan.sql.delete, 'COMMIT']
      : [plan.sql.nextRange, plan.sql.read, plan.sql.upsert, 'START TRANSACTION', `${plan.sql.deleteKeys} -- after comparing checksums FOR UPDATE`, 'COMMIT']
    ).map((q) => `  ${q};`),
  ];
}

export function archiveResultLine(r: ArchiveResult): string {
  const v = r.verification;
  if (r.status === 'nothing-to-do') return 'nothing to archive: no row matches the predicate';
  if (r.status === 'rejected') {
    const d = r.approval?.decision;
    return `not archived: ${d === 'expired' ? 'nobody approved the delete phase in time' : `the delete phase was ${d ?? 'refused'}${r.approval?.by ? ` by ${r.approval.by}` : ''}`}`;
  }
  const verified = v ? (v.ok ? `verified: ${v.moved.rows} row(s) moved, ${v.remaining.rows} left, checksums add up` : `VERIFICATION FAILED: ${v.problems.join('; ')}`) : '';
  return `${r.status}: ${r.progress.moved} row(s) in ${r.progress.batches} batch(es) over ${r.progress.runs} run(s); ${verified}${r.report ? `; report ${r.report}` : ''}`;
}

interface JobOptions {
  job?: string;
  cluster?: string;
  database?: string;
  table?: string;
  where?: string;
  to?: string;
  batchSize?: string;
  yes?: boolean;
  wait?: boolean;
  as?: string;
  reason?: string;
}

const JOB_HELP = `
Name a configured job (--job), or give the whole job on the command line:
  dbops archive plan --cluster shop --database shop --table orders \\
      --where "created_at < NOW() - INTERVAL 90 DAY" --to shop_archive.orders_history
The predicate is checked against an allowlist (columns of the table, literals, comparisons,
NOW()/CURDATE() arithmetic); NOW() is fixed when the run is planned.`;

async function planOrRun(sub: 'plan' | 'run', options: JobOptions, command: Command): Promise<void> {
  const cfg = configOf(command);
  const json = jsonWanted(command);
  const batch = options.batchSize;
  if (batch !== undefined && !/^\d+$/.test(batch)) throw new ConfigError(`--batch-size: ${JSON.stringify(batch)} is not a whole number of rows`);
  const operator = operatorOf(options);
  let job = resolveArchiveJob(cfg, {
    ...(options.job !== undefined ? { job: options.job } : {}),
    fields: {
      cluster: options.cluster ?? '',
      database: options.database ?? '',
      table: options.table ?? '',
      where: options.where ?? '',
      to: options.to ?? '',
      ...(batch !== undefined ? { batchSize: Number(batch) } : {}),
    },
  });
  if (options.job !== undefined && batch !== undefined) job = { ...job, batchSize: Number(batch) };
  const input = archiveInput(cfg, job, {
    dryRun: sub === 'plan',
    yes: options.yes ? { by: operator, reason: options.reason ?? 'pre-approved with --yes' } : null,
    requestedBy: operator,
  });
  await withClient(cfg, async (client) => {
    const handle = await startArchive(client, cfg, { ...input, job });
    if (sub === 'run' && !options.wait) {
      io.out(json ? JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }) : `started ${handle.workflowId}${job.approval && !options.yes ? ' (waits for approval before deleting: dbops approvals approve …)' : ''}`);
      return;
    }
    if (sub === 'run' && !json) io.out(`started ${handle.workflowId}; waiting`);
    const result = await resultWithProgress<ArchiveResult>(handle, progressWanted(json));
    if (json) io.out(JSON.stringify(result, null, 2));
    else if (sub === 'plan') for (const line of planLines(result.plan)) io.out(line);
    else io.out(archiveResultLine(result));
    if (result.status === 'rejected') exit.code = 1;
  });
}

export function registerArchive(program: Command): void {
  const archive = program.command('archive').description('batched, verified, resumable archiving of old rows');

  for (const sub of ['plan', 'run'] as const) {
    archive
      .command(sub)
      .description(sub === 'plan' ? 'what a run would do: rows, batches, index, the exact SQL; touches nothing' : 'archive now (waits for approval before the first delete when the job asks for one)')
      .option('--job <name>', 'a job from the config')
      .option('--cluster <name>', 'the cluster (without --job)')
      .option('--database <name>', 'the database (without --job)')
      .option('--table <name>', 'the table (without --job)')
      .option('--where <predicate>', 'which rows (without --job)')
      .option('--to <db.table>', 'the archive table, optionally on another cluster: cluster:db.table (without --job)')
      .option('--batch-size <rows>', 'rows per batch')
      .option('--yes', 'pre-approve the delete phase (only a configured approver, and only where the cluster allows self-approval)')
      .option('--reason <text>', 'why (with --yes)')
      .option('--wait', 'wait for the run to finish')
      .option('--as <name>', 'who asks (default: $USER)')
      .addHelpText('after', JOB_HELP)
      .action((options: JobOptions, command: Command) => planOrRun(sub, options, command));
  }

  archive
    .command('status')
    .description('where a run is: batches, rows moved, paused or throttled; or how it ended')
    .argument('<workflowId>', 'archive/CLUSTER/JOB')
    .action(async (id: string, _o: unknown, command: Command) => {
      const json = jsonWanted(command);
      await withClient(configOf(command), async (client) => {
        const handle = client.workflow.getHandle(id);
        const d = await handle.describe();
        if (d.status.name === 'RUNNING') {
          const p = await handle.query(archiveProgressQuery);
          io.out(json ? JSON.stringify({ status: d.status.name, ...p }, null, 2) : `${id}: running; ${p.text}`);
        } else if (d.status.name === 'COMPLETED') {
          const r = (await handle.result()) as ArchiveResult;
          io.out(json ? JSON.stringify({ status: d.status.name, result: r }, null, 2) : `${id}: ${archiveResultLine(r)}`);
        } else {
          io.out(json ? JSON.stringify({ status: d.status.name }) : `${id}: ${d.status.name.toLowerCase()} (details in the Temporal UI)`);
        }
      });
    });

  const controls = [
    { name: 'pause', signal: pauseArchiveSignal, done: 'paused', what: 'stop between batches (the open batch commits first)' },
    { name: 'resume', signal: resumeArchiveSignal, done: 'resumed', what: 'continue a paused run' },
    { name: 'cancel', signal: cancelArchiveSignal, done: 'cancel requested for', what: 'stop after the open batch, verify what moved, and end' },
  ] as const;
  for (const c of controls) {
    archive
      .command(c.name)
      .description(c.what)
      .argument('<workflowId>', 'archive/CLUSTER/JOB')
      .option('--reason <text>', 'why (recorded in the run)')
      .option('--as <name>', 'who (default: $USER)')
      .action(async (id: string, options: { reason?: string; as?: string }, command: Command) => {
        await withClient(configOf(command), async (client) => {
          await client.workflow.getHandle(id).signal(c.signal, { operator: operatorOf(options), ...(options.reason !== undefined ? { reason: options.reason } : {}) });
        });
        io.out(`${c.done} ${id}`);
      });
  }
}
