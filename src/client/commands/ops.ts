/** dbops ops …: operations jobs on a live server. `kill-slow` runs the slow-query killer once. */
import type { Command } from 'commander';
import { ConfigError } from '../../config/load';
import { killSummary } from '../../domain/queryKiller';
import type { QueryKillerResult } from '../../workflows/queryKiller';
import { progressWanted, resultWithProgress } from '../progress';
import { startQueryKiller } from '../queryKiller';
import { configOf, io, jsonWanted, knownCluster, operatorOf, withClient } from './shared';

export function queryKillerLines(result: QueryKillerResult): string[] {
  const r = result.report;
  const lines = [killSummary(r)];
  for (const x of r.records) lines.push(`  ${x.outcome}: session ${x.id} ${x.user}@${x.host} db ${x.db ?? '-'} ${x.timeSeconds} s${x.rowsExamined !== null ? `, ${x.rowsExamined} rows examined` : ''}: ${x.digestText}`);
  const spared = Object.entries(r.spared).filter(([, n]) => n > 0);
  if (spared.length) lines.push(`  spared: ${spared.map(([why, n]) => `${n} ${why}`).join(', ')}`);
  if (result.reportKey) lines.push(`  report: ${result.reportKey}`);
  return lines;
}

export function registerOps(program: Command): void {
  const ops = program.command('ops').description('operations jobs on a live server: the slow-query killer');

  ops
    .command('kill-slow')
    .description("run the cluster's slow-query killer once (clusters[].queryKiller); the schedule runs it every queryKiller.every")
    .requiredOption('--cluster <name>', 'the cluster')
    .option('--dry-run', 'record what would be killed, kill nothing')
    .option('--wait', 'wait for the run and print what it did')
    .option('--as <name>', 'who asks (default: $USER)')
    .addHelpText('after', '\nExample:\n  dbops ops kill-slow --cluster shop --dry-run --wait')
    .action(async (options: { cluster: string; dryRun?: boolean; wait?: boolean; as?: string }, command: Command) => {
      const cfg = configOf(command);
      const json = jsonWanted(command);
      knownCluster(cfg, options.cluster);
      if (!cfg.clusters.find((c) => c.name === options.cluster)?.queryKiller) {
        throw new ConfigError(`cluster ${options.cluster} has no queryKiller in the config: add clusters[].queryKiller (e.g. { busyTime: 60s, dryRun: true }) to run the slow-query killer there`);
      }
      await withClient(cfg, async (client) => {
        const handle = await startQueryKiller(client, cfg, { cluster: options.cluster, dryRun: options.dryRun ?? false, requestedBy: operatorOf(options) });
        if (!options.wait) {
          io.out(json ? JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }) : `started ${handle.workflowId}`);
          return;
        }
        const result = await resultWithProgress<QueryKillerResult>(handle, progressWanted(json));
        if (json) io.out(JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId, ...result }, null, 2));
        else for (const line of queryKillerLines(result)) io.out(line);
      });
    });
}
