/**
 * Backup workflows. Each reads like the runbook it replaces:
 *
 *   full / emergency / schema            incremental / differential
 *   1. lock the cluster                  1. lock the cluster
 *   2. look at the server                2. flush the binary log, plan from the catalog:
 *   3. dump a consistent snapshot,          copy files / take a full instead / stop at a gap
 *      compressed, into staging          3. copy the closed binlogs, compressed, into staging
 *   4. re-read, verify, publish          4. re-read, verify, publish
 *   5. unlock (also on failure)          5. unlock (also on failure)
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { BackupActivities, CopyActivities } from '../activities';
import { withClusterLock } from './lock';
import { innermostMessage, NON_RETRYABLE_TYPES, Failure } from '../domain/failures';
import { buildBinlogManifest, buildFullManifest } from '../domain/buildManifest';
import { spaceSaving, totalRawBytes, totalStoredBytes, type BackupType, type Manifest, type ManifestDraft, type ServerIdentity } from '../domain/manifest';
import type { BinlogPlan } from '../domain/chain';
import { backupDirectory, backupId, formatBytes } from '../domain/naming';
import { SA_BACKUP_TYPE, SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { notify } from './notify';
import { accept } from './boundary';
import { BackupInputSchema } from '../domain/inputs';
import type { z } from 'zod';

/** What a backup run is started with (parsed strictly: see domain/inputs). */
export type BackupInput = z.input<typeof BackupInputSchema>;


type DumpType = 'full' | 'emergency' | 'schema';
type BinlogType = 'incremental' | 'differential';

function activityOptions(input: BackupInput) {
  const retry = { initialInterval: '2s', maximumInterval: '1 minute', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_TYPES };
  const quick: ActivityOptions = { startToCloseTimeout: '2 minutes', retry };
  const transfer: ActivityOptions = {
    startToCloseTimeout: input.timeouts?.transfer ?? '6 hours',
    heartbeatTimeout: input.timeouts?.heartbeat ?? '60 seconds',
    retry: { ...retry, initialInterval: '5s', maximumAttempts: 3 },
  };
  const verify: ActivityOptions = { startToCloseTimeout: input.timeouts?.transfer ?? '6 hours', retry: { ...retry, maximumAttempts: 3 } };
  return { quick, transfer, verify };
}

function activities(input: BackupInput) {
  const options = activityOptions(input);
  return {
    options,
    quick: proxyActivities<BackupActivities>(options.quick),
    transfer: proxyActivities<BackupActivities>(options.transfer),
    verify: proxyActivities<BackupActivities>(options.verify),
  };
}

function markSearchAttributes(cluster: string, type: BackupType): void {
  upsertSearchAttributes([
    { key: SA_CLUSTER, value: cluster },
    { key: SA_OPERATION, value: 'backup' },
    { key: SA_BACKUP_TYPE, value: type },
  ]);
}

function describeDone(m: Manifest): string {
  const where = m.snapshot ? `snapshot at ${m.snapshot.file}:${m.snapshot.position}` : m.binlogs ? `binlogs ${m.binlogs.startFile}:${m.binlogs.startPosition} → ${m.binlogs.endFile}:${m.binlogs.endPosition}` : '';
  return (
    `**${m.type} backup ${m.id}** verified and published: ${formatBytes(totalStoredBytes(m))} of ${formatBytes(totalRawBytes(m))} ` +
    `(${(spaceSaving(m) * 100).toFixed(0)}% saved)${where ? `, ${where}` : ''}`
  );
}

/** Re-verifies the staged artifacts and makes the backup visible with one rename. */
async function publish(input: BackupInput, draft: ManifestDraft, startedAt: Date, verify: 'stored' | 'frame'): Promise<Manifest> {
  const a = activities(input);
  const manifest = await a.verify.publishBackup.executeWithOptions(
    { ...a.options.verify, summary: verify === 'stored' ? 're-read, verify sha256, publish atomically' : 're-read, test-decompress, verify sha256, publish atomically' },
    [{ draft, relativePath: backupDirectory(input.cluster, draft.type, draft.id, startedAt), verify }],
  );
  setCurrentDetails(describeDone(manifest));
  return manifest;
}

/** The manifest of what dumpFull took (a dump, a chunked dump or a physical copy), as of now. */
function dumpManifest(
  input: BackupInput,
  f: { id: string; type: DumpType; startedAt: Date; inspection: Awaited<ReturnType<BackupActivities['inspectCluster']>>; dump: Awaited<ReturnType<BackupActivities['dumpFull']>> },
): ManifestDraft {
  const info = workflowInfo();
  return buildFullManifest({
    id: f.id,
    type: f.type,
    cluster: input.cluster,
    startedAt: f.startedAt,
    finishedAt: new Date(),
    server: f.inspection.server,
    tool: f.dump.tool,
    databases: f.inspection.databases,
    dump: f.dump.facts,
    objects: f.inspection.objects,
    artifact: f.dump.artifact,
    ...(f.dump.parallel ? { parallel: f.dump.parallel } : {}),
    ...(f.dump.physical ? { physical: f.dump.physical } : {}),
    workflow: { workflowId: info.workflowId, runId: info.runId },
    requestedBy: input.requestedBy ?? null,
    reason: input.reason ?? null,
  });
}

/** A logical dump (full, emergency, or schema only) taken, verified and published. */
async function takeDumpBackup(input: BackupInput, type: DumpType): Promise<Manifest> {
  const startedAt = new Date();
  const id = backupId(type, startedAt);
  const a = activities(input);
  markSearchAttributes(input.cluster, type);

  setCurrentDetails(`**${type} backup ${id}** of \`${input.cluster}\`: inspecting the server`);
  const inspection = await a.quick.inspectCluster.executeWithOptions({ ...a.options.quick, summary: `inspect ${input.cluster}` }, [
    { cluster: input.cluster },
  ]);
  if (!inspection.logBin && type !== 'schema') {
    throw ApplicationFailure.nonRetryable(
      `cluster ${input.cluster}: binary logging is off; enable log_bin (point-in-time restore and incrementals need it)`,
      Failure.Config,
    );
  }
  if (inspection.replicaRefusal) throw ApplicationFailure.nonRetryable(`cluster ${input.cluster}: ${inspection.replicaRefusal}`, Failure.Config);
  await warnIfNotRow(input.cluster, inspection.server);
  if (inspection.databases.length === 0) {
    throw ApplicationFailure.nonRetryable(`cluster ${input.cluster}: no user databases to back up`, Failure.Config);
  }

  try {
    setCurrentDetails(
      `**${type} backup ${id}** of \`${input.cluster}\` (${inspection.server.product} ${inspection.server.version}): ` +
        `dumping ${inspection.databases.join(', ')}${type === 'schema' ? ' (schema only)' : ''}; progress in the dump activity's heartbeat`,
    );
    const dump = await a.transfer.dumpFull.executeWithOptions(
      { ...a.options.transfer, summary: `dump ${inspection.databases.length} database(s)${type === 'schema' ? ' (schema only)' : ''}, compress, checksum` },
      [
        {
          cluster: input.cluster,
          backupId: id,
          databases: inspection.databases,
          product: inspection.server.product,
          gtid: inspection.server.product === 'mysql' ? inspection.server.gtidMode === 'ON' : true,
          schemaOnly: type === 'schema',
          kind: type,
          ...(input.engine ? { engine: input.engine } : {}),
        },
      ],
    );

    setCurrentDetails(`**${type} backup ${id}**: verifying ${formatBytes(dump.artifact.size)} and publishing`);
    const draft = dumpManifest(input, { id, type, startedAt, inspection, dump });
    if (type === 'full' && patched('dbops-close-chain-before-full')) await closeChain(input, id);
    // The dump activity ran zstd -t over the artifact as it was written (other codecs are
    // read back and decompressed now).
    return await publish(input, draft, startedAt, dump.artifact.compression === 'zstd' ? 'stored' : 'frame');
  } catch (error) {
    await discard(input, id, error);
    throw error;
  }
}

/**
 * Restores into another name replay statements; only row events are renamed exactly. A
 * server whose binlog_format is not ROW gets a warning with every backup (the manifest
 * records the format), and `dbops restore plan` shows what such a window would do.
 */
async function warnIfNotRow(cluster: string, server: ServerIdentity): Promise<void> {
  if (server.binlogFormat === null || server.binlogFormat.toUpperCase() === 'ROW') return;
  log.warn(`cluster ${cluster}: binlog_format is ${server.binlogFormat}, not ROW`);
  await notify({
    severity: 'warning',
    event: 'binlog-format-not-row',
    cluster,
    message:
      `cluster ${cluster} logs binlog_format=${server.binlogFormat}: point-in-time restores into another name must rewrite or refuse statement-logged changes; ` +
      'set binlog_format=ROW (and binlog_row_image=FULL) on the server',
  });
}

/** Never leave half a backup behind, also when the run is cancelled. */
async function discard(input: BackupInput, id: string, error: unknown): Promise<void> {
  const a = activities(input);
  await CancellationScope.nonCancellable(() =>
    a.quick.discardStaging.executeWithOptions({ ...a.options.quick, summary: 'remove staging' }, [{ cluster: input.cluster, backupId: id }]),
  );
  if (isCancellation(error)) setCurrentDetails(`backup ${id} cancelled; staging removed`);
}

/**
 * A physical incremental (MariaDB): the pages changed since the newest physical copy of the
 * chain, by mariadb-backup --incremental-lsn. A drill prepares it onto its full and replays
 * the binlogs from its own position, so less of the binary log is replayed.
 */
async function takePhysicalIncremental(input: BackupInput): Promise<Manifest> {
  const startedAt = new Date();
  const id = backupId('incremental', startedAt);
  const a = activities(input);
  markSearchAttributes(input.cluster, 'incremental');
  setCurrentDetails(`**physical incremental ${id}** of \`${input.cluster}\`: inspecting the server and finding the copy it continues`);
  const inspection = await a.quick.inspectCluster.executeWithOptions({ ...a.options.quick, summary: `inspect ${input.cluster}` }, [{ cluster: input.cluster }]);
  if (!inspection.logBin) throw ApplicationFailure.nonRetryable(`cluster ${input.cluster}: binary logging is off; enable log_bin`, Failure.Config);
  if (inspection.replicaRefusal) throw ApplicationFailure.nonRetryable(`cluster ${input.cluster}: ${inspection.replicaRefusal}`, Failure.Config);
  const base = await a.quick.planPhysicalIncremental.executeWithOptions({ ...a.options.quick, summary: 'find the physical copy to continue' }, [{ cluster: input.cluster }]);
  if ('refusal' in base) throw ApplicationFailure.nonRetryable(`physical incremental of ${input.cluster} refused: ${base.refusal}`, Failure.InvalidInput);
  try {
    setCurrentDetails(`**physical incremental ${id}** of \`${input.cluster}\`: copying the pages changed since ${base.parentId} (LSN ${base.fromLsn})`);
    const dump = await a.transfer.dumpFull.executeWithOptions(
      { ...a.options.transfer, summary: `mariadb-backup --incremental-lsn=${base.fromLsn}, compress, checksum` },
      [{ cluster: input.cluster, backupId: id, databases: inspection.databases, product: inspection.server.product, gtid: true, kind: 'full', engine: 'physical', incrementalLsn: base.fromLsn }],
    );
    const draft: ManifestDraft = { ...dumpManifest(input, { id, type: 'full', startedAt, inspection, dump }), type: 'incremental', parentId: base.parentId, baseFullId: base.baseFullId };
    return await publish(input, draft, startedAt, dump.artifact.compression === 'zstd' ? 'stored' : 'frame');
  } catch (error) {
    await discard(input, id, error);
    throw error;
  }
}

/** Binary logs since the parent (incremental) or since the full (differential). */
async function takeBinlogBackup(input: BackupInput, type: BinlogType): Promise<Manifest> {
  const startedAt = new Date();
  const a = activities(input);
  markSearchAttributes(input.cluster, type);

  setCurrentDetails(`**${type} backup** of \`${input.cluster}\`: flushing the binary log and planning from the catalog`);
  const { plan, server } = await a.quick.planBinlogBackup.executeWithOptions(
    { ...a.options.quick, summary: 'FLUSH BINARY LOGS, list binlogs, plan from the catalog' },
    [{ cluster: input.cluster, type }],
  );

  await warnIfNotRow(input.cluster, server);
  if (plan.action === 'full') {
    log.warn(`${type} backup of ${input.cluster} becomes a full backup: ${plan.reason}`);
    setCurrentDetails(`**${type} backup** of \`${input.cluster}\` cannot build on the chain (${plan.reason}): taking a full backup instead`);
    return takeDumpBackup({ ...input, reason: `instead of ${type}: ${plan.reason}` }, 'full');
  }
  if (plan.action === 'gap') {
    await a.quick.markChainBroken.executeWithOptions({ ...a.options.quick, summary: 'mark the chain broken, alert' }, [
      { cluster: input.cluster, reason: plan.reason, lastGoodBackupId: plan.lastGoodBackupId },
    ]);
    setCurrentDetails(`**${type} backup** of \`${input.cluster}\` failed: gap in the chain (${plan.reason}); the next run takes a full`);
    throw ApplicationFailure.nonRetryable(`cluster ${input.cluster}: gap in the backup chain: ${plan.reason}; the next backup will be a full`, Failure.ChainGap);
  }

  return copyAndPublish(input, type, plan, server, startedAt);
}

/**
 * Before a new full becomes the chain's base, copy the binlogs since the old chain's last
 * backup. The FLUSH happens now, after the new full's snapshot, so every second up to that
 * snapshot stays restorable from the old chain. Without this, the writes between the last
 * incremental and the new snapshot would belong to no backup: a daily full after a
 * 4-hourly incremental would leave up to four hours a day that no restore can reach.
 * A failure here does not fail the full (the gap is then what it was before).
 */
async function closeChain(input: BackupInput, fullId: string): Promise<void> {
  const a = activities(input);
  try {
    setCurrentDetails(`**full backup ${fullId}**: closing the previous chain (copying the binlogs up to the new snapshot)`);
    const { plan, server } = await a.quick.planBinlogBackup.executeWithOptions(
      { ...a.options.quick, summary: 'close the previous chain: FLUSH BINARY LOGS, plan from the catalog' },
      [{ cluster: input.cluster, type: 'incremental' }],
    );
    if (plan.action !== 'copy') {
      log.info(`no chain to close before full ${fullId}: ${plan.reason}`);
      return;
    }
    await copyAndPublish({ ...input, reason: `closes the chain before full ${fullId}` }, 'incremental', plan, server, new Date());
  } catch (error) {
    if (isCancellation(error)) throw error;
    log.warn(`could not close the previous chain before full ${fullId}; the writes since its last backup are only in the new full`, { error: String(error) });
  }
}

/** Copies the planned binlogs into staging and publishes them as one binlog backup. */
async function copyAndPublish(
  input: BackupInput,
  type: BinlogType,
  plan: Extract<BinlogPlan, { action: 'copy' }>,
  server: ServerIdentity,
  startedAt: Date,
): Promise<Manifest> {
  const info = workflowInfo();
  const a = activities(input);
  const id = backupId(type, startedAt);
  try {
    setCurrentDetails(
      `**${type} backup ${id}** of \`${input.cluster}\`: copying ${plan.files.length} binlog(s) ` +
        `${plan.files[0]?.name} … ${plan.files[plan.files.length - 1]?.name} (parent ${plan.parentId})`,
    );
    const copy = await a.transfer.copyBinlogs.executeWithOptions(
      { ...a.options.transfer, summary: `copy ${plan.files.length} binlog(s) with mysqlbinlog --raw, compress, checksum` },
      [{ cluster: input.cluster, backupId: id, product: server.product, files: plan.files, startPosition: plan.startPosition }],
    );
    const draft = buildBinlogManifest({
      id,
      type,
      cluster: input.cluster,
      startedAt,
      finishedAt: new Date(),
      server,
      tool: copy.tool,
      parentId: plan.parentId,
      baseFullId: plan.baseFullId,
      startFile: plan.startFile,
      startPosition: plan.startPosition,
      copied: copy.copied,
      workflow: { workflowId: info.workflowId, runId: info.runId },
      requestedBy: input.requestedBy ?? null,
      reason: input.reason ?? null,
    });
    setCurrentDetails(`**${type} backup ${id}**: verifying ${copy.copied.length} file(s) and publishing`);
    // zstd binlogs were test-decompressed while they were written; others are tested now.
    return await publish(input, draft, startedAt, copy.tested ? 'stored' : 'frame');
  } catch (error) {
    await discard(input, id, error);
    throw error;
  }
}

/**
 * The refusal of acquireBackupLock when another operation holds the cluster (non-retryable
 * for routine backups): thrown by the activity, or as the cause of its ActivityFailure. An
 * emergency backup that gave up waiting ends in a timeout instead, which stays a failure.
 */
function clusterBusy(error: unknown): ApplicationFailure | null {
  const candidate = error instanceof ActivityFailure ? error.cause : error;
  return candidate instanceof ApplicationFailure && candidate.type === Failure.ClusterBusy ? candidate : null;
}

const copies = proxyActivities<CopyActivities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 3 } });

/** Wakes the copy workflows (off-site repositories). Best effort: a copy that misses it catches up on its next run. */
async function requestCopies(cluster: string): Promise<void> {
  try {
    await copies.requestCopies({ cluster });
  } catch (error) {
    if (isCancellation(error)) throw error;
    log.warn('could not wake the copy workflows; they catch up on their next run', { cluster, error: String(error) });
  }
}

/**
 * Counts the run for /metrics and alerts on failure (webhooks). A run refused because the
 * cluster was busy is counted as skipped (warning), not as a failed backup. Runs recorded
 * before this existed replay without it (patched).
 */
async function recorded(input: BackupInput, type: BackupType, fn: () => Promise<Manifest>): Promise<Manifest> {
  const started = Date.now();
  const record = patched('dbops-record-backup-outcome');
  const a = activities(input);
  try {
    const manifest = await fn();
    if (record) {
      await a.quick.recordBackupOutcome.executeWithOptions({ ...a.options.quick, summary: 'count the run (metrics)' }, [
        { cluster: input.cluster, type: manifest.type, outcome: 'success', seconds: manifest.durationMs / 1000 },
      ]);
    }
    if (patched('dbops-copy-after-publish')) await requestCopies(input.cluster);
    return manifest;
  } catch (error) {
    if (record && !isCancellation(error)) {
      const busy = clusterBusy(error);
      const outcome = busy ? 'skipped' : 'failure';
      await CancellationScope.nonCancellable(() =>
        a.quick.recordBackupOutcome.executeWithOptions({ ...a.options.quick, summary: busy ? 'count the skipped run (cluster busy), alert' : 'count the failure, alert' }, [
          {
            cluster: input.cluster,
            type,
            outcome,
            seconds: (Date.now() - started) / 1000,
            message: busy ? busy.message : innermostMessage(error),
          },
        ]),
      ).catch((alertError: unknown) => log.error(`could not record the ${outcome} or deliver its alert`, { error: String(alertError) })); // the backup's own failure is what the caller must see
    }
    throw error;
  }
}

export async function fullBackupWorkflow(raw: BackupInput): Promise<Manifest> {
  const input = accept(BackupInputSchema, raw, 'full backup');
  return recorded(input, 'full', () => withClusterLock(input, 'full backup', false, () => takeDumpBackup(input, 'full')));
}

/** A full on demand (before a risky change, during an incident): waits for routine work, its own retention. */
export async function emergencyBackupWorkflow(raw: BackupInput): Promise<Manifest> {
  const input = accept(BackupInputSchema, raw, 'emergency backup');
  return recorded(input, 'emergency', () => withClusterLock(input, 'emergency backup', true, () => takeDumpBackup(input, 'emergency')));
}

/** Schema only (tables, views, routines, events, triggers), e.g. before a migration; a reason is required. */
export async function schemaBackupWorkflow(raw: BackupInput): Promise<Manifest> {
  const input = accept(BackupInputSchema, raw, 'schema backup');
  if (!input.reason || input.reason.trim() === '') {
    throw ApplicationFailure.nonRetryable('a schema backup needs a reason, such as the migration id (--reason)', Failure.InvalidInput);
  }
  return recorded(input, 'schema', () => withClusterLock(input, 'schema backup', false, () => takeDumpBackup(input, 'schema')));
}

/** Everything since the previous backup of the chain. */
export async function incrementalBackupWorkflow(raw: BackupInput): Promise<Manifest> {
  const input = accept(BackupInputSchema, raw, 'incremental backup');
  return recorded(input, 'incremental', () =>
    withClusterLock(input, 'incremental backup', false, () => (input.engine === 'physical' ? takePhysicalIncremental(input) : takeBinlogBackup(input, 'incremental'))),
  );
}

/** Everything since the last full (cumulative). */
export async function differentialBackupWorkflow(raw: BackupInput): Promise<Manifest> {
  const input = accept(BackupInputSchema, raw, 'differential backup');
  return recorded(input, 'differential', () => withClusterLock(input, 'differential backup', false, () => takeBinlogBackup(input, 'differential')));
}
