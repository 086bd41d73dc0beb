/** dbops schedules … and dbops status: the Temporal Schedules the config asks for, and how recent the backups are. */
import type { Command } from 'commander';
import { planReconcile } from '../../domain/schedules';
import { applySchedules, desiredFromConfig, existingSchedules } from '../schedules';
import { ensureBinlogArchives } from '../binlogArchive';
import { formatStatus, statusReport } from '../status';
import { configOf, io, jsonWanted, operatorOf, withClient } from './shared';

export function registerSchedules(program: Command): void {
  const schedules = program.command('schedules').description('the Temporal Schedules that fire backups, drills, archiving and retention');

  schedules
    .command('apply')
    .description('create, update and remove schedules so the server matches the config (an operator\'s pause is kept)')
    .option('--dry-run', 'print what would change, change nothing')
    .action(async (options: { dryRun?: boolean }, command: Command) => {
      const cfg = configOf(command);
      await withClient(cfg, async (client) => {
        const plan = options.dryRun ? planReconcile(desiredFromConfig(cfg), await existingSchedules(client)) : await applySchedules(client, cfg);
        // The continuous binlog archive is one long-running workflow per cluster, not a schedule: started here when missing.
        const archives = options.dryRun
          ? cfg.clusters.filter((c) => c.binlogArchive.enabled).map((c) => ({ cluster: c.name, started: false }))
          : await ensureBinlogArchives(client, cfg, operatorOf({}));
        const summary = {
          create: [...plan.create.map((d) => d.id), ...archives.filter((a) => a.started).map((a) => `binlog-archive/${a.cluster}`)],
          update: plan.update.map((d) => d.id),
          remove: plan.remove,
          unchanged: [...plan.unchanged, ...archives.filter((a) => !a.started && !options.dryRun).map((a) => `binlog-archive/${a.cluster}`)],
        };
        if (options.dryRun) summary.create.push(...archives.map((a) => `binlog-archive/${a.cluster} (if not running)`));
        if (jsonWanted(command)) {
          io.out(JSON.stringify(summary, null, 2));
          return;
        }
        const verb = options.dryRun ? 'would ' : '';
        for (const [what, ids] of Object.entries(summary)) for (const id of ids) io.out(`${verb}${what === 'unchanged' ? 'keep' : what} ${id}`);
        if (Object.values(summary).every((ids) => ids.length === 0)) io.out('no schedules configured');
      });
    });

  schedules
    .command('list')
    .description('the dbops schedules on the server: paused or not, next runs, runs skipped because one was still going')
    .action(async (_o: unknown, command: Command) => {
      await withClient(configOf(command), async (client) => {
        const rows = (await existingSchedules(client)).map((e) => ({
          id: e.id,
          paused: e.description.state.paused,
          note: e.description.state.note ?? null,
          next: e.description.info.nextActionTimes.slice(0, 3).map((d) => d.toISOString()),
          recent: e.description.info.recentActions.slice(-3).map((a) => ({ at: a.takenAt.toISOString(), workflowId: a.action.type === 'startWorkflow' ? a.action.workflow.workflowId : null })),
          skippedOverlap: e.description.info.numActionsSkippedOverlap,
        }));
        if (jsonWanted(command)) io.out(JSON.stringify(rows, null, 2));
        else if (rows.length === 0) io.out('no dbops schedules on the server (dbops schedules apply)');
        else for (const r of rows) io.out(`${r.id.padEnd(40)} ${r.paused ? 'PAUSED' : 'active'}  next ${r.next[0] ?? '-'}  skipped (overlap) ${r.skippedOverlap}${r.note ? `  note: ${r.note}` : ''}`);
      });
    });

  schedules
    .command('describe')
    .description('the schedule as the server holds it (JSON)')
    .argument('<id>', 'the schedule id, e.g. dbops/shop/full')
    .action(async (id: string, _o: unknown, command: Command) => {
      await withClient(configOf(command), async (client) => io.out(JSON.stringify(await client.schedule.getHandle(id).describe(), null, 2)));
    });

  schedules
    .command('pause')
    .description('stop firing until resumed; apply keeps the pause')
    .argument('<id>', 'the schedule id')
    .option('--reason <text>', 'the note shown with the pause')
    .option('--as <name>', 'who pauses (default: $USER)')
    .action(async (id: string, options: { reason?: string; as?: string }, command: Command) => {
      await withClient(configOf(command), async (client) => client.schedule.getHandle(id).pause(options.reason ?? `paused by ${operatorOf(options)}`));
      io.out(`paused ${id}`);
    });

  schedules
    .command('resume')
    .description('fire again')
    .argument('<id>', 'the schedule id')
    .option('--reason <text>', 'the note')
    .action(async (id: string, options: { reason?: string }, command: Command) => {
      await withClient(configOf(command), async (client) => client.schedule.getHandle(id).unpause(options.reason));
      io.out(`resumed ${id}`);
    });

  schedules
    .command('trigger')
    .description('fire once now (skipped if a run of it is still going)')
    .argument('<id>', 'the schedule id')
    .action(async (id: string, _o: unknown, command: Command) => {
      await withClient(configOf(command), async (client) => client.schedule.getHandle(id).trigger());
      io.out(`triggered ${id}`);
    });
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('per cluster: the newest backup of each type and its age, failed runs, runs waiting for a person')
    .action(async (_o: unknown, command: Command) => {
      const cfg = configOf(command);
      await withClient(cfg, async (client) => {
        const report = await statusReport(client, cfg);
        io.out(jsonWanted(command) ? JSON.stringify(report, null, 2) : formatStatus(report));
      });
    });
}
