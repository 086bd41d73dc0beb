/** dbops schema …: one index change at a time, checked, approved, watched and verified. */
import type { Command } from 'commander';
import { formatBytes } from '../../domain/naming';
import { parseIndexChange, SchemaChangeRefused } from '../../domain/schemaChange';
import type { SchemaChangeResult } from '../../workflows/schemaChange';
import { progressWanted, resultWithProgress } from '../progress';
import { abortSchemaChange, requestRollback, startSchemaChange } from '../schemaChange';
import { configOf, exit, io, jsonWanted, knownCluster, operatorOf, required, UsageError, withClient } from './shared';

export function schemaChangeLines(r: SchemaChangeResult): string[] {
  const p = r.plan;
  const lines = [`${r.status}: ${p.description}${r.why ? ` (${r.why})` : ''}`];
  if (p.table) lines.push(`  table      ${p.table.engine ?? '?'}, ${p.table.rowsEstimate} rows (estimate), data ${formatBytes(p.table.dataBytes)}, indexes ${formatBytes(p.table.indexBytes)}`);
  lines.push(`  disk       ${p.freeBytes === null ? 'not measured (the datadir is not visible from the worker)' : `${formatBytes(p.freeBytes)} free on ${p.freeOn}`}${p.neededBytes !== null ? `, the build needs about ${formatBytes(p.neededBytes)}` : ''}`);
  lines.push(`  online     ${p.onlineRefusal ? `no: ${p.onlineRefusal}` : 'accepted (ALGORITHM=INPLACE, LOCK=NONE)'}`);
  lines.push(`  statement  ${p.statement}`);
  if (p.rollback) lines.push(`  rollback   ${p.rollback}`);
  for (const w of p.warnings) lines.push(`  warning    ${w}`);
  for (const x of p.refusals) lines.push(`  refused    ${x}`);
  const plans = (label: string, list: SchemaChangeResult['after']) =>
    list.forEach((v) => lines.push(`  ${label} query ${v.query + 1}: ${v.accesses.map((a) => `${a.table} ${a.accessType ?? '?'} via ${a.key ?? 'no index'}${a.rows !== null ? ` (~${a.rows} rows)` : ''}`).join(', ')}${label === 'after ' ? (v.usesIndex ? '  uses the new index' : '  does NOT use the new index') : ''}`));
  plans('before', p.before);
  plans('after ', r.after);
  if (r.build) lines.push(`  build      ${r.build.outcome} in ${r.build.seconds} s, ${r.build.lockTries} lock tr${r.build.lockTries === 1 ? 'y' : 'ies'}, peak Threads_running ${r.build.peakThreadsRunning}${r.build.peakLagSeconds !== null ? `, peak replica lag ${r.build.peakLagSeconds} s` : ''}`);
  if (r.approval) lines.push(`  approval   ${r.approval.decision}${r.approval.by ? ` by ${r.approval.by}` : ''}${r.approval.reason ? `: ${r.approval.reason}` : ''}`);
  if (r.rolledBack) lines.push(`  rolled back by ${r.rolledBack.by}${r.rolledBack.automatic ? ' (automatic)' : ''}: ${r.rolledBack.reason}`);
  if (r.schemaBackupId) lines.push(`  schema backup ${r.schemaBackupId} (dbops backup show ${r.schemaBackupId})`);
  if (r.reportKey) lines.push(`  report     ${r.reportKey}`);
  return lines;
}

export function registerSchema(program: Command): void {
  const schema = program.command('schema').description('index changes on a live server: preflight, schema backup, approval, online build watched, EXPLAIN verification, rollback');

  schema
    .command('change')
    .description('add (or drop) one index online, after checks and a person\'s approval')
    .requiredOption('--cluster <name>', 'the cluster')
    .requiredOption('--database <name>', 'the database the table is in')
    .requiredOption('--sql <statement>', 'ALTER TABLE t ADD [UNIQUE] INDEX name (col, ...) | CREATE [UNIQUE] INDEX name ON t (col, ...) | DROP INDEX name ON t')
    .option('--verify-query <select>', 'a SELECT that must use the new index afterwards (repeatable; only EXPLAINed)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--dry-run', 'run the preflight and the EXPLAINs, change nothing')
    .option('--wait', 'wait for the run and print what it did')
    .option('--as <name>', 'who asks (default: $USER)')
    .addHelpText(
      'after',
      '\nExample:\n  dbops schema change --cluster shop --database shop --sql "ALTER TABLE orders ADD INDEX idx_created (created_at)" \\\n    --verify-query "SELECT id FROM orders WHERE created_at > \'2026-01-01\'" --dry-run --wait',
    )
    .action(async (options: { cluster: string; database: string; sql: string; verifyQuery: string[]; dryRun?: boolean; wait?: boolean; as?: string }, command: Command) => {
      const cfg = configOf(command);
      const json = jsonWanted(command);
      knownCluster(cfg, options.cluster);
      let change;
      try {
        change = parseIndexChange(options.sql, options.database);
      } catch (error) {
        if (error instanceof SchemaChangeRefused) throw new UsageError(`--sql: ${error.message}`);
        throw error;
      }
      await withClient(cfg, async (client) => {
        const handle = await startSchemaChange(client, cfg, { cluster: options.cluster, database: options.database, change, verifyQueries: options.verifyQuery, dryRun: options.dryRun ?? false, requestedBy: operatorOf(options) });
        if (!options.wait) {
          io.out(json ? JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }) : `started ${handle.workflowId} (approve with: dbops approvals approve ${handle.workflowId} --as NAME --reason TEXT)`);
          return;
        }
        const result = await resultWithProgress<SchemaChangeResult>(handle, progressWanted(json));
        if (json) io.out(JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId, ...result }, null, 2));
        else for (const line of schemaChangeLines(result)) io.out(line);
        if (!['done', 'dry-run'].includes(result.status)) exit.code = 1;
      });
    });

  schema
    .command('rollback')
    .description('roll back a finished change while its run watches it (the requester or an approver)')
    .argument('<workflowId>')
    .requiredOption('--as <name>', 'who asks')
    .requiredOption('--reason <text>', 'why (recorded)')
    .action(async (workflowId: string, options: { as: string; reason: string }, command: Command) => {
      await withClient(configOf(command), async (client) => {
        await requestRollback(client, workflowId, required(options.as, '--as'), required(options.reason, '--reason'));
        io.out(`rollback of ${workflowId} accepted: the run drops the index and records who asked`);
      });
    });

  schema
    .command('abort')
    .description('stop a change while the server builds it (the server discards it)')
    .argument('<workflowId>')
    .requiredOption('--as <name>', 'who stops it')
    .option('--reason <text>', 'why (recorded)')
    .action(async (workflowId: string, options: { as: string; reason?: string }, command: Command) => {
      await withClient(configOf(command), async (client) => {
        await abortSchemaChange(client, workflowId, required(options.as, '--as'), options.reason ?? '');
        io.out(`asked ${workflowId} to stop`);
      });
    });
}
