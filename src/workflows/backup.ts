/**
 * Backup workflows. Each reads like the runbook it replaces:
 *   1. look at the server (who is it, which databases, binlog on?)
 *   2. dump a consistent snapshot, compressed, into staging
 *   3. re-read and verify it, then publish it atomically into the repository
 */
import {
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { Activities } from '../activities';
import { buildFullManifest } from '../domain/fullBackup';
import { spaceSaving, totalStoredBytes, type Manifest } from '../domain/manifest';
import { backupDirectory, backupId, formatBytes } from '../domain/naming';
import { SA_BACKUP_TYPE, SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';

export const NON_RETRYABLE = ['ConfigError', 'AuthError', 'PrivilegeError', 'InvalidInput', 'ArtifactCorrupt'];

export interface FullBackupInput {
  cluster: string;
  /** Who asked (operator name, "schedule", "ci"); recorded in the manifest. */
  requestedBy?: string;
  reason?: string;
  timeouts?: {
    /** Longest a dump may run (default 6 hours). */
    dump?: Duration;
    /** A dump attempt whose worker stops heartbeating for this long is retried elsewhere (default 60s). */
    heartbeat?: Duration;
  };
}

function activityOptions(input: FullBackupInput) {
  const quick: ActivityOptions = {
    startToCloseTimeout: '2 minutes',
    retry: { initialInterval: '2s', maximumInterval: '1 minute', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
  };
  const dump: ActivityOptions = {
    startToCloseTimeout: input.timeouts?.dump ?? '6 hours',
    heartbeatTimeout: input.timeouts?.heartbeat ?? '60 seconds',
    retry: { initialInterval: '5s', maximumInterval: '2 minutes', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
  };
  const verify: ActivityOptions = {
    startToCloseTimeout: input.timeouts?.dump ?? '6 hours',
    retry: { initialInterval: '5s', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
  };
  return { quick, dump, verify };
}

export async function fullBackupWorkflow(input: FullBackupInput): Promise<Manifest> {
  return takeFullBackup(input, 'full');
}

async function takeFullBackup(input: FullBackupInput, type: 'full' | 'emergency'): Promise<Manifest> {
  const info = workflowInfo();
  const startedAt = new Date();
  const id = backupId(type, startedAt);
  const options = activityOptions(input);
  const { inspectCluster, discardStaging } = proxyActivities<Activities>(options.quick);
  const dumpActivity = proxyActivities<Activities>(options.dump).dumpFull;
  const publishActivity = proxyActivities<Activities>(options.verify).publishBackup;

  upsertSearchAttributes([
    { key: SA_CLUSTER, value: input.cluster },
    { key: SA_OPERATION, value: 'backup' },
    { key: SA_BACKUP_TYPE, value: type },
  ]);

  setCurrentDetails(`**${type} backup ${id}** of \`${input.cluster}\`: inspecting the server`);
  const inspection = await inspectCluster.executeWithOptions({ ...options.quick, summary: `inspect ${input.cluster}` }, [
    { cluster: input.cluster },
  ]);
  if (!inspection.logBin) {
    throw ApplicationFailure.nonRetryable(
      `cluster ${input.cluster}: binary logging is off; enable log_bin (point-in-time restore and incrementals need it)`,
      'ConfigError',
    );
  }
  if (inspection.databases.length === 0) {
    throw ApplicationFailure.nonRetryable(`cluster ${input.cluster}: no user databases to back up`, 'ConfigError');
  }

  try {
    setCurrentDetails(
      `**${type} backup ${id}** of \`${input.cluster}\` (${inspection.server.product} ${inspection.server.version}): ` +
        `dumping ${inspection.databases.join(', ')}; progress in the dump activity's heartbeat`,
    );
    const dump = await dumpActivity.executeWithOptions(
      { ...options.dump, summary: `dump ${inspection.databases.length} database(s), compress, checksum` },
      [
        {
          cluster: input.cluster,
          backupId: id,
          databases: inspection.databases,
          product: inspection.server.product,
          gtid: inspection.server.product === 'mysql' ? inspection.server.gtidMode === 'ON' : true,
        },
      ],
    );

    setCurrentDetails(`**${type} backup ${id}**: verifying ${formatBytes(dump.artifact.size)} and publishing`);
    const draft = buildFullManifest({
      id,
      type,
      cluster: input.cluster,
      startedAt,
      finishedAt: new Date(),
      server: inspection.server,
      tool: dump.tool,
      databases: inspection.databases,
      dump: dump.facts,
      objects: inspection.objects,
      artifact: dump.artifact,
      workflow: { workflowId: info.workflowId, runId: info.runId },
      requestedBy: input.requestedBy ?? null,
      reason: input.reason ?? null,
    });
    const manifest = await publishActivity.executeWithOptions(
      { ...options.verify, summary: 're-read, decompress, verify sha256, publish atomically' },
      [{ draft, relativePath: backupDirectory(input.cluster, type, id, startedAt) }],
    );
    setCurrentDetails(
      `**${type} backup ${id}** verified and published: ${formatBytes(totalStoredBytes(manifest))} ` +
        `(${(spaceSaving(manifest) * 100).toFixed(0)}% saved), snapshot at ${manifest.snapshot?.file}:${manifest.snapshot?.position}`,
    );
    return manifest;
  } catch (error) {
    // Never leave half a backup behind, also when the run is cancelled.
    await CancellationScope.nonCancellable(() =>
      discardStaging.executeWithOptions({ ...options.quick, summary: 'remove staging' }, [{ cluster: input.cluster, backupId: id }]),
    );
    if (isCancellation(error)) setCurrentDetails(`**${type} backup ${id}** cancelled; staging removed`);
    throw error;
  }
}
