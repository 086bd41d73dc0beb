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
import type { Product } from '../src/domain/manifest';
import type { LocalServer } from '../src/mysql/servers/local';
import { startMariadbSandbox } from '../src/mysql/servers/mariadb';
import { mysqlToolPath, mysqlUnavailableReason, startMysqlSandbox } from '../src/mysql/servers/mysql';
import { createBackupUser, createRestoreUser } from '../src/dev/sampleData';
import { childEnv } from '../src/tools/tools';
import { startTemporalDevServer } from '../src/dev/temporalServer';
import { createWorker, installRuntimeLogger } from '../src/workers/worker';

export const BENCH_DIR = path.resolve(__dirname, '..', ...(__dirname.includes(`${path.sep}dist${path.sep}`) ? ['..'] : []), 'bench', 'data');

export const PRODUCT_NAME: Record<Product, string> = { mariadb: 'MariaDB', mysql: 'MySQL' };

/** The server binary's own version line, e.g. "MariaDB 10.11.19-MariaDB-0+deb12u1 (Debian 12)". */
function serverVersion(product: Product): string {
  const line =
    product === 'mysql'
      ? execFileSync(mysqlToolPath('mysqld'), ['--version'], { encoding: 'utf8', env: childEnv() })
      : execFileSync('mariadbd', ['--version'], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin` } });
  return `${PRODUCT_NAME[product]} ${line.trim().replace(/^.*Ver /, '').replace(/ for \S+ on \S+/, '')}`;
}

export function machine(products: Product[] = ['mariadb']): string {
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  return `${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; ${products.map(serverVersion).join('; ')}; node ${process.version}`;
}

/** Quotes one word for bash. */
export function q(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
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

/**
 * The bench server of a product: a private server in bench/data/<product>, kept between runs
 * (the dataset takes minutes). Both get the same buffer pool, redo log size and binlog file
 * size; MySQL 9 sizes its redo log with innodb_redo_log_capacity (innodb_log_file_size is gone).
 * A smoke run keeps its small dataset in a server of its own (bench/data/smoke/<product>),
 * so it never replaces the reference rows.
 */
export async function benchServer(product: Product = 'mariadb', baseDir: string = path.join(BENCH_DIR, product)): Promise<LocalServer> {
  if (product === 'mysql') {
    return startMysqlSandbox({
      baseDir,
      serverId: 22,
      extraArgs: ['--innodb-buffer-pool-size=2G', '--innodb-redo-log-capacity=512M', '--max-binlog-size=256M'],
    });
  }
  return startMariadbSandbox({
    baseDir,
    serverId: 21,
    extraArgs: ['--innodb-buffer-pool-size=2G', '--innodb-log-file-size=512M', '--max-binlog-size=256M'],
  });
}

/** root on the bench server: MariaDB's over its socket, MySQL's over TCP 127.0.0.1 (the way dbops and the peers reach it). */
export async function root(server: LocalServer, product: Product = 'mariadb'): Promise<Connection> {
  return product === 'mysql' ? createConnection({ host: '127.0.0.1', port: server.port, user: 'root' }) : createConnection({ socketPath: server.socket, user: 'root' });
}

/** The products' own client tools, as the peers run them. */
export interface PeerTools {
  dump: string;
  binlog: string;
  client: string;
}

export function peerTools(product: Product): PeerTools {
  return product === 'mysql'
    ? { dump: mysqlToolPath('mysqldump'), binlog: mysqlToolPath('mysqlbinlog'), client: mysqlToolPath('mysql') }
    : { dump: 'mariadb-dump', binlog: 'mariadb-binlog', client: 'mariadb' };
}

/** Fails, saying why, when a benchmark asks for MySQL and this host cannot run it. */
export function checkProductAvailable(product: Product): void {
  const reason = product === 'mysql' ? mysqlUnavailableReason() : null;
  if (reason) throw new Error(reason);
}

export const REFERENCE_ROWS = 4_000_000;

/** A smoke run's dataset when --smoke gives no row count: enough rows to exercise every step, small enough to take seconds. */
export const SMOKE_ROWS = 20_000;

/**
 * Options every suite is handed. `smokeRows` is set only by --smoke: the suite then runs
 * end to end on that many rows, to prove it works; its figures measure nothing and are never
 * recorded in bench/RESULTS.md.
 */
export interface SuiteOptions {
  smokeRows?: number;
}

/** One order row from its id `seq`, the same SQL on both products. */
const ORDER_ROW = `seq, 1 + (seq * 7919) % 250000,
             ELT(1 + seq % 6, 'new','paid','shipped','delivered','cancelled','refunded'),
             ((seq * 37) % 250000) / 100 + 1, ELT(1 + seq % 3, 'EUR', 'USD', 'CHF'),
             CONCAT('SKU-', LPAD((seq * 31) % 60000, 6, '0')), 1 + seq % 9,
             IF(seq % 4 = 0, NULL, CONCAT('deliver to ', ELT(1 + seq % 7, 'Zürich', 'Basel', 'Bern', 'Genève', 'Lugano', 'Chur', 'Sion'),
                                        ', door ', seq % 500, IF(seq % 10 = 1, ', call before arrival', ''))),
             '2024-01-01' + INTERVAL ((seq * 13) % 63072000) SECOND,
             '2024-01-01' + INTERVAL ((seq * 13) % 63072000 + seq % 86400) SECOND`;

/**
 * The reference dataset: `bench.orders` with 4 million rows (or a smoke run's `rows`) shaped like an order table
 * (customer, status, amount, SKU, a delivery note that is NULL a quarter of the time,
 * timestamps over two years), generated server-side in id order, the same rows on both
 * products. MariaDB numbers them with its sequence engine (`seq_1_to_N`); MySQL has none,
 * so there a recursive CTE counts each chunk (its recursion limit raised to the chunk for
 * the session). Neither leaves a helper table behind in `bench` for the dumps to carry.
 */
export async function ensureReferenceDataset(conn: Connection, log: (s: string) => void, product: Product = 'mariadb', rows: number = REFERENCE_ROWS): Promise<void> {
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
  if (Number(n) >= rows) return;
  log(`generating ${rows.toLocaleString()} order rows on ${PRODUCT_NAME[product]} (once; kept in bench/data)`);
  await conn.query('TRUNCATE bench.orders');
  const chunk = 500_000;
  if (product === 'mysql') await conn.query(`SET SESSION cte_max_recursion_depth = ${chunk}`);
  for (let from = 1; from <= rows; from += chunk) {
    const to = Math.min(rows, from + chunk - 1);
    await conn.query(
      product === 'mysql'
        ? `INSERT INTO bench.orders
             WITH RECURSIVE s (seq) AS (SELECT CAST(${from} AS UNSIGNED) UNION ALL SELECT seq + 1 FROM s WHERE seq < ${to})
             SELECT ${ORDER_ROW} FROM s`
        : `INSERT INTO bench.orders SELECT ${ORDER_ROW} FROM bench.seq_${from}_to_${to}`,
    );
  }
}

/** Everything a benchmark needs: the server with the dataset, Temporal, a worker, configs. */
export interface BenchContext {
  product: Product;
  server: LocalServer;
  conn: Connection;
  /** The product's own client tools, for the peers. */
  tools: PeerTools;
  temporal: DevServer;
  work: string;
  /** A client defaults file for the peers (0600, in the run folder). */
  cnf: string;
  /** A config whose repository is the folder `name` in the run folder, or `repository` when given (a bucket, say). */
  configFor: (name: string, repository?: Record<string, unknown>, cluster?: Record<string, unknown>) => DbopsConfig;
  /** Runs fn with a worker serving that config's task queue. */
  withWorker: <T>(config: DbopsConfig, fn: () => Promise<T>) => Promise<T>;
  close: () => Promise<void>;
}

export async function benchContext(log: (s: string) => void, product: Product = 'mariadb', options: SuiteOptions = {}): Promise<BenchContext> {
  checkProductAvailable(product);
  mkdirSync(BENCH_DIR, { recursive: true });
  const logger = pino({ level: 'warn' }, pino.destination(2));
  installRuntimeLogger(logger);
  const server = await benchServer(product, options.smokeRows === undefined ? undefined : path.join(BENCH_DIR, 'smoke', product));
  const temporal = await startTemporalDevServer();
  const work = path.join(BENCH_DIR, `run-${Date.now()}`);
  mkdirSync(work, { recursive: true });
  const conn = await root(server, product);
  await ensureReferenceDataset(conn, log, product, options.smokeRows);
  await purgeOldBinlogs(conn);
  const password = 'bench-' + Math.random().toString(36).slice(2);
  await createBackupUser(conn, 'dbops', password, '%', product);
  await createRestoreUser(conn, 'dbops_restore', password);
  // Physical MySQL fulls clone the server (the physical suite).
  if (product === 'mysql') await conn.query("INSTALL PLUGIN clone SONAME 'mysql_clone.so'").catch((error: { errno?: number }) => {
    if (error.errno !== 1125) throw error; // already installed
  });
  const passwordFile = path.join(work, 'password');
  writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
  const cnf = path.join(work, 'client.cnf');
  writeFileSync(cnf, `[client]\nuser=dbops_restore\npassword=${password}\nhost=127.0.0.1\nport=${server.port}\nprotocol=TCP\n`, { mode: 0o600 });
  let queues = 0;
  const configFor = (name: string, repository?: Record<string, unknown>, cluster: Record<string, unknown> = {}): DbopsConfig => {
    const file = path.join(work, `${name}.yaml`);
    writeFileSync(
      file,
      toYaml({
        temporal: { address: temporal.address, namespace: 'default', taskQueue: `bench-${name}-${++queues}` },
        repository: repository ?? { path: path.join(work, name), compression: 'zstd' },
        clusters: [
          {
            name: 'bench',
            product,
            ...(product === 'mysql' ? { tools: { dump: mysqlToolPath('mysqldump'), client: mysqlToolPath('mysql'), binlog: mysqlToolPath('mysqlbinlog') } } : {}),
            host: '127.0.0.1',
            port: server.port,
            user: 'dbops',
            password: { file: passwordFile },
            restoreUser: 'dbops_restore',
            restorePassword: { file: passwordFile },
            databases: ['bench'],
            ...cluster,
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
  return { product, server, conn, tools: peerTools(product), temporal, work, cnf, configFor, withWorker, close };
}

/**
 * Drops the binlogs earlier runs left (each backup run writes over 1 GB of them), so the
 * kept server in bench/data does not grow run after run. Nothing reads them: every run
 * starts from a full of its own.
 */
async function purgeOldBinlogs(conn: Connection): Promise<void> {
  await conn.query('FLUSH BINARY LOGS');
  const [list] = (await conn.query('SHOW BINARY LOGS')) as unknown as [Array<{ Log_name: string }>];
  const current = list[list.length - 1]?.Log_name;
  if (current) await conn.query('PURGE BINARY LOGS TO ?', [current]);
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
