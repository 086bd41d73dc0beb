/** Starting retention runs from the CLI. */
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { findCluster } from '../config/load';
import type { DbopsConfig } from '../config/schema';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { retentionWorkflow, type RetentionInput } from '../workflows/retention';

export function startRetention(client: Client, config: DbopsConfig, input: RetentionInput): Promise<WorkflowHandleWithFirstExecutionRunId<typeof retentionWorkflow>> {
  findCluster(config, input.cluster);
  return client.workflow.start(retentionWorkflow, {
    taskQueue: config.temporal.taskQueue,
    workflowId: `retention/${input.cluster}/${input.dryRun ? 'dry-run-' : ''}${new Date().toISOString().replace(/[-:]/g, '')}`,
    args: [input],
    typedSearchAttributes: [
      { key: SA_CLUSTER, value: input.cluster },
      { key: SA_OPERATION, value: 'retention' },
    ],
    staticSummary: `${input.dryRun ? 'Dry run: ' : ''}retention of ${input.cluster}`,
    staticDetails: 'Deletes backups past their policy, never one a kept backup or the point-in-time window needs.',
  });
}
