/**
 * Index changes, one thing per activity: plan (the table, the disk, the server's online
 * answer, what is in the way, the verify queries' plans before), back up the database's
 * (the schema backup is a child workflow), run the change watched (also the rollback: the same change the other way),
 * explain the verify queries after, file the report. The run names the cluster, the
 * database and the change by names; every statement is built here from them and from the
 * worker's config.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { z } from 'zod';
import { findCluster } from '../config/load';
import { durationSeconds } from '../domain/duration';
import { Failure } from '../domain/failures';
import { SQL_IDENTIFIER_PATTERN, SQL_IDENTIFIER_RULE, SYSTEM_DATABASES } from '../domain/identifiers';
import {
  bytesNeeded,
  changeStatement,
  describeChange,
  IndexChangeSchema,
  preflightRefusals,
  preflightWarnings,
  rollbackOf,
  SchemaChangeReportSchema,
  VerifyQueriesSchema,
  type Blocker,
  type IndexChange,
  type TableFacts,
  type VerifyPlan,
} from '../domain/schemaChange';
import { connectionOptions, withConnection } from '../mysql/connection';
import { toFailure } from '../mysql/errors';
import { opsAccount } from '../mysql/processlist';
import { explainVerifyQueries, probeOnline, readBlockers, readTableFacts, runIndexChange, serverFreeSpace, type BuildOutcome, type BuildProgress } from '../mysql/schemaChange';
import { accept, clusterOf } from './context';
import type { ActivityDeps } from './deps';
import { cluster } from './schemas';

const database = z
  .string()
  .regex(SQL_IDENTIFIER_PATTERN, SQL_IDENTIFIER_RULE)
  .refine((d) => !SYSTEM_DATABASES.includes(d.toLowerCase()), 'a system database is not changed by dbops');
const PlanInput = z.strictObject({ cluster, database, change: IndexChangeSchema, verifyQueries: VerifyQueriesSchema });
const ChangeInput = z.strictObject({ cluster, database, change: IndexChangeSchema });
const ExplainInput = z.strictObject({ cluster, database, change: IndexChangeSchema, verifyQueries: VerifyQueriesSchema });

export interface SchemaChangePlan {
  observedAt: string;
  description: string;
  /** The statement the worker will run, built from names (for the approver and the UI). */
  statement: string;
  rollback: string | null;
  table: Omit<TableFacts, 'columns' | 'indexes'> | null;
  neededBytes: number | null;
  freeBytes: number | null;
  freeOn: string | null;
  onlineRefusal: string | null;
  blockers: Blocker[];
  refusals: string[];
  warnings: string[];
  before: VerifyPlan[];
  /** After a verified change the run stays open this long for a rollback request. */
  watchForSeconds: number;
}

/** One line for the CLI's progress and the UI's pending activity: "building: 42 % (2/3), Threads_running 5, replica r1 0 s behind". */
export function progressText(p: BuildProgress): string {
  const parts: string[] = [p.phase === 'building' && p.percent !== null ? `building: ${p.percent.toFixed(0)} %${p.stage ? ` (${p.stage})` : ''}` : p.phase];
  if (p.why) parts[0] += `: ${p.why}`;
  if (p.sample) {
    parts.push(`Threads_running ${p.sample.threadsRunning}`);
    for (const r of p.sample.replicas) parts.push(r.lagSeconds === null ? `replica ${r.cluster} not replicating` : `replica ${r.cluster} ${r.lagSeconds} s behind`);
    if (p.sample.mdlWaiters) parts.push(`${p.sample.mdlWaiters} queued on a metadata lock`);
  }
  if (p.lockTries > 1) parts.push(`lock try ${p.lockTries}`);
  return `${parts.join(', ')} (${p.seconds} s)`;
}

export function createSchemaChangeActivities(deps: ActivityDeps) {
  const { config, logger, repository } = deps;
  const replicasOf = (name: string) =>
    clusterOf(config, name).schemaChange.replicas.map((r) => ({ cluster: r, conn: () => createConnection(connectionOptions(findCluster(config, r))) }));
  return {
    /** Reads everything the approver needs to decide; changes nothing (the online probe is an empty copy of the table, dropped at once). */
    async planSchemaChange(raw: z.input<typeof PlanInput>): Promise<SchemaChangePlan> {
      const input = accept(PlanInput, raw, 'planSchemaChange');
      const c = clusterOf(config, input.cluster);
      const sc = c.schemaChange;
      const rollback = rollbackOf(input.change);
      const plan = await withConnection(opsAccount(c), async (conn) => {
        const [db] = (await conn.query<RowDataPacket[]>('SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [input.database]))[0];
        if (!db) throw ApplicationFailure.nonRetryable(`database ${input.database} does not exist on ${c.name} (--database)`, Failure.InvalidInput);
        // The probe's DDL waits for the table's metadata lock no longer than the change itself would.
        await conn.query('SET SESSION lock_wait_timeout = ?', [Math.max(1, Math.round(durationSeconds(sc.lockWait)))]);
        const table = await readTableFacts(conn, input.database, input.change.table);
        const disk = await serverFreeSpace(conn, c);
        const onlineRefusal = table && table.engine?.toLowerCase() === 'innodb' && !preflightRefusals(input.database, input.change, { table, freeBytes: null, freeOn: null, onlineRefusal: null, blockers: [] }, { headroomBytes: 0 }).length
          ? await probeOnline(conn, input.database, input.change, Context.current().info.workflowExecution?.workflowId ?? 'none')
          : null;
        const blockers = table ? await readBlockers(conn, input.database, input.change.table, durationSeconds(sc.longTransaction), [conn.threadId]) : [];
        const preflight = { table, freeBytes: disk.freeBytes, freeOn: disk.freeOn, onlineRefusal, blockers };
        return {
          table,
          disk,
          onlineRefusal,
          blockers,
          refusals: preflightRefusals(input.database, input.change, preflight, { headroomBytes: sc.diskHeadroomGiB * 1024 ** 3 }),
          warnings: preflightWarnings(preflight),
        };
      });
      let before: VerifyPlan[] = [];
      if (plan.table && input.verifyQueries.length) {
        before = await withConnection(c, (conn) => explainVerifyQueries(conn, input.database, input.change.table, input.change.index, input.verifyQueries));
      }
      const t = plan.table;
      return {
        observedAt: new Date().toISOString(),
        description: describeChange(input.database, input.change),
        statement: changeStatement(input.database, input.change),
        rollback: rollback ? changeStatement(input.database, rollback) : null,
        table: t ? { engine: t.engine, rowsEstimate: t.rowsEstimate, dataBytes: t.dataBytes, indexBytes: t.indexBytes } : null,
        neededBytes: t ? bytesNeeded(t) : null,
        freeBytes: plan.disk.freeBytes,
        freeOn: plan.disk.freeOn,
        onlineRefusal: plan.onlineRefusal,
        blockers: plan.blockers,
        refusals: plan.refusals,
        warnings: plan.warnings,
        before,
        watchForSeconds: durationSeconds(sc.watchFor),
      };
    },

    /**
     * Runs one index change, watched (the rollback is the same activity with the drop).
     * Heartbeats its progress; cancelled, it stops the statement on the server first.
     */
    async applySchemaChange(raw: z.input<typeof ChangeInput>): Promise<BuildOutcome> {
      const input = accept(ChangeInput, raw, 'applySchemaChange');
      const c = clusterOf(config, input.cluster);
      const ctx = Context.current();
      const onProgress = (p: BuildProgress) => ctx.heartbeat({ ...p, text: progressText(p) });
      try {
        const outcome = await runIndexChange({ cluster: c, account: opsAccount(c), database: input.database, change: input.change, config: c.schemaChange, replicas: replicasOf(c.name), onProgress, signal: ctx.cancellationSignal, firstAttempt: ctx.info.attempt === 1 });
        logger.info({ cluster: c.name, database: input.database, change: describeChange(input.database, input.change), outcome: outcome.outcome, seconds: outcome.seconds, why: outcome.why }, 'schema change ran');
        return outcome;
      } catch (error) {
        if (ctx.cancellationSignal.aborted) throw error;
        throw toFailure(error, c.name);
      }
    },

    /** EXPLAIN FORMAT=JSON of the verify queries, with the cluster's read-only account, in a read-only transaction. */
    async explainSchemaChange(raw: z.input<typeof ExplainInput>): Promise<VerifyPlan[]> {
      const input = accept(ExplainInput, raw, 'explainSchemaChange');
      const c = clusterOf(config, input.cluster);
      if (!input.verifyQueries.length) return [];
      return withConnection(c, (conn) => explainVerifyQueries(conn, input.database, input.change.table, input.change.index, input.verifyQueries));
    },

    async storeSchemaChangeReport(raw: { report: unknown }): Promise<{ key: string }> {
      const input = accept(z.strictObject({ report: SchemaChangeReportSchema }), raw, 'storeSchemaChangeReport');
      clusterOf(config, input.report.cluster);
      return { key: await repository.catalog.storeSchemaChangeReport(input.report.cluster, input.report.runKey, input.report) };
    },
  };
}

export type SchemaChangeActivities = ReturnType<typeof createSchemaChangeActivities>;
export type { IndexChange };
