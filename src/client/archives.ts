/** Client helpers for archive jobs (CLI, schedules and tests share them). */
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ConfigError, findCluster } from '../config/load';
import { formatConfigIssues, type DbopsConfig } from '../config/schema';
import { approversFor, selfApprovalRefusal } from '../domain/approval';
import { ArchiveJobSchema, archiveJobName, archiveWorkflowId, parseDestination, type ArchiveJob, type ArchiveJobInput } from '../domain/archive';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { archiveWorkflow, type ArchiveInput } from '../workflows/archive';

/** A job from the config by name, or an ad hoc one from CLI fields; errors name the field. */
export function resolveArchiveJob(config: DbopsConfig, input: { job?: string; fields?: ArchiveJobInput }): ArchiveJob {
  if (input.job) {
    const found = config.archive.jobs.find((j) => j.name === input.job);
    if (!found) {
      const known = config.archive.jobs.map((j) => j.name).join(', ') || 'none configured';
      throw new ConfigError(`--job: no archive job named "${input.job}" in archive.jobs (known: ${known})`);
    }
    return found;
  }
  const parsed = ArchiveJobSchema.safeParse(input.fields ?? {});
  if (!parsed.success) {
    const flag = (line: string) =>
      line.replace(/^(where|to|batchSize|cluster|database|table)\b/, (f) => `--${f === 'batchSize' ? 'batch-size' : f}`);
    throw new ConfigError(formatConfigIssues(parsed.error).map(flag).join('\n'));
  }
  const job = parsed.data;
  findCluster(config, job.cluster);
  const dest = parseDestination(job.to, job);
  if (dest) findCluster(config, dest.cluster);
  return job;
}

/**
 * What `dbops archive run|plan` (and the schedules) start: the job and who asks. With --yes,
 * the requester approves their own run; the worker accepts that only from a configured
 * approver where clusters[].allowSelfApproval lists archive-delete (checked here first, to
 * say so before anything starts).
 */
export function archiveInput(config: DbopsConfig, job: ArchiveJob, options: { dryRun?: boolean; yes?: { by: string; reason: string } | null; requestedBy: string }): ArchiveInput {
  const cluster = findCluster(config, job.cluster);
  const approvers = approversFor(cluster.approvers, 'archive-delete');
  if (job.approval && !options.dryRun && !options.yes && approvers.length === 0) {
    throw new ConfigError(
      `clusters.${cluster.name}.approvers: nobody may approve archive-delete; add "archive-delete: [names]" (or "*"), pass --yes, or set approval: false on the job`,
    );
  }
  if (options.yes && !options.dryRun) {
    if (!approvers.includes(options.yes.by)) throw new ConfigError(`--yes: ${options.yes.by} is not an approver for archive-delete on ${cluster.name} (approvers: ${approvers.join(', ') || 'none configured'})`);
    if (!cluster.allowSelfApproval.includes('archive-delete')) {
      throw new ConfigError(`--yes: ${selfApprovalRefusal('archive-delete', cluster.name, `${options.yes.by} requests this run`)}`);
    }
  }
  return {
    job,
    ...(options.dryRun ? { dryRun: true } : {}),
    preApproved: options.dryRun ? null : options.yes ? { by: options.yes.by, reason: options.yes.reason } : null,
    requestedBy: options.yes && !options.dryRun ? options.yes.by : options.requestedBy,
  };
}

export function archiveSummary(job: ArchiveJob): string {
  return `Archive ${job.database}.${job.table} WHERE ${job.where} → ${job.to} on ${job.cluster}`;
}

/**
 * One run per job at a time: the workflow id is the job's, so Temporal refuses a second
 * start while one runs. A dry run gets its own id and never blocks a real run.
 */
export async function startArchive(client: Client, config: DbopsConfig, input: ArchiveInput & { job: ArchiveJob }): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const id = input.dryRun ? `${archiveWorkflowId(input.job)}/plan-${new Date().toISOString().replace(/[-:]/g, '')}` : archiveWorkflowId(input.job);
  try {
    return await client.workflow.start(archiveWorkflow, {
      taskQueue: config.temporal.taskQueue,
      workflowId: id,
      args: [input],
      typedSearchAttributes: [
        { key: SA_CLUSTER, value: input.job.cluster },
        { key: SA_OPERATION, value: 'archive' },
      ],
      staticSummary: `${input.dryRun ? 'Plan: ' : ''}${archiveSummary(input.job)}`,
      staticDetails: `Requested by ${input.requestedBy ?? 'unknown'}. Job ${archiveJobName(input.job)}, batches of ${input.job.batchSize}, ${input.preApproved ? `pre-approved by ${input.preApproved.by}` : input.job.approval ? 'waits for approval before deleting' : 'no approval configured'}.`,
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      throw new ConfigError(`archive job ${archiveJobName(input.job)} on ${input.job.cluster} is already running as ${id}; see \`dbops archive status ${id}\``);
    }
    throw error;
  }
}
