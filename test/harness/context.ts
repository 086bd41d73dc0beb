/** Helpers for test files: the shared servers, per-file configs, workers and the CLI. */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createConnection, type Connection as MysqlConnection, type RowDataPacket } from 'mysql2/promise';
import pino from 'pino';
import { stringify as toYaml } from 'yaml';
import { parseConfig } from '../../src/config/load';
import type { DbopsConfig } from '../../src/config/schema';
import { createWorker, installRuntimeLogger } from '../../src/workers/worker';
import { openRepository } from '../../src/repository';
import { createS3Client } from '../../src/tools/s3Client';
import { HARNESS_ENV, type HarnessState, type S3Info, type ServerInfo } from './state';
import type { Product } from '../../src/domain/manifest';
import type { LocalServer } from '../../src/mysql/servers/local';
import { startMariadbSandbox } from '../../src/mysql/servers/mariadb';
import { mysqlToolPath, startMysqlSandbox } from '../../src/mysql/servers/mysql';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(PROJECT_ROOT, 'dist', 'src', 'client', 'cli.js');

export function harness(): HarnessState {
  const file = process.env[HARNESS_ENV];
  if (!file) throw new Error(`${HARNESS_ENV} is not set: run the tests with npm test (jest globalSetup starts the servers)`);
  return JSON.parse(readFileSync(file, 'utf8')) as HarnessState;
}

/** The products the integration tests run on: MariaDB always, MySQL where it is installed. */
export function products(): Product[] {
  const h = harness();
  return h.mysql ? ['mariadb', 'mysql'] : ['mariadb'];
}

/** The shared server of a product. */
export function server(product: Product = 'mariadb'): ServerInfo {
  const h = harness();
  const s = product === 'mysql' ? h.mysql : h.mariadb;
  if (!s) throw new Error('MySQL is not part of this test run (scripts/setup.sh as root installs it; DBOPS_SKIP_MYSQL unset)');
  return s;
}

/** The shared S3-compatible server (bucket, endpoint, credential files). */
export function s3Server(): S3Info {
  const s3 = harness().s3;
  if (!s3) throw new Error('the S3 server is not part of this test run: scripts/setup.sh installs S3Proxy and Java 17 (see its `[setup] s3:` line)');
  return s3;
}

export const quietLogger = pino({ level: process.env.DBOPS_TEST_LOG_LEVEL ?? 'silent' });

export interface TestSetup {
  config: DbopsConfig;
  configPath: string;
  dir: string;
  /** The repository's encryption key file, when the config has one. */
  keyFile?: string;
}

function s3Client() {
  const s3 = s3Server();
  return createS3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: readFileSync(s3.accessKeyIdFile, 'utf8').trim(), secretAccessKey: readFileSync(s3.secretAccessKeyFile, 'utf8').trim() },
  });
}

/** Every object in the test bucket under a prefix (or that one key), with its bytes: what someone holding the bucket sees. */
export async function s3Objects(prefix: string): Promise<Array<{ key: string; body: Buffer }>> {
  const client = s3Client();
  const out: Array<{ key: string; body: Buffer }> = [];
  try {
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: s3Server().bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const got = await client.send(new GetObjectCommand({ Bucket: s3Server().bucket, Key: o.Key! }));
        out.push({ key: o.Key!, body: Buffer.from(await got.Body!.transformToByteArray()) });
      }
      token = page.NextContinuationToken;
    } while (token);
    return out;
  } finally {
    client.destroy();
  }
}

/** The multipart uploads in progress under a prefix, with how many parts each has stored. */
export async function s3Uploads(prefix: string): Promise<Array<{ key: string; parts: number }>> {
  const client = s3Client();
  try {
    const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: s3Server().bucket, Prefix: prefix }));
    const out: Array<{ key: string; parts: number }> = [];
    for (const u of listed.Uploads ?? []) {
      const parts = await client.send(new ListPartsCommand({ Bucket: s3Server().bucket, Key: u.Key!, UploadId: u.UploadId! }));
      out.push({ key: u.Key!, parts: parts.Parts?.length ?? 0 });
    }
    return out;
  } finally {
    client.destroy();
  }
}

/** Writes (or, with null, deletes) one object behind dbops's back: the damage a test inflicts. */
export async function s3Put(key: string, body: Buffer | null): Promise<void> {
  const client = s3Client();
  try {
    if (body === null) await client.send(new DeleteObjectCommand({ Bucket: s3Server().bucket, Key: key }));
    else await client.send(new PutObjectCommand({ Bucket: s3Server().bucket, Key: key, Body: body }));
  } finally {
    client.destroy();
  }
}

/** A config for the shared MariaDB with its own repository and task queue. */
export function makeTestConfig(
  name: string,
  extra: {
    databases?: string[];
    compression?: 'zstd' | 'gzip' | 'none';
    compressionLevel?: number;
    approval?: { timeout: string; escalateAfter: string[] };
    cluster?: string;
    /** The shared server to use (default MariaDB). */
    product?: Product;
    /** More cluster names for the same server (e.g. to exercise cross-cluster paths). */
    aliases?: string[];
    archiveJobs?: unknown[];
    allowSelfApproval?: string[];
    /** Keep the repository in the shared S3 server (under a fresh prefix, or the one given) instead of a folder. */
    s3?: true | { prefix: string };
    /** Seal the repository with a fresh key (or the key file given), id k1. */
    encrypted?: true | { keyFile: string };
    /** Last word on the raw YAML document (top-level sections, broken clusters, ...). */
    mutate?: (raw: Record<string, unknown>) => void;
  } = {},
): TestSetup {
  const h = harness();
  const db = server(extra.product);
  const dir = mkdtempSync(path.join(h.baseDir, `${name}-`));
  const clusterFor = (name: string) => ({
    name,
    host: db.host,
    port: db.port,
    user: db.user,
    password: { file: db.passwordFile },
    restoreUser: db.restoreUser,
    restorePassword: { file: db.restorePasswordFile },
    ...(db.tools ? { tools: db.tools } : {}),
    approvers: { 'restore-swap': ['alice', 'bob'], 'archive-delete': ['alice', 'bob'] },
    // The suites use --yes (the requester approving their own archive run); the four-eyes tests configure without it.
    allowSelfApproval: extra.allowSelfApproval ?? ['archive-delete'],
    ...(extra.databases ? { databases: extra.databases } : {}),
  });
  let keyFile: string | undefined;
  if (extra.encrypted === true) {
    keyFile = path.join(dir, 'repository.key');
    writeFileSync(keyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  } else if (extra.encrypted) keyFile = extra.encrypted.keyFile;
  const raw = {
    temporal: { address: h.temporalAddress, namespace: h.namespace, taskQueue: `dbops-test-${name}-${path.basename(dir)}` },
    repository: {
      ...(extra.s3
        ? {
            s3: {
              endpoint: s3Server().endpoint,
              region: s3Server().region,
              bucket: s3Server().bucket,
              prefix: extra.s3 === true ? `t/${path.basename(dir)}` : extra.s3.prefix,
              pathStyle: true,
              accessKeyId: { file: s3Server().accessKeyIdFile },
              secretAccessKey: { file: s3Server().secretAccessKeyFile },
            },
          }
        : { path: path.join(dir, 'repository') }),
      ...(keyFile ? { encryption: { current: 'k1', keys: { k1: { file: keyFile } } } } : {}),
      compression: extra.compression ?? 'zstd',
      ...(extra.compressionLevel ? { compressionLevel: extra.compressionLevel } : {}),
    },
    clusters: [clusterFor(extra.cluster ?? 'test'), ...(extra.aliases ?? []).map(clusterFor)],
    logging: { level: 'warn' },
    ...(extra.approval ? { approval: extra.approval } : {}),
    ...(extra.archiveJobs ? { archive: { jobs: extra.archiveJobs } } : {}),
  };
  extra.mutate?.(raw);
  const configPath = path.join(dir, 'dbops.yaml');
  const text = toYaml(raw);
  writeFileSync(configPath, text);
  return { config: parseConfig(text, configPath, dir), configPath, dir, ...(keyFile ? { keyFile } : {}) };
}

/** root on a shared server (MariaDB by default; a product name or a socket path picks another). */
export async function rootConnection(on: Product | string = 'mariadb'): Promise<MysqlConnection> {
  const options = { user: 'root', multipleStatements: true, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true } as const;
  if (on === 'mysql') {
    const s = server('mysql');
    return createConnection({ ...options, host: s.host, port: s.port });
  }
  return createConnection({ ...options, socketPath: on === 'mariadb' ? server('mariadb').socket : on });
}

/** One query as root on a shared server, on its own connection. */
export async function sqlOn(product: Product, query: string, params: unknown[] = []): Promise<RowDataPacket[]> {
  const conn = await rootConnection(product);
  try {
    return (await conn.query<RowDataPacket[]>(query, params))[0];
  } finally {
    await conn.end();
  }
}

/** Per-table checksums of a database on a shared server (see tableChecksums). */
export async function checksumsOn(product: Product, database: string): Promise<Record<string, string>> {
  const conn = await rootConnection(product);
  try {
    return await tableChecksums(conn, database);
  } finally {
    await conn.end();
  }
}

/** A Temporal client; `identity` makes it a different caller (an approver is not the requester). */
export async function temporalClient(options: { identity?: string } = {}): Promise<{ client: Client; close: () => Promise<void> }> {
  const h = harness();
  const connection = await Connection.connect({ address: h.temporalAddress });
  return { client: new Client({ connection, namespace: h.namespace, ...(options.identity ? { identity: options.identity } : {}) }), close: () => connection.close() };
}

/** Runs fn with a client whose identity is a person's own (approvals come from somebody other than the requester). */
export async function asPerson<T>(name: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const { client, close } = await temporalClient({ identity: `dbops-cli/${name}@jest` });
  try {
    return await fn(client);
  } finally {
    await close();
  }
}

/** Runs fn while an in-process worker (pre-built bundle) serves the config's task queue. */
export async function withWorker<T>(config: DbopsConfig, fn: () => Promise<T>): Promise<T> {
  const h = harness();
  installRuntimeLogger(quietLogger); // before the first native connection creates the runtime
  const connection = await NativeConnection.connect({ address: h.temporalAddress });
  try {
    const { worker, close } = await createWorker({ config, logger: quietLogger, connection, workflowBundle: { codePath: h.workflowBundlePath } });
    try {
      return await worker.runUntil(fn);
    } finally {
      await close();
    }
  } finally {
    await connection.close();
  }
}

export type { Worker };

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function requireBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} missing: npm test compiles first (pretest); or run npm run build`);
}

/**
 * Runs the CLI as an operator would. Each person has their own client: with `--as NAME` the
 * Temporal identity is NAME's (dbops-cli/NAME@jest), as if NAME ran it on their own machine.
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  requireBuilt();
  const as = args.indexOf('--as');
  const identity = as >= 0 && args[as + 1] ? { DBOPS_CLIENT_IDENTITY: `dbops-cli/${args[as + 1]}@jest` } : {};
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...identity, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The worker as a separate OS process (`dbops worker`), so a test can SIGKILL it. */
export function spawnCliWorker(configPath: string, logFile: string) {
  requireBuilt();
  mkdirSync(path.dirname(logFile), { recursive: true });
  const out = require('node:fs').openSync(logFile, 'a') as number;
  return spawn(process.execPath, [CLI, 'worker', '--config', configPath], { stdio: ['ignore', out, out] });
}

/** CHECKSUM TABLE ... EXTENDED for every base table of a database, by name. */
export async function tableChecksums(conn: MysqlConnection, database: string): Promise<Record<string, string>> {
  const [tables] = await conn.query<RowDataPacket[]>(
    "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    [database],
  );
  const result: Record<string, string> = {};
  for (const { t } of tables) {
    const [rows] = await conn.query<RowDataPacket[]>(`CHECKSUM TABLE \`${database}\`.\`${String(t)}\` EXTENDED`);
    result[String(t)] = String(rows[0]?.Checksum);
  }
  return result;
}

/** Loads a stored dump artifact into a server the way an operator would: zstd -dc | mariadb. */
/** Where a dump is loaded by hand: a shared or scratch server of a product. */
export interface LoadTarget {
  product: Product;
  socket: string;
  host: string;
  port: number;
}

/** Decompresses a dump artifact and loads it with the product's own client, as root (the way an operator would). */
export function loadDump(artifactPath: string, target: LoadTarget): void {
  const decompress = artifactPath.endsWith('.zst') ? `zstd -dc ${JSON.stringify(artifactPath)}` : artifactPath.endsWith('.gz') ? `gzip -dc ${JSON.stringify(artifactPath)}` : `cat ${JSON.stringify(artifactPath)}`;
  const client =
    target.product === 'mysql'
      ? `${JSON.stringify(mysqlToolPath('mysql'))} --no-defaults -uroot -h127.0.0.1 -P${target.port}`
      : `mariadb --no-defaults -uroot -S ${JSON.stringify(target.socket)}`;
  const result = spawnSync('bash', ['-o', 'pipefail', '-c', `${decompress} | ${client}`], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`loading ${artifactPath} failed: ${result.stderr}`);
}

/** A fresh server of a product for the test to load into (stopped by the caller). */
export async function scratchServer(product: Product, baseDir: string, serverId: number): Promise<LoadTarget & LocalServer> {
  const started = product === 'mysql' ? await startMysqlSandbox({ baseDir, serverId }) : await startMariadbSandbox({ baseDir, serverId });
  return Object.assign(started, { product });
}

/** root on a scratch server. */
export async function rootConnectionTo(target: LoadTarget): Promise<MysqlConnection> {
  const options = { user: 'root', multipleStatements: true, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true } as const;
  return target.product === 'mysql' ? createConnection({ ...options, host: '127.0.0.1', port: target.port }) : createConnection({ ...options, socketPath: target.socket });
}

/**
 * Makes the cluster busy for as long as the test wants: a workflow that runs (on a task queue
 * nobody polls) holds the cluster's backup lock. Terminate the handle and the lock is stale.
 */
export async function holdClusterLock(client: Client, config: DbopsConfig, cluster: string, operation = 'full backup', since = new Date().toISOString()) {
  const holder = await client.workflow.start('fullBackupWorkflow', {
    taskQueue: 'nobody-polls-this-queue',
    workflowId: `holder-${cluster}-${Date.now()}`,
    args: [{ cluster }],
  });
  const held = await openRepository(config).locks.tryAcquire(cluster, {
    workflowId: holder.workflowId,
    runId: holder.firstExecutionRunId,
    operation,
    since,
  });
  if (held) throw new Error(`cluster ${cluster} is already locked by ${held.workflowId}`);
  return holder;
}
