/**
 * The dbops worker: one task queue, the workflows of src/workflows and the activities of
 * src/activities bound to this process's configuration. Logs (including the Temporal
 * runtime's and workflow `log` calls) go through pino.
 */
import * as path from 'node:path';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Logger } from 'pino';
import { buildActivityDeps, createActivities, type ActivityDeps } from '../activities';
import type { DbopsConfig } from '../config/schema';
import { PinoTemporalLogger } from '../logging/logger';
import { startMetricsServer } from '../metrics/server';
import { freePort } from '../mysql/servers/local';
import { sweepLeftovers } from './sweep';

let runtimeInstalled = false;

/** Route the Temporal runtime's logs into pino; once per process, before any connection. */
export function installRuntimeLogger(logger: Logger, sdkMetricsBindAddress?: string): void {
  if (runtimeInstalled) return;
  try {
    Runtime.install({
      logger: new PinoTemporalLogger(logger.child({ component: 'temporal' })),
      ...(sdkMetricsBindAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress: sdkMetricsBindAddress } } } } : {}),
    });
  } catch {
    // A runtime already exists in this process (tests): keep it.
  }
  runtimeInstalled = true;
}

export const WORKFLOWS_PATH = require.resolve(path.join(__dirname, '..', 'workflows'));

export interface WorkerSetup {
  config: DbopsConfig;
  logger: Logger;
  connection?: NativeConnection;
  /** A pre-built bundle (tests bundle once); default: bundle src/workflows at start. */
  workflowBundle?: { codePath: string };
  overrides?: Partial<WorkerOptions>;
  /** Dependencies to use instead of the ones built from the config (tests). */
  deps?: Partial<ActivityDeps>;
}

export interface CreatedWorker {
  worker: Worker;
  connection: NativeConnection;
  /** What the activities were built with (the metrics server serves the same registry). */
  deps: ActivityDeps;
  /** Closes what createWorker opened (not a connection passed in). */
  close: () => Promise<void>;
}

export async function createWorker(setup: WorkerSetup): Promise<CreatedWorker> {
  // Everything the worker writes (backups, reports, tool output) is its own: files 0600, folders 0700.
  process.umask(0o077);
  installRuntimeLogger(setup.logger);
  const ownsConnection = !setup.connection;
  const connection = setup.connection ?? (await NativeConnection.connect({ address: setup.config.temporal.address }));
  // Built once for the worker's life and handed to every activity family.
  const deps = buildActivityDeps(setup.config, setup.logger.child({ component: 'activity' }), setup.deps);
  const worker = await Worker.create({
    connection,
    namespace: setup.config.temporal.namespace,
    taskQueue: setup.config.temporal.taskQueue,
    ...(setup.workflowBundle ? { workflowBundle: setup.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities(deps),
    // A dump is long and mostly waiting on pipes; a handful at once is plenty on a small host.
    // Each continuous binlog archive holds one slot for as long as it streams: on top.
    maxConcurrentActivityTaskExecutions: 4 + setup.config.clusters.filter((c) => c.binlogArchive.enabled).length,
    // Cancellation reaches an activity with a heartbeat's reply: pausing an archive or
    // cancelling a restore takes effect within seconds, not most of a heartbeat timeout.
    maxHeartbeatThrottleInterval: '3 seconds',
    shutdownGraceTime: '10 seconds',
    ...setup.overrides,
  });
  const close = async () => {
    deps.repository.close();
    if (ownsConnection) await connection.close();
  };
  return { worker, connection, deps, close };
}

/** Runs until SIGINT/SIGTERM (or the signal's abort), then drains and closes. */
export async function runWorker(setup: WorkerSetup, stop?: AbortSignal): Promise<void> {
  // With metrics on, the SDK runtime serves its own on a private loopback port that
  // /metrics reads and appends (one endpoint to scrape).
  let sdkMetricsUrl: string | null = null;
  if (setup.config.metrics) {
    const port = await freePort();
    installRuntimeLogger(setup.logger, `127.0.0.1:${port}`);
    sdkMetricsUrl = `http://127.0.0.1:${port}/metrics`;
  }
  const { worker, close, deps } = await createWorker(setup);
  const metricsServer = await startMetricsServer(setup.config, setup.logger.child({ component: 'metrics' }), deps.metrics, sdkMetricsUrl, deps.repository.catalog);
  setup.logger.info(
    { address: setup.config.temporal.address, namespace: setup.config.temporal.namespace, taskQueue: setup.config.temporal.taskQueue },
    'worker started',
  );
  // Leftovers of runs that ended while a worker was dead (best effort, in the background).
  void sweepLeftovers(setup.config, setup.logger.child({ component: 'sweep' })).catch((error: unknown) => setup.logger.warn({ err: error }, 'sweeping leftovers failed'));
  const onStop = () => worker.shutdown();
  stop?.addEventListener('abort', onStop, { once: true });
  try {
    await worker.run();
  } finally {
    stop?.removeEventListener('abort', onStop);
    await metricsServer?.close();
    await close();
    setup.logger.info('worker stopped');
  }
}
