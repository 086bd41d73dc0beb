/**
 * DR drill activities: plan the latest restorable point, bring up a private throwaway
 * server of the backup's product, restore into it, check it (as a read-only account, with
 * the worker's own queries), tear it down, file the report.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { DrillReportSchema, drillMarkdown, DRILL_ID_PATTERN, type DrillReport } from '../domain/drill';
import { Failure } from '../domain/failures';
import { BackupIdSchema, ProductSchema, type Product } from '../domain/manifest';
import { quoteIdentifier } from '../domain/identifiers';
import { formatBytes } from '../domain/naming';
import { planRestore, type RestorePlan } from '../domain/restorePlan';
import { withConnection } from '../mysql/connection';
import { countObjects, provisionSandbox, redactedError, sandboxCluster, sandboxDir, teardownSandbox, type DrillSandbox } from '../mysql/drillServer';
import { toFailure } from '../mysql/errors';
import { replayIntoRestoredInstance, restoreDatabase, type RestoreDatabaseResult } from '../mysql/restore';
import { physicalSourceOf, restorePhysicalFiles, type PhysicalSource } from '../mysql/physicalRestore';
import { PhysicalFormatSchema, PhysicalLayoutSchema } from '../domain/physical';
import { mysqlUnavailableReason } from '../mysql/servers/mysql';
import { verifyDatabase, type TableVerification } from '../mysql/verify';
import { readChainState } from '../repository';
import { BinlogArchive } from '../repository/binlogArchive';
import { accept, clusterOf, currentRun, restoreHeartbeats } from './context';
import type { ActivityDeps } from './deps';
import { cluster, DrillSandboxSchema, identifier, RestorePlanSchema } from './schemas';

const drillId = z.string().regex(DRILL_ID_PATTERN, 'a drill id such as drill-20261122T140307Z');

export interface DrillPlan {
  /** The product of the drilled full backup: the throwaway server must be the same. */
  product: Product;
  plans: RestorePlan[];
  rpoSeconds: number | null;
  expect: Record<string, Array<{ table: string; rows: number }>>;
  objects: { routines: number; triggers: number; events: number; views: number } | null;
  /** The drilled full is physical: the throwaway server starts on its files (then each database replays). */
  physical?: PhysicalSource | null;
  /** Why that full (physical or logical). */
  why?: string;
}

export const PhysicalSourceSchema = z.strictObject({
  fullId: BackupIdSchema,
  fullPath: RestorePlanSchema.shape.full.shape.path,
  format: PhysicalFormatSchema,
  artifact: PhysicalLayoutSchema.shape.artifact,
  rawSha256: z.string().regex(/^[0-9a-f]{64}$/),
  rawSize: z.number().int().nonnegative(),
  deltas: RestorePlanSchema.shape.full.shape.physical.unwrap().shape.deltas,
});

export function createDrillActivities(deps: ActivityDeps) {
  const { config, repository } = deps;

  return {
    /** The latest restorable point of every database in the newest full, and how old it is (RPO). */
    async planDrill(raw: { cluster: string }): Promise<DrillPlan> {
      const c = clusterOf(config, accept(z.strictObject({ cluster }), raw, 'planDrill').cluster);
      const backups = await repository.reader().list(c.name);
      const fulls = backups.filter((b) => b.manifest.type === 'full');
      const latest = fulls[fulls.length - 1]?.manifest;
      if (!latest) throw ApplicationFailure.nonRetryable(`cluster ${c.name}: no full backup to drill with`, Failure.InvalidInput);
      const chainState = await readChainState(repository.storage, c.name);
      const archive = await new BinlogArchive(repository.storage, c.name).assemble();
      const plans: RestorePlan[] = [];
      for (const database of latest.databases) {
        const outcome = planRestore({ cluster: c.name, database, target: { kind: 'latest' }, backups, chainState, archive, now: new Date(), site: 'own-server' });
        if (!outcome.ok) throw ApplicationFailure.nonRetryable(outcome.reason, Failure.InvalidInput);
        plans.push(outcome.plan);
      }
      // A physical full is one server for every database: they must all start from it.
      const first = plans[0]?.full;
      if (first?.physical && plans.some((p) => p.full.id !== first.id)) {
        throw ApplicationFailure.nonRetryable(`the databases of ${c.name} start from different fulls (${[...new Set(plans.map((p) => p.full.id))].join(', ')}); a drill from a physical full needs them all in it`, Failure.InvalidInput);
      }
      const physical = first ? physicalSourceOf(first) : null;
      const newest = plans[0]?.window.to ?? null;
      const expect = Object.fromEntries(latest.databases.map((d) => [d, latest.tables.filter((t) => t.database === d).map((t) => ({ table: t.table, rows: t.rows }))]));
      const objects = { routines: latest.objects.routines, triggers: latest.objects.triggers, events: latest.objects.events, views: latest.objects.views.length };
      return {
        product: latest.server.product,
        plans,
        rpoSeconds: newest ? Math.max(0, Math.round((Date.now() - Date.parse(newest)) / 1000)) : null,
        expect: physical ? {} : expect,
        objects,
        physical,
        ...(plans[0]?.why ? { why: plans[0].why } : {}),
      };
    },

    /** A private server of the backup's product; heartbeats while it initialises and starts (MySQL's first start takes a while). */
    async provisionSandbox(raw: { drillId: string; product: Product; physical?: PhysicalSource | null }): Promise<DrillSandbox> {
      // A drill planned before drills followed the backup's product names none: those ran on MariaDB.
      const input = accept(z.strictObject({ drillId, product: ProductSchema.default('mariadb'), physical: PhysicalSourceSchema.nullish() }), raw, 'provisionSandbox');
      const unavailable = input.product === 'mysql' ? mysqlUnavailableReason() : null;
      if (unavailable) throw ApplicationFailure.nonRetryable(`a drill of a MySQL backup restores into a throwaway MySQL server on the worker; ${unavailable}`, Failure.Config);
      const ctx = Context.current();
      let progress: { phase: string; bytes: number } = { phase: 'starting', bytes: 0 };
      const beat = setInterval(() => ctx.heartbeat({ ...progress, text: `${progress.phase}: ${formatBytes(progress.bytes)}` }), 10_000);
      const source = input.physical;
      const fill = source
        ? async (datadir: string) => {
            const r = await restorePhysicalFiles({ source, storage: repository.reader().storage, datadir, onProgress: (p) => (progress = p), signal: ctx.cancellationSignal });
            deps.logger.info({ drillId: input.drillId, full: source.fullId, rawBytes: r.rawBytes, durationMs: r.durationMs }, 'physical full restored into the drill server');
          }
        : undefined;
      try {
        return await provisionSandbox(input.drillId, 900 + Math.floor(Math.random() * 99), currentRun(), input.product, fill);
      } catch (error) {
        throw toFailure(error, input.drillId);
      } finally {
        clearInterval(beat);
      }
    },

    async restoreIntoSandbox(raw: { cluster: string; sandbox: DrillSandbox; plan: RestorePlan; expectRows: Array<{ table: string; rows: number }> }): Promise<RestoreDatabaseResult> {
      const input = accept(
        z.strictObject({ cluster, sandbox: DrillSandboxSchema, plan: RestorePlanSchema, expectRows: z.array(z.strictObject({ table: z.string().max(64), rows: z.number().int().nonnegative() })) }),
        raw,
        'restoreIntoSandbox',
      );
      const plan = input.plan as RestorePlan;
      const c = clusterOf(config, input.cluster);
      if (input.sandbox.product !== plan.full.product) {
        throw ApplicationFailure.nonRetryable(`the drill server is ${input.sandbox.product}, the backup ${plan.full.id} is ${plan.full.product}'s: a backup is restored into a server of its own product`, Failure.InvalidInput);
      }
      const ctx = Context.current();
      const beats = restoreHeartbeats((p) => `${p.phase}: ${formatBytes(p.bytes)}`);
      if (plan.full.physical) {
        // The database came with the server's files; a second replay over a first one's part would apply it twice.
        if (ctx.info.attempt > 1) {
          throw ApplicationFailure.nonRetryable(`the replay into the drill server started from physical full ${plan.full.id} was interrupted; it cannot resume in place: run the drill again`, Failure.ReplayError);
        }
        try {
          return await replayIntoRestoredInstance({
            cluster: sandboxCluster(input.sandbox, c),
            product: plan.full.product,
            storage: repository.storage,
            backups: repository.reader().storage,
            plan,
            marker: currentRun().workflowId,
            scratch: true,
            ...beats,
            signal: ctx.cancellationSignal,
          });
        } catch (error) {
          throw toFailure(error, c.name);
        }
      }
      try {
        return await restoreDatabase({
          cluster: sandboxCluster(input.sandbox, c),
          product: plan.full.product,
          storage: repository.storage,
          backups: repository.reader().storage,
          plan,
          into: plan.database,
          marker: currentRun().workflowId,
          confine: false,
          scratch: true,
          expectRows: input.expectRows,
          ...beats,
          signal: ctx.cancellationSignal,
        });
      } catch (error) {
        throw toFailure(error, c.name);
      }
    },

    async checkSandbox(raw: { cluster: string; sandbox: DrillSandbox; databases: string[] }) {
      const input = accept(z.strictObject({ cluster, sandbox: DrillSandboxSchema, databases: z.array(identifier) }), raw, 'checkSandbox');
      const sc = sandboxCluster(input.sandbox, clusterOf(config, input.cluster));
      const tables: Record<string, TableVerification[]> = {};
      for (const d of input.databases) tables[d] = await verifyDatabase(sc, d);
      return { tables, objects: await countObjects(sc, input.databases) };
    },

    /**
     * The configured read-only queries (drills.sampleQueries, or failoverChecks), each in a
     * read-only transaction as a read-only account of the restored server. A failed query is
     * reported by its error number only: the message could carry data.
     */
    async runSampleQueries(raw: { cluster: string; sandbox: DrillSandbox; kind: 'sample' | 'failover' }) {
      const input = accept(z.strictObject({ cluster, sandbox: DrillSandboxSchema, kind: z.enum(['sample', 'failover']) }), raw, 'runSampleQueries');
      const sc = sandboxCluster(input.sandbox, clusterOf(config, input.cluster), 'check');
      const queries = input.kind === 'sample' ? config.drills.sampleQueries : config.drills.failoverChecks;
      const answers: Array<{ database: string; sql: string; minRows: number; rows: number; error: string | null }> = [];
      for (const q of queries) {
        try {
          const rows = await withConnection(
            sc,
            async (conn) => {
              await conn.query(`USE ${quoteIdentifier(q.database)}`);
              await conn.query('START TRANSACTION READ ONLY');
              try {
                const [result] = await conn.query({ sql: q.sql, timeout: 60_000 });
                return Array.isArray(result) ? result.length : 0;
              } finally {
                await conn.query('ROLLBACK');
              }
            },
            { rawErrors: true },
          );
          answers.push({ ...q, rows, error: null });
        } catch (error) {
          answers.push({ ...q, rows: 0, error: redactedError(error) });
        }
      }
      return answers;
    },

    async teardownSandbox(raw: { drillId: string }): Promise<{ stopped: boolean }> {
      const input = accept(z.strictObject({ drillId }), raw, 'teardownSandbox');
      return teardownSandbox(sandboxDir(input.drillId));
    },

    async storeDrillReport(raw: { report: DrillReport }): Promise<{ json: string; markdown: string }> {
      const input = accept(z.strictObject({ report: DrillReportSchema }), raw, 'storeDrillReport');
      clusterOf(config, input.report.cluster);
      return repository.catalog.storeDrillReport(input.report, drillMarkdown(input.report));
    },
  };
}

export type DrillActivities = ReturnType<typeof createDrillActivities>;
