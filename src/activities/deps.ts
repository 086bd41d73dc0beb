/**
 * What activities are given: built once by the worker (buildActivityDeps) and passed to
 * every family, so that no module keeps state of its own and tests can hand in their own.
 */
import type { Logger } from 'pino';
import type { DbopsConfig } from '../config/schema';
import { DbopsMetrics } from '../metrics/metrics';
import { Notifier } from '../notify/notifier';
import { openRepository, type RepositoryAccess } from '../repository';
import { temporalAccess, type TemporalAccess } from '../temporal/client';

export interface ActivityDeps {
  config: DbopsConfig;
  logger: Logger;
  repository: RepositoryAccess;
  notifier: Notifier;
  metrics: DbopsMetrics;
  /** Short-lived clients for the rare questions activities ask Temporal. */
  temporal: TemporalAccess;
}

export function buildActivityDeps(config: DbopsConfig, logger: Logger, overrides: Partial<ActivityDeps> = {}): ActivityDeps {
  const repository = overrides.repository ?? openRepository(config);
  return {
    config,
    logger,
    repository,
    notifier: overrides.notifier ?? new Notifier(config, logger, repository.storage),
    metrics: overrides.metrics ?? new DbopsMetrics(),
    temporal: overrides.temporal ?? temporalAccess(config),
  };
}
