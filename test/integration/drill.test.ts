/**
 * DR drills against the real servers, on each product (a MySQL cluster is drilled on a
 * throwaway MySQL, a MariaDB cluster on a MariaDB): a passing drill with RTO and RPO in
 * its result; a drill over a corrupted artifact fails with that reason; failure and
 * cancellation both leave no server process or datadir behind, and so does a worker that
 * starts after a run left its server; a MySQL drill on a worker without MySQL fails at
 * once, naming the fix.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { startBackup, waitForManifest } from '../../src/client/backups';
import { seedSampleDatabase } from '../../src/dev/sampleData';
import type { Manifest, Product } from '../../src/domain/manifest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { parseConfig } from '../../src/config/load';
import { approvalState, decide } from '../../src/client/restores';
import { provisionSandbox } from '../../src/mysql/drillServer';
import { sweepLeftovers } from '../../src/workers/sweep';
import { asPerson, harness, makeTestConfig, products, quietLogger, rootConnection, runCli, temporalClient, withWorker, type TestSetup } from '../harness/context';

/** Is a server process of this product (mariadbd or mysqld) running with a path under dir on its command line? */
function serverRunningIn(product: Product, dir: string): boolean {
  const name = product === 'mysql' ? 'mysqld' : 'mariadbd';
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) return true;
    } catch {
      // gone
    }
  }
  return false;
}

const drillDir = () => path.join(process.env.DBOPS_DRILL_DIR!, 'dbops-drills');

describe.each(products())('on %s', (product) => {
  const DB = 'drilltest';
  let setup: TestSetup;
  let client: Client;
  let close: () => Promise<void>;
  let incremental: Manifest;

  beforeAll(async () => {
    process.env.DBOPS_DRILL_DIR = mkdtempSync(path.join(harness().baseDir, 'drills-'));
    // The drill server runs as an unprivileged OS user: the folders above its own must let it through.
    chmodSync(harness().baseDir, 0o711);
    chmodSync(process.env.DBOPS_DRILL_DIR, 0o711);
    const conn = await rootConnection(product);
    await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
    await seedSampleDatabase(conn, { database: DB, customers: 30, orders: 400 });
    await conn.end();
    setup = makeTestConfig(`drill-${product}`, { product, databases: [DB] });
    const raw = parseYaml(readFileSync(setup.configPath, 'utf8')) as { clusters: Array<{ approvers: Record<string, string[]> }>; drills?: unknown };
    raw.clusters[0]!.approvers['drill-failover'] = ['carol'];
    raw.drills = {
      sampleQueries: [{ database: DB, sql: "SELECT id FROM orders WHERE status = 'paid'", minRows: 1 }],
      failoverChecks: [{ database: DB, sql: 'SELECT COUNT(*) AS n FROM customers', minRows: 1 }],
    };
    const text = toYaml(raw);
    writeFileSync(setup.configPath, text);
    setup = { ...setup, config: parseConfig(text, setup.configPath, setup.dir) };
    ({ client, close } = await temporalClient());
    await withWorker(setup.config, async () => {
      await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test' }));
      const c = await rootConnection(product);
      await c.query(`INSERT INTO ${DB}.orders (customer_id, status, total, created_at) VALUES (1, 'paid', 5, NOW()), (2, 'new', 6, NOW())`);
      await c.end();
      incremental = await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 1000)));
    });
  });

  afterAll(async () => {
    await close();
  });

  test('a passing drill: latest point restored into a throwaway server, checked, RTO and RPO measured, report filed, server gone', async () => {
    await withWorker(setup.config, async () => {
      const run = await runCli(['drill', 'run', '--cluster', 'test', '--rpo', '1h', '--wait', '--json', '--config', setup.configPath]);
      expect(run.stderr).toBe('');
      const { report, files } = JSON.parse(run.stdout);
      expect(report).toMatchObject({ passed: true, problems: [], databases: [DB], chain: [incremental.id] });
      expect(report.rto.seconds).toBeGreaterThan(0);
      expect(report.rto.targetSeconds).toBe(4 * 3600);
      expect(report.rpo.seconds).toBeGreaterThanOrEqual(0);
      expect(report.rpo.targetSeconds).toBe(3600);
      expect(report.phases.map((p: { name: string }) => p.name)).toEqual(['plan', 'provision server', `restore ${DB}`, 'verify', 'sample queries', 'tear down']);
      expect(report.checks.find((c: { what: string }) => c.what.startsWith('sample query'))).toMatchObject({ ok: true, detail: expect.stringMatching(/^\d+ row\(s\), at least 1 expected$/) });
      expect(report.checks.find((c: { what: string }) => c.what === `${DB}: row counts at the snapshot`)).toMatchObject({ ok: true });
      expect(report.checks.find((c: { what: string }) => c.what === 'schema objects')).toMatchObject({ ok: true, detail: 'routines 2/2, triggers 1/1, events 1/1, views 1/1' });
      expect(readFileSync(files.markdown, 'utf8')).toMatch(/^# DR drill drill-\d{8}T\d{6}Z of test: PASSED/);
      expect(readdirSync(drillDir())).toEqual([]);
      const list = await runCli(['drill', 'list', '--cluster', 'test', '--config', setup.configPath]);
      expect(list.stdout).toMatch(new RegExp(`${report.drillId}\\s+passed`));
    });
  });

  test('the full drill profile: a failover rehearsal runs its checks only after a person approves', async () => {
    await withWorker(setup.config, async () => {
      const started = await runCli(['drill', 'run', '--cluster', 'test', '--full', '--rpo', '1h', '--json', '--config', setup.configPath]);
      const { workflowId } = JSON.parse(started.stdout);
      for (let i = 0; i < 300 && (await approvalState(client, workflowId).catch(() => null))?.status !== 'pending'; i++) await new Promise((r) => setTimeout(r, 100));
      await expect(decide(client, workflowId, 'approve', 'alice', 'not mine')).rejects.toThrow(/alice is not an approver for drill-failover on test \(approvers: carol\)/);
      await asPerson('carol', (carol) => decide(carol, workflowId, 'approve', 'carol', 'quarterly drill Q4'));
      const { report } = (await client.workflow.getHandle(workflowId).result()) as { report: { passed: boolean; phases: Array<{ name: string }>; checks: Array<{ what: string; ok: boolean }> } };
      expect(report.passed).toBe(true);
      expect(report.phases.map((p) => p.name)).toContain('failover rehearsal');
      expect(report.checks.find((c) => c.what.startsWith('failover check on drilltest'))).toMatchObject({ ok: true });
      expect(readdirSync(drillDir())).toEqual([]);
    });
  });

  test('a drill over a corrupted artifact fails loudly with the reason; no server or datadir is left', async () => {
    const file = path.join(setup.config.repository.path!, 'test', 'incremental', incremental.startedAt.slice(0, 10), incremental.id, incremental.artifacts[0]!.name);
    const original = readFileSync(file);
    const bad = Buffer.from(original);
    bad[bad.length >> 1]! ^= 0xff;
    writeFileSync(file, bad);
    try {
      await withWorker(setup.config, async () => {
        const handle = await client.workflow.start('disasterRecoveryDrillWorkflow', { taskQueue: setup.config.temporal.taskQueue, workflowId: `drill/test/corrupt-${Date.now()}`, args: [{ cluster: 'test', rpoTarget: '1h' }] });
        const error = await handle.result().then(() => null, (e: unknown) => e);
        expect(error).toBeInstanceOf(WorkflowFailedError);
        expect(String((error as WorkflowFailedError).cause?.message)).toMatch(/DR drill drill-\S+ of test failed: restore failed: .*(zstd|decompress|Corrupted|checksum)/i);
      });
      expect(readdirSync(drillDir())).toEqual([]);
      expect(serverRunningIn(product, drillDir())).toBe(false);
      const reports = readdirSync(path.join(setup.config.repository.path!, 'test', 'drills'));
      const latest = JSON.parse(readFileSync(path.join(setup.config.repository.path!, 'test', 'drills', reports.sort().pop()!, 'report.json'), 'utf8'));
      expect(latest.passed).toBe(false);
    } finally {
      writeFileSync(file, original);
    }
  });

  test('a cancelled drill removes its server and datadir', async () => {
    await withWorker(setup.config, async () => {
      const handle = await client.workflow.start('disasterRecoveryDrillWorkflow', { taskQueue: setup.config.temporal.taskQueue, workflowId: `drill/test/cancel-${Date.now()}`, args: [{ cluster: 'test' }] });
      // Cancelled once the cluster's product runs in the drill's folder (initialising or serving).
      let seen = false;
      for (let i = 0; i < 2400 && !seen; i++) {
        seen = existsSync(drillDir()) && serverRunningIn(product, drillDir());
        if (!seen) await new Promise((r) => setTimeout(r, 25));
      }
      expect(seen).toBe(true);
      expect(readdirSync(drillDir()).length).toBe(1);
      await handle.cancel();
      await expect(handle.result()).rejects.toThrow();
      expect(readdirSync(drillDir())).toEqual([]);
      expect(serverRunningIn(product, drillDir())).toBe(false);
    });
  });

  test('a drill server left behind by a run that has ended is stopped and removed when a worker starts', async () => {
    const sandbox = await provisionSandbox('drill-left-behind', 950, { workflowId: 'drill/test/ended-long-ago', runId: 'gone' }, product);
    expect(sandbox.product).toBe(product);
    expect(serverRunningIn(product, sandbox.baseDir)).toBe(true);
    const report = await sweepLeftovers(setup.config, quietLogger, new Set(['some/other/run']));
    expect(report.removed).toContain(sandbox.baseDir);
    expect(existsSync(sandbox.baseDir)).toBe(false);
    expect(serverRunningIn(product, drillDir())).toBe(false);
  });

  if (product === 'mysql') {
    test('a MySQL drill on a worker without MySQL fails at once, naming the fix; nothing is left behind', async () => {
      const saved = process.env.DBOPS_MYSQL_BIN_DIR;
      process.env.DBOPS_MYSQL_BIN_DIR = path.join(setup.dir, 'no-mysql-here');
      try {
        await withWorker(setup.config, async () => {
          const handle = await client.workflow.start('disasterRecoveryDrillWorkflow', { taskQueue: setup.config.temporal.taskQueue, workflowId: `drill/test/no-mysql-${Date.now()}`, args: [{ cluster: 'test', rpoTarget: '1h' }] });
          const error = await handle.result().then(() => null, (e: unknown) => e);
          expect(error).toBeInstanceOf(WorkflowFailedError);
          expect(String((error as WorkflowFailedError).cause?.message)).toMatch(/MySQL is not installed for this worker: .*run scripts\/setup\.sh as root.*or set DBOPS_MYSQL_BIN_DIR/);
          // At once: one attempt at provisioning, no retries.
          const history = await handle.fetchHistory();
          const attempts = (history.events ?? []).map((e) => e.activityTaskStartedEventAttributes?.attempt).filter((a): a is number => typeof a === 'number');
          expect(Math.max(...attempts)).toBe(1);
        });
      } finally {
        if (saved === undefined) delete process.env.DBOPS_MYSQL_BIN_DIR;
        else process.env.DBOPS_MYSQL_BIN_DIR = saved;
      }
      expect(readdirSync(drillDir())).toEqual([]);
    });
  }
});
