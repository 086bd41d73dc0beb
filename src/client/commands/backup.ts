/** dbops backup …: take backups (full, incremental, differential, emergency, schema), list, show and validate them. */
import type { Command } from 'commander';
import { BACKUP_TYPES, spaceSaving, totalStoredBytes, type BackupType, type Manifest } from '../../domain/manifest';
import { formatBytes } from '../../domain/naming';
import { openRepository } from '../../repository';
import { describeRepository, FULL_ENGINES } from '../../config/schema';
import { startBackup } from '../backups';
import { findBackup, storageReport, validateBackup } from '../catalog';
import { progressWanted, resultWithProgress } from '../progress';
import { configOf, exit, io, jsonWanted, knownCluster, operatorOf, UsageError, withClient } from './shared';

export function manifestLine(m: Manifest): string {
  const rows = m.tables.reduce((n, t) => n + t.rows, 0);
  return [
    m.id.padEnd(28),
    m.type.padEnd(12),
    m.startedAt.replace(/\.\d{3}Z$/, 'Z').padEnd(22),
    `${(m.durationMs / 1000).toFixed(1)}s`.padStart(8),
    formatBytes(totalStoredBytes(m)).padStart(10),
    `${(spaceSaving(m) * 100).toFixed(0)}%`.padStart(6),
    String(rows).padStart(10),
    m.snapshot ? `${m.snapshot.file}:${m.snapshot.position}` : m.binlogs ? `${m.binlogs.startFile}:${m.binlogs.startPosition} → ${m.binlogs.endFile}:${m.binlogs.endPosition}` : '-',
  ].join('  ');
}

const ENGINES = FULL_ENGINES;

const TAKE: Array<{ type: BackupType; what: string }> = [
  { type: 'full', what: 'a full backup (one consistent snapshot: logical, or the server\'s files with --engine physical)' },
  { type: 'incremental', what: 'the binary logs since the previous backup of the chain' },
  { type: 'differential', what: 'the binary logs since the last full' },
  { type: 'emergency', what: 'a full on demand, that waits for routine work' },
  { type: 'schema', what: 'tables, views, routines, events and triggers, no rows (--reason required)' },
];

export function registerBackup(program: Command): void {
  const backup = program.command('backup').description('take, list, show and validate backups');
  for (const { type, what } of TAKE) {
    const take = backup
      .command(type)
      .description(`take ${what}`)
      .requiredOption('--cluster <name>', 'the cluster to back up')
      .option('--wait', 'wait for the backup and print it')
      .option('--reason <text>', 'why (recorded in the manifest)')
      .option('--as <name>', 'who asks (default: $USER)');
    if (type === 'full') take.option('--engine <engine>', `this run only: ${ENGINES.join(', ')} (default: the cluster's fullBackup.engine)`);
    if (type === 'incremental') take.option('--engine <engine>', 'physical: the pages changed since the newest physical copy (MariaDB, after a physical full); default: the binary logs');
    take
      .addHelpText('after', `\nExample:\n  dbops backup ${type} --cluster shop${type === 'schema' ? ' --reason MIG-42' : type === 'full' ? ' --engine physical' : ''} --wait`)
      .action(async (options: { cluster: string; wait?: boolean; reason?: string; as?: string; engine?: string }, command: Command) => {
        const cfg = configOf(command);
        const json = jsonWanted(command);
        const allowed: readonly string[] = type === 'incremental' ? ['physical'] : ENGINES;
        if (options.engine !== undefined && !allowed.includes(options.engine)) throw new UsageError(`--engine must be one of ${allowed.join(', ')}`);
        const engine = options.engine as (typeof ENGINES)[number] | undefined;
        await withClient(cfg, async (client) => {
          const handle = await startBackup(client, cfg, type, {
            cluster: options.cluster,
            requestedBy: operatorOf(options),
            ...(options.reason !== undefined ? { reason: options.reason } : {}),
            ...(engine ? { engine } : {}),
          });
          if (!options.wait) {
            io.out(json ? JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }) : `started ${handle.workflowId}`);
            return;
          }
          if (!json) io.out(`started ${handle.workflowId}; waiting`);
          const manifest = await resultWithProgress<Manifest>(handle, progressWanted(json));
          io.out(json ? JSON.stringify(manifest, null, 2) : `verified ${manifest.id}: ${manifestLine(manifest)}`);
        });
      });
  }

  backup
    .command('list')
    .description('the verified backups of a cluster, oldest first')
    .requiredOption('--cluster <name>', 'the cluster')
    .option('--type <type>', `one type: ${BACKUP_TYPES.join(', ')}`)
    .action(async (options: { cluster: string; type?: string }, command: Command) => {
      const cfg = configOf(command);
      knownCluster(cfg, options.cluster);
      if (options.type !== undefined && !(BACKUP_TYPES as readonly string[]).includes(options.type)) throw new UsageError(`--type must be one of ${BACKUP_TYPES.join(', ')}`);
      const { backups, unusable } = await openRepository(cfg).catalog.scan(options.cluster, options.type as BackupType | undefined);
      // Never silent: a backup whose manifest is damaged or altered is not restorable, and the operator must know.
      for (const u of unusable) io.err(`dbops: warning: ${u.key} is not used: ${u.problem}`);
      if (jsonWanted(command)) {
        io.out(JSON.stringify(backups.map((b) => b.manifest), null, 2));
        return;
      }
      if (backups.length === 0) {
        io.out(`no backups of ${options.cluster} in ${describeRepository(cfg.repository)}`);
        return;
      }
      io.out(['ID'.padEnd(28), 'TYPE'.padEnd(12), 'STARTED'.padEnd(22), 'TOOK'.padStart(8), 'SIZE'.padStart(10), 'SAVED'.padStart(6), 'ROWS'.padStart(10), 'SNAPSHOT'].join('  '));
      for (const b of backups) io.out(manifestLine(b.manifest));
    });

  backup
    .command('show')
    .description('a backup: manifest, chain link, snapshot or binlog range, artifacts, tables')
    .argument('<id>', 'the backup id')
    .option('--cluster <name>', 'look only in this cluster')
    .action(async (id: string, options: { cluster?: string }, command: Command) => {
      const stored = await findBackup(configOf(command), id, options.cluster);
      const m = stored.manifest;
      if (jsonWanted(command)) {
        io.out(JSON.stringify(m, null, 2));
        return;
      }
      io.out(`${m.id}  ${m.type} backup of ${m.cluster}, ${m.status} at ${m.verifiedAt}`);
      io.out(`  folder     ${stored.dir ?? stored.relativePath}`);
      io.out(`  server     ${m.server.product} ${m.server.version}, server id ${m.server.serverId} on ${m.server.hostname}, binlog_format ${m.server.binlogFormat ?? '?'}`);
      io.out(`  taken      ${m.startedAt} … ${m.finishedAt} (${(m.durationMs / 1000).toFixed(1)} s) by ${m.requestedBy ?? '?'}${m.reason ? `: ${m.reason}` : ''}`);
      if (m.parentId) io.out(`  parent     ${m.parentId} (chain from full ${m.baseFullId})`);
      if (m.snapshot) io.out(`  snapshot   ${m.snapshot.file}:${m.snapshot.position}${m.snapshot.gtidSet ? `, GTID ${m.snapshot.gtidSet}` : ''}`);
      if (m.binlogs) {
        io.out(`  binlogs    ${m.binlogs.startFile}:${m.binlogs.startPosition} → ${m.binlogs.endFile}:${m.binlogs.endPosition}, ${m.binlogs.transactions} transactions`);
        io.out(`  events     ${m.binlogs.firstEventTime ?? '-'} … ${m.binlogs.lastEventTime ?? '-'}; GTID ${m.binlogs.gtids.map((g) => `${g.first}…${g.last}`).join(', ') || '-'}`);
      }
      if (m.physical) {
        io.out(`  layout     physical: the server's files (${m.physical.format}, ${m.physical.serverVersion}${m.physical.toLsn !== null ? `, LSN ${m.physical.fromLsn ?? 0}..${m.physical.toLsn}` : ''}) in ${m.physical.artifact}; restored by starting a server on them`);
      }
      if (m.parallel) {
        const tables = new Set(m.parallel.chunks.map((c) => `${c.database}.${c.table}`)).size;
        io.out(`  layout     parallel: ${m.parallel.chunks.length} chunks of ${tables} tables read by ${m.parallel.threads} sessions; schema ${m.parallel.schema}, triggers ${m.parallel.triggers}`);
      }
      for (const a of m.artifacts) io.out(`  artifact   ${a.name}  ${formatBytes(a.size)} (${formatBytes(a.rawSize)} raw)  sha256 ${a.sha256}`);
      for (const t of m.tables) io.out(`  table      ${t.database}.${t.table}  ${t.rows} rows`);
    });

  backup
    .command('validate')
    .description('re-read a backup, check its sha256 and decompress it end to end; exit 1 and the reason if it is not valid')
    .argument('<id>', 'the backup id')
    .option('--cluster <name>', 'look only in this cluster')
    .action(async (id: string, options: { cluster?: string }, command: Command) => {
      const cfg = configOf(command);
      const report = await validateBackup(cfg, await findBackup(cfg, id, options.cluster));
      if (jsonWanted(command)) io.out(JSON.stringify(report, null, 2));
      else if (report.ok) io.out(`ok: ${id}: ${report.checked.length} artifact(s), ${formatBytes(report.checked.reduce((n, c) => n + c.bytes, 0))} re-read, checksums match, decompressed end to end`);
      if (!report.ok) {
        process.stderr.write(`dbops: backup ${id} is NOT valid: ${report.problems.join('; ')}\n`);
        exit.code = 1;
      }
    });
}

export function registerStorage(program: Command): void {
  program
    .command('storage')
    .description('the repository')
    .command('info')
    .description('per cluster and type: count, stored and raw bytes, saving, oldest and newest, free disk')
    .action(async (_options: unknown, command: Command) => {
      const report = await storageReport(configOf(command));
      if (jsonWanted(command)) {
        io.out(JSON.stringify(report, null, 2));
        return;
      }
      io.out(`repository ${report.repository}: ${formatBytes(report.freeBytes)} free of ${formatBytes(report.totalBytes)}`);
      for (const c of report.clusters) {
        io.out(`cluster ${c.cluster}${c.chain ? `  (chain broken since ${c.chain.brokenAt}: ${c.chain.reason})` : ''}`);
        io.out(`  ${'TYPE'.padEnd(13)}${'COUNT'.padStart(6)}${'STORED'.padStart(12)}${'RAW'.padStart(12)}${'SAVED'.padStart(7)}  OLDEST / NEWEST`);
        for (const t of c.types.filter((x) => x.count > 0)) {
          io.out(`  ${t.type.padEnd(13)}${String(t.count).padStart(6)}${formatBytes(t.storedBytes).padStart(12)}${formatBytes(t.rawBytes).padStart(12)}${`${(t.saving * 100).toFixed(0)}%`.padStart(7)}  ${t.oldest} / ${t.newest}`);
        }
      }
      for (const copy of report.copies) {
        io.out(`copy ${copy.name}: ${copy.repository}${copy.error ? `  CANNOT BE READ: ${copy.error}` : ''}`);
        for (const c of copy.clusters) {
          const behind = c.lag.missing === 0 ? 'caught up' : `${c.lag.missing} backup(s) behind, the oldest (${c.lag.oldestMissing}) waiting ${Math.round(c.lag.lagSeconds / 60)} min`;
          io.out(`  cluster ${c.cluster}: ${c.backups} backup(s), ${behind}`);
        }
      }
    });
}
