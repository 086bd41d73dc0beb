/**
 * Restore workflows, as the incident runbook goes:
 *   plan from the catalog (which full, which binlogs, where to stop) → restore into a NEW
 *   database (load the full, replay the binlogs, stop at the target) → verify (row counts,
 *   checksums) → for a table restore: put the tables next to the live ones and, only after
 *   a person approves, swap them in with one atomic RENAME.
 * Live data is never overwritten without an approval.
 */
import {
  CancellationScope,
  proxyActivities,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { RestoreActivities } from '../activities';
import { NON_RETRYABLE_TYPES } from '../domain/failures';
import type { z } from 'zod';
import type { ApprovalDecision } from '../domain/approval';
import { PitrInputSchema, RestoreInputSchema, TableRestoreInputSchema } from '../domain/inputs';
import type { RestorePlan } from '../domain/restorePlan';
import type { ScanReport } from '../domain/restore/replayStream';
import { describeTarget } from '../domain/restoreTarget';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { installApprovalHandlers, requestApproval, requesterOf } from './approval';
import { accept, invalid } from './boundary';

const quick = proxyActivities<RestoreActivities>({ startToCloseTimeout: '10 minutes', heartbeatTimeout: '2 minutes', retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES } });
const long = proxyActivities<RestoreActivities>({ startToCloseTimeout: '12 hours', heartbeatTimeout: '2 minutes', retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES } });

export type RestoreInput = z.input<typeof RestoreInputSchema>;
export type PitrInput = z.input<typeof PitrInputSchema>;
export type TableRestoreInput = z.input<typeof TableRestoreInputSchema>;

/** Suffixes of a table restore's names: they carry the run (its id's first 8 hex digits), so runs never collide. */
export function restoredTableNames(table: string, runId: string): { table: string; restored: string; before: string } {
  const tag = runTag(runId);
  return { table, restored: `${table}_restored_${tag}`, before: `${table}_before_${tag}` };
}

export function runTag(runId: string): string {
  return runId.replace(/-/g, '').slice(0, 8).toLowerCase();
}

function mark(cluster: string): void {
  upsertSearchAttributes([
    { key: SA_CLUSTER, value: cluster },
    { key: SA_OPERATION, value: 'restore' },
  ]);
}

async function plan(input: z.infer<typeof RestoreInputSchema>): Promise<RestorePlan & { hit?: unknown }> {
  setCurrentDetails(`planning a restore of \`${input.database}\` on \`${input.cluster}\` to ${describeTarget(input.target)}`);
  const outcome = await quick.planRestore.executeWithOptions(
    { startToCloseTimeout: '1 hour', heartbeatTimeout: '2 minutes', retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES }, summary: 'plan from the catalog' },
    [{ cluster: input.cluster, database: input.database, target: input.target }],
  );
  if (!outcome.ok) invalid(outcome.reason);
  return { ...outcome.plan, ...(outcome.hit ? { hit: outcome.hit } : {}) };
}

/**
 * Reads the window the restore would replay, before anything is written: statements on the
 * live database are rewritten to the target, anything that cannot be confined refuses the
 * whole restore here, each refusal with its binlog position and what to do.
 */
async function scan(input: { cluster: string }, p: RestorePlan, into: string): Promise<ScanReport> {
  if (p.binlogs.length === 0) return emptyScan();
  setCurrentDetails(`reading the replay window (${p.binlogs.length} binlog file(s)) before anything is written`);
  return quick.scanRestoreWindow.executeWithOptions(
    { startToCloseTimeout: '2 hours', heartbeatTimeout: '2 minutes', retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES }, summary: 'scan the replay window: rewrite, skip or refuse each statement' },
    [{ cluster: input.cluster, plan: p, into }],
  );
}

function emptyScan(): ScanReport {
  return { statements: 0, rewritten: [], skipped: [], refused: [], statementDml: 0, rowEvents: 0, definers: [], objectsCreated: [] };
}

function refuseWindow(report: ScanReport): void {
  if (report.refused.length === 0) return;
  const lines = report.refused.slice(0, 5).map((r) => `${r.file}:${r.position} \`${r.statement}\`: ${r.reason}; ${r.fix}`);
  invalid(`restore refused before writing anything: ${report.refused.length} statement(s) of the replay window cannot be kept inside the restore: ${lines.join(' | ')}${report.refused.length > 5 ? ' | …' : ''}`);
}

/** `dbops restore plan`: what a restore would use and how its window would be replayed; touches nothing. */
export async function restorePlanWorkflow(raw: RestoreInput): Promise<RestorePlan & { scan: ScanReport }> {
  const input = accept(RestoreInputSchema, raw, 'restore plan');
  mark(input.cluster);
  const p = await plan(input);
  return { ...p, scan: await scan(input, p, `${input.database}_restored`.slice(0, 64)) };
}

async function restoreInto(input: { cluster: string; database: string; timeouts?: { heartbeat?: string | undefined } | undefined }, p: RestorePlan, into: string) {
  setCurrentDetails(
    `restoring \`${input.database}\` into \`${into}\`: full ${p.full.id} + ${p.chain.length} binlog backup(s), ${p.binlogs.length} file(s), stop at ${describeTarget(p.target)}`,
  );
  const restored = await long.restoreDatabase.executeWithOptions(
    { startToCloseTimeout: '12 hours', heartbeatTimeout: input.timeouts?.heartbeat ?? '2 minutes', retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES }, summary: `load ${p.full.id}, replay ${p.binlogs.length} binlog(s) into ${into}` },
    [{ cluster: input.cluster, plan: p, into }],
  );
  setCurrentDetails(`verifying \`${into}\` (row counts, CHECKSUM TABLE)`);
  const verification = await quick.verifyDatabase.executeWithOptions(
    { startToCloseTimeout: '2 hours', retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES }, summary: 'row counts and checksums' },
    [{ cluster: input.cluster, database: into }],
  );
  return { restored, verification };
}

async function dropOnFailure(cluster: string, database: string): Promise<void> {
  await CancellationScope.nonCancellable(() => quick.dropRestoreTarget({ cluster, database }));
}

/** Point-in-time restore of one database into a NEW database on the cluster. */
export async function pointInTimeRestoreWorkflow(raw: PitrInput) {
  const input = accept(PitrInputSchema, raw, 'point-in-time restore');
  mark(input.cluster);
  const p = await plan(input);
  if ((await quick.checkRestoreTarget({ cluster: input.cluster, database: input.into })) === 'foreign') {
    invalid(`database ${input.into} already exists on ${input.cluster}; restore into a new name (--into)`);
  }
  const window = await scan(input, p, input.into);
  refuseWindow(window);
  try {
    const { restored, verification } = await restoreInto(input, p, input.into);
    setCurrentDetails(
      `restored \`${input.database}\` as \`${input.into}\` to ${describeTarget(p.target)}: reached ${restored.replay.file}:${restored.replay.position}` +
        `${restored.replay.gtid ? ` (GTID ${restored.replay.gtid})` : ''}, ${verification.length} table(s) verified`,
    );
    return {
      into: input.into,
      plan: p,
      reached: restored.replay,
      verification,
      rewrittenReferences: restored.rewrittenReferences,
      window: { rewritten: window.rewritten, skipped: window.skipped, statementDml: window.statementDml },
      definersRestored: restored.definersRestored,
      warnings: restored.warnings,
      durationMs: restored.durationMs,
      parallel: restored.parallel ?? null,
    };
  } catch (error) {
    await dropOnFailure(input.cluster, input.into);
    throw error;
  }
}

/**
 * Restores tables from the chain into new names next to the live ones
 * (`orders_restored_<run>`); with swap, and only after a second person approves, swaps them
 * into place with one atomic RENAME (the live table is kept as `orders_before_<run>`).
 *
 * The swap is crash-safe: the live tables' triggers are captured into the workflow's state
 * before anything is dropped, the restored tables are verified again just before the RENAME
 * (nobody changed them while the approval waited), and moving the triggers onto the swapped
 * tables is idempotent, so a worker killed half-way leaves every trigger in place after the
 * retry.
 */
export async function tableRestoreWorkflow(raw: TableRestoreInput) {
  installApprovalHandlers();
  const input = accept(TableRestoreInputSchema, raw, 'table restore');
  mark(input.cluster);
  const info = workflowInfo();
  const scratch = `dbops_r_${info.runId.replace(/-/g, '').slice(-12)}`;
  const renames = input.tables.map((t) => restoredTableNames(t, info.runId));
  for (const r of renames) {
    if (r.restored.length > 64) invalid(`tables: ${r.table} is too long to be restored next to itself (${r.restored} would be ${r.restored.length} characters; the limit is 64)`);
  }

  const p = await plan(input);
  const missing = input.tables.filter((t) => !p.full.tables.includes(t));
  if (missing.length > 0) invalid(`table(s) ${missing.join(', ')} not in full backup ${p.full.id} of ${input.database} (it has ${p.full.tables.join(', ')})`);
  refuseWindow(await scan(input, p, scratch));
  const requester = await requesterOf(input.requestedBy);
  const tag = runTag(info.runId);

  let restoredHere = false;
  try {
    const { restored, verification } = await restoreInto(input, p, scratch);
    await quick.moveTables({ cluster: input.cluster, scratch, database: input.database, runTag: tag, tables: input.tables });
    restoredHere = true;
    await quick.dropRestoreTarget({ cluster: input.cluster, database: scratch });
    const verified = verification.filter((v) => input.tables.includes(v.table));

    let decision: ApprovalDecision | null = null;
    let swapped = false;
    if (input.swap) {
      decision = await requestApproval({
        action: 'restore-swap',
        cluster: input.cluster,
        summary: `swap ${renames.map((r) => `${input.database}.${r.table} ⇄ ${r.restored}`).join(', ')} (restored to ${describeTarget(p.target)})`,
        requester,
      });
      if (decision.decision === 'approved') {
        setCurrentDetails(`approved by ${decision.by}: capturing the live tables' triggers, then swapping ${renames.length} table(s) with one atomic RENAME`);
        const triggers = await quick.captureTriggers({ cluster: input.cluster, database: input.database, tables: input.tables });
        await quick.swapTables({ cluster: input.cluster, database: input.database, runTag: tag, tables: input.tables, triggers, expect: verified });
        swapped = true;
      } else {
        setCurrentDetails(`${decision.decision}${decision.by ? ` by ${decision.by}` : ''}: dropping the restored tables, the live ones are untouched`);
        await quick.dropRestoredTables({ cluster: input.cluster, database: input.database, runTag: tag, tables: input.tables });
        restoredHere = false;
      }
    }
    if (!input.swap || swapped) {
      setCurrentDetails(swapped ? `swapped in: ${renames.map((r) => r.table).join(', ')} (old data kept as *_before_${tag})` : `restored next to the live tables: ${renames.map((r) => r.restored).join(', ')}`);
    }
    return {
      plan: p,
      reached: restored.replay,
      verification: verified,
      tables: renames.map((r) => ({ table: r.table, restoredAs: swapped ? r.table : restoredHere ? r.restored : null, liveKeptAs: swapped ? r.before : null })),
      swapped,
      decision,
    };
  } catch (error) {
    await CancellationScope.nonCancellable(async () => {
      await quick.dropRestoreTarget({ cluster: input.cluster, database: scratch });
      if (restoredHere) await quick.dropRestoredTables({ cluster: input.cluster, database: input.database, runTag: tag, tables: input.tables });
    });
    throw error;
  }
}
