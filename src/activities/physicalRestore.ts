/**
 * `dbops restore physical`: plan a whole instance to one point from a physical full (and
 * its physical incrementals and binlogs), then restore it into a new datadir on the
 * worker's host under physicalRestores.dir, for a new server.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import * as path from 'node:path';
import { z } from 'zod';
import { Failure } from '../domain/failures';
import { ProductSchema, type Product } from '../domain/manifest';
import { formatBytes } from '../domain/naming';
import { planRestore, type RestorePlan } from '../domain/restorePlan';
import type { ResolvedTarget } from '../domain/restorePlan';
import { toFailure } from '../mysql/errors';
import { restorePhysicalInstance, type PhysicalInstanceResult } from '../mysql/physicalInstance';
import { physicalSourceOf, type PhysicalSource } from '../mysql/physicalRestore';
import { mysqlUnavailableReason } from '../mysql/servers/mysql';
import { readChainState } from '../repository';
import { BinlogArchive } from '../repository/binlogArchive';
import { accept, clusterOf, currentRun } from './context';
import type { ActivityDeps } from './deps';
import { PhysicalSourceSchema } from './drill';
import { cluster, ResolvedTargetSchema, RestorePlanSchema } from './schemas';

const name = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a folder name');

export interface PhysicalRestorePlan {
  product: Product;
  source: PhysicalSource;
  plans: RestorePlan[];
  /** Where the datadir will be. */
  datadir: string;
}

export function createPhysicalRestoreActivities(deps: ActivityDeps) {
  const { config, repository } = deps;
  const folder = (n: string): string => {
    if (!config.physicalRestores) {
      throw ApplicationFailure.nonRetryable('physicalRestores.dir is not set in the worker\'s config: it names the folder the restored datadirs go into', Failure.Config);
    }
    return path.join(config.physicalRestores.dir, n);
  };

  return {
    /** Every database of the newest physical full at the target, to one point; refused (saying why) when there is none. */
    async planPhysicalRestore(raw: { cluster: string; target: ResolvedTarget; name: string }): Promise<PhysicalRestorePlan> {
      const input = accept(z.strictObject({ cluster, target: ResolvedTargetSchema, name }), raw, 'planPhysicalRestore');
      const c = clusterOf(config, input.cluster);
      const dir = folder(input.name);
      const backups = await repository.reader().list(c.name);
      const chainState = await readChainState(repository.storage, c.name);
      const archive = await new BinlogArchive(repository.storage, c.name).assemble();
      const physicalFulls = backups.filter((b) => b.manifest.type === 'full' && b.manifest.physical);
      const latest = physicalFulls[physicalFulls.length - 1]?.manifest;
      if (!latest) throw ApplicationFailure.nonRetryable(`cluster ${c.name} has no physical full backup (dbops backup full --engine physical)`, Failure.InvalidInput);
      // Only physical fulls may start it: the logical ones are left out of the catalog the planner sees.
      const usable = backups.filter((b) => !(b.manifest.type === 'full' && !b.manifest.physical));
      const plans: RestorePlan[] = [];
      for (const database of latest.databases) {
        const outcome = planRestore({ cluster: c.name, database, target: input.target, backups: usable, chainState, archive, now: new Date(), site: 'own-server' });
        if (!outcome.ok) throw ApplicationFailure.nonRetryable(`${database}: ${outcome.reason}`, Failure.InvalidInput);
        plans.push(outcome.plan);
      }
      const first = plans[0]!.full;
      const source = physicalSourceOf(first);
      if (!source || plans.some((p) => p.full.id !== first.id)) {
        throw ApplicationFailure.nonRetryable(`the databases of ${c.name} do not all start from one physical full at that point (${[...new Set(plans.map((p) => p.full.id))].join(', ')})`, Failure.InvalidInput);
      }
      const unavailable = first.product === 'mysql' ? mysqlUnavailableReason() : null;
      if (unavailable) throw ApplicationFailure.nonRetryable(`a physical MySQL restore starts a MySQL server on the worker; ${unavailable}`, Failure.Config);
      return {
        product: first.product,
        source,
        plans,
        datadir: path.join(dir, 'data'),
      };
    },

    /** Unpack, prepare, start privately, replay every database, drop the restore's account, shut down. A retry starts over. */
    async restorePhysicalInstance(raw: { cluster: string; name: string; product: Product; source: PhysicalSource; plans: RestorePlan[] }): Promise<PhysicalInstanceResult> {
      const input = accept(
        z.strictObject({ cluster, name, product: ProductSchema, source: PhysicalSourceSchema, plans: z.array(RestorePlanSchema).min(1).max(500) }),
        raw,
        'restorePhysicalInstance',
      );
      const c = clusterOf(config, input.cluster);
      const ctx = Context.current();
      let progress = { phase: 'unpacking', bytes: 0 };
      const beat = setInterval(() => ctx.heartbeat({ ...progress, text: `${progress.phase}: ${formatBytes(progress.bytes)}` }), 5_000);
      try {
        return await restorePhysicalInstance({
          cluster: c,
          product: input.product,
          dir: folder(input.name),
          run: currentRun(),
          source: input.source,
          plans: input.plans as RestorePlan[],
          storage: repository.storage,
          backups: repository.reader().storage,
          onProgress: (p) => (progress = p),
          signal: ctx.cancellationSignal,
        });
      } catch (error) {
        throw toFailure(error, c.name);
      } finally {
        clearInterval(beat);
      }
    },
  };
}

export type PhysicalRestoreActivities = ReturnType<typeof createPhysicalRestoreActivities>;
