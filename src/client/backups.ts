/** Typed client helpers: how the CLI (and anything else) starts and reads backup workflows. */
import { Client, Connection, WorkflowFailedError, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { TemporalFailure } from '@temporalio/common';
import { findCluster } from '../config/load';
import type { DbopsConfig } from '../config/schema';
import type { Manifest } from '../domain/manifest';
import { backupWorkflowId } from '../domain/naming';
import { SA_BACKUP_TYPE, SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import type { FullBackupInput } from '../workflows/backup';

export async function connectClient(config: DbopsConfig): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect({ address: config.temporal.address, connectTimeout: '5 seconds' }).catch((error: Error) => {
    throw new Error(`cannot reach Temporal at ${config.temporal.address} (temporal.address): ${error.message}`);
  });
  return { client: new Client({ connection, namespace: config.temporal.namespace }), close: () => connection.close() };
}

export async function startFullBackup(
  client: Client,
  config: DbopsConfig,
  input: FullBackupInput,
  now: Date = new Date(),
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  findCluster(config, input.cluster); // unknown cluster: refused before anything starts
  const workflowId = backupWorkflowId('full', input.cluster, now);
  return client.workflow.start('fullBackupWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId,
    args: [input],
    typedSearchAttributes: [
      { key: SA_CLUSTER, value: input.cluster },
      { key: SA_OPERATION, value: 'backup' },
      { key: SA_BACKUP_TYPE, value: 'full' },
    ],
    staticSummary: `Full backup of ${input.cluster}`,
    staticDetails:
      `Logical full backup (consistent snapshot, routines, triggers, events) of cluster **${input.cluster}**, ` +
      `compressed, checksummed, verified and published into the repository.` +
      (input.requestedBy ? `\n\nRequested by ${input.requestedBy}${input.reason ? `: ${input.reason}` : ''}.` : ''),
  });
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
