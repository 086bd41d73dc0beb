/** Starting DR drills (CLI and schedules share the input). */
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { findCluster } from '../config/load';
import type { DbopsConfig } from '../config/schema';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { disasterRecoveryDrillWorkflow, type DrillInput } from '../workflows/drill';

/** What a drill run receives: its targets and profile (queries and approvers are the worker's config). */
export function drillInput(config: DbopsConfig, cluster: string, full: boolean, requestedBy: string): DrillInput {
  findCluster(config, cluster);
  return { cluster, rtoTarget: config.drills.rtoTarget, rpoTarget: config.drills.rpoTarget, ...(full ? { full: true } : {}), requestedBy };
}

export function startDrill(client: Client, config: DbopsConfig, input: DrillInput): Promise<WorkflowHandleWithFirstExecutionRunId<typeof disasterRecoveryDrillWorkflow>> {
  return client.workflow.start(disasterRecoveryDrillWorkflow, {
    taskQueue: config.temporal.taskQueue,
    workflowId: `drill/${input.cluster}/${new Date().toISOString().replace(/[-:]/g, '')}`,
    args: [input],
    typedSearchAttributes: [
      { key: SA_CLUSTER, value: input.cluster },
      { key: SA_OPERATION, value: 'drill' },
    ],
    staticSummary: `DR drill of ${input.cluster}`,
    staticDetails: 'Restores the latest restorable point into a throwaway server, verifies it, measures RTO and RPO, removes the server, files a report.',
  });
}
