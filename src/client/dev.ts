/**
 * `dbops dev`: the embedded stack in the foreground. A Temporal dev server with its Web UI,
 * a sandbox MariaDB or MySQL (binlog on) with a sample database and a least-privileged backup user,
 * a generated config for it, and a worker. State lives in one folder and survives restarts.
 * With `s3`, the repository is a bucket in a private S3 server (S3Proxy) that dev starts too,
 * sealed with a key made once in the state folder: a later start serves the same bucket
 * with the same key, so its backups are still there.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createConnection } from 'mysql2/promise';
import type { Logger } from 'pino';
import { stringify as toYaml } from 'yaml';
import { ConfigError, loadConfig } from '../config/load';
import { projectRoot } from '../tools/tools';
import { formatBytes } from '../domain/naming';
import { spaceSaving, totalStoredBytes, type Product } from '../domain/manifest';
import { openRepository } from '../repository';
import { describeRepository } from '../config/schema';
import { freePort } from '../mysql/servers/local';
import { startMariadbSandbox } from '../mysql/servers/mariadb';
import { mysqlToolPath, mysqlUnavailableReason, startMysqlSandbox } from '../mysql/servers/mysql';
import type { LocalServer } from '../mysql/servers/local';
import { createBackupUser, createRestoreUser, seedSampleDatabase } from '../dev/sampleData';
import { resolveJava, resolveS3ProxyJar, startS3Server } from '../dev/s3Server';
import { startTemporalDevServer } from '../dev/temporalServer';
import { createWorker, installRuntimeLogger } from '../workers/worker';
import { startMetricsServer } from '../metrics/server';
import { startFullBackup, waitForManifest } from './backups';
import { applySchedules } from './schedules';

export const DEV_CLUSTER = 'sandbox';
/** The bucket, prefix and key id of `dbops dev --s3`. */
export const DEV_BUCKET = 'dbops-dev';
export const DEV_PREFIX = 'dev';
export const DEV_KEY_ID = 'dev';

export interface DevOptions {
  stateDir: string;
  /** The sandbox server: MariaDB (Debian's) or MySQL (the project's chroot, see scripts/setup.sh). */
  product: Product;
  /** Keep the repository in a private S3 server started with the stack, encrypted. */
  s3: boolean;
  demo: boolean;
  exitAfterDemo: boolean;
  logger: Logger;
  out: (line: string) => void;
}

export interface DevState {
  configPath: string;
  cluster: string;
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  uiUrl: string;
  /** dbops's Prometheus metrics (the SDK runtime's are not served in the dev stack). */
  metricsUrl: string;
  repository: string;
  product: Product;
  mysql: { host: string; port: number; socket: string; user: string };
  /** With --s3: where the bucket is, and the files holding its dev-only credentials and the repository key. */
  s3?: {
    endpoint: string;
    region: string;
    bucket: string;
    prefix: string;
    accessKeyIdFile: string;
    secretAccessKeyFile: string;
    encryptionKeyFile: string;
    /** The server's folder of objects (one subfolder per bucket). */
    dataDir: string;
  };
  pid: number;
}

async function portOr(preferred: number): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => void freePort().then(resolve));
    server.listen(preferred, '127.0.0.1', () => server.close(() => resolve(preferred)));
  });
}

/** The sandbox server of a product, in the state folder; MySQL only where the project installed it. */
async function startSandbox(product: Product, stateDir: string): Promise<LocalServer> {
  if (product === 'mariadb') return startMariadbSandbox({ baseDir: path.join(stateDir, 'mariadb'), port: await portOr(3307), serverId: 1 });
  const missing = mysqlUnavailableReason();
  if (missing) throw new ConfigError(`dbops dev --product mysql: ${missing}`);
  return startMysqlSandbox({ baseDir: path.join(stateDir, 'mysql'), port: await portOr(3308), serverId: 1 });
}

/** Why this machine cannot run the S3 server, or null when it can. */
function s3ServerMissing(): string | null {
  try {
    resolveS3ProxyJar();
    resolveJava();
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/** The repository key of a state folder: 32 random bytes, made at the first start and kept (0600). */
function devRepositoryKey(stateDir: string): string {
  const file = path.join(stateDir, 'secrets', 'repository.key');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return file;
}

export async function runDev(options: DevOptions): Promise<void> {
  const stateDir = path.resolve(options.stateDir);
  mkdirSync(path.join(stateDir, 'secrets'), { recursive: true, mode: 0o700 });
  const log = options.logger;
  installRuntimeLogger(log);
  if (options.s3) {
    const missing = s3ServerMissing();
    if (missing) throw new ConfigError(`dbops dev --s3: ${missing}`);
  }

  options.out(`dbops dev: state in ${stateDir}`);
  const sandbox = await startSandbox(options.product, stateDir);
  const stops: Array<() => Promise<void>> = [() => sandbox.stop()];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((e: Error) => log.warn({ err: e }, 'stop failed'));
  };

  try {
    const passwordFile = path.join(stateDir, 'secrets', 'sandbox.password');
    const restorePasswordFile = path.join(stateDir, 'secrets', 'sandbox-restore.password');
    for (const file of [passwordFile, restorePasswordFile]) {
      if (!existsSync(file)) writeFileSync(file, randomBytes(18).toString('base64url') + '\n', { mode: 0o600 });
    }
    const root = await createConnection(options.product === 'mysql' ? { host: '127.0.0.1', port: sandbox.port, user: 'root' } : { socketPath: sandbox.socket, user: 'root' });
    try {
      await createBackupUser(root, 'dbops', readFileSync(passwordFile, 'utf8').trim(), '%', options.product);
      await createRestoreUser(root, 'dbops_restore', readFileSync(restorePasswordFile, 'utf8').trim());
      await seedSampleDatabase(root, { database: 'shop' });
    } finally {
      await root.end();
    }
    options.out(`${options.product === 'mysql' ? 'MySQL' : 'MariaDB'} sandbox on 127.0.0.1:${sandbox.port} (socket ${sandbox.socket}), sample database "shop"`);

    let bucket: NonNullable<DevState['s3']> | null = null;
    if (options.s3) {
      // The same folder, bucket, credentials and key at every start: the backups of the last run stay listed.
      const server = await startS3Server({ baseDir: path.join(stateDir, 's3'), bucket: DEV_BUCKET, keepCredentials: true });
      stops.push(() => server.stop());
      bucket = {
        endpoint: server.endpoint,
        region: server.region,
        bucket: server.bucket,
        prefix: DEV_PREFIX,
        accessKeyIdFile: server.accessKeyIdFile,
        secretAccessKeyFile: server.secretAccessKeyFile,
        encryptionKeyFile: devRepositoryKey(stateDir),
        dataDir: server.dataDir,
      };
      options.out(`S3 server (S3Proxy) at ${bucket.endpoint}, bucket ${bucket.bucket}, objects in ${bucket.dataDir}`);
    }

    const temporalPort = await portOr(7233);
    const uiPort = await portOr(8233);
    const env = await startTemporalDevServer({ port: temporalPort, ui: true, uiPort, dbFilename: path.join(stateDir, 'temporal.db') });
    stops.push(() => env.teardown());
    const uiUrl = `http://localhost:${uiPort}`;
    const metricsPort = await portOr(9464);

    const configPath = path.join(stateDir, 'dbops.yaml');
    const generated = {
      temporal: { address: env.address, namespace: 'default', taskQueue: 'dbops' },
      repository: {
        ...(bucket
          ? {
              s3: {
                endpoint: bucket.endpoint,
                region: bucket.region,
                bucket: bucket.bucket,
                prefix: bucket.prefix,
                pathStyle: true,
                accessKeyId: { file: bucket.accessKeyIdFile },
                secretAccessKey: { file: bucket.secretAccessKeyFile },
              },
              encryption: { current: DEV_KEY_ID, keys: { [DEV_KEY_ID]: { file: bucket.encryptionKeyFile } } },
            }
          : { path: path.join(stateDir, 'repository') }),
        compression: 'zstd',
      },
      clusters: [
        {
          name: DEV_CLUSTER,
          // MySQL's tools run from the project's chroot: TCP is the path that is the same on both sides.
          ...(options.product === 'mysql'
            ? { host: '127.0.0.1', port: sandbox.port, product: 'mysql', tools: { dump: mysqlToolPath('mysqldump'), client: mysqlToolPath('mysql'), binlog: mysqlToolPath('mysqlbinlog') } }
            : { socket: sandbox.socket }),
          user: 'dbops',
          password: { file: passwordFile },
          restoreUser: 'dbops_restore',
          restorePassword: { file: restorePasswordFile },
          approvers: { '*': [process.env.USER ?? 'operator', 'alice'] },
          // Every user database of the sandbox, also the ones a newcomer loads into it.
        },
      ],
      logging: { level: 'info' },
      metrics: { listen: `127.0.0.1:${metricsPort}` },
      // The default schedules (full 02:00, incremental every 4 h, differential 10:00 and 16:00).
      schedules: { timezone: 'UTC', defaultsFor: [DEV_CLUSTER] },
    };
    writeFileSync(configPath, '# Generated by `dbops dev`; rewritten at every start.\n' + toYaml(generated));
    const config = loadConfig(configPath);

    const state: DevState = {
      configPath,
      cluster: DEV_CLUSTER,
      temporalAddress: env.address,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      uiUrl,
      metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
      repository: describeRepository(config.repository),
      product: options.product,
      mysql: { host: '127.0.0.1', port: sandbox.port, socket: sandbox.socket, user: 'dbops' },
      ...(bucket ? { s3: bucket } : {}),
      pid: process.pid,
    };
    writeFileSync(path.join(stateDir, 'dev.json'), JSON.stringify(state, null, 2) + '\n');

    const { worker, close, deps } = await createWorker({ config, logger: log, connection: env.nativeConnection });
    const running = worker.run();
    stops.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await close();
    });

    const metrics = await startMetricsServer(config, log.child({ component: 'metrics' }), deps.metrics, null, deps.repository.catalog);
    if (metrics) stops.push(() => metrics.close());

    const schedules = await applySchedules(env.client, config);
    options.out(`schedules: ${[...schedules.create.map((d) => d.id), ...schedules.update.map((d) => d.id), ...schedules.unchanged].sort().join(', ')}`);
    options.out(`Temporal at ${env.address}; Web UI: ${uiUrl}; metrics: ${state.metricsUrl}`);
    options.out(`repository: ${state.repository}`);
    options.out(`config: ${configPath}   (try: ${path.join(projectRoot(), 'bin', 'dbops')} --config ${configPath} backup full --cluster ${DEV_CLUSTER} --wait)`);

    if (options.demo) {
      const handle = await startFullBackup(env.client, config, { cluster: DEV_CLUSTER, requestedBy: 'demo', reason: 'dbops dev --demo' });
      options.out(`demo: full backup started: ${uiUrl}/namespaces/default/workflows/${encodeURIComponent(handle.workflowId)}`);
      const manifest = await waitForManifest(handle);
      options.out(
        `demo: backup ${manifest.id} verified: ${manifest.tables.length} tables, ${manifest.tables.reduce((n, t) => n + t.rows, 0)} rows, ` +
          `${formatBytes(totalStoredBytes(manifest))} stored (${(spaceSaving(manifest) * 100).toFixed(0)}% saved), ` +
          `snapshot ${manifest.snapshot?.file}:${manifest.snapshot?.position}`,
      );
      const backups = await openRepository(config).catalog.list(DEV_CLUSTER);
      options.out(`demo: the repository holds ${backups.length} backup(s) of ${DEV_CLUSTER}:`);
      for (const b of backups) options.out(`  ${b.manifest.id}  ${b.relativePath}`);
      options.out(`demo: in the UI, filter with: DbopsCluster="${DEV_CLUSTER}"  (${uiUrl}/namespaces/default/workflows)`);
    }

    if (options.exitAfterDemo) return;
    options.out('running; Ctrl-C stops everything');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    options.out('stopping');
  } finally {
    await stopAll();
  }
}
