/** Typed client helpers for restores and approvals (used by the CLI and the tests). */
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ConfigError, findCluster } from '../config/load';
import type { DbopsConfig } from '../config/schema';
import { approversFor, refuseDecision, type ApprovalState } from '../domain/approval';
import { isValidSqlIdentifier, SQL_IDENTIFIER_RULE } from '../domain/identifiers';
import { SA_AWAITING_APPROVAL, SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { pointInTimeRestoreWorkflow, restorePlanWorkflow, tableRestoreWorkflow, type PitrInput, type RestoreInput, type TableRestoreInput } from '../workflows/restore';
import { approvalQuery, decideUpdate } from '../workflows/approval';
import { instanceRestoreWorkflow, type InstanceRestoreInput } from '../workflows/instanceRestore';
import { physicalRestoreWorkflow, type PhysicalRestoreInput } from '../workflows/physicalRestore';
import { PhysicalRestoreInputSchema } from '../domain/inputs';

function checkName(value: string, flag: string): void {
  if (!isValidSqlIdentifier(value)) throw new ConfigError(`${flag}: ${JSON.stringify(value)} is not an accepted name (${SQL_IDENTIFIER_RULE}); nothing was started`);
}

/** Readable and unique: a second restore in the same second must not collide. */
function runId(prefix: string): string {
  return `${prefix}/${new Date().toISOString().replace(/[-:]/g, '')}`;
}

function start<I extends { cluster: string; requestedBy?: string | undefined }>(client: Client, config: DbopsConfig, workflow: (input: I) => Promise<unknown>, id: string, input: I, summary: string) {
  return client.workflow.start(workflow, {
    taskQueue: config.temporal.taskQueue,
    workflowId: id,
    args: [input],
    typedSearchAttributes: [
      { key: SA_CLUSTER, value: input.cluster },
      { key: SA_OPERATION, value: 'restore' },
    ],
    staticSummary: summary,
    staticDetails: `Requested by ${input.requestedBy ?? 'unknown'}. Restores never overwrite live data without an approval.`,
  });
}

export async function startRestorePlan(client: Client, config: DbopsConfig, input: RestoreInput): Promise<WorkflowHandleWithFirstExecutionRunId> {
  findCluster(config, input.cluster);
  checkName(input.database, '--database');
  return start(client, config, restorePlanWorkflow, runId(`restore-plan/${input.cluster}`), input, `Plan a restore of ${input.database} on ${input.cluster}`);
}

export async function startPitr(client: Client, config: DbopsConfig, input: PitrInput): Promise<WorkflowHandleWithFirstExecutionRunId> {
  findCluster(config, input.cluster);
  checkName(input.database, '--database');
  checkName(input.into, '--into');
  return start(client, config, pointInTimeRestoreWorkflow, runId(`restore-pitr/${input.cluster}/${input.into}`), input, `Point-in-time restore of ${input.database} into ${input.into} on ${input.cluster}`);
}

export async function startTableRestore(client: Client, config: DbopsConfig, input: TableRestoreInput): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const cluster = findCluster(config, input.cluster);
  checkName(input.database, '--database');
  for (const t of input.tables) checkName(t, '--table');
  // Said here first; the worker decides with its own config when the approval is requested.
  if (input.swap && approversFor(cluster.approvers, 'restore-swap').length === 0) {
    throw new ConfigError(`clusters.${cluster.name}.approvers: nobody may approve restore-swap; add "restore-swap: [names]" (or "*") before using --swap`);
  }
  return start(
    client,
    config,
    tableRestoreWorkflow,
    runId(`restore-table/${input.cluster}/${input.database}`),
    input,
    `Table restore of ${input.tables.join(', ')} in ${input.database} on ${input.cluster}${input.swap ? ' (swap after approval)' : ''}`,
  );
}

export interface PendingApproval {
  workflowId: string;
  runId: string;
  type: string;
  startTime: string;
  state: ApprovalState | null;
}

export async function listPendingApprovals(client: Client): Promise<PendingApproval[]> {
  const out: PendingApproval[] = [];
  for await (const wf of client.workflow.list({ query: `${SA_AWAITING_APPROVAL.name} = true AND ExecutionStatus = 'Running'` })) {
    const state = await client.workflow.getHandle(wf.workflowId, wf.runId).query(approvalQuery).catch(() => null);
    out.push({ workflowId: wf.workflowId, runId: wf.runId, type: wf.type, startTime: wf.startTime.toISOString(), state });
  }
  return out;
}

export async function approvalState(client: Client, workflowId: string): Promise<ApprovalState | null> {
  return client.workflow.getHandle(workflowId).query(approvalQuery);
}

/** Sends the decision as an Update: a refusal comes back at once, with the reason. */
export async function decide(client: Client, workflowId: string, decision: 'approve' | 'reject', operator: string, reason: string): Promise<ApprovalState> {
  const handle = client.workflow.getHandle(workflowId);
  // Say why locally first when we can (no round trip for the obvious cases); the workflow checks again.
  const state = await handle.query(approvalQuery);
  const why = refuseDecision(state, { operator, reason });
  if (why) throw new ConfigError(`refused: ${why}`);
  try {
    return await handle.executeUpdate(decideUpdate, { args: [{ operator, reason, decision }] });
  } catch (error) {
    throw new ConfigError(`refused: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`);
  }
}

export async function startPhysicalRestore(client: Client, config: DbopsConfig, input: PhysicalRestoreInput): Promise<WorkflowHandleWithFirstExecutionRunId> {
  findCluster(config, input.cluster);
  const parsed = PhysicalRestoreInputSchema.shape.name.safeParse(input.name);
  if (!parsed.success) throw new ConfigError(`--name ${input.name}: a folder name (lower-case letters, digits, "-", "_"), not a path`);
  if (!config.physicalRestores) throw new ConfigError('physicalRestores.dir is not set: name the folder the restored datadirs go into (on the worker\'s host)');
  return start(client, config, physicalRestoreWorkflow, runId(`restore-physical/${input.cluster}/${input.name}`), input, `Physical restore of ${input.cluster} into ${input.name}`);
}

export async function startInstanceRestore(client: Client, config: DbopsConfig, input: InstanceRestoreInput): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const cluster = findCluster(config, input.cluster);
  if (!config.restoreTargets.some((t) => t.name === input.onto)) {
    const known = config.restoreTargets.map((t) => t.name);
    throw new ConfigError(`--onto ${input.onto}: not a restore target (${known.length ? `configured: ${known.join(', ')}` : 'add it under restoreTargets in the config'})`);
  }
  for (const d of input.databases ?? []) checkName(d, '--databases');
  // Said here first; the worker decides with its own config when the approval is requested.
  if (!input.dryRun && approversFor(cluster.approvers, 'restore-instance').length === 0) {
    throw new ConfigError(`clusters.${cluster.name}.approvers: nobody may approve restore-instance; add "restore-instance: [names]" (or "*"), or use --dry-run`);
  }
  return start(client, config, instanceRestoreWorkflow, runId(`restore-instance/${input.cluster}/${input.onto}`), input, `Instance restore of ${input.cluster} onto ${input.onto}`);
}
