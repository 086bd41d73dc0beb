/**
 * Starts what the whole test run shares: ONE private MariaDB (temp datadir, binlog ROW,
 * server id, GTID), ONE S3-compatible server (S3Proxy over a temp folder, loopback only,
 * one bucket) and ONE Temporal dev server (the project's pinned CLI, free ports, the
 * custom search attributes registered), and bundles the workflows once. Stopped by
 * globalTeardown, also when tests fail.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { createConnection } from 'mysql2/promise';
import { startMariadbSandbox } from '../../src/mysql/servers/mariadb';
import { createBackupUser, createRestoreUser } from '../../src/dev/sampleData';
import { s3ServerAvailable, startS3Server } from '../../src/dev/s3Server';
import { startTemporalDevServer } from '../../src/dev/temporalServer';
import { WORKFLOWS_PATH } from '../../src/workers/worker';
import globalTeardown from './globalTeardown';
import { HARNESS_ENV, type HarnessState, type HarnessHandles, type S3Info, type ServerInfo } from './state';
import type { Product } from '../../src/domain/manifest';
import type { LocalServer } from '../../src/mysql/servers/local';
import { mysqlAvailable, mysqlToolPath, startMysqlSandbox } from '../../src/mysql/servers/mysql';

export default async function globalSetup(): Promise<void> {
  const baseDir = mkdtempSync(path.join(tmpdir(), 'dbops-test-'));
  const handles: HarnessHandles = { baseDir };
  (globalThis as { __DBOPS_HARNESS__?: HarnessHandles }).__DBOPS_HARNESS__ = handles;
  try {
    await start(handles);
  } catch (error) {
    // Jest skips globalTeardown when globalSetup throws: stop what did start.
    await globalTeardown();
    throw error;
  }
}

async function start(handles: HarnessHandles): Promise<void> {
  const { baseDir } = handles;

  const mariadb = await startMariadbSandbox({ baseDir: path.join(baseDir, 'mariadb'), serverId: 11 });
  handles.mariadb = mariadb;
  const mariadbInfo = await createAccounts(baseDir, 'mariadb', mariadb, { socketPath: mariadb.socket, user: 'root' });

  let mysqlInfo: ServerInfo | undefined;
  if (mysqlAvailable() && process.env.DBOPS_SKIP_MYSQL !== '1') {
    const mysql = await startMysqlSandbox({ baseDir: path.join(baseDir, 'mysql'), serverId: 21 });
    handles.mysql = mysql;
    mysqlInfo = {
      ...(await createAccounts(baseDir, 'mysql', mysql, { host: mysql.host, port: mysql.port, user: 'root' })),
      tools: { dump: mysqlToolPath('mysqldump'), client: mysqlToolPath('mysql'), binlog: mysqlToolPath('mysqlbinlog') },
    };
  } else {
    console.warn('MySQL is not installed for the project (scripts/setup.sh as root) or DBOPS_SKIP_MYSQL=1: the integration tests run on MariaDB only');
  }

  let s3Info: S3Info | undefined;
  if (s3ServerAvailable()) {
    const s3 = await startS3Server({ baseDir: path.join(baseDir, 's3'), bucket: 'dbops-test' });
    handles.s3 = s3;
    const { endpoint, region, bucket, accessKeyIdFile, secretAccessKeyFile, dataDir } = s3;
    s3Info = { endpoint, region, bucket, accessKeyIdFile, secretAccessKeyFile, dataDir };
  } else {
    console.warn('S3Proxy or Java 17 is not installed for the project (scripts/setup.sh): the S3 storage tests cannot run');
  }

  const env = await startTemporalDevServer({ ui: true });
  handles.temporal = env;

  const bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } });
  const bundlePath = path.join(baseDir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);

  const state: HarnessState = {
    baseDir,
    temporalAddress: env.address,
    uiUrl: env.uiUrl ?? '',
    namespace: 'default',
    workflowBundlePath: bundlePath,
    mariadb: mariadbInfo,
    ...(mysqlInfo ? { mysql: mysqlInfo } : {}),
    ...(s3Info ? { s3: s3Info } : {}),
  };
  const stateFile = path.join(baseDir, 'harness.json');
  writeFileSync(stateFile, JSON.stringify(state, null, 2));
  process.env[HARNESS_ENV] = stateFile;
}

/** The backup account (read-only) and the restore administrator, with their passwords in 0600 files. */
async function createAccounts(baseDir: string, product: Product, server: LocalServer, root: Parameters<typeof createConnection>[0]): Promise<ServerInfo> {
  const password = 'pw-' + Math.random().toString(36).slice(2);
  const passwordFile = path.join(baseDir, `${product}-dbops.password`);
  const restorePasswordFile = path.join(baseDir, `${product}-dbops_restore.password`);
  writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
  writeFileSync(restorePasswordFile, password + '-r\n', { mode: 0o600 });
  const conn = await createConnection(root);
  try {
    await createBackupUser(conn, 'dbops', password, '%', product);
    await createRestoreUser(conn, 'dbops_restore', password + '-r');
    // Physical MySQL backups clone the server: the plugin is the administrator's to install.
    if (product === 'mysql') await conn.query("INSTALL PLUGIN clone SONAME 'mysql_clone.so'").catch((error: { errno?: number }) => {
      if (error.errno !== 1125) throw error; // already installed
    });
  } finally {
    await conn.end();
  }
  return { product, host: server.host, port: server.port, socket: server.socket, datadir: server.datadir, user: 'dbops', passwordFile, restoreUser: 'dbops_restore', restorePasswordFile };
}
