/** dbops drill …: restore the latest point into a throwaway server, verify it, measure RTO and RPO; list and show the reports. */
import type { Command } from 'commander';
import { findCluster } from '../../config/load';
import { DRILL_ID_PATTERN } from '../../domain/drill';
import { openRepository } from '../../repository';
import { drillInput, startDrill } from '../drills';
import { progressWanted, resultWithProgress } from '../progress';
import { configOf, exit, io, jsonWanted, operatorOf, UsageError, withClient } from './shared';

export function registerDrill(program: Command): void {
  const drill = program.command('drill').description('disaster-recovery drills and their reports');

  drill
    .command('run')
    .description('run a drill now')
    .requiredOption('--cluster <name>', 'the cluster')
    .option('--full', 'the failover rehearsal: every database, the checks from the config')
    .option('--rto <duration>', 'the RTO target, e.g. 4h (default: the config\'s)')
    .option('--rpo <duration>', 'the RPO target, e.g. 10m (default: the config\'s)')
    .option('--wait', 'wait and print the verdict')
    .option('--as <name>', 'who asks (default: $USER)')
    .action(async (options: { cluster: string; full?: boolean; rto?: string; rpo?: string; wait?: boolean; as?: string }, command: Command) => {
      const cfg = configOf(command);
      const json = jsonWanted(command);
      const input = {
        ...drillInput(cfg, options.cluster, options.full === true, operatorOf(options)),
        ...(options.rto !== undefined ? { rtoTarget: options.rto } : {}),
        ...(options.rpo !== undefined ? { rpoTarget: options.rpo } : {}),
      };
      await withClient(cfg, async (client) => {
        const handle = await startDrill(client, cfg, input);
        if (!options.wait) {
          io.out(json ? JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }) : `started ${handle.workflowId}`);
          return;
        }
        if (!json) io.out(`started ${handle.workflowId}; waiting`);
        const result = await resultWithProgress<{ report: { passed: boolean; rto: { seconds: number }; rpo: { seconds: number | null } }; files: { markdown: string } }>(handle, progressWanted(json));
        const r = result.report;
        io.out(json ? JSON.stringify(result, null, 2) : `${r.passed ? 'passed' : 'FAILED'}: RTO ${r.rto.seconds.toFixed(1)} s, RPO ${r.rpo.seconds ?? '?'} s; report ${result.files.markdown}`);
        if (!r.passed) exit.code = 1;
      });
    });

  drill
    .command('list')
    .description('the drills of a cluster, with verdict, RTO and RPO')
    .requiredOption('--cluster <name>', 'the cluster')
    .action(async (options: { cluster: string }, command: Command) => {
      const cfg = configOf(command);
      findCluster(cfg, options.cluster);
      const reports = await openRepository(cfg).catalog.drillReports(options.cluster);
      if (jsonWanted(command)) io.out(JSON.stringify(reports, null, 2));
      else if (reports.length === 0) io.out(`no drills of ${options.cluster} yet (dbops drill run --cluster ${options.cluster})`);
      else for (const r of reports) io.out(`${r.drillId}  ${r.passed ? 'passed' : 'FAILED'}  ${r.startedAt}  RTO ${r.rto.seconds.toFixed(1)} s  RPO ${r.rpo.seconds ?? '?'} s`);
    });

  drill
    .command('show')
    .description('one drill report (Markdown, or the JSON with --json)')
    .argument('<id>', 'the drill id, e.g. drill-20261122T020000Z')
    .requiredOption('--cluster <name>', 'the cluster')
    .action(async (id: string, options: { cluster: string }, command: Command) => {
      const cfg = configOf(command);
      findCluster(cfg, options.cluster);
      if (!DRILL_ID_PATTERN.test(id)) throw new UsageError(`the drill id ${JSON.stringify(id)} is not one (drill-YYYYMMDDTHHMMSSZ; dbops drill list --cluster ${options.cluster})`);
      const text = await openRepository(cfg).catalog.drillReportText(options.cluster, id, jsonWanted(command) ? 'json' : 'md');
      if (text === null) throw new UsageError(`no drill ${id} of ${options.cluster} (dbops drill list --cluster ${options.cluster})`);
      io.out(text.trimEnd());
    });
}
