/**
 * The slow-query killer's activities: read the sessions and choose the victims under the
 * worker's own policy for the cluster (the workflow names the cluster and may only ask
 * for a dry run, never widen the policy); kill the chosen ones, each re-checked first;
 * store the run's report. Query text stays in these activities: what they return carries
 * digests (literals replaced), so no value or secret reaches a workflow history.
 */
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { ClusterConfig, QueryKillerConfig } from '../config/schema';
import { durationSeconds } from '../domain/duration';
import { Failure } from '../domain/failures';
import { chooseVictims, KillRecordSchema, KillReportSchema, SPARED, VictimSchema, type KillPolicy, type KillRecord } from '../domain/queryKiller';
import { productOf, withConnection } from '../mysql/connection';
import { dbopsAccounts, killVictim, opsAccount, readSessions } from '../mysql/processlist';
import { accept, clusterOf } from './context';
import type { ActivityDeps } from './deps';
import { cluster } from './schemas';

function killerConfig(c: ClusterConfig): QueryKillerConfig {
  if (!c.queryKiller) {
    throw ApplicationFailure.nonRetryable(
      `cluster ${c.name} has no queryKiller in the config: add clusters[].queryKiller (e.g. { busyTime: 60s, dryRun: true }) to run the slow-query killer there`,
      Failure.Config,
    );
  }
  return c.queryKiller;
}

export function killPolicy(k: QueryKillerConfig, dryRun: boolean): KillPolicy {
  return { busySeconds: durationSeconds(k.busyTime), match: k.match, ignore: k.ignore, killDdl: k.killDdl, maxPerRun: k.maxPerRun, mode: k.mode, dryRun: dryRun || k.dryRun };
}

const FindInput = z.strictObject({ cluster, dryRun: z.boolean().default(false) });
const KillInput = z.strictObject({ cluster, dryRun: z.boolean(), victims: z.array(VictimSchema).max(1000) });

export interface SlowQueryFinding {
  observedAt: string;
  sessions: number;
  victims: z.infer<typeof VictimSchema>[];
  spared: Record<(typeof SPARED)[number], number>;
  policy: { busySeconds: number; mode: KillPolicy['mode']; dryRun: boolean; maxPerRun: number };
}

export function createQueryKillerActivities(deps: ActivityDeps) {
  const { config, logger, metrics, repository } = deps;
  return {
    /** Reads every session once and chooses; kills nothing. */
    async findSlowQueries(raw: z.input<typeof FindInput>): Promise<SlowQueryFinding> {
      const input = accept(FindInput, raw, 'findSlowQueries');
      const c = clusterOf(config, input.cluster);
      const policy = killPolicy(killerConfig(c), input.dryRun);
      const accounts = dbopsAccounts(c);
      return withConnection(opsAccount(c), async (conn) => {
        const product = c.product ?? (await productOf(conn));
        const observedAt = new Date().toISOString();
        const { rows, self } = await readSessions(conn, product);
        const { victims, spared } = chooseVictims(rows, policy, { users: accounts.users, prefixes: accounts.prefixes, connectionId: self });
        return { observedAt, sessions: rows.length, victims, spared, policy: { busySeconds: policy.busySeconds, mode: policy.mode, dryRun: policy.dryRun, maxPerRun: policy.maxPerRun } };
      });
    },

    /**
     * Kills each victim that still runs the statement it was chosen for (a dry run only
     * checks). Safe to retry: a statement already killed is `gone` the second time.
     */
    async killSlowQueries(raw: z.input<typeof KillInput>): Promise<{ records: KillRecord[] }> {
      const input = accept(KillInput, raw, 'killSlowQueries');
      const c = clusterOf(config, input.cluster);
      const policy = killPolicy(killerConfig(c), input.dryRun);
      return withConnection(opsAccount(c), async (conn) => {
        const product = c.product ?? (await productOf(conn));
        const records: KillRecord[] = [];
        for (const victim of input.victims) {
          const outcome = await killVictim(conn, product, victim, policy.mode, policy.dryRun);
          records.push(KillRecordSchema.parse({ ...victim, outcome, mode: policy.mode }));
          if (outcome === 'killed' || outcome === 'would-kill') {
            metrics.queryKills.labels(c.name, outcome === 'killed' ? policy.mode : 'dry-run').inc();
            logger.warn({ cluster: c.name, session: victim.id, user: victim.user, seconds: victim.timeSeconds, digest: victim.digest, outcome }, outcome === 'killed' ? 'slow statement killed' : 'slow statement would be killed (dry run)');
          }
        }
        return { records };
      });
    },

    async storeKillReport(raw: { report: unknown }): Promise<{ key: string }> {
      const input = accept(z.strictObject({ report: KillReportSchema }), raw, 'storeKillReport');
      clusterOf(config, input.report.cluster);
      return { key: await repository.catalog.storeKillReport(input.report) };
    },
  };
}

export type QueryKillerActivities = ReturnType<typeof createQueryKillerActivities>;
