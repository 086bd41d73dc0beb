/** Starting repository verifications from the CLI (schedules start them too: client/schedules). */
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { findCluster } from '../config/load';
import type { DbopsConfig } from '../config/schema';
import { repoVerifyWorkflowId } from '../domain/naming';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { repoVerifyWorkflow, type RepoVerifyInput } from '../workflows/repoVerify';

export function startRepoVerify(client: Client, config: DbopsConfig, input: RepoVerifyInput, now: Date = new Date()): Promise<WorkflowHandleWithFirstExecutionRunId<typeof repoVerifyWorkflow>> {
  if (input.cluster !== undefined) findCluster(config, input.cluster);
  const which = input.cluster !== undefined ? `cluster ${input.cluster}` : 'every cluster';
  return client.workflow.start(repoVerifyWorkflow, {
    taskQueue: config.temporal.taskQueue,
    workflowId: repoVerifyWorkflowId(input.cluster ?? null, now),
    args: [input],
    typedSearchAttributes: [...(input.cluster !== undefined ? [{ key: SA_CLUSTER, value: input.cluster }] : []), { key: SA_OPERATION, value: 'repo-verify' }],
    staticSummary: `Repository verify of ${which}`,
    staticDetails:
      `Re-reads every artifact of every backup of ${which} (size, sha256, decryption, decompression), looks for missing, orphaned and corrupt objects, files a report and alerts.` +
      (input.requestedBy ? `\n\nRequested by ${input.requestedBy}.` : ''),
  });
}
