/**
 * Restore activities: plan from the catalog, read the replay window before anything is
 * written, restore into a new database (confined to it), verify, and for a table restore:
 * move the restored tables next to the live ones, capture the live tables' triggers, swap
 * (crash-safe) and clean up only what this run made.
 */
import { Context } from '@temporalio/activity';
import { z } from 'zod';
import { quoteIdentifier } from '../domain/identifiers';
import { formatBytes } from '../domain/naming';
import type { ScanReport } from '../domain/restore/replayStream';
import { planRestore, type PlanOutcome, type ResolvedTarget, type RestorePlan } from '../domain/restorePlan';
import { RestoreTargetSchema } from '../domain/inputs';
import { withConnection } from '../mysql/connection';
import { toFailure } from '../mysql/errors';
import { findStatement, scanReplayWindow, type StatementHit } from '../mysql/binlogRead';
import { restoreDatabase, targetState, type RestoreDatabaseResult } from '../mysql/restore';
import { restoreAccount } from '../mysql/restoreAccount';
import { verifyDatabase, type TableVerification } from '../mysql/verify';
import { captureTriggers, dropRestoredTables, moveRestoredTables, swapTables, type CapturedTrigger } from '../mysql/tableSwap';
import { readChainState, releaseRestoreClaim } from '../repository';
import { BinlogArchive } from '../repository/binlogArchive';
import { accept, clusterOf, currentRun, restoreHeartbeats } from './context';
import type { ActivityDeps } from './deps';
import { CapturedTriggerSchema, cluster, identifier, RestorePlanSchema, TableVerificationSchema } from './schemas';

const TableSet = z.strictObject({ cluster, database: identifier, runTag: z.string().regex(/^[0-9a-f]{8}$/), tables: z.array(identifier).min(1).max(32) });

export function createRestoreActivities(deps: ActivityDeps) {
  const { config, logger, repository } = deps;
  const plan = (raw: unknown) => accept(RestorePlanSchema, raw, 'plan') as RestorePlan;

  return {
    /**
     * Plans a restore from the catalog (touches no server). A before-matching target is
     * resolved to the start of the offending transaction by decoding the binlogs.
     */
    async planRestore(raw: { cluster: string; database: string; target: unknown }): Promise<PlanOutcome & { hit?: StatementHit }> {
      const input = accept(z.strictObject({ cluster, database: identifier, target: RestoreTargetSchema }), raw, 'planRestore');
      const c = clusterOf(config, input.cluster);
      const { backups, unusable } = await repository.reader().scan(c.name);
      const chainState = await readChainState(repository.storage, c.name);
      const archive = await new BinlogArchive(repository.storage, c.name).assemble();
      const planFor = (target: ResolvedTarget): PlanOutcome => {
        const outcome = planRestore({ cluster: c.name, database: input.database, target, backups, chainState, archive, now: new Date() });
        if (!outcome.ok) {
          if (unusable.length === 0) return outcome;
          return { ...outcome, reason: `${outcome.reason}; and ${unusable.length} backup(s) cannot be read, so the chain may be broken: ${unusable.map((u) => u.problem).join('; ')}` };
        }
        // A damaged or altered backup taken since the chosen full may be a link of the
        // chain: restoring around it would silently stop short. Refuse, and say which.
        const since = outcome.plan.full.id.slice(0, 19);
        const suspect = unusable.filter((u) => (u.key.split('/').pop() ?? '').slice(0, 19) >= since);
        if (suspect.length === 0) return outcome;
        return { ok: false, reason: `backups since the full ${outcome.plan.full.id} cannot be read, so the chain may be broken: ${suspect.map((u) => u.problem).join('; ')}`, window: outcome.plan.window };
      };
      if (input.target.kind !== 'beforeMatching') return planFor(input.target);
      const everything = planFor({ kind: 'latest' });
      if (!everything.ok) return everything;
      const ctx = Context.current();
      ctx.heartbeat('decoding binlogs');
      const hit = await findStatement(c, everything.plan.full.product, repository.reader().storage, everything.plan, input.target.pattern, input.target.after, () => ctx.heartbeat('decoding binlogs'));
      if (!hit) {
        return {
          ok: false,
          reason: `no statement on ${input.database} matches /${input.target.pattern}/i${input.target.after ? ` after ${input.target.after}` : ''} in the backed-up binlogs`,
          window: everything.plan.window,
        };
      }
      return { ...planFor({ kind: 'position', file: hit.file, position: hit.position }), hit };
    },

    /** Reads the replay window before anything is written: what will be rewritten, skipped, or refused, with binlog positions. Read-only. */
    async scanRestoreWindow(raw: { cluster: string; plan: RestorePlan; into: string }): Promise<ScanReport> {
      const input = accept(z.strictObject({ cluster, plan: z.unknown(), into: identifier }), raw, 'scanRestoreWindow');
      const p = plan(input.plan);
      const c = clusterOf(config, input.cluster);
      const ctx = Context.current();
      try {
        return await scanReplayWindow({ cluster: c, product: p.full.product, storage: repository.reader().storage, plan: p, into: input.into, onProgress: () => ctx.heartbeat('reading the replay window') });
      } catch (error) {
        throw toFailure(error, c.name);
      }
    },

    /** Is a restore target free? 'ours' means this run created it (a retry). */
    async checkRestoreTarget(raw: { cluster: string; database: string }): Promise<'absent' | 'ours' | 'foreign'> {
      const input = accept(z.strictObject({ cluster, database: identifier }), raw, 'checkRestoreTarget');
      return targetState(clusterOf(config, input.cluster), input.database, { storage: repository.storage, run: currentRun().workflowId });
    },

    /** Loads the full and replays the binlogs into a new database, confined to it; a retry starts over. */
    async restoreDatabase(raw: { cluster: string; plan: RestorePlan; into: string }): Promise<RestoreDatabaseResult> {
      const input = accept(z.strictObject({ cluster, plan: z.unknown(), into: identifier }), raw, 'restoreDatabase');
      const p = plan(input.plan);
      const c = clusterOf(config, input.cluster);
      const ctx = Context.current();
      const beats = restoreHeartbeats((progress) => `${progress.phase}: ${formatBytes(progress.bytes)}`);
      try {
        return await restoreDatabase({
          cluster: c,
          product: p.full.product,
          storage: repository.storage,
          backups: repository.reader().storage,
          plan: p,
          into: input.into,
          marker: currentRun().workflowId,
          confine: true,
          ...beats,
          signal: ctx.cancellationSignal,
        });
      } catch (error) {
        logger.error({ cluster: c.name, into: input.into, err: error }, 'restore failed');
        throw toFailure(error, c.name);
      }
    },

    async verifyDatabase(raw: { cluster: string; database: string }): Promise<TableVerification[]> {
      const input = accept(z.strictObject({ cluster, database: identifier }), raw, 'verifyDatabase');
      return verifyDatabase(clusterOf(config, input.cluster), input.database);
    },

    /** Moves the restored tables of a run from its scratch database next to the live ones (one RENAME); idempotent. */
    async moveTables(raw: { cluster: string; scratch: string; database: string; runTag: string; tables: string[] }): Promise<void> {
      const input = accept(TableSet.extend({ scratch: z.string().regex(/^dbops_r_[0-9a-f]{12}$/) }), raw, 'moveTables');
      await withConnection(restoreAccount(clusterOf(config, input.cluster)), (conn) => moveRestoredTables(conn, input.scratch, input.database, input.runTag, input.tables));
    },

    /** The live tables' triggers, kept in the workflow's state before a swap drops anything. */
    async captureTriggers(raw: { cluster: string; database: string; tables: string[] }): Promise<CapturedTrigger[]> {
      const input = accept(z.strictObject({ cluster, database: identifier, tables: z.array(identifier).min(1).max(32) }), raw, 'captureTriggers');
      return withConnection(restoreAccount(clusterOf(config, input.cluster)), (conn) => captureTriggers(conn, input.database, input.tables));
    },

    /** Verifies the restored tables again, swaps them in with one RENAME and moves the triggers; idempotent (see mysql/tableSwap). */
    async swapTables(raw: { cluster: string; database: string; runTag: string; tables: string[]; triggers: CapturedTrigger[]; expect: TableVerification[] }) {
      const input = accept(TableSet.extend({ triggers: z.array(CapturedTriggerSchema).max(500), expect: z.array(TableVerificationSchema) }), raw, 'swapTables');
      return withConnection(restoreAccount(clusterOf(config, input.cluster)), (conn) => swapTables(conn, input));
    },

    /** Drops a restore target this run created (marker checked); never anything else. */
    async dropRestoreTarget(raw: { cluster: string; database: string }): Promise<boolean> {
      const input = accept(z.strictObject({ cluster, database: identifier }), raw, 'dropRestoreTarget');
      const c = clusterOf(config, input.cluster);
      const run = currentRun().workflowId;
      if ((await targetState(c, input.database, { storage: repository.storage, run })) !== 'ours') return false;
      await withConnection(restoreAccount(c), (conn) => conn.query(`DROP DATABASE ${quoteIdentifier(input.database)}`));
      await releaseRestoreClaim(repository.storage, c.name, input.database, run);
      return true;
    },

    /** Drops the restored tables of this run (names built from the run's tag); never anything else. */
    async dropRestoredTables(raw: { cluster: string; database: string; runTag: string; tables: string[] }): Promise<string[]> {
      const input = accept(TableSet, raw, 'dropRestoredTables');
      return withConnection(restoreAccount(clusterOf(config, input.cluster)), (conn) => dropRestoredTables(conn, input.database, input.runTag, input.tables));
    },
  };
}

export type RestoreActivities = ReturnType<typeof createRestoreActivities>;
