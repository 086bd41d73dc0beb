/** dbops restore …: plan a restore, restore a database to a point in time into a new one, restore tables next to (or in place of) the live ones. */
import { Command, Option } from 'commander';
import { ConfigError } from '../../config/load';
import type { ScanReport } from '../../domain/restore/replayStream';
import type { StatementHit } from '../../domain/restore/statementFinder';
import type { RestorePlan } from '../../domain/restorePlan';
import { beforeMatching, describeTarget, parseTarget, TargetError, type RestoreTarget } from '../../domain/restoreTarget';
import { progressWanted, resultWithProgress } from '../progress';
import { startInstanceRestore, startPhysicalRestore, startPitr, startRestorePlan, startTableRestore } from '../restores';
import type { InstanceRestoreResult } from '../../workflows/instanceRestore';
import type { PhysicalRestoreResult } from '../../workflows/physicalRestore';
import { configOf, io, jsonWanted, operatorOf, UsageError, withClient } from './shared';

interface TargetOptions {
  cluster: string;
  database: string;
  to?: string;
  beforeMatching?: string;
  after?: string;
  wait?: boolean;
  as?: string;
}

function target(options: TargetOptions): RestoreTarget {
  try {
    if (options.beforeMatching !== undefined) {
      if (options.to !== undefined) throw new UsageError('give either --to or --before-matching, not both');
      return beforeMatching(options.beforeMatching, options.after);
    }
    if (options.after !== undefined) throw new UsageError('--after goes with --before-matching');
    if (options.to === undefined) throw new UsageError('--to (or --before-matching) is required');
    return parseTarget(options.to);
  } catch (error) {
    if (error instanceof TargetError) throw new ConfigError(error.message);
    throw error;
  }
}

const TARGET_HELP = `
TARGET is one of:
  2026-11-22T14:03:06Z     the state at the end of that UTC second
  binlog:FILE:POS          stop before the event at that position
  gtid:D-S-N               stop after that transaction (MariaDB)
  latest                   everything the backups hold
--before-matching REGEX stops just before the first statement matching it (RE2 syntax, case-insensitive).`;

function withTarget(command: Command): Command {
  return command
    .requiredOption('--cluster <name>', 'the cluster')
    .requiredOption('--database <name>', 'the database to restore')
    .option('--to <target>', 'where to stop (see below)')
    .option('--before-matching <regex>', 'stop just before the first statement matching this')
    .option('--after <time>', 'with --before-matching: only statements after this UTC time')
    .option('--as <name>', 'who asks (default: $USER)')
    .addHelpText('after', TARGET_HELP);
}

export function describeRestoreResult(sub: string, r: Record<string, unknown>): string {
  const plan = (sub === 'plan' ? r : r.plan) as RestorePlan & { hit?: StatementHit };
  const lines = [
    `restore of ${plan.database} on ${plan.cluster} to ${describeTarget(plan.target)}`,
    `  full        ${plan.full.id} (snapshot ${plan.full.snapshot.file}:${plan.full.snapshot.position})${plan.why ? `: ${plan.why}` : ''}`,
    ...plan.chain.map((c) => `  ${c.type.padEnd(12)}${c.id}`),
    ...(plan.archive ? [`  archive     ${plan.archive.timeline}: ${plan.archive.files} binlog file(s) from the continuous archive, complete up to ${plan.archive.coveredUntil ?? '?'}`] : []),
    `  replay      ${plan.binlogs.length ? `${plan.binlogs.map((b) => b.file).join(', ')} from ${plan.start.file}:${plan.start.position}` : 'nothing (the full alone)'}`,
    `  stop        ${plan.stop.kind === 'datetime' ? `before ${plan.stop.value} UTC` : plan.stop.kind === 'position' ? `at ${plan.stop.file}:${plan.stop.position}` : plan.stop.kind === 'gtid' ? `after GTID ${plan.stop.gtid}` : plan.archive ? 'at the end of the archive' : 'at the end of the last backup'}`,
    `  window      ${plan.window.from ?? '?'} … ${plan.window.to ?? '?'}`,
  ];
  if (plan.hit) {
    const note = plan.hit.from === 'row-event' ? ' (a row event; the binlog holds no statement text)' : '';
    lines.push(`  statement   ${plan.hit.statement}${note} (at ${plan.hit.time}, ${plan.hit.file}:${plan.hit.position}${plan.hit.gtid ? `, GTID ${plan.hit.gtid}` : ''})`);
  }
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

export function registerRestore(program: Command): void {
  const restore = program.command('restore').description('restores into new databases, never over live data without an approval');

  withTarget(restore.command('plan').description('what a restore would use and how its replay window would be confined; touches nothing')).action(
    async (options: TargetOptions, command: Command) => {
      const to = target(options);
      const cfg = configOf(command);
      await withClient(cfg, async (client) => {
        const handle = await startRestorePlan(client, cfg, { cluster: options.cluster, database: options.database, target: to, requestedBy: operatorOf(options) });
        const result = await resultWithProgress<Record<string, unknown>>(handle, progressWanted(jsonWanted(command)));
        io.out(jsonWanted(command) ? JSON.stringify(result, null, 2) : describeRestoreResult('plan', result));
      });
    },
  );

  withTarget(restore.command('pitr').description('restore a database to a point in time into a NEW database'))
    .requiredOption('--into <name>', 'the new database')
    .option('--wait', 'wait and print the result')
    .addHelpText('after', `\nExample:\n  dbops restore pitr --cluster shop --database shop --before-matching 'DELETE FROM .*orders' --into shop_before --wait`)
    .action(async (options: TargetOptions & { into: string }, command: Command) => {
      const to = target(options);
      const cfg = configOf(command);
      await withClient(cfg, async (client) => {
        const handle = await startPitr(client, cfg, { cluster: options.cluster, database: options.database, target: to, requestedBy: operatorOf(options), into: options.into });
        await finish('pitr', handle, options.wait === true, command);
      });
    });

  restore
    .command('instance')
    .description('the primary is lost: restore every database (or --databases) onto another server named under restoreTargets, to a point in time, after a second person approves')
    .requiredOption('--cluster <name>', 'the cluster whose backups and binlog archive are restored')
    .requiredOption('--onto <target>', 'a server from restoreTargets: empty, or holding only databases dbops restored there')
    .requiredOption('--to <target>', 'where to stop: a UTC time, binlog:FILE:POS, gtid:…, or latest (the newest archived transaction)')
    .option('--databases <names>', 'comma-separated databases (default: every database of the newest full)')
    .option('--dry-run', 'plan and check the target; write nothing')
    .option('--replace', 'drop and restore again databases an earlier dbops restore put on the target')
    .option('--wait', 'wait and print the result')
    .option('--as <name>', 'who asks (default: $USER)')
    .addHelpText('after', '\nExample:\n  dbops restore instance --cluster shop --onto standby --to latest --wait   # a second person: dbops approvals approve …')
    .action(async (options: { cluster: string; onto: string; to: string; databases?: string; dryRun?: boolean; replace?: boolean; wait?: boolean; as?: string }, command: Command) => {
      const to = target({ cluster: options.cluster, database: '', to: options.to });
      const cfg = configOf(command);
      const databases = options.databases?.split(',').map((d) => d.trim()).filter((d) => d !== '');
      await withClient(cfg, async (client) => {
        const handle = await startInstanceRestore(client, cfg, {
          cluster: options.cluster,
          onto: options.onto,
          target: to,
          requestedBy: operatorOf(options),
          ...(databases?.length ? { databases } : {}),
          ...(options.dryRun ? { dryRun: true } : {}),
          ...(options.replace ? { replace: true } : {}),
        });
        const json = jsonWanted(command);
        if (!options.wait && !options.dryRun) {
          io.out(json ? JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }) : `started ${handle.workflowId}; a second person approves it (dbops approvals list)`);
          return;
        }
        const result = await resultWithProgress<InstanceRestoreResult>(handle, progressWanted(json));
        io.out(json ? JSON.stringify({ workflowId: handle.workflowId, ...result }, null, 2) : describeInstanceRestore(result));
      });
    });

  restore
    .command('physical')
    .description('a new server from a physical backup: every database to a point in time, into a new datadir under physicalRestores.dir on the worker\'s host')
    .requiredOption('--cluster <name>', 'the cluster whose physical backups are restored')
    .requiredOption('--to <target>', 'where to stop: a UTC time, binlog:FILE:POS, gtid:…, or latest')
    .requiredOption('--name <folder>', 'the new folder under physicalRestores.dir (it must not exist)')
    .option('--dry-run', 'plan only; write nothing')
    .option('--wait', 'wait and print the result')
    .option('--as <name>', 'who asks (default: $USER)')
    .addHelpText('after', '\nExample:\n  dbops restore physical --cluster shop --to latest --name shop-new --wait')
    .action(async (options: { cluster: string; to: string; name: string; dryRun?: boolean; wait?: boolean; as?: string }, command: Command) => {
      const to = target({ cluster: options.cluster, database: '', to: options.to });
      const cfg = configOf(command);
      await withClient(cfg, async (client) => {
        const handle = await startPhysicalRestore(client, cfg, { cluster: options.cluster, target: to, name: options.name, requestedBy: operatorOf(options), ...(options.dryRun ? { dryRun: true } : {}) });
        const json = jsonWanted(command);
        if (!options.wait && !options.dryRun) {
          io.out(json ? JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }) : `started ${handle.workflowId}`);
          return;
        }
        const result = await resultWithProgress<PhysicalRestoreResult>(handle, progressWanted(json));
        io.out(json ? JSON.stringify({ workflowId: handle.workflowId, ...result }, null, 2) : describePhysicalRestore(result));
      });
    });

  withTarget(restore.command('table').description('restore tables next to the live ones; with --swap, put them in place after a second person approves'))
    .addOption(new Option('--table <name...>', 'a table to restore (repeat for more)').makeOptionMandatory())
    .option('--swap', 'swap the restored tables in (one atomic RENAME) after approval')
    .option('--wait', 'wait and print the result')
    .action(async (options: TargetOptions & { table: string[]; swap?: boolean }, command: Command) => {
      const to = target(options);
      const cfg = configOf(command);
      await withClient(cfg, async (client) => {
        const handle = await startTableRestore(client, cfg, { cluster: options.cluster, database: options.database, target: to, requestedBy: operatorOf(options), tables: options.table, swap: options.swap === true });
        await finish('table', handle, options.wait === true, command, options.swap === true);
      });
    });
}

export function describePhysicalRestore(r: PhysicalRestoreResult): string {
  const deltas = r.plan.source.deltas?.map((d) => d.id) ?? [];
  const lines = [
    `physical restore into ${r.plan.datadir}${r.dryRun ? ' (dry run: nothing written)' : ''}`,
    `  from        physical full ${r.plan.source.fullId}${deltas.length ? ` + ${deltas.join(', ')}` : ''}, then the binlogs from ${r.plan.plans[0]?.start.file ?? '?'}:${r.plan.plans[0]?.start.position ?? '?'}`,
    `  databases   ${r.plan.plans.map((p) => p.database).join(', ')}`,
  ];
  for (const d of r.restored?.databases ?? []) {
    lines.push(`  ${d.database.padEnd(12)}reached ${d.reached.file ?? '?'}:${d.reached.position ?? '?'}${d.reached.gtid ? ` (GTID ${d.reached.gtid})` : ''}; ${d.tables.length} table(s) checksummed`);
  }
  if (r.restored) {
    lines.push(`  next        chown -R the datadir (now uid ${r.restored.ownerUid}) to the new server's OS user and start it with your configuration; its accounts are the source's`);
  }
  return lines.join('\n');
}

export function describeInstanceRestore(r: InstanceRestoreResult): string {
  const p = r.plan;
  const first = p.plans[0];
  const lines = [
    `instance restore onto ${p.target.name} [${p.target.server}]${r.dryRun ? ' (dry run: nothing written)' : ''}`,
    `  databases   ${p.plans.map((x) => x.database).join(', ')}`,
    `  from        full ${first?.full.id ?? '?'}${first?.chain.length ? ` + ${first.chain.map((c) => c.id).join(', ')}` : ''}${first?.archive ? ` + binlog archive ${first.archive.timeline} (${first.archive.files} file(s), complete up to ${first.archive.coveredUntil ?? '?'})` : ''}`,
    `  to          ${r.restoredTo ?? '?'}`,
  ];
  if (p.target.replaces.length) lines.push(`  replaces    ${p.target.replaces.join(', ')} (restored there by dbops earlier)`);
  for (const d of r.databases) {
    lines.push(`  ${d.database.padEnd(12)}reached ${d.reached?.file ?? '?'}:${d.reached?.position ?? '?'}${d.reached?.gtid ? ` (GTID ${d.reached.gtid})` : ''}; ${d.verification.length} table(s) verified`);
  }
  if (r.decision) lines.push(`decision: ${r.decision.decision}${r.decision.by ? ` by ${r.decision.by}` : ''}`);
  for (const n of p.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}

async function finish(sub: string, handle: { workflowId: string; firstExecutionRunId: string; result(): Promise<unknown> } & Parameters<typeof resultWithProgress>[0], wait: boolean, command: Command, swap = false): Promise<void> {
  const json = jsonWanted(command);
  if (!wait) {
    io.out(json ? JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }) : `started ${handle.workflowId}`);
    return;
  }
  if (!json) io.out(`started ${handle.workflowId}; waiting${swap ? ' (the swap waits for an approval: dbops approvals list)' : ''}`);
  const result = await resultWithProgress<Record<string, unknown>>(handle, progressWanted(json));
  io.out(json ? JSON.stringify(result, null, 2) : describeRestoreResult(sub, result));
}
