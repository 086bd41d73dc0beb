/**
 * Archive activities. Each one opens its own connections (write account), fixes the run's
 * NOW() in the session, and is safe to retry: planning and measuring read only, creating
 * the destination is IF NOT EXISTS, and moving a range that already moved is a no-op.
 */
import { Failure } from '../domain/failures';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { createConnection, type Connection } from 'mysql2/promise';
import { findCluster } from '../config/load';
import {
  ArchiveJobSchema,
  archiveJobName,
  archiveWorkflowId,
  type ArchiveJob,
  parseDestination,
  verifyArchive,
  type ArchiveCursor,
  type ArchiveJobInput,
  type ArchivePlan,
  type ArchiveRunSpec,
  type ArchiveVerification,
  type Destination,
  type RowChecksum,
  type ThrottleDecision,
} from '../domain/archive';
import { durationSeconds } from '../domain/duration';
import { formatConfigIssues } from '../config/schema';
import { CountMismatch, decideThrottle, measureArchive, moveRangeAcross, moveRangeSameServer, permanentMoveError, sampleLoad } from '../mysql/archiveMove';
import { destinationDdl, invalidJob, planArchiveWith, preparedRun, prepareSession } from '../mysql/archivePlan';
import { toFailure } from '../mysql/errors';
import { connectionOptions, limitStatements } from '../mysql/connection';
import { restoreAccount } from '../mysql/restoreAccount';
import type { ActivityDeps } from './deps';
import { accept } from './context';
import { ArchiveRunSpecSchema, Checksum } from './schemas';
import { z } from 'zod';

export interface MoveBatchesInput {
  spec: ArchiveRunSpec;
  cursor: ArchiveCursor;
  maxBatches: number;
  /** Return to the workflow at least this often, so signals and throttles take effect. */
  maxSeconds: number;
}

/** A batch whose locked, copied and deleted counts disagree this many times in a row stops the run. */
export const MAX_COUNT_MISMATCHES = 3;

export interface MoveBatchesResult {
  cursor: ArchiveCursor;
  moved: number;
  batches: number;
  done: boolean;
  /** Set when the load check said pause or abort before a batch. */
  throttle: Exclude<ThrottleDecision, { action: 'go' }> | null;
}

function ctxWorkflowId(): string | null {
  return Context.current().info.workflowExecution?.workflowId ?? null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function createArchiveActivities(deps: ActivityDeps) {
  const { config, logger, repository, metrics, temporal } = deps;
  const connect = async (clusterName: string): Promise<Connection> => {
    const c = findCluster(config, clusterName);
    try {
      // JSON stays text: across servers it is copied, not parsed and re-serialised.
      const conn = await createConnection({ ...connectionOptions(restoreAccount(c)), jsonStrings: true });
      await limitStatements(conn, c);
      return conn;
    } catch (error) {
      throw toFailure(error, clusterName);
    }
  };
  /**
   * Source and destination connections for a job (one connection when they are the same
   * server). While it runs, the activity heartbeats (long plan and verification scans
   * stay alive); when it is cancelled or times out, the connections are destroyed so the
   * server rolls back at once instead of holding row locks for a dead attempt.
   */
  const withConnections = async <T>(
    job: { cluster: string },
    destCluster: string,
    fn: (source: Connection, dest: Connection) => Promise<T>,
    details: () => unknown = () => undefined,
  ): Promise<T> => {
    const ctx = Context.current();
    const source = await connect(job.cluster);
    let dest: Connection | null = null;
    const kill = () => {
      source.destroy();
      if (dest && dest !== source) dest.destroy();
    };
    ctx.cancellationSignal.addEventListener('abort', kill, { once: true });
    const beat = setInterval(() => ctx.heartbeat(details()), 5000);
    try {
      dest = destCluster === job.cluster ? source : await connect(destCluster);
      return await fn(source, dest);
    } catch (error) {
      throw toFailure(error, job.cluster);
    } finally {
      clearInterval(beat);
      ctx.cancellationSignal.removeEventListener('abort', kill);
      await source.end().catch(() => undefined);
      if (dest && dest !== source) await dest.end().catch(() => undefined);
    }
  };

  /** The job as the worker accepts it: parsed again, its clusters configured here. */
  const checkedJob = (raw: unknown): { job: ArchiveJob; destination: Destination } => {
    const parsed = ArchiveJobSchema.safeParse(raw);
    if (!parsed.success) throw invalidJob(formatConfigIssues(parsed.error).join('; '));
    const job = parsed.data;
    const destination = parseDestination(job.to, job);
    if (!destination) throw invalidJob(`to: ${job.to} is not a table, database.table or cluster:database.table`);
    for (const name of [job.cluster, destination.cluster, ...job.throttle.replicas]) {
      try {
        findCluster(config, name);
      } catch (error) {
        throw invalidJob((error as Error).message);
      }
    }
    return { job, destination };
  };

  /** Another run of the same job still going (a schedule's and an operator's, say). */
  const otherRun = async (job: ArchiveJob): Promise<string | null> => {
    const self = ctxWorkflowId();
    const prefix = archiveWorkflowId(job);
    return temporal.withClient(async (client) => {
      for await (const wf of client.workflow.list({ query: `DbopsOperation = 'archive' AND DbopsCluster = '${job.cluster}' AND ExecutionStatus = 'Running'` })) {
        if (wf.workflowId !== self && (wf.workflowId === prefix || wf.workflowId.startsWith(`${prefix}/`)) && !wf.workflowId.includes('/plan-')) return wf.workflowId;
      }
      return null;
    });
  };

  return {
    /** Validates the job and reads everything a run needs; refuses bad jobs before any row moves. */
    async planArchive(raw: { job: ArchiveJobInput; asOf: number; dryRun?: boolean }): Promise<ArchivePlan & { warnings: string[] }> {
      const input = accept(z.strictObject({ job: z.unknown(), asOf: z.number().int().positive(), dryRun: z.boolean().optional() }), raw, 'planArchive');
      const { job, destination } = checkedJob(input.job);
      if (!input.dryRun) {
        const running = await otherRun(job);
        if (running) throw ApplicationFailure.nonRetryable(`archive job ${archiveJobName(job)} on ${job.cluster} is already running as ${running}; one run per job at a time`, Failure.ClusterBusy);
      }
      const plan = await withConnections(job, destination.cluster, async (source, dest) => {
        if (dest !== source) await dest.query(`SET SESSION timestamp = ${input.asOf}`);
        return planArchiveWith({ source, dest, job, destination, asOf: input.asOf });
      });
      logger.info({ cluster: job.cluster, job: archiveJobName(job), rows: plan.planned.rows, keyMin: plan.keyMin, keyMax: plan.keyMax }, 'archive planned');
      return plan;
    },

    /** CREATE TABLE IF NOT EXISTS … (LIKE the source, or its DDL on another server), derived again here. */
    async ensureArchiveDestination(raw: { spec: ArchiveRunSpec }): Promise<void> {
      const input = accept(z.strictObject({ spec: ArchiveRunSpecSchema }), raw, 'ensureArchiveDestination');
      const { job, destination } = checkedJob(input.spec.job);
      await withConnections(job, destination.cluster, async (source, dest) => {
        const ddl = await destinationDdl(source, dest, job, destination);
        if (ddl) await dest.query(ddl);
      });
    },

    /**
     * Moves up to maxBatches key ranges (or for maxSeconds), checking the load before each.
     * Heartbeats the cursor; a retry resumes from the last heartbeat (and a range that
     * committed after it is found empty, so it moves nothing twice). A batch whose counts
     * disagree is rolled back and taken again; the same disagreement several times in a row
     * (a predicate that does not select the same rows twice) stops the run.
     */
    async moveArchiveBatches(raw: MoveBatchesInput): Promise<MoveBatchesResult> {
      const input = accept(
        z.strictObject({ spec: ArchiveRunSpecSchema, cursor: z.strictObject({ after: z.string().max(200).nullable() }), maxBatches: z.number().int().positive(), maxSeconds: z.number().positive() }),
        raw,
        'moveArchiveBatches',
      );
      const ctx = Context.current();
      const { job, destination } = checkedJob(input.spec.job);
      const resumed = ctx.info.heartbeatDetails as { cursor?: ArchiveCursor; mismatches?: number } | undefined;
      let cursor = resumed?.cursor ?? input.cursor;
      let mismatches = resumed?.mismatches ?? 0;
      let moved = 0;
      let batches = 0;
      let lockConflicts = 0;
      const started = Date.now();
      const sleepMs = durationSeconds(job.throttle.sleep) * 1000;
      const replicas = job.throttle.replicas.map((cluster) => ({ cluster, conn: () => connect(cluster) }));
      return withConnections(job, destination.cluster, async (source, dest) => {
        const plan = await preparedRun(source, { ...input.spec, job }, destination);
        await prepareSession(source, plan);
        if (dest !== source) await prepareSession(dest, plan);
        while (batches < input.maxBatches && (batches === 0 || Date.now() - started < input.maxSeconds * 1000)) {
          const decision = decideThrottle(await sampleLoad(source, replicas), job);
          if (decision.action !== 'go') return { cursor, moved, batches, done: false, throttle: decision };
          let outcome;
          try {
            outcome = plan.sameServer ? await moveRangeSameServer(source, plan, cursor) : await moveRangeAcross(source, dest, plan, cursor);
          } catch (error) {
            const permanent = permanentMoveError(error, job);
            if (permanent) throw permanent;
            if (error instanceof CountMismatch) {
              mismatches += 1;
              ctx.heartbeat({ cursor, moved, batches, mismatches });
              if (mismatches >= MAX_COUNT_MISMATCHES) {
                throw ApplicationFailure.nonRetryable(
                  `archive of ${job.cluster}:${job.database}.${job.table} stopped: ${error.message}, ${mismatches} times in a row; the predicate does not select the same rows twice in one transaction (is it deterministic?); nothing of the failed batch was committed`,
                  Failure.ArchiveCountMismatch,
                );
              }
              logger.warn({ cluster: job.cluster, cursor, mismatches, err: error }, 'archive batch counts disagreed; rolled back, taking it again');
              continue;
            }
            // A deadlock or lock wait with the application's own transactions: the batch was
            // rolled back; take it again after a breath (the activity's retry covers the rest).
            const errno = (error as { errno?: number }).errno;
            if ((errno === 1213 || errno === 1205) && ++lockConflicts <= 5) {
              logger.warn({ cluster: job.cluster, errno, cursor }, 'archive batch hit a lock conflict; retrying it');
              await sleep(200 * lockConflicts);
              continue;
            }
            throw error;
          }
          lockConflicts = 0;
          mismatches = 0;
          if (outcome.done) return { cursor, moved, batches, done: true, throttle: null };
          cursor = outcome.cursor;
          moved += outcome.moved;
          metrics.archivedRows.labels(job.cluster, job.database, job.table).inc(outcome.moved);
          batches++;
          ctx.heartbeat({ cursor, moved, batches, mismatches });
          if (ctx.cancellationSignal.aborted) break;
          if (sleepMs > 0) await sleep(sleepMs);
        }
        return { cursor, moved, batches, done: false, throttle: null };
      }, () => ({ cursor, moved, batches, mismatches }));
    },

    /** Recomputes what moved from the tables themselves (not from batch reports). */
    async verifyArchive(raw: { spec: ArchiveRunSpec; planned: RowChecksum; destBefore: RowChecksum; expectComplete: boolean }): Promise<ArchiveVerification> {
      const input = accept(z.strictObject({ spec: ArchiveRunSpecSchema, planned: Checksum, destBefore: Checksum, expectComplete: z.boolean() }), raw, 'verifyArchive');
      const { job, destination } = checkedJob(input.spec.job);
      return withConnections(job, destination.cluster, async (source, dest) => {
        const plan = await preparedRun(source, { ...input.spec, job }, destination);
        await prepareSession(source, plan);
        if (dest !== source) await prepareSession(dest, plan);
        const measured = await measureArchive(source, dest, plan);
        return verifyArchive({ planned: input.planned, destBefore: input.destBefore }, measured.destAfter, measured.remaining, input.expectComplete);
      });
    },

    /** Keeps the run's report next to the backups: `<cluster>/archives/<job>/<run>.json` (names validated before any path is built). */
    async storeArchiveReport(raw: { cluster: string; job: string; runKey: string; report: unknown }): Promise<string> {
      const input = accept(z.strictObject({ cluster: z.string(), job: z.string(), runKey: z.string(), report: z.unknown() }), raw, 'storeArchiveReport');
      findCluster(config, input.cluster);
      if (!/^[a-z0-9][a-z0-9_.-]{0,62}$/.test(input.job) || input.job.includes('..')) throw invalidJob(`job: ${JSON.stringify(input.job)} is not a job name`);
      if (!/^\d{8}T\d{6}Z$/.test(input.runKey)) throw invalidJob(`runKey: ${JSON.stringify(input.runKey)} is not a UTC time`);
      return repository.catalog.storeArchiveReport(input.cluster, input.job, input.runKey, input.report);
    },
  };
}

export type ArchiveActivities = ReturnType<typeof createArchiveActivities>;

