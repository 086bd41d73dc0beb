/** Starting a slow-query killer run from the CLI (the schedule starts them too: client/schedules). */
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { findCluster } from '../config/load';
import type { DbopsConfig } from '../config/schema';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { queryKillerWorkflow, type QueryKillerInput } from '../workflows/queryKiller';

export function queryKillerWorkflowId(cluster: string, at: Date): string {
  return `query-killer/${cluster}/${at.toISOString().replace(/[-:]/g, '')}`;
}

/** What the run does, for the Temporal UI. */
export function queryKillerSummary(cluster: string, dryRun: boolean): string {
  return `Slow-query killer on ${cluster}${dryRun ? ' (dry run)' : ''}`;
}

export const QUERY_KILLER_DETAILS =
  'Reads the processlist once, chooses the statements over the cluster\'s busyTime that its queryKiller policy matches (never replication, system threads or dbops\'s own accounts), kills them longest first (re-checked just before), and files a report when anything matched.';

export function startQueryKiller(client: Client, config: DbopsConfig, input: QueryKillerInput, now: Date = new Date()): Promise<WorkflowHandleWithFirstExecutionRunId<typeof queryKillerWorkflow>> {
  findCluster(config, input.cluster);
  return client.workflow.start(queryKillerWorkflow, {
    taskQueue: config.temporal.taskQueue,
    workflowId: queryKillerWorkflowId(input.cluster, now),
    args: [input],
    typedSearchAttributes: [
      { key: SA_CLUSTER, value: input.cluster },
      { key: SA_OPERATION, value: 'query-killer' },
    ],
    staticSummary: queryKillerSummary(input.cluster, input.dryRun ?? false),
    staticDetails: QUERY_KILLER_DETAILS + (input.requestedBy ? `\n\nRequested by ${input.requestedBy}.` : ''),
  });
}
