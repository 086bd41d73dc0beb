/** dbops retention run: delete backups past their policy, never one a kept backup or the point-in-time window needs. */
import type { Command } from 'commander';
import { findCluster } from '../../config/load';
import { formatBytes } from '../../domain/naming';
import type { RetentionResult } from '../../workflows/retention';
import { progressWanted, resultWithProgress } from '../progress';
import { startRetention } from '../retentions';
import { configOf, exit, io, jsonWanted, operatorOf, withClient } from './shared';

function storageLine(s: { usedBytes: number; maxBytes: number | null; usedFraction: number | null; level: string }): string {
  return `${formatBytes(s.usedBytes)}${s.maxBytes !== null ? ` of ${formatBytes(s.maxBytes)} (${Math.round((s.usedFraction ?? 0) * 100)} %, ${s.level})` : ' (no limit)'}`;
}

export function retentionLines(r: RetentionResult, dryRun: boolean): string[] {
  const s = r.plan.storage;
  const lines = [`storage: ${storageLine(s)}; after: ${formatBytes(s.bytesAfter)}`];
  for (const d of r.plan.delete) lines.push(`${dryRun ? 'would delete' : 'delete'}  ${d.id.padEnd(32)} ${d.type.padEnd(12)} ${formatBytes(d.bytes).padStart(10)}  ${d.reason}`);
  for (const k of r.plan.keep) lines.push(`keep          ${k.id.padEnd(32)} ${k.type.padEnd(12)} ${''.padStart(10)}  ${k.reasons.join('; ')}`);
  for (const w of r.plan.warnings) lines.push(`warning: ${w}`);
  if (r.status === 'done') {
    const a = r.storageAfter;
    lines.push(`deleted ${r.deleted.length} backup(s), freed ${formatBytes(r.freedBytes)}${r.skipped.length ? `; skipped ${r.skipped.length}` : ''}${a ? `; storage now ${storageLine(a)}` : ''}`);
    for (const x of r.skipped) lines.push(`skipped       ${x.id.padEnd(32)} ${x.why}`);
  }
  if (r.status === 'rejected') lines.push(`nothing deleted: rejected${r.approval?.by ? ` by ${r.approval.by}` : ''}`);
  if (r.status === 'expired') lines.push('nothing deleted: nobody approved in time');
  return lines;
}

export function registerRetention(program: Command): void {
  program
    .command('retention')
    .description('backup retention')
    .command('run')
    .description('apply the retention policy to a cluster (deleting waits for an approval when the config asks for one)')
    .requiredOption('--cluster <name>', 'the cluster')
    .option('--dry-run', 'print what would be deleted and why, delete nothing')
    .option('--wait', 'wait for the run to finish')
    .option('--as <name>', 'who asks (default: $USER)')
    .action(async (options: { cluster: string; dryRun?: boolean; wait?: boolean; as?: string }, command: Command) => {
      const cfg = configOf(command);
      const json = jsonWanted(command);
      findCluster(cfg, options.cluster);
      const dryRun = options.dryRun === true;
      await withClient(cfg, async (client) => {
        const handle = await startRetention(client, cfg, { cluster: options.cluster, dryRun, requestedBy: operatorOf(options) });
        if (!dryRun && !options.wait) {
          io.out(json ? JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }) : `started ${handle.workflowId}`);
          return;
        }
        const r = await resultWithProgress<RetentionResult>(handle, progressWanted(json));
        if (json) io.out(JSON.stringify(r, null, 2));
        else for (const line of retentionLines(r, dryRun)) io.out(line);
        if (r.status === 'rejected' || r.status === 'expired') exit.code = 1;
      });
    });
}
