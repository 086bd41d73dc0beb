/** dbops binlogs …: the continuous binlog archive of a cluster (start, pause, resume, stop, status). */
import type { Command } from 'commander';
import { BinlogArchive } from '../../repository/binlogArchive';
import { openRepository } from '../../repository';
import { binlogArchiveState, controlBinlogArchive, ensureBinlogArchive, type ArchiveControl } from '../binlogArchive';
import { configOf, io, jsonWanted, knownCluster, operatorOf, required, withClient } from './shared';

function ageOf(iso: string | null, now: Date): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${(s / 3600).toFixed(1)} h ago`;
}

export function registerBinlogs(program: Command): void {
  const binlogs = program.command('binlogs').description('the continuous binlog archive (RPO in seconds): start, pause, resume, stop, status');

  binlogs
    .command('start')
    .description('start streaming the cluster\'s binary log into the repository (schedules apply does this for clusters with binlogArchive.enabled)')
    .option('--cluster <name>', 'the cluster')
    .option('--as <name>', 'who asks (default: $USER)')
    .addHelpText('after', '\nExample:\n  dbops binlogs start --cluster shop')
    .action(async (options: { cluster?: string; as?: string }, command: Command) => {
      const cfg = configOf(command);
      const cluster = knownCluster(cfg, required(options.cluster, '--cluster'));
      await withClient(cfg, async (client) => {
        const started = await ensureBinlogArchive(client, cfg, cluster, operatorOf(options));
        io.out(started ? `started binlog-archive/${cluster}` : `binlog-archive/${cluster} is already running`);
      });
    });

  for (const [what, help] of [
    ['pause', 'stop streaming until resumed (the RPO grows meanwhile; the RPO alert will say so)'],
    ['resume', 'continue streaming from where the archive ends'],
    ['stop', 'end the archive workflow (schedules apply starts it again while the config enables it)'],
  ] as const) {
    binlogs
      .command(what)
      .description(help)
      .option('--cluster <name>', 'the cluster')
      .option('--reason <text>', 'why (kept in the workflow history)')
      .option('--as <name>', 'who asks (default: $USER)')
      .action(async (options: { cluster?: string; reason?: string; as?: string }, command: Command) => {
        const cfg = configOf(command);
        const cluster = knownCluster(cfg, required(options.cluster, '--cluster'));
        await withClient(cfg, async (client) => {
          await controlBinlogArchive(client, cfg, cluster, what as ArchiveControl, operatorOf(options), options.reason);
          io.out(`${what} sent to binlog-archive/${cluster}`);
        });
      });
  }

  binlogs
    .command('status')
    .description('where the archive is: timeline, file and position, up to when it is complete (the RPO), the workflow\'s state')
    .option('--cluster <name>', 'the cluster')
    .action(async (options: { cluster?: string }, command: Command) => {
      const cfg = configOf(command);
      const cluster = knownCluster(cfg, required(options.cluster, '--cluster'));
      const repository = openRepository(cfg);
      try {
        const status = await new BinlogArchive(repository.storage, cluster).status();
        const workflow = await withClient(cfg, (client) => binlogArchiveState(client, cfg, cluster));
        const now = new Date();
        if (jsonWanted(command)) {
          io.out(JSON.stringify({ cluster, archive: status, rpoSeconds: status?.coveredUntil ? Math.max(0, Math.round((now.getTime() - Date.parse(status.coveredUntil)) / 1000)) : null, workflow }, null, 2));
          return;
        }
        io.out(`binlog archive of ${cluster}: ${workflow ? (workflow.paused ? `PAUSED by ${workflow.pausedBy ?? '?'}` : 'streaming') : 'not running'}`);
        if (status) io.out(`  ${status.timeline} ${status.file}:${status.position}; complete up to ${status.coveredUntil ?? 'unknown'} (${ageOf(status.coveredUntil, now)}); updated ${ageOf(status.updatedAt, now)}`);
        else io.out('  nothing archived yet');
        if (workflow?.lastError) io.out(`  last problem: ${workflow.lastError}`);
      } finally {
        repository.close();
      }
    });
}
