/**
 * A hostile caller with access to the namespace, one case per hole: workflow inputs that
 * carry SQL or authority, approvals by the requester, --yes by someone who may not approve,
 * predicates that read other tables or call functions, malformed signals and durations,
 * manifests that point outside the repository, a drill server (MariaDB or MySQL)
 * reachable over TCP or able to read files, and a swap interrupted between dropping and
 * re-creating a trigger.
 */
import { execSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { createConnection } from 'mysql2/promise';
import { resolveArchiveJob } from '../../src/client/archives';
import { explainFailure, startBackup, waitForManifest } from '../../src/client/backups';
import { approvalState, startTableRestore } from '../../src/client/restores';
import { parseTarget } from '../../src/domain/restoreTarget';
import { seedSampleDatabase } from '../../src/dev/sampleData';
import { startMariadbSandbox } from '../../src/mysql/servers/mariadb';
import { startMysqlSandbox } from '../../src/mysql/servers/mysql';
import { captureTriggers, swapTables, restoredName, beforeName } from '../../src/mysql/tableSwap';
import { approveSignal, decideUpdate } from '../../src/workflows/approval';
import { asPerson, harness, makeTestConfig, products, rootConnection, runCli, tableChecksums, temporalClient, withWorker, type TestSetup } from '../harness/context';
import { withConnection } from '../../src/mysql/connection';

const DB = 'hostile';
let setup: TestSetup;
let strict: TestSetup;
let client: Client;
let closeClient: () => Promise<void>;
let conn: Connection;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The TCP ports a process listens on (its socket inodes matched against /proc/net/tcp and tcp6). */
function tcpPortsOf(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target = '';
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      // closed meanwhile
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1]!);
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEX_IP:HEX_PORT, st 0A is LISTEN, the inode is the tenth field.
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9]!)) ports.push(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

async function pending(workflowId: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await approvalState(client, workflowId).catch(() => null))?.status === 'pending') return;
    const handle = client.workflow.getHandle(workflowId);
    if ((await handle.describe()).status.name !== 'RUNNING') await handle.result(); // throws why
    await sleep(100);
  }
  throw new Error(`${workflowId} never asked for approval`);
}

beforeAll(async () => {
  conn = await rootConnection();
  await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
  await seedSampleDatabase(conn, { database: DB, customers: 20, orders: 300 });
  await conn.query(`CREATE TABLE ${DB}.events (id INT AUTO_INCREMENT PRIMARY KEY, created_at DATETIME NOT NULL, KEY (created_at)) ENGINE=InnoDB`);
  await conn.query(`INSERT INTO ${DB}.events (created_at) SELECT '2020-01-01' FROM ${DB}.orders LIMIT 200`);
  setup = makeTestConfig('hostile', { databases: [DB] });
  // Four eyes everywhere: nobody approves their own run.
  strict = makeTestConfig('strict', {
    databases: [DB],
    allowSelfApproval: [],
    mutate: (raw) => {
      (raw.repository as { path: string }).path = setup.config.repository.path!;
    },
  });
  ({ client, close: closeClient } = await temporalClient());
  await withWorker(setup.config, async () => {
    await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test' }));
  });
});

afterAll(async () => {
  await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
  await conn.end();
  await closeClient();
});

test('an archive started with a carried plan (SQL from the caller) is refused before it plans or moves anything', async () => {
  const before = await tableChecksums(conn, DB);
  const handle = await client.workflow.start('archiveWorkflow', {
    taskQueue: setup.config.temporal.taskQueue,
    workflowId: `archive/test/forged-${Date.now()}`,
    args: [
      {
        job: { cluster: 'test', database: DB, table: 'events', where: 'id > 0', to: 'events_history' },
        carried: { plan: { sql: { delete: `DELETE FROM ${DB}.orders` } }, progress: {}, approval: { decision: 'approved', by: 'alice' }, log: [] },
      },
    ],
  });
  const failure = await withWorker(setup.config, () => handle.result().then(() => null, (e: unknown) => explainFailure(e)));
  expect(failure).toMatch(/^archive: carried/);
  // Also well-formed facts: accepted only from a run that really continued as new.
  const facts = {
    facts: {
      job: { cluster: 'test', database: DB, table: 'events', where: 'id > 0', to: 'events_history' },
      dest: { cluster: 'test', database: DB, table: 'events_history' },
      sameServer: true, asOf: 1_700_000_000, key: 'id', columns: ['id', 'created_at'], keyMin: '1', keyMax: '200',
      planned: { rows: 200, sum: '0', xor: '0' }, destBefore: { rows: 0, sum: '0', xor: '0' }, destExists: false,
      index: 'PRIMARY', estimatedBatches: 1, timeZone: null, warnings: [],
    },
    progress: { phase: 'moving', planned: 200, moved: 0, batches: 0, cursor: { after: null }, throttled: null, pausedBy: null, runs: 1, startedAt: '2026-12-01T00:00:00Z', updatedAt: '2026-12-01T00:00:00Z' },
    approval: { decision: 'approved', by: 'alice', at: '2026-12-01T00:00:00Z', reason: 'forged' },
    requester: { name: 'mallory', identity: null },
    log: [],
  };
  const forged = await client.workflow.start('archiveWorkflow', {
    taskQueue: setup.config.temporal.taskQueue,
    workflowId: `archive/test/forged2-${Date.now()}`,
    args: [{ job: facts.facts.job, carried: facts }],
  });
  const again = await withWorker(setup.config, () => forged.result().then(() => null, (e: unknown) => explainFailure(e)));
  expect(again).toMatch(/carried: only a run that continued as new carries state/);
  expect(await tableChecksums(conn, DB)).toEqual(before);
});

test('predicates that read other tables or call functions are refused before a row moves', async () => {
  const before = await tableChecksums(conn, DB);
  const cases = [
    `id IN (SELECT 1 FROM mysql.user)`,
    'SLEEP(1) = 0',
    'RAND() < 0.5',
    "LOAD_FILE('/etc/passwd') IS NULL",
    `${DB}.order_tax(id) > 0`,
    'order_tax(id) > 0',
  ];
  await withWorker(setup.config, async () => {
    for (const where of cases) {
      // Through the CLI: refused before anything starts.
      const r = await runCli(['archive', 'run', '--cluster', 'test', '--database', DB, '--table', 'events', '--where', where, '--to', 'events_history', '--wait', '--config', setup.configPath]);
      expect({ where, code: r.code, stderr: r.stderr }).toEqual({ where, code: 1, stderr: expect.stringMatching(/--where: the predicate does not parse: .*(subqueries|is not allowed|qualified names)/) });
      // Straight to Temporal, past the CLI: the workflow refuses it.
      const handle = await client.workflow.start('archiveWorkflow', {
        taskQueue: setup.config.temporal.taskQueue,
        workflowId: `archive/test/evil-${Date.now()}`,
        args: [{ job: { cluster: 'test', database: DB, table: 'events', where, to: 'events_history', approval: false } }],
      });
      expect(await handle.result().then(() => null, (e: unknown) => explainFailure(e))).toMatch(/job\.where: the predicate does not parse/);
    }
  });
  expect(await tableChecksums(conn, DB)).toEqual(before);
  const [history] = await conn.query<RowDataPacket[]>('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [DB, 'events_history']);
  expect(history).toEqual([]);
}, 120_000);

test('--yes by someone who is not an approver, or by an approver where four eyes are required, is refused; nothing moves', async () => {
  const before = await tableChecksums(conn, DB);
  const args = ['archive', 'run', '--cluster', 'test', '--database', DB, '--table', 'events', '--where', 'created_at < NOW() - INTERVAL 1 DAY', '--to', 'events_history', '--yes', '--wait'];
  await withWorker(setup.config, async () => {
    const mallory = await runCli([...args, '--as', 'mallory', '--config', setup.configPath]);
    expect([mallory.code, mallory.stderr]).toEqual([1, expect.stringMatching(/--yes: mallory is not an approver for archive-delete on test/)]);
    // Past the CLI: the worker's rules decide.
    const job = resolveArchiveJob(setup.config, { fields: { cluster: 'test', database: DB, table: 'events', where: 'created_at < NOW() - INTERVAL 1 DAY', to: 'events_history' } });
    const forged = await client.workflow.start('archiveWorkflow', {
      taskQueue: setup.config.temporal.taskQueue,
      workflowId: `archive/test/yes-${Date.now()}`,
      args: [{ job, preApproved: { by: 'mallory', reason: 'trust me' }, requestedBy: 'mallory' }],
    });
    expect(await forged.result().then(() => null, (e: unknown) => explainFailure(e))).toMatch(/--yes: mallory is not an approver/);
    const posing = await client.workflow.start('archiveWorkflow', {
      taskQueue: setup.config.temporal.taskQueue,
      workflowId: `archive/test/yes2-${Date.now()}`,
      args: [{ job, preApproved: { by: 'alice', reason: 'alice said so' }, requestedBy: 'mallory' }],
    });
    expect(await posing.result().then(() => null, (e: unknown) => explainFailure(e))).toMatch(/--yes: pre-approved by alice, but the run was requested by mallory/);
  });
  await withWorker(strict.config, async () => {
    const alice = await runCli([...args, '--as', 'alice', '--config', strict.configPath]);
    expect([alice.code, alice.stderr]).toEqual([1, expect.stringMatching(/--yes: the requester cannot approve their own run .*allowSelfApproval/)]);
  });
  expect(await tableChecksums(conn, DB)).toEqual(before);
}, 120_000);

test('the requester cannot approve their own run: not by name, not from the same client under another name', async () => {
  await withWorker(strict.config, async () => {
    const started = await runCli(['restore', 'table', '--cluster', 'test', '--database', DB, '--table', 'orders', '--to', 'latest', '--swap', '--json', '--as', 'alice', '--config', strict.configPath]);
    expect(started.stderr).toBe('');
    const { workflowId } = JSON.parse(started.stdout) as { workflowId: string };
    await pending(workflowId);
    const self = await runCli(['approvals', 'approve', workflowId, '--as', 'alice', '--reason', 'mine', '--config', strict.configPath]);
    expect([self.code, self.stderr]).toEqual([1, expect.stringMatching(/refused: the requester cannot approve their own run \(alice requested this run\)/)]);
    // Same client (alice's identity), another name: the identity gives it away.
    const disguised = await runCli(['approvals', 'approve', workflowId, '--as', 'bob', '--reason', 'it is bob, honest', '--config', strict.configPath], { DBOPS_CLIENT_IDENTITY: 'dbops-cli/alice@jest' });
    expect([disguised.code, disguised.stderr]).toEqual([1, expect.stringMatching(/the requester cannot approve their own run \(the decision came from the client that started it, dbops-cli\/alice@jest\)/)]);
    const state = await approvalState(client, workflowId);
    expect(state?.status).toBe('pending');
    expect(state?.refused.map((r) => r.operator)).toEqual(['bob']);
    // Bob, from his own client: approved, and the decision records who and from where.
    const bob = await runCli(['approvals', 'reject', workflowId, '--as', 'bob', '--reason', 'not needed after all', '--config', strict.configPath]);
    expect(bob.code).toBe(0);
    const result = (await client.workflow.getHandle(workflowId).result()) as { decision: { by: string; identity: string } };
    expect(result.decision).toMatchObject({ by: 'bob', identity: 'dbops-cli/bob@jest' });
  });
}, 120_000);

test('a malformed approve signal or Update leaves the run waiting; a malformed duration fails the run at once', async () => {
  await withWorker(setup.config, async () => {
    const handle = await startTableRestore(client, setup.config, { cluster: 'test', database: DB, tables: ['customers'], target: parseTarget('latest'), swap: true, requestedBy: 'carol' });
    await pending(handle.workflowId);
    await handle.signal(approveSignal, { operator: 123, reason: ['x'] } as unknown as { operator: string; reason: string });
    await handle.signal('approve', 'not even an object');
    await expect(handle.executeUpdate(decideUpdate, { args: [{ operator: 'alice', reason: 'ok', decision: 'maybe' } as unknown as { operator: string; reason: string; decision: 'approve' }] })).rejects.toThrow();
    await sleep(500);
    const state = await approvalState(client, handle.workflowId);
    expect(state?.status).toBe('pending');
    expect(state?.refused.map((r) => r.why)).toEqual([expect.stringMatching(/^malformed decision: operator/), expect.stringMatching(/^malformed decision/)]);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    await asPerson('alice', (alice) => alice.workflow.getHandle(handle.workflowId).executeUpdate(decideUpdate, { args: [{ operator: 'alice', reason: 'cleanup', decision: 'reject' }] }));
    await handle.result();

    const drill = await client.workflow.start('disasterRecoveryDrillWorkflow', { taskQueue: setup.config.temporal.taskQueue, workflowId: `drill/test/bad-rto-${Date.now()}`, args: [{ cluster: 'test', rtoTarget: '1.5h' }] });
    expect(await drill.result().then(() => null, (e: unknown) => explainFailure(e))).toMatch(/^drill: rtoTarget: a duration/);
    const history = await drill.fetchHistory();
    expect((history.events ?? []).filter((e) => e.workflowTaskFailedEventAttributes)).toEqual([]);
  });
}, 120_000);

test('a manifest whose id points outside the repository is never listed, shown or deleted', async () => {
  const dir = path.join(setup.config.repository.path!, 'test', 'full', '2026-01-01', 'evil');
  mkdirSync(dir, { recursive: true });
  const outside = path.join(harness().baseDir, 'precious.txt');
  writeFileSync(outside, 'keep me');
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ formatVersion: 1, id: '../../../../precious.txt', type: 'full', cluster: 'test', artifacts: [{ name: '../../../../precious.txt' }] }));
  const list = await runCli(['backup', 'list', '--cluster', 'test', '--json', '--config', setup.configPath]);
  expect(list.stdout).not.toContain('precious');
  const show = await runCli(['backup', 'show', '../../x', '--config', setup.configPath]);
  expect([show.code, show.stderr]).toEqual([1, expect.stringMatching(/not a backup id: "\.\.\/\.\.\/x"/)]);
  expect(require('node:fs').readFileSync(outside, 'utf8')).toBe('keep me');
});

describe.each(products())('on %s', (product) => {
  test('the drill server refuses TCP and LOAD_FILE, needs a password, and does not run as root', async () => {
    const base = path.join(harness().baseDir, `private-server-${product}`);
    mkdirSync(base, { recursive: true, mode: 0o700 });
    chmodSync(harness().baseDir, 0o711);
    chmodSync(base, 0o711);
    const options = { baseDir: path.join(base, 'server'), private: true, extraArgs: ['--skip-log-bin'] };
    const server = product === 'mysql' ? await startMysqlSandbox(options) : await startMariadbSandbox(options);
    try {
      expect(server.port).toBe(0);
      const password = readFileSync(server.secrets!.rootPasswordFile, 'utf8').trim();
      await expect(createConnection({ socketPath: server.socket, user: 'root' })).rejects.toMatchObject({ errno: 1045 });
      const root = await createConnection({ socketPath: server.socket, user: 'root', password });
      try {
        const [[vars]] = (await root.query("SELECT VERSION() AS v, @@skip_networking AS skip, @@secure_file_priv AS priv, LOAD_FILE('/etc/passwd') AS f")) as unknown as [[RowDataPacket]];
        expect(vars).toMatchObject({ skip: 1, f: null });
        expect(String(vars?.v)).toMatch(product === 'mysql' ? /^9\./ : /MariaDB/);
        expect(String(vars?.priv)).toContain(path.join(base, 'server', 'files'));
        // Only root and the read-only account can sign in (besides the product's own locked system accounts).
        const [accounts] = await root.query<RowDataPacket[]>("SELECT CONCAT(User, '@', Host) AS a FROM mysql.user WHERE User NOT IN ('mariadb.sys', 'mysql', 'mysql.infoschema', 'mysql.session', 'mysql.sys') ORDER BY a");
        expect(accounts.map((r) => r.a)).toEqual(['dbops_check@localhost', 'root@localhost']);
      } finally {
        await root.end();
      }
      for (const file of [server.secrets!.rootPasswordFile, server.secrets!.checkPasswordFile]) expect(statSync(file).mode & 0o777).toBe(0o600);
      const check = await createConnection({ socketPath: server.socket, user: server.secrets!.checkUser, password: readFileSync(server.secrets!.checkPasswordFile, 'utf8').trim() });
      try {
        await expect(check.query('CREATE DATABASE nope')).rejects.toThrow(/denied/);
        const [[file]] = (await check.query("SELECT LOAD_FILE('/etc/passwd') AS f")) as unknown as [[RowDataPacket]];
        expect(file?.f).toBeNull();
      } finally {
        await check.end();
      }
      // No TCP listener at all: the server's only socket is the Unix one in its 0700 folder.
      expect(tcpPortsOf(server.pid)).toEqual([]);
      expect(statSync(server.baseDir).mode & 0o777).toBe(0o700);
      const owner = execSync(`ps -o user= -p ${server.pid}`).toString().trim();
      expect(owner).not.toBe('root');
    } finally {
      await server.stop();
    }
  });
});

test('a swap interrupted between dropping a trigger and creating it again: after the retry the live table has its trigger', async () => {
  const tag = 'a1b2c3d4';
  await conn.query(`CREATE TABLE ${DB}.${restoredName('orders', tag)} LIKE ${DB}.orders`);
  await conn.query(`INSERT INTO ${DB}.${restoredName('orders', tag)} SELECT * FROM ${DB}.orders`);
  const admin = await rootConnection();
  try {
    const triggers = await captureTriggers(admin, DB, ['orders']);
    expect(triggers.map((t) => t.name)).toEqual(['orders_audit']);
    const [[count]] = (await admin.query(`SELECT COUNT(*) AS n FROM ${DB}.${restoredName('orders', tag)}`)) as unknown as [[RowDataPacket]];
    const [[sum]] = (await admin.query(`CHECKSUM TABLE ${DB}.${restoredName('orders', tag)} EXTENDED`)) as unknown as [[RowDataPacket]];
    const expect_ = [{ table: 'orders', rows: Number(count?.n), checksum: String(sum?.Checksum) }];
    // What a worker SIGKILLed mid-swap leaves: the RENAME done, the trigger dropped from the old table, not yet created.
    await admin.query(`RENAME TABLE ${DB}.orders TO ${DB}.${beforeName('orders', tag)}, ${DB}.${restoredName('orders', tag)} TO ${DB}.orders`);
    await admin.query(`DROP TRIGGER ${DB}.orders_audit`);
    // The retry, with the definitions the workflow captured before anything was dropped.
    await swapTables(admin, { database: DB, runTag: tag, tables: ['orders'], triggers, expect: expect_ });
    const [on] = await admin.query<RowDataPacket[]>('SELECT EVENT_OBJECT_TABLE AS t, ACTION_STATEMENT AS s FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME = ?', [DB, 'orders_audit']);
    expect(on).toEqual([{ t: 'orders', s: expect.stringContaining('audit_log') }]);
    // And once more: idempotent.
    await swapTables(admin, { database: DB, runTag: tag, tables: ['orders'], triggers, expect: expect_ });
    const [again] = await admin.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?', [DB]);
    expect(Number(again[0]?.n)).toBe(1);
    // A restored table changed while the approval waited is not swapped in.
    await admin.query(`CREATE TABLE ${DB}.${restoredName('customers', tag)} LIKE ${DB}.customers`);
    await expect(swapTables(admin, { database: DB, runTag: tag, tables: ['customers'], triggers: [], expect: [{ table: 'customers', rows: 5, checksum: '1' }] })).rejects.toThrow(/changed since the restore verified it.*nothing was swapped/);
  } finally {
    await admin.end();
  }
});

test('child processes never inherit the password an { env } reference points at', async () => {
  const h = harness();
  const password = require('node:fs').readFileSync(h.mariadb.passwordFile, 'utf8').trim();
  const dir = path.join(h.baseDir, 'env-probe');
  mkdirSync(dir, { recursive: true });
  // A dump tool that records its environment and arguments, then runs the real one.
  const probe = path.join(dir, 'dump-probe.sh');
  writeFileSync(probe, `#!/bin/sh\nenv > ${dir}/env.txt\necho "$@" > ${dir}/args.txt\nexec mariadb-dump "$@"\n`, { mode: 0o755 });
  const withEnv = makeTestConfig('envsecret', {
    databases: [DB],
    mutate: (raw) => {
      const c = (raw.clusters as Array<Record<string, unknown>>)[0]!;
      c.password = { env: 'DBOPS_TEST_BACKUP_PASSWORD' };
      c.tools = { dump: probe };
    },
  });
  process.env.DBOPS_TEST_BACKUP_PASSWORD = password;
  try {
    await withWorker(withEnv.config, async () => {
      await waitForManifest(await startBackup(client, withEnv.config, 'full', { cluster: 'test' }, new Date(Date.now() + 5000)));
    });
  } finally {
    delete process.env.DBOPS_TEST_BACKUP_PASSWORD;
  }
  const env = require('node:fs').readFileSync(path.join(dir, 'env.txt'), 'utf8');
  const args = require('node:fs').readFileSync(path.join(dir, 'args.txt'), 'utf8');
  expect(env).toContain('PATH=');
  expect(env).not.toContain(password);
  expect(env).not.toContain('DBOPS_TEST_BACKUP_PASSWORD');
  expect(args).not.toContain(password);
  expect(args).toMatch(/--defaults-extra-file=\S+client\.cnf/);
});

test('every session dbops opens has a time limit (the cluster statementTimeout)', async () => {
  const limited = { ...setup.config.clusters[0]!, statementTimeout: '2s' };
  const outcome = await withConnection(limited, async (c) => {
    const [[v]] = (await c.query('SELECT @@max_statement_time AS t')) as unknown as [[RowDataPacket]];
    expect(Number(v?.t)).toBe(2);
    return c.query('SELECT SLEEP(30)').then(() => 'finished', (e: { errno?: number }) => `stopped ${e.errno}`);
  }, { rawErrors: true });
  expect(outcome).toBe('stopped 1969');
});
