/**
 * Restoring a whole instance onto another server (the primary is gone): plan every
 * database to one target point (backups, then the continuous binlog archive), look at the
 * target (who it is, what it holds, whether dbops may write there), claim the databases on
 * it, restore each one, verify it. Nothing is written onto a server that holds data dbops
 * did not put there, nor onto the cluster's own server.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { z } from 'zod';
import type { ClusterConfig, RestoreTargetServer } from '../config/schema';
import { sameServer } from '../domain/chain';
import { Failure } from '../domain/failures';
import { RestoreTargetSchema } from '../domain/inputs';
import { formatBytes } from '../domain/naming';
import { planRestore, type RestorePlan } from '../domain/restorePlan';
import type { ResolvedTarget } from '../domain/restorePlan';
import { inspectClusterWith, withConnection } from '../mysql/connection';
import { toFailure } from '../mysql/errors';
import { restoreDatabase, resumesLoad, type RestoreDatabaseResult } from '../mysql/restore';
import { claimDatabases, dropOwnedDatabase, foreignDatabases, inspectTarget, productName, targetCluster } from '../mysql/targetServer';
import { verifyDatabase, type TableVerification } from '../mysql/verify';
import { readChainState } from '../repository';
import { BinlogArchive } from '../repository/binlogArchive';
import { accept, clusterOf, currentRun, restoreHeartbeats } from './context';
import type { ActivityDeps } from './deps';
import { cluster, identifier, RestorePlanSchema } from './schemas';

const targetName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a restore target name from restoreTargets');

export interface InstancePlan {
  plans: RestorePlan[];
  product: 'mariadb' | 'mysql';
  target: { name: string; server: string; databases: string[]; owned: string[]; replaces: string[] };
  /** Why the restore may not go ahead (nothing is written), or null. */
  refusal: string | null;
  expect: Record<string, Array<{ table: string; rows: number }>>;
  notes: string[];
}

export function createInstanceRestoreActivities(deps: ActivityDeps) {
  const { config, logger, repository } = deps;
  const targetOf = (name: string): RestoreTargetServer => {
    const t = config.restoreTargets.find((x) => x.name === name);
    if (!t) {
      const known = config.restoreTargets.map((x) => x.name);
      throw ApplicationFailure.nonRetryable(`unknown restore target "${name}": ${known.length ? `configured: ${known.join(', ')}` : 'add it under restoreTargets in the config'}`, Failure.Config);
    }
    return t;
  };
  const onto = (source: ClusterConfig, name: string): ClusterConfig => targetCluster(targetOf(name), source);

  return {
    /** Plans every database (or the chosen ones) to one target and checks the target server; writes nothing. */
    async planInstanceRestore(raw: { cluster: string; onto: string; databases: string[] | null; target: unknown; replace?: boolean }): Promise<InstancePlan> {
      const input = accept(
        z.strictObject({ cluster, onto: targetName, databases: z.array(identifier).min(1).max(500).nullable(), target: RestoreTargetSchema, replace: z.boolean().optional() }),
        raw,
        'planInstanceRestore',
      );
      const c = clusterOf(config, input.cluster);
      if (input.target.kind === 'beforeMatching') throw ApplicationFailure.nonRetryable('an instance restore goes to a time, a position, a GTID or latest; before-matching is for one database (restore pitr)', Failure.InvalidInput);
      const target = input.target as ResolvedTarget;
      const tc = onto(c, input.onto);
      const { backups, unusable } = await repository.reader().scan(c.name);
      const chainState = await readChainState(repository.storage, c.name);
      const archive = await new BinlogArchive(repository.storage, c.name).assemble();
      const fulls = backups.filter((b) => b.manifest.type === 'full' && b.manifest.snapshot);
      const latest = fulls[fulls.length - 1]?.manifest;
      if (!latest) throw ApplicationFailure.nonRetryable(`cluster ${c.name}: no full backup to restore from`, Failure.InvalidInput);
      const wanted = input.databases ?? latest.databases;
      const missing = wanted.filter((d) => !fulls.some((f) => f.manifest.databases.includes(d)));
      if (missing.length > 0) throw ApplicationFailure.nonRetryable(`database(s) ${missing.join(', ')} are in no full backup of ${c.name} (backed up: ${latest.databases.join(', ')})`, Failure.InvalidInput);
      const plans: RestorePlan[] = [];
      for (const database of wanted) {
        const outcome = planRestore({ cluster: c.name, database, target, backups, chainState, archive, now: new Date() });
        if (!outcome.ok) throw ApplicationFailure.nonRetryable(`${database}: ${outcome.reason}${unusable.length ? `; ${unusable.length} backup(s) cannot be read` : ''}`, Failure.InvalidInput);
        plans.push(outcome.plan);
      }
      const product = plans[0]!.full.product;
      const full = backups.find((b) => b.manifest.id === plans[0]!.full.id)!.manifest;

      let refusal: string | null = null;
      let t;
      try {
        t = await inspectTarget(tc, c.name);
      } catch (error) {
        throw toFailure(error, tc.name);
      }
      const foreign = foreignDatabases(t);
      if (t.server.product !== product) refusal = `${input.onto} is ${productName(t.server.product)} ${t.server.version}; the backups are ${productName(product)}'s: restore onto a server of the same product`;
      else if (sameServer(full.server, t.server) === null) refusal = `${input.onto} is the cluster's own server (${full.server.hostname}, server id ${full.server.serverId}): an instance restore goes onto another server`;
      else if (foreign.length > 0) {
        refusal = `${input.onto} holds data dbops did not put there (${foreign.join(', ')}): restore onto an empty server, or one whose databases a dbops restore created`;
      }
      const replacing = wanted.filter((d) => t.databases.includes(d));
      if (refusal === null && replacing.length > 0 && !input.replace) {
        // A standby that was restored onto earlier may have become a primary since: its data is not dbops's to drop unless asked.
        refusal = `${input.onto} already holds ${replacing.join(', ')} (restored there by dbops earlier, possibly in use since): pass --replace to drop and restore them again`;
      }
      if (refusal === null) {
        // The cluster's own server, if it still answers, must not be the target under another name.
        const live = await withConnection(c, (conn) => inspectClusterWith(conn, c)).catch(() => null);
        if (live && sameServer(live.server, t.server) === null && live.server.hostname === t.server.hostname) {
          refusal = `${input.onto} is the cluster's own server (server id ${t.server.serverId}): an instance restore goes onto another server`;
        }
      }
      const expect = Object.fromEntries(plans.map((p) => [p.database, full.tables.filter((x) => x.database === p.database && p.full.id === full.id).map((x) => ({ table: x.table, rows: x.rows }))]));
      return {
        plans,
        product,
        target: { name: input.onto, server: `${productName(t.server.product)} ${t.server.version} (${t.server.hostname}, server id ${t.server.serverId})`, databases: t.databases, owned: t.owned ?? [], replaces: wanted.filter((d) => t.databases.includes(d)) },
        refusal,
        expect,
        notes: [
          'users and grants are not part of logical database backups: create the application accounts on the target before pointing clients at it',
          ...(plans.some((p) => p.archive) ? [] : ['no continuous binlog archive continues these backups: the restore reaches only what the backups hold']),
        ],
      };
    },

    /** Records on the target that this run is creating these databases (before it does). */
    async claimTargetDatabases(raw: { cluster: string; onto: string; databases: string[] }): Promise<void> {
      const input = accept(z.strictObject({ cluster, onto: targetName, databases: z.array(identifier).min(1).max(500) }), raw, 'claimTargetDatabases');
      const c = clusterOf(config, input.cluster);
      const tc = onto(c, input.onto);
      const t = await inspectTarget(tc, c.name);
      const foreign = foreignDatabases(t);
      if (foreign.length > 0) throw ApplicationFailure.nonRetryable(`${input.onto} now holds data dbops did not put there (${foreign.join(', ')}); nothing was written`, Failure.InvalidInput);
      await claimDatabases(tc, c.name, currentRun().workflowId, input.databases);
    },

    /** One database onto the target: its own earlier copy dropped, then load + replay (heartbeating); retry-safe. */
    async restoreOnto(raw: { cluster: string; onto: string; plan: RestorePlan; expectRows: Array<{ table: string; rows: number }> }): Promise<RestoreDatabaseResult> {
      const input = accept(
        z.strictObject({ cluster, onto: targetName, plan: RestorePlanSchema, expectRows: z.array(z.strictObject({ table: z.string().max(64), rows: z.number().int().nonnegative() })) }),
        raw,
        'restoreOnto',
      );
      const p = input.plan as RestorePlan;
      const c = clusterOf(config, input.cluster);
      const tc = onto(c, input.onto);
      const ctx = Context.current();
      try {
        const t = await inspectTarget(tc, c.name);
        if (!(t.owned ?? []).includes(p.database)) throw ApplicationFailure.nonRetryable(`${p.database} on ${input.onto} is not claimed by dbops: claim it first`, Failure.InvalidInput);
        const beats = restoreHeartbeats((progress) => `${p.database} ${progress.phase}: ${formatBytes(progress.bytes)}`);
        // A chunked load an earlier attempt left part way is resumed, not dropped.
        if (!resumesLoad(p, p.database, beats.resume)) await dropOwnedDatabase(tc, c.name, p.database);
        return await restoreDatabase({
          cluster: tc,
          product: p.full.product,
          storage: repository.storage,
          backups: repository.reader().storage,
          plan: p,
          into: p.database,
          marker: currentRun().workflowId,
          confine: false,
          expectRows: input.expectRows,
          ...beats,
          signal: ctx.cancellationSignal,
        });
      } catch (error) {
        logger.error({ cluster: c.name, onto: input.onto, database: p.database, err: error }, 'instance restore failed');
        throw toFailure(error, tc.name);
      }
    },

    async verifyOnto(raw: { cluster: string; onto: string; database: string }): Promise<TableVerification[]> {
      const input = accept(z.strictObject({ cluster, onto: targetName, database: identifier }), raw, 'verifyOnto');
      return verifyDatabase(onto(clusterOf(config, input.cluster), input.onto), input.database);
    },
  };
}

export type InstanceRestoreActivities = ReturnType<typeof createInstanceRestoreActivities>;
