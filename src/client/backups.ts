/** Typed client helpers: how the CLI (and anything else) starts and reads backup workflows. */
import { hostname, userInfo } from 'node:os';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { TemporalFailure } from '@temporalio/common';
import { ConfigError, findCluster } from '../config/load';
import type { DbopsConfig } from '../config/schema';
import type { BackupType, Manifest } from '../domain/manifest';
import { backupWorkflowId } from '../domain/naming';
import { SA_BACKUP_TYPE, SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { differentialBackupWorkflow, emergencyBackupWorkflow, fullBackupWorkflow, incrementalBackupWorkflow, schemaBackupWorkflow, type BackupInput } from '../workflows/backup';

/**
 * The Temporal identity this CLI presents: the OS user and host. Runs record it for their
 * start and for every approval decision; a decision from the identity that started a run is
 * the requester approving themselves. The server can make it trustworthy (README, Security).
 */
export function cliIdentity(): string {
  // Service accounts and tests name themselves; what the name is worth is the server's to enforce.
  if (process.env.DBOPS_CLIENT_IDENTITY) return process.env.DBOPS_CLIENT_IDENTITY;
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): keep $USER
  }
  return `dbops-cli/${user}@${hostname()}`;
}

export async function connectClient(config: DbopsConfig): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect({ address: config.temporal.address, connectTimeout: '5 seconds' }).catch((error: Error) => {
    throw new Error(`cannot reach Temporal at ${config.temporal.address} (temporal.address): ${error.message}`);
  });
  return { client: new Client({ connection, namespace: config.temporal.namespace, identity: cliIdentity() }), close: () => connection.close() };
}

export const BACKUP_WORKFLOWS = {
  full: { workflow: fullBackupWorkflow, what: 'Logical full backup (consistent snapshot, routines, triggers, events, views)' },
  emergency: { workflow: emergencyBackupWorkflow, what: 'Emergency full backup on demand (waits for routine work, kept under its own retention)' },
  schema: { workflow: schemaBackupWorkflow, what: 'Schema backup (tables, views, routines, events, triggers; no rows)' },
  incremental: { workflow: incrementalBackupWorkflow, what: 'Incremental backup: the binary logs since the previous backup of the chain' },
  differential: { workflow: differentialBackupWorkflow, what: 'Differential backup: the binary logs since the last full backup' },
} satisfies Record<BackupType, { workflow: (input: BackupInput) => Promise<Manifest>; what: string }>;

export async function startBackup(
  client: Client,
  config: DbopsConfig,
  type: BackupType,
  input: BackupInput,
  now: Date = new Date(),
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  findCluster(config, input.cluster); // unknown cluster: refused before anything starts
  if (type === 'schema' && !input.reason?.trim()) throw new ConfigError('--reason is required for a schema backup (e.g. the migration id)');
  const { workflow, what } = BACKUP_WORKFLOWS[type];
  return client.workflow.start(workflow, {
    taskQueue: config.temporal.taskQueue,
    workflowId: backupWorkflowId(type, input.cluster, now),
    args: [input],
    typedSearchAttributes: [
      { key: SA_CLUSTER, value: input.cluster },
      { key: SA_OPERATION, value: 'backup' },
      { key: SA_BACKUP_TYPE, value: type },
    ],
    ...(type === 'emergency' ? { priority: { priorityKey: 1 } } : {}),
    staticSummary: `${type[0]?.toUpperCase()}${type.slice(1)} backup of ${input.cluster}`,
    staticDetails:
      `${what} of cluster **${input.cluster}**, compressed, checksummed, verified and published into the repository.` +
      (input.requestedBy ? `\n\nRequested by ${input.requestedBy}${input.reason ? `: ${input.reason}` : ''}.` : ''),
  });
}

export function startFullBackup(client: Client, config: DbopsConfig, input: BackupInput, now?: Date): Promise<WorkflowHandleWithFirstExecutionRunId> {
  return startBackup(client, config, 'full', input, now);
}

export async function waitForManifest(handle: WorkflowHandle): Promise<Manifest> {
  return (await handle.result()) as Manifest;
}

/** The innermost message of a failed workflow: the one that says what to fix. */
export function explainFailure(error: unknown): string {
  let current: unknown = error instanceof WorkflowFailedError ? error.cause ?? error : error;
  let message = current instanceof Error ? current.message : String(current);
  while (current instanceof TemporalFailure && current.cause) {
    current = current.cause;
    if (current instanceof Error && current.message) message = current.message;
  }
  return message;
}
