/**
 * GET /metrics on the worker: dbops's own metrics (refreshed from the repository and
 * Temporal's visibility at scrape time) followed by the Temporal SDK runtime's, which the
 * runtime serves on a private loopback port that only this endpoint reads.
 */
import { createServer, type Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import type { Logger } from 'pino';
import type { DbopsConfig } from '../config/schema';
import { openRepository, type Repository } from '../repository';
import { durationSeconds } from '../domain/duration';
import { BinlogArchive } from '../repository/binlogArchive';
import { latestDrills, type DbopsMetrics } from './metrics';
import { readServerHealth } from '../mysql/health';

export interface MetricsServer {
  url: string;
  close: () => Promise<void>;
}

async function refresh(config: DbopsConfig, metrics: DbopsMetrics, repository: Repository, client: () => Promise<Client | null>, logger: Logger): Promise<void> {
  // The servers, all at once (each bounded by a short timeout), while the repository is read.
  const health = config.metrics?.serverHealth
    ? Promise.all(
        config.clusters.map((c) =>
          readServerHealth(c).then(
            (h) => metrics.fromHealth(c.name, h),
            (error: unknown) => {
              logger.debug({ err: error, cluster: c.name }, 'could not read the server for /metrics');
              metrics.fromHealth(c.name, null);
            },
          ),
        ),
      )
    : Promise.resolve([]);
  try {
    await refreshRepository(config, metrics, repository, client);
  } finally {
    await health;
  }
}

async function refreshRepository(config: DbopsConfig, metrics: DbopsMetrics, repository: Repository, client: () => Promise<Client | null>): Promise<void> {
  for (const c of config.clusters) {
    const backups = await repository.list(c.name);
    metrics.fromCatalog(c.name, backups.map((b) => b.manifest), config.retention.maxBytes);
    const drills = await latestDrills(repository, c.name);
    metrics.fromDrill(c.name, drills.latest, drills.lastPassedAt);
    metrics.fromVerify(c.name, await repository.latestVerifyReport(c.name));
    if (c.binlogArchive.enabled) {
      const status = await new BinlogArchive(repository.storage, c.name).status();
      metrics.fromBinlogArchive(c.name, status?.coveredUntil ?? null, {
        rpoSeconds: durationSeconds(c.binlogArchive.rpoTarget),
        criticalSeconds: durationSeconds(c.binlogArchive.rpoCritical),
      });
    }
  }
  const temporal = await client();
  if (!temporal) return;
  const waiting = new Map<string, number>(config.clusters.map((c) => [c.name, 0]));
  for await (const wf of temporal.workflow.list({ query: "DbopsAwaitingApproval = true AND ExecutionStatus = 'Running'" })) {
    const cluster = wf.searchAttributes?.DbopsCluster?.[0];
    if (typeof cluster === 'string') waiting.set(cluster, (waiting.get(cluster) ?? 0) + 1);
  }
  for (const [cluster, n] of waiting) metrics.approvalsWaiting.labels(cluster).set(n);
}

export async function startMetricsServer(config: DbopsConfig, logger: Logger, metrics: DbopsMetrics, sdkMetricsUrl: string | null, repository: Repository = openRepository(config).catalog): Promise<MetricsServer | null> {
  if (!config.metrics) return null;
  const [host, portText] = config.metrics.listen.split(':') as [string, string];
  metrics.initialise(config.clusters.map((c) => c.name));
  let connection: Connection | null = null;
  const client = async (): Promise<Client | null> => {
    try {
      connection ??= await Connection.connect({ address: config.temporal.address, connectTimeout: '5 seconds' });
      return new Client({ connection, namespace: config.temporal.namespace });
    } catch {
      return null;
    }
  };
  const server: Server = createServer((req, res) => {
    if (req.url !== '/metrics' && req.url !== '/') {
      res.writeHead(404).end('not found: GET /metrics\n');
      return;
    }
    void (async () => {
      try {
        await refresh(config, metrics, repository, client, logger).catch((error: unknown) => logger.warn({ err: error }, 'metrics refresh failed; serving the last values'));
        let body = await metrics.registry.metrics();
        if (sdkMetricsUrl) {
          const sdk = await fetch(sdkMetricsUrl, { signal: AbortSignal.timeout(5000) }).then((r) => r.text()).catch(() => '');
          body += `\n# Temporal SDK runtime\n${sdk}`;
        }
        res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(body);
      } catch (error) {
        res.writeHead(500).end(`metrics failed: ${(error as Error).message}\n`);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(portText), host, () => resolve());
  });
  const address = server.address();
  const url = `http://${host}:${typeof address === 'object' && address ? address.port : portText}/metrics`;
  logger.info({ url }, 'metrics endpoint listening');
  return {
    url,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await connection?.close();
    },
  };
}
