/** Shared pieces of the benchmarks: the reference dataset, timing, machine facts. */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import * as path from 'node:path';
import type { DevServer } from '../src/dev/temporalServer';
import { createConnection, type Connection } from 'mysql2/promise';
import pino from 'pino';
import { stringify as toYaml } from 'yaml';
import { loadConfig } from '../src/config/load';
import type { DbopsConfig } from '../src/config/schema';
import { startMariadbSandbox, type MariadbSandbox } from '../src/mysql/servers/mariadb';
import { createBackupUser, createRestoreUser } from '../src/dev/sampleData';
import { startTemporalDevServer } from '../src/dev/temporalServer';
import { createWorker, installRuntimeLogger } from '../src/workers/worker';

export const BENCH_DIR = path.resolve(__dirname, '..', ...(__dirname.includes(`${path.sep}dist${path.sep}`) ? ['..'] : []), 'bench', 'data');

export function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  const version = execFileSync('mariadbd', ['--version'], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin` } }).trim();
  return `${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; ${version.replace(/^.*Ver /, 'MariaDB ')}; node ${process.version}`;
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, value };
}

/** Runs a shell pipeline (the peer), failing loudly. */
export function sh(script: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', script], { stdio: ['ignore', 'inherit', 'pipe'], env: { ...process.env, ...env } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${script}\n${stderr}`))));
  });
}

/** The bench server: a private MariaDB in bench/data, kept between runs (the dataset takes minutes). */
export async function benchServer(): Promise<MariadbSandbox> {
  return startMariadbSandbox({
    baseDir: path.join(BENCH_DIR, 'mariadb'),
    serverId: 21,
    extraArgs: ['--innodb-buffer-pool-size=2G', '--innodb-log-file-size=512M', '--max-binlog-size=256M'],
  });
}

export async function root(server: MariadbSandbox): Promise<Connection> {
  return createConnection({ socketPath: server.socket, user: 'root' });
}

export const REFERENCE_ROWS = 4_000_000;

/**
 * The reference dataset: `bench.orders` with 4 million rows shaped like an order table
 * (customer, status, amount, SKU, a delivery note that is NULL a quarter of the time,
 * timestamps over two years), generated server-side from MariaDB's sequence engine.
 */
export async function ensureReferenceDataset(conn: Connection, log: (s: string) => void): Promise<void> {
  await conn.query('CREATE DATABASE IF NOT EXISTS bench');
  await conn.query(`CREATE TABLE IF NOT EXISTS bench.orders (
      id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
      customer_id INT UNSIGNED NOT NULL,
      status ENUM('new','paid','shipped','delivered','cancelled','refunded') NOT NULL,
      total DECIMAL(12,2) NOT NULL,
      currency CHAR(3) NOT NULL,
      sku VARCHAR(20) NOT NULL,
      quantity SMALLINT UNSIGNED NOT NULL,
      note VARCHAR(120) NULL,
      created_at DATETIME NOT NULL,
      updated_at DATETIME NOT NULL,
      KEY idx_customer (customer_id),
      KEY idx_created (created_at)
    ) ENGINE=InnoDB`);
  const [[{ n }]] = (await conn.query('SELECT COUNT(*) AS n FROM bench.orders')) as unknown as [[{ n: number }]];
  if (Number(n) >= REFERENCE_ROWS) return;
  log(`generating ${REFERENCE_ROWS.toLocaleString()} order rows (once; kept in bench/data)`);
  await conn.query('TRUNCATE bench.orders');
  const chunk = 500_000;
  for (let from = 1; from <= REFERENCE_ROWS; from += chunk) {
    const to = Math.min(REFERENCE_ROWS, from + chunk - 1);
    await conn.query(`INSERT INTO bench.orders
      SELECT seq, 1 + (seq * 7919) % 250000,
             ELT(1 + seq % 6, 'new','paid','shipped','delivered','cancelled','refunded'),
             ((seq * 37) % 250000) / 100 + 1, ELT(1 + seq % 3, 'EUR', 'USD', 'CHF'),
             CONCAT('SKU-', LPAD((seq * 31) % 60000, 6, '0')), 1 + seq % 9,
             IF(seq % 4 = 0, NULL, CONCAT('deliver to ', ELT(1 + seq % 7, 'Zürich', 'Basel', 'Bern', 'Genève', 'Lugano', 'Chur', 'Sion'),
                                        ', door ', seq % 500, IF(seq % 10 = 1, ', call before arrival', ''))),
             '2024-01-01' + INTERVAL ((seq * 13) % 63072000) SECOND,
             '2024-01-01' + INTERVAL ((seq * 13) % 63072000 + seq % 86400) SECOND
      FROM bench.seq_${from}_to_${to}`);
  }
}

/** Everything a benchmark needs: the server with the dataset, Temporal, a worker, configs. */
export interface BenchContext {
  server: MariadbSandbox;
  conn: Connection;
  temporal: DevServer;
  work: string;
  /** A client defaults file for the peers (0600, in the run folder). */
  cnf: string;
  configFor: (name: string) => DbopsConfig;
  /** Runs fn with a worker serving that config's task queue. */
  withWorker: <T>(config: DbopsConfig, fn: () => Promise<T>) => Promise<T>;
  close: () => Promise<void>;
}

export async function benchContext(log: (s: string) => void): Promise<BenchContext> {
  mkdirSync(BENCH_DIR, { recursive: true });
  const logger = pino({ level: 'warn' }, pino.destination(2));
  installRuntimeLogger(logger);
  const server = await benchServer();
  const temporal = await startTemporalDevServer();
  const work = path.join(BENCH_DIR, `run-${Date.now()}`);
  mkdirSync(work, { recursive: true });
  const conn = await root(server);
  await ensureReferenceDataset(conn, log);
  const password = 'bench-' + Math.random().toString(36).slice(2);
  await createBackupUser(conn, 'dbops', password);
  await createRestoreUser(conn, 'dbops_restore', password);
  const passwordFile = path.join(work, 'password');
  writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
  const cnf = path.join(work, 'client.cnf');
  writeFileSync(cnf, `[client]\nuser=dbops_restore\npassword=${password}\nhost=127.0.0.1\nport=${server.port}\nprotocol=TCP\n`, { mode: 0o600 });
  let queues = 0;
  const configFor = (name: string): DbopsConfig => {
    const file = path.join(work, `${name}.yaml`);
    writeFileSync(
      file,
      toYaml({
        temporal: { address: temporal.address, namespace: 'default', taskQueue: `bench-${name}-${++queues}` },
        repository: { path: path.join(work, name), compression: 'zstd' },
        clusters: [
          {
            name: 'bench',
            host: '127.0.0.1',
            port: server.port,
            user: 'dbops',
            password: { file: passwordFile },
            restoreUser: 'dbops_restore',
            restorePassword: { file: passwordFile },
            databases: ['bench'],
          },
        ],
      }),
    );
    return loadConfig(file);
  };
  const withWorker = async <T>(config: DbopsConfig, fn: () => Promise<T>): Promise<T> => {
    const { worker, close } = await createWorker({ config, logger, connection: temporal.nativeConnection });
    try {
      return await worker.runUntil(fn);
    } finally {
      await close();
    }
  };
  const close = async () => {
    await conn.end();
    await temporal.teardown();
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  };
  return { server, conn, temporal, work, cnf, configFor, withWorker, close };
}

/** Chunked UPDATE passes over bench.orders until at least `bytes` of binlog follow `fromFile`. */
export async function writeBinlog(conn: Connection, fromFile: string, bytes: number, log: (s: string) => void): Promise<Array<{ name: string; size: number }>> {
  const since = async () => {
    await conn.query('FLUSH BINARY LOGS');
    const [list] = (await conn.query('SHOW BINARY LOGS')) as unknown as [Array<{ Log_name: string; File_size: string }>];
    const all = list.map((r) => ({ name: r.Log_name, size: Number(r.File_size) }));
    return all.slice(all.findIndex((f) => f.name === fromFile), -1);
  };
  let files = await since();
  for (let pass = 1; files.reduce((n, f) => n + f.size, 0) < bytes; pass++) {
    log(`writing binlog: update pass ${pass}`);
    for (let from = 1; from <= REFERENCE_ROWS; from += 200_000) {
      await conn.query(
        `UPDATE bench.orders SET status = ELT(1 + (id + ${pass}) % 6, 'new','paid','shipped','delivered','cancelled','refunded'),
                updated_at = updated_at + INTERVAL 1 MINUTE WHERE id BETWEEN ${from} AND ${from + 199_999}`,
      );
    }
    files = await since();
  }
  return files;
}
