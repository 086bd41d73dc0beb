/** Starting an index change, and asking a watched one to roll back or a running one to stop. */
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ConfigError, findCluster } from '../config/load';
import type { DbopsConfig } from '../config/schema';
import { describeChange } from '../domain/schemaChange';
import { SchemaChangeInputSchema } from '../domain/inputs';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { abortSchemaChangeSignal, rollbackUpdate, schemaChangeWorkflow, type SchemaChangeInput } from '../workflows/schemaChange';

/**
 * One change at a time per table: a run's id is the table's, so a second run on it is
 * refused while the first goes on (a dry run changes nothing and gets an id of its own).
 */
export function schemaChangeWorkflowId(cluster: string, database: string, table: string, at: Date, dryRun = false): string {
  const id = `schema-change/${cluster}/${database}.${table}`;
  return dryRun ? `${id}/dry-run-${at.toISOString().replace(/[-:]/g, '')}` : id;
}

export const SCHEMA_CHANGE_DETAILS =
  'Preflight (table size and rows, free disk, the server accepting the change online, transactions and locks in the way, the verify queries\' plans), a schema backup, approval, the change run online and watched (Threads_running, replica lag, metadata-lock waits), the verify queries explained again (rolled back when one does not use the new index), then open for a rollback request for schemaChange.watchFor.';

export function startSchemaChange(client: Client, config: DbopsConfig, raw: SchemaChangeInput, now: Date = new Date()): Promise<WorkflowHandleWithFirstExecutionRunId<typeof schemaChangeWorkflow>> {
  const input = SchemaChangeInputSchema.parse(raw);
  findCluster(config, input.cluster);
  const what = describeChange(input.database, input.change);
  const workflowId = schemaChangeWorkflowId(input.cluster, input.database, input.change.table, now, input.dryRun);
  return client.workflow.start(schemaChangeWorkflow, {
    taskQueue: config.temporal.taskQueue,
    workflowId,
    args: [input],
    typedSearchAttributes: [
      { key: SA_CLUSTER, value: input.cluster },
      { key: SA_OPERATION, value: 'schema-change' },
    ],
    staticSummary: `Schema change on ${input.cluster}: ${what}${input.dryRun ? ' (dry run)' : ''}`,
    staticDetails: SCHEMA_CHANGE_DETAILS + (input.requestedBy ? `\n\nRequested by ${input.requestedBy}.` : ''),
  }).catch((error: unknown) => {
    if (error instanceof WorkflowExecutionAlreadyStartedError) throw new ConfigError(`a schema change on ${input.database}.${input.change.table} is already running (${workflowId}): one change per table at a time`);
    throw error;
  });
}

/** Asks a run watching its finished change to roll it back; refused at once when it may not (the Update's validator). */
export async function requestRollback(client: Client, workflowId: string, operator: string, reason: string): Promise<void> {
  try {
    await client.workflow.getHandle(workflowId).executeUpdate(rollbackUpdate, { args: [{ operator, reason }] });
  } catch (error) {
    const e = error as Error;
    throw new ConfigError(`refused: ${e.cause instanceof Error ? e.cause.message : e.message}`);
  }
}

/** Stops a running build (the server discards the half-built index). */
export async function abortSchemaChange(client: Client, workflowId: string, operator: string, reason: string): Promise<void> {
  await client.workflow.getHandle(workflowId).signal(abortSchemaChangeSignal, { operator, reason });
}
